//! `medic record` round trip: a fixture loaded into a real Prometheus,
//! recorded back through the CLI, replays with the same signals at the
//! same times.

use medic::replay::series::to_openmetrics;
use medic::replay::{Loaded, PrometheusServer, ReplayOptions, Report, replay_loaded};
use std::path::Path;

fn signals(r: &Report) -> Vec<(String, String, i64)> {
    r.signals
        .iter()
        .map(|s| (s.signal.clone(), s.target.clone(), s.at_s))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_incident_replays_the_same() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents/memory-leak-after-deploy.yaml");
    let original = Loaded::load(&path).unwrap();
    let start = original.start;
    let end = start + original.fixture.duration.0;
    let om = to_openmetrics(&original.series, start, original.fixture.interval.0);
    let server = PrometheusServer::start(&om, start).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded.yaml");
    let (url, out2) = (server.url().to_string(), out.clone());
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args([
                "record",
                "--prometheus",
                &url,
                "--from",
                &start.to_string(),
                "--to",
                &end.to_string(),
            ])
            .args([
                "--match",
                "{__name__=~\"container_.*|kube_.*\"}",
                "--match",
                "{job=\"node-exporter\"}",
            ])
            .args(["--name", "recorded leak", "--out", out2.to_str().unwrap()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
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
    let a = replay_loaded(&original, &ReplayOptions::embedded())
        .await
        .unwrap();
    let b = replay_loaded(&recorded, &ReplayOptions::embedded())
        .await
        .unwrap();
    assert!(!signals(&a).is_empty());
    assert_eq!(signals(&a), signals(&b));
    assert_eq!(a.incidents[0].root_cause, b.incidents[0].root_cause);
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
