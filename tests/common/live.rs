//! What the `medic run` tests share: a loopback exporter whose restart
//! counter the test drives, a real Prometheus scraping it every second, and
//! processes killed when the test ends.

use axum::Router;
use axum::routing::get;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The detector both live tests drive: two restarts in 10 seconds.
pub const FAST_CRASH_LOOP: &str = r#"apiVersion: medic.dev/v1alpha1
kind: Detector
metadata: {name: fast_crash_loop}
spec:
  severity: high
  query: sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total[10s])) >= 2
  target: {kind: Pod, namespace: "{{ namespace }}", name: "{{ pod }}"}
  for: 2s
"#;

/// The token people's tools send to medic's API, and Alertmanager's.
pub const API_TOKEN: &str = "live-api-token";
pub const WEBHOOK_TOKEN: &str = "live-webhook-token";

/// An HTTP client that sends `token` with every request.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// GET `url` as a person's tool does, with the API token.
pub async fn get_api(url: &str) -> reqwest::Result<reqwest::Response> {
    client_with(API_TOKEN).get(url).send().await
}

/// A child process killed on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    medic::replay::free_port().unwrap()
}

/// Serves `kube_pod_container_status_restarts_total` for pod shop/api-7c9-x
/// with the counter's value; returns the counter and the Prometheus that
/// scrapes it (its port).
pub async fn exporter_and_prometheus(dir: &Path) -> (Arc<AtomicU64>, Killed, u16) {
    let restarts = Arc::new(AtomicU64::new(0));
    let r = restarts.clone();
    let exporter = Router::new().route(
        "/metrics",
        get(move || {
            let n = r.load(Ordering::SeqCst);
            async move {
                format!(
                    "# TYPE kube_pod_container_status_restarts_total counter\nkube_pod_container_status_restarts_total{{namespace=\"shop\",pod=\"api-7c9-x\",container=\"api\"}} {n}\n"
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let exporter_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, exporter).await.unwrap() });
    let prom_port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!("global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: exporter\n    static_configs: [{{targets: ['{exporter_addr}']}}]\n"),
    )
    .unwrap();
    let prometheus = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus must be installed (scripts/install-deps)"),
    );
    (restarts, prometheus, prom_port)
}

/// Writes a `medic run` setup into `dir`: the playbooks, the simulated
/// cluster and a medic.yaml (enforce, 1s cycles, short settle and resolve,
/// the API and webhook tokens in files) pointing at the Prometheus on
/// `prom_port`. Returns medic's HTTP port.
pub fn write_setup(dir: &Path, playbooks_yaml: &str, cluster_yaml: &str, prom_port: u16) -> u16 {
    let playbooks = dir.join("playbooks");
    std::fs::create_dir(&playbooks).unwrap();
    std::fs::write(playbooks.join("live.yaml"), playbooks_yaml).unwrap();
    std::fs::write(dir.join("cluster.yaml"), cluster_yaml).unwrap();
    let port = free_port();
    std::fs::write(dir.join("api-token"), API_TOKEN).unwrap();
    std::fs::write(dir.join("webhook-token"), WEBHOOK_TOKEN).unwrap();
    std::fs::write(
        dir.join("medic.yaml"),
        format!(
            "mode: enforce\ninterval: 1s\nlisten: 127.0.0.1:{port}\nplaybooksDir: {}\nbuiltin: false\nprometheus: {{url: 'http://127.0.0.1:{prom_port}'}}\ncorrelation: {{settle: 1s, resolveAfter: 3s}}\nstateDir: {}\napi: {{tokenFile: {}, webhook: {{tokenFile: {}}}}}\n",
            playbooks.display(),
            dir.join("state").display(),
            dir.join("api-token").display(),
            dir.join("webhook-token").display(),
        ),
    )
    .unwrap();
    port
}
