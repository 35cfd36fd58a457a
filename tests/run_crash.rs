//! `medic run` killed with SIGKILL at every step boundary of a live plan
//! and started again on its state directory: each step is carried out
//! exactly once, and the incident is not lost. `MEDIC_TEST_PAUSE_AT` stops
//! medic right after its Nth intent is written (before acting) or right
//! after its Nth action (before its result is written).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;
use common::live::{FAST_CRASH_LOOP, Killed, exporter_and_prometheus, get_api, write_setup};

const PLAYBOOKS: &str = r#"apiVersion: medic.dev/v1alpha1
kind: Playbook
metadata: {name: fence-and-scale}
spec:
  trigger: {signal: fast_crash_loop}
  maxAutonomousRisk: low
  steps:
    - {action: cordon_node, risk: low}
    - action: scale
      risk: low
      params: {delta: 1}
      waitFor: {query: 'sum(increase(kube_pod_container_status_restarts_total[5s])) < 1', for: 2s, timeout: 2m}
  rollback: []
"#;

const CLUSTER: &str = r#"name: live cluster
interval: 1s
duration: 1s
series: []
cluster:
  - {apiVersion: v1, kind: Node, metadata: {name: n1}}
  - {apiVersion: v1, kind: Node, metadata: {name: n2}}
  - {apiVersion: v1, kind: Node, metadata: {name: n3}}
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}, spec: {replicas: 1}}
  - {apiVersion: v1, kind: Pod, metadata: {name: api-7c9-x, namespace: shop, ownerReferences: [{kind: ReplicaSet, name: api-7c9, controller: true}]}, spec: {nodeName: n1}}
expect: {}
"#;

fn medic(dir: &Path, pause_at: Option<&str>) -> Killed {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medic"));
    c.args(["run", "--config"])
        .arg(dir.join("medic.yaml"))
        .arg("--sim-cluster")
        .arg(dir.join("cluster.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(at) = pause_at {
        c.env("MEDIC_TEST_PAUSE_AT", at);
    }
    Killed(c.spawn().unwrap())
}

/// (action, target) of each action that changed something, from the API.
async fn actions(base: &str) -> Option<(Vec<(String, String)>, bool, Vec<String>)> {
    let list: serde_json::Value = get_api(&format!("{base}/api/v1/incidents"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let inc = list.as_array()?.first()?.clone();
    let done = inc["actions"]
        .as_array()?
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or_default().to_string(),
                a["target"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let messages = inc["actions"]
        .as_array()?
        .iter()
        .map(|a| a["message"].as_str().unwrap_or_default().to_string())
        .collect();
    Some((done, !inc["resolved_at_s"].is_null(), messages))
}

async fn killed_at(at: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (restarts, _prometheus, prom_port) = exporter_and_prometheus(dir.path()).await;
    let port = write_setup(
        dir.path(),
        &format!("{FAST_CRASH_LOOP}---\n{PLAYBOOKS}"),
        CLUSTER,
        prom_port,
    );
    let mut first = medic(dir.path(), Some(at));
    // The crash loop: a restart a second, until medic has paused.
    let stderr = first.0.stderr.take().unwrap();
    let (paused_tx, paused_rx) = std::sync::mpsc::channel();
    let marker = format!("medic: paused at {at}");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with(&marker) {
                let _ = paused_tx.send(());
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        restarts.fetch_add(1, Ordering::SeqCst);
        if paused_rx.try_recv().is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "medic never reached {at}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    drop(first);
    // The restart loop stops; medic comes back on the same state directory.
    let _second = medic(dir.path(), None);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let (done, messages) = loop {
        if let Some((done, resolved, messages)) = actions(&base).await
            && resolved
        {
            break (done, messages);
        }
        assert!(
            Instant::now() < deadline,
            "killed at {at}: the plan never finished"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        done,
        vec![
            ("cordon_node".to_string(), "Node/n1".to_string()),
            ("scale".to_string(), "Deployment/shop/api".to_string()),
        ],
        "killed at {at}: each step once"
    );
    if let Some(n) = at.strip_prefix("result:") {
        let n: usize = n.parse().unwrap();
        assert_eq!(
            messages[n - 1],
            "found done in the cluster after a restart",
            "killed at {at}"
        );
    }
    // Scaled once: 1 -> 2 replicas, never 3.
    let cluster = std::fs::read_to_string(dir.path().join("state/cluster.json")).unwrap();
    assert!(
        cluster.contains(r#""replicas":2"#),
        "killed at {at}: {cluster}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medic_run_killed_at_every_step_boundary_runs_each_step_once() {
    for at in ["intent:1", "result:1", "intent:2", "result:2"] {
        killed_at(at).await;
    }
}
