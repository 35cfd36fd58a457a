//! The webhook as it is used: a real Prometheus evaluates a rule that
//! fires, a real Alertmanager routes the alert to medic with the
//! `authorization` credentials medic expects, and medic (enforce mode,
//! simulated cluster) turns it into a signal and runs the planned step. The
//! same Alertmanager routes a second alert to medic without credentials:
//! it is refused, and nothing is done about it.

use axum::Router;
use axum::routing::get;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;
use common::live::{Killed, WEBHOOK_TOKEN, free_port, get_api, write_setup};

/// An alert named after a detector raises that detector's signal; these
/// detectors' own queries never fire, so only the alerts can.
const PLAYBOOKS: &str = r#"apiVersion: medic.dev/v1alpha1
kind: Detector
metadata: {name: api_pod_flapping}
spec:
  severity: high
  query: max by (namespace, pod) (test_never_served) > 0
  target: {kind: Pod, namespace: "{{ namespace }}", name: "{{ pod }}"}
---
apiVersion: medic.dev/v1alpha1
kind: Detector
metadata: {name: api_pod_unguarded}
spec:
  severity: high
  query: max by (namespace, pod) (test_never_served) > 0
  target: {kind: Pod, namespace: "{{ namespace }}", name: "{{ pod }}"}
---
apiVersion: medic.dev/v1alpha1
kind: Playbook
metadata: {name: restart-on-alert}
spec:
  trigger: {signal: api_pod_flapping}
  maxAutonomousRisk: low
  steps:
    - {action: rollout_restart, risk: low}
  rollback: []
---
apiVersion: medic.dev/v1alpha1
kind: Playbook
metadata: {name: restart-on-unguarded-alert}
spec:
  trigger: {signal: api_pod_unguarded}
  maxAutonomousRisk: low
  steps:
    - {action: rollout_restart, risk: low}
  rollback: []
"#;

const CLUSTER: &str = r#"name: alertmanager cluster
interval: 1s
duration: 1s
series: []
cluster:
  - {apiVersion: v1, kind: Node, metadata: {name: n1}}
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}, spec: {replicas: 1}}
  - {apiVersion: v1, kind: Pod, metadata: {name: api-7c9-x, namespace: shop, ownerReferences: [{kind: ReplicaSet, name: api-7c9, controller: true}]}, spec: {nodeName: n1}}
  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop}, spec: {replicas: 1}}
  - {apiVersion: v1, kind: Pod, metadata: {name: web-5d4-y, namespace: shop, ownerReferences: [{kind: ReplicaSet, name: web-5d4, controller: true}]}, spec: {nodeName: n1}}
expect: {}
"#;

/// A rule per alert, each firing at once on the exporter's gauge.
const RULES: &str = r#"groups:
  - name: medic-test
    interval: 1s
    rules:
      - alert: api_pod_flapping
        expr: test_flapping{pod="api-7c9-x"} > 0
        labels: {severity: critical}
      - alert: api_pod_unguarded
        expr: test_flapping{pod="web-5d4-y"} > 0
        labels: {severity: critical}
"#;

/// Starts the exporter, Prometheus with `RULES`, and an Alertmanager that
/// sends api_pod_flapping to `medic_port` with the webhook token and
/// api_pod_unguarded to the same URL without credentials.
async fn monitoring(dir: &Path, medic_port: u16, prom_port: u16) -> (Killed, Killed) {
    let exporter = Router::new().route(
        "/metrics",
        get(|| async {
            "# TYPE test_flapping gauge\n\
             test_flapping{namespace=\"shop\",pod=\"api-7c9-x\"} 1\n\
             test_flapping{namespace=\"shop\",pod=\"web-5d4-y\"} 1\n"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exporter_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, exporter).await.unwrap() });

    std::fs::write(dir.join("webhook-token-am"), WEBHOOK_TOKEN).unwrap();
    let am_port = free_port();
    let url = format!("http://127.0.0.1:{medic_port}/api/v1/alerts");
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: medic\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n  routes:\n    - receiver: medic-without-credentials\n      matchers: ['alertname=\"api_pod_unguarded\"']\n\
             receivers:\n  - name: medic\n    webhook_configs:\n      - url: {url}\n        send_resolved: true\n        http_config:\n          authorization: {{type: Bearer, credentials_file: {}}}\n\
             \x20 - name: medic-without-credentials\n    webhook_configs:\n      - url: {url}\n",
            dir.join("webhook-token-am").display()
        ),
    )
    .unwrap();
    let alertmanager = Killed(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager must be installed (scripts/install-deps)"),
    );

    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    std::fs::write(
        dir.join("prometheus-am.yml"),
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{}]\n\
             alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n\
             scrape_configs:\n  - job_name: exporter\n    static_configs: [{{targets: ['{exporter_addr}']}}]\n",
            dir.join("rules.yml").display()
        ),
    )
    .unwrap();
    let prometheus = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus-am.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("am-prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus must be installed (scripts/install-deps)"),
    );
    (alertmanager, prometheus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_routed_with_credentials_is_acted_on_and_one_without_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The Prometheus that evaluates the rules also answers medic's queries.
    let prom_port = free_port();
    let medic_port = write_setup(dir.path(), PLAYBOOKS, CLUSTER, prom_port);
    let (_alertmanager, _prometheus) = monitoring(dir.path(), medic_port, prom_port).await;
    let _medic = Killed(
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
    let base = format!("http://127.0.0.1:{medic_port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let (incidents, metrics) = loop {
        let list: serde_json::Value = match get_api(&format!("{base}/api/v1/incidents")).await {
            Ok(r) if r.status() == 200 => r.json().await.unwrap(),
            _ => serde_json::Value::Null,
        };
        let metrics = match get_api(&format!("{base}/metrics")).await {
            Ok(r) => r.text().await.unwrap(),
            Err(_) => String::new(),
        };
        let acted = list
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["actions"][0]["result"] == "ok"));
        // Alertmanager has tried the unguarded route at least once.
        let refused = metrics.contains("medic_http_refused_total{endpoint=\"alerts\"}");
        if acted && refused {
            break (list, metrics);
        }
        assert!(
            Instant::now() < deadline,
            "no action on the routed alert, or no refusal: {list}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let incidents = incidents.as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert!(
        incident["timeline"]
            .to_string()
            .contains("api_pod_flapping on Pod/shop/api-7c9-x"),
        "{incident}"
    );
    assert_eq!(incident["actions"][0]["action"], "rollout_restart");
    assert_eq!(incident["actions"][0]["target"], "Deployment/shop/api");
    assert!(
        !serde_json::Value::Array(incidents.clone())
            .to_string()
            .contains("api_pod_unguarded"),
        "the alert without credentials was taken in"
    );
    assert!(
        metrics.contains("medic_actions_total{action=\"rollout_restart\",result=\"ok\"} 1"),
        "{metrics}"
    );
}
