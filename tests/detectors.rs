//! `medic detectors --prometheus`: which shipped detectors can fire against
//! a real Prometheus, and which metrics the others miss.

use medic::replay::series::to_openmetrics;
use medic::replay::{Loaded, PrometheusServer};
use std::path::Path;

/// `medic detectors --prometheus URL`, run as a user would.
async fn detectors_against(url: &str) -> std::process::Output {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(["detectors", "--prometheus", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn says_which_detectors_are_blind_and_what_they_miss() {
    // A recorded leak: cAdvisor, kube-state-metrics limits and node-exporter
    // memory, but no restarts, HTTP, pool, disk or cert-manager metrics.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents/memory-leak-after-deploy.yaml");
    let loaded = Loaded::load(&path).unwrap();
    let om = to_openmetrics(&loaded.series, loaded.start, loaded.fixture.interval.0);
    // Prometheus serves "now" from the newest sample: start it so the
    // fixture's last samples are within the lookback of the wall clock.
    let now = chrono::Utc::now().timestamp();
    let shift = now - (loaded.start + loaded.fixture.duration.0);
    let om = om
        .lines()
        .map(|l| match l.rsplit_once(' ') {
            Some((head, ts)) if !l.starts_with('#') => match ts.parse::<i64>() {
                Ok(t) => format!("{head} {}", t + shift),
                Err(_) => l.to_string(),
            },
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let server = PrometheusServer::start(&om, loaded.start + shift)
        .await
        .unwrap();
    let o = detectors_against(server.url()).await;
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let row = |d: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(d))
            .unwrap_or_else(|| panic!("no row for {d} in\n{out}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("memory_leak"), "yes -");
    // Either of its two sources is enough; kube-state-metrics' is missing.
    assert_eq!(
        row("node_memory_pressure"),
        "yes kube_node_status_condition (kube-state-metrics)"
    );
    assert_eq!(
        row("crash_loop"),
        "NO kube_pod_container_status_restarts_total (kube-state-metrics)"
    );
    assert_eq!(
        row("certificate_expiry"),
        "NO certmanager_certificate_expiration_timestamp_seconds (cert-manager)"
    );
    let shipped = medic::playbook::Library::embedded()
        .unwrap()
        .detectors
        .len();
    assert!(
        out.contains(&format!(
            "2 of {shipped} detector(s) can fire; {} cannot",
            shipped - 2
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_where_no_detector_can_fire_exits_1() {
    // Only a metric no detector reads, in the last minutes.
    let now = chrono::Utc::now().timestamp();
    let om: String = (0..10)
        .map(|i| format!("unrelated_metric{{job=\"x\"}} 1 {}\n", now - 600 + i * 60))
        .collect::<String>()
        + "# EOF\n";
    let server = PrometheusServer::start(&om, now - 60).await.unwrap();
    let o = detectors_against(server.url()).await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 of "),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
