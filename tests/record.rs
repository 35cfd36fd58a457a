//! `medic record` round trip: a fixture loaded into a real Prometheus,
//! recorded back through the CLI, replays with the same signals at the
//! same times.

use medic::replay::series::to_openmetrics;
use medic::replay::{Loaded, PrometheusServer, ReplayOptions, Report, replay_loaded};
use std::path::Path;
use std::process::Output;

fn signals(r: &Report) -> Vec<(String, String, i64)> {
    r.signals
        .iter()
        .map(|s| (s.signal.clone(), s.target.clone(), s.at_s))
        .collect()
}

/// The leak fixture, and a real Prometheus holding its series.
async fn leak_in_prometheus() -> (Loaded, PrometheusServer) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents/memory-leak-after-deploy.yaml");
    let original = Loaded::load(&path).unwrap();
    let om = to_openmetrics(
        &original.series,
        original.start,
        original.fixture.interval.0,
    );
    let server = PrometheusServer::start(&om, original.start).await.unwrap();
    (original, server)
}

/// `medic record` of the leak's container, kube and node-exporter series
/// from `url` into `out`, with `extra` flags.
async fn record_leak(url: &str, original: &Loaded, out: &Path, extra: &[&str]) -> Output {
    let (start, end) = (original.start, original.start + original.fixture.duration.0);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_medic"));
    c.args(["record", "--prometheus", url])
        .args(["--from", &start.to_string(), "--to", &end.to_string()])
        .args(["--match", "{__name__=~\"container_.*|kube_.*\"}"])
        .args(["--match", "{job=\"node-exporter\"}"])
        .args(extra)
        .arg("--out")
        .arg(out);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// Replays both; the recording must see the same signals at the same times
/// and rank the same root cause.
async fn replay_alike(original: &Loaded, recorded: &Loaded) -> (Report, Report) {
    let a = replay_loaded(original, &ReplayOptions::embedded())
        .await
        .unwrap();
    let b = replay_loaded(recorded, &ReplayOptions::embedded())
        .await
        .unwrap();
    assert!(!signals(&a).is_empty());
    assert_eq!(signals(&a), signals(&b));
    assert_eq!(a.incidents[0].root_cause, b.incidents[0].root_cause);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_incident_replays_the_same() {
    let (original, server) = leak_in_prometheus().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded.yaml");
    let o = record_leak(server.url(), &original, &out, &["--name", "recorded leak"]).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("# Recorded by medic record"));
    assert!(text.contains("interval: 15s"), "the spacing is inferred");
    // Runs of equal values are folded, e.g. the flat 4 GB limit.
    assert!(text.contains("values: 4000000000x112"), "{text}");
    let mut recorded = Loaded::parse(&text, "recorded.yaml").unwrap();
    assert_eq!(recorded.series.len(), original.series.len());
    // Add what record cannot know: the cluster and the change events.
    recorded.objects = original.objects.clone();
    recorded.changes = original.changes.clone();
    replay_alike(&original, &recorded).await;
}

#[test]
fn a_bad_time_says_which_flag() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
        .args([
            "record",
            "--prometheus",
            "http://127.0.0.1:9",
            "--from",
            "yesterday",
            "--to",
            "0",
            "--match",
            "up",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--from: `yesterday` is neither RFC 3339"),
        "{err}"
    );
}

/// A loopback stand-in for the API server's read paths: serves a fixture's
/// objects by kind, namespace and name (and the node and ReplicaSet lists),
/// answers 404 as the API server does, and records each path asked for.
mod fake_api {
    use axum::Router;
    use axum::http::{StatusCode, Uri};
    use axum::response::IntoResponse;
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};

    pub struct Server {
        pub url: String,
        pub paths: Arc<Mutex<Vec<String>>>,
    }

    fn plural(kind: &str) -> String {
        format!("{}s", kind.to_lowercase())
    }

    fn path_of(o: &Value) -> String {
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        let group = match o["apiVersion"].as_str().unwrap_or_default() {
            "v1" => "/api/v1".to_string(),
            other => format!("/apis/{other}"),
        };
        match o["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{group}/namespaces/{ns}/{}/{name}", plural(kind)),
            None => format!("{group}/{}/{name}", plural(kind)),
        }
    }

    pub async fn start(objects: Vec<Value>) -> Server {
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        let app = Router::new().fallback(move |uri: Uri| {
            let objects = objects.clone();
            let seen = seen.clone();
            async move {
                let path = uri.path().to_string();
                seen.lock().unwrap().push(path.clone());
                if let Some(o) = objects.iter().find(|o| path_of(o) == path) {
                    return (StatusCode::OK, axum::Json(o.clone())).into_response();
                }
                // A list: the path of a collection the objects live in.
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|o| path_of(o).rsplit_once('/').map(|(dir, _)| dir) == Some(path.as_str()))
                    .cloned()
                    .collect();
                if !items.is_empty() {
                    return (
                        StatusCode::OK,
                        axum::Json(json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items})),
                    )
                        .into_response();
                }
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": format!("{path} not found"), "reason": "NotFound", "code": 404});
                (StatusCode::NOT_FOUND, axum::Json(status)).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { url, paths }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_with_kubeconfig_brings_its_objects_and_replays_the_same_plan() {
    let (original, server) = leak_in_prometheus().await;
    let objects: Vec<serde_json::Value> = original
        .objects
        .iter()
        .map(|o| serde_json::to_value(&o.value).unwrap())
        .collect();
    let api = fake_api::start(objects).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"{}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: fake, user: u}}}}]\ncurrent-context: c\n",
            api.url
        ),
    )
    .unwrap();
    let out = dir.path().join("recorded.yaml");
    let kc = kubeconfig.to_str().unwrap();
    let o = record_leak(server.url(), &original, &out, &["--kubeconfig", kc]).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    // The pod that only exists after the rollback is not in the cluster yet.
    assert!(
        stderr.contains("skipped Pod/production/analytics-worker-5d4c8-q7wz2: not found"),
        "{stderr}"
    );
    let mut asked = api.paths.lock().unwrap().clone();
    asked.sort();
    assert_eq!(
        asked,
        vec![
            "/api/v1/namespaces/production/pods/analytics-worker-5d4c8-q7wz2",
            "/api/v1/namespaces/production/pods/analytics-worker-7f8d9-x2k4p",
            "/api/v1/nodes",
            "/api/v1/nodes/node-a",
            "/api/v1/nodes/node-b",
            "/api/v1/nodes/node-c",
            "/apis/apps/v1/namespaces/production/deployments/analytics-worker",
            "/apis/apps/v1/namespaces/production/replicasets",
            "/apis/apps/v1/namespaces/production/replicasets/analytics-worker-5d4c8",
            "/apis/apps/v1/namespaces/production/replicasets/analytics-worker-7f8d9",
        ]
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let mut recorded = Loaded::parse(&text, "recorded.yaml").unwrap();
    assert_eq!(recorded.objects.len(), original.objects.len());
    // Only the change events are added by hand.
    recorded.changes = original.changes.clone();
    let (a, b) = replay_alike(&original, &recorded).await;
    let actions = |r: &Report| -> Vec<(String, Option<String>)> {
        r.incidents
            .iter()
            .flat_map(|i| &i.actions)
            .map(|x| (x.action.clone(), x.target.clone()))
            .collect()
    };
    assert!(!actions(&a).is_empty());
    assert_eq!(actions(&a), actions(&b));
}
