//! `medic run` end to end: a real Prometheus scraping a loopback exporter
//! whose metrics the test drives, medic in enforce mode against a simulated
//! cluster, an incident detected, remediated and resolved, seen through
//! medic's own HTTP API.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;
use common::live::{
    FAST_CRASH_LOOP, Killed, WEBHOOK_TOKEN, client_with, exporter_and_prometheus, get_api,
    write_setup,
};

const PLAYBOOKS: &str = r#"apiVersion: medic.dev/v1alpha1
kind: Detector
metadata: {name: queue_backlog}
spec:
  severity: warning
  query: max by (namespace, pod) (work_queue_depth) > 1000
  target: {kind: Pod, namespace: "{{ namespace }}", name: "{{ pod }}"}
---
apiVersion: medic.dev/v1alpha1
kind: Playbook
metadata: {name: restart-crash-loop}
spec:
  trigger: {signal: fast_crash_loop}
  maxAutonomousRisk: low
  steps:
    - action: rollout_restart
      risk: low
      waitFor: {query: 'sum(increase(kube_pod_container_status_restarts_total[5s])) < 1', for: 2s, timeout: 2m}
  rollback: []
"#;

const CLUSTER: &str = r#"name: live cluster
interval: 1s
duration: 1s
series: []
cluster:
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}, spec: {replicas: 1}}
  - {apiVersion: v1, kind: Pod, metadata: {name: api-7c9-x, namespace: shop, ownerReferences: [{kind: ReplicaSet, name: api-7c9, controller: true}]}, spec: {nodeName: n1}}
expect: {}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medic_run_detects_remediates_and_resolves_a_live_incident() {
    // The exporter: a restart counter the test makes climb, then stop.
    let dir = tempfile::tempdir().unwrap();
    let (restarts, _prometheus, prom_port) = exporter_and_prometheus(dir.path()).await;
    let medic_port = write_setup(
        dir.path(),
        &format!("{FAST_CRASH_LOOP}---\n{PLAYBOOKS}"),
        CLUSTER,
        prom_port,
    );
    let playbooks = dir.path().join("playbooks");
    let mut medic = Killed(
        Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["run", "--config"])
            .arg(dir.path().join("medic.yaml"))
            .arg("--sim-cluster")
            .arg(dir.path().join("cluster.yaml"))
            .env("MEDIC_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{medic_port}");
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move { get_api(&url).await.ok() }
    };
    // Ready once a cycle has queried Prometheus.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = get("/readyz").await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "medic never became ready");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A bad playbook edit is rejected; the loaded set stays.
    std::fs::write(playbooks.join("broken.yaml"), "kind: Playbook\n").unwrap();
    // The crash loop: a restart a second for twelve seconds.
    for _ in 0..12 {
        restarts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut saw_firing = false;
    let incident = loop {
        if let Some(r) = get("/metrics").await {
            let text = r.text().await.unwrap();
            saw_firing |= text.contains("medic_signals_firing{detector=");
        }
        let list: serde_json::Value = match get("/api/v1/incidents").await {
            Some(r) => r.json().await.unwrap(),
            None => serde_json::Value::Null,
        };
        if let Some(inc) = list.as_array().and_then(|a| a.first())
            && !inc["resolved_at_s"].is_null()
        {
            break inc.clone();
        }
        assert!(Instant::now() < deadline, "no resolved incident: {list}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(incident["root_cause"], "Deployment/shop/api");
    assert_eq!(incident["actions"][0]["action"], "rollout_restart");
    assert_eq!(incident["actions"][0]["target"], "Deployment/shop/api");
    assert_eq!(incident["actions"][0]["result"], "ok");
    let stages: Vec<&str> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["stage"].as_str())
        .collect();
    for stage in [
        "detect", "open", "diagnose", "plan", "execute", "verify", "resolve",
    ] {
        assert!(stages.contains(&stage), "{stage} missing from {stages:?}");
    }
    let one: serde_json::Value = get(&format!(
        "/api/v1/incidents/{}",
        incident["id"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(one["id"], incident["id"]);
    assert_eq!(get("/api/v1/incidents/nope").await.unwrap().status(), 404);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("medic_actions_total{action=\"rollout_restart\",result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("medic_cycle_duration_seconds_count"),
        "{metrics}"
    );
    for line in [
        "medic_time_to_detect_seconds_count 1",
        "medic_time_to_remediate_seconds_count 1",
        "medic_leader 1",
        "medic_cluster_view 1",
        // No exporter serves work_queue_depth: that detector is blind.
        "medic_detector_blind{detector=\"queue_backlog\"} 1",
        // Each tick's phases are timed.
        "medic_tick_phase_seconds_count{phase=\"correlate\"}",
        "medic_tick_phase_seconds_count{phase=\"decide\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from {metrics}");
    }
    assert!(saw_firing, "signals firing were never reported");
    assert_eq!(
        get("/readyz").await.unwrap().status(),
        200,
        "the rejected edit did not unload anything"
    );
    // The front door: without the right credentials nothing is read and
    // nothing is taken in, not even an alert that would have a node cordoned.
    let anyone = reqwest::Client::new();
    let cordon_bait = serde_json::json!({"version": "4", "status": "firing", "receiver": "medic", "alerts": [
        {"status": "firing", "labels": {"alertname": "node_memory_pressure", "node": "n1", "severity": "critical"},
         "startsAt": "2024-01-01T00:00:00Z", "fingerprint": "bait01"}]});
    let unauthenticated = anyone
        .post(format!("{base}/api/v1/alerts"))
        .json(&cordon_bait)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let wrong = client_with("guessed")
        .post(format!("{base}/api/v1/alerts"))
        .json(&cordon_bait)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // The people's token is not Alertmanager's.
    let api_token_on_webhook = client_with(common::live::API_TOKEN)
        .post(format!("{base}/api/v1/alerts"))
        .json(&cordon_bait)
        .send()
        .await
        .unwrap();
    assert_eq!(api_token_on_webhook.status(), 401);
    for path in ["/api/v1/incidents", "/api/v1/incidents/nope"] {
        let r = anyone.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = anyone.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} stays open");
    }
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for line in [
        "medic_http_refused_total{endpoint=\"alerts\"} 3",
        "medic_http_refused_total{endpoint=\"incidents\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from {metrics}");
    }
    // Alertmanager's webhook: an alert becomes a signal (kube-prometheus's
    // KubeNodeNotReady is medic's node_not_ready); its repeat is deduplicated.
    let http = client_with(WEBHOOK_TOKEN);
    let alert = serde_json::json!({"version": "4", "status": "firing", "receiver": "medic", "alerts": [
        {"status": "firing", "labels": {"alertname": "KubeNodeNotReady", "node": "n1", "severity": "critical"},
         "startsAt": "2024-01-01T00:00:00Z", "fingerprint": "abc123"}]});
    for _ in 0..2 {
        let r = http
            .post(format!("{base}/api/v1/alerts"))
            .json(&alert)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["accepted"], 1);
    }
    let bad = http
        .post(format!("{base}/api/v1/alerts"))
        .header("content-type", "application/json")
        .body("{\"alerts\": 3}")
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error(), "{}", bad.status());
    let v3 = http
        .post(format!("{base}/api/v1/alerts"))
        .json(&serde_json::json!({"version": "3", "alerts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(v3.status(), 400);
    let huge = http
        .post(format!("{base}/api/v1/alerts"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: serde_json::Value = get("/api/v1/incidents")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let alerted: Vec<&serde_json::Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                i["timeline"]
                    .to_string()
                    .contains("node_not_ready on Node/n1")
            })
            .collect();
        assert!(
            !list.to_string().contains("node_memory_pressure"),
            "a refused alert was taken in: {list}"
        );
        if !alerted.is_empty() {
            assert_eq!(alerted.len(), 1);
            assert_eq!(
                list.as_array().unwrap().len(),
                2,
                "the repeat made no second incident"
            );
            assert_eq!(alerted[0]["severity"], "critical");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the alert never became an incident: {list}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // SIGKILL mid-run, then start again on the same state directory: both
    // incidents come back from the journal, the remediation is not redone.
    let before: serde_json::Value = get("/api/v1/incidents")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    medic.0.kill().unwrap();
    medic.0.wait().unwrap();
    // (A broken playbook set stops medic at start; the rejected edit goes.)
    std::fs::remove_file(playbooks.join("broken.yaml")).unwrap();
    medic = Killed(
        Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["run", "--config"])
            .arg(dir.path().join("medic.yaml"))
            .arg("--sim-cluster")
            .arg(dir.path().join("cluster.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        if let Some(r) = get("/api/v1/incidents").await {
            let list: serde_json::Value = r.json().await.unwrap();
            if list.as_array().is_some_and(|a| a.len() == 2) {
                break list;
            }
        }
        assert!(
            Instant::now() < deadline,
            "incidents not restored after SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let ids = |l: &serde_json::Value| -> Vec<String> {
        l.as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&after), ids(&before));
    let remediated = after
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == incident["id"])
        .unwrap();
    assert_eq!(remediated["actions"], incident["actions"], "nothing redone");
    assert!(!remediated["resolved_at_s"].is_null());
    // SIGTERM stops it cleanly.
    let pid = medic.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = medic.0.wait().unwrap();
    assert!(status.success(), "{status}");
}
