//! Replay at its edges: a month-long recording (more points than one
//! Prometheus range query returns) is replayed whole, and a replay stopped
//! with SIGTERM leaves neither its Prometheus nor its files behind.

use medic::replay::{Loaded, ReplayOptions, replay_loaded};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 30 days at 30 s (86,401 steps, eight times Prometheus's 11,000 points
/// per range query): quiet, then a crash loop in the last hours that only
/// the last window of every range query sees.
fn month_with_a_late_crash_loop() -> String {
    let quiet = 86_400 - 600;
    format!(
        r#"name: a month, then a crash loop
interval: 30s
duration: 30d
series:
  - series: 'kube_pod_container_status_restarts_total{{namespace="shop",pod="api-7c9-x",container="api"}}'
    values: '0x{quiet} 1+1x599'
cluster:
  - {{apiVersion: v1, kind: Node, metadata: {{name: n1}}}}
expect:
  onset: 719h
  signals:
    - {{signal: crash_loop, target: Pod/shop/api-7c9-x}}
"#
    )
}

#[tokio::test]
async fn a_month_long_recording_replays_whole() {
    let loaded = Loaded::parse(&month_with_a_late_crash_loop(), "month.yaml").unwrap();
    let report = replay_loaded(&loaded, &ReplayOptions::embedded())
        .await
        .unwrap();
    assert!(report.passed, "{:?}", report.failures);
    let first = report.signals.first().expect("the crash loop is seen");
    assert!(
        first.at_s > 29 * 86_400,
        "seen at {}s, before the crash loop began",
        first.at_s
    );
    assert!(report.signals.iter().all(|s| s.at_s > 29 * 86_400));
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            out.push(text);
        }
    }
    out
}

fn replay_dirs(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("medic-replay-"))
        })
        .collect()
}

#[test]
fn sigterm_stops_the_replays_prometheus_and_removes_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("month.yaml");
    std::fs::write(&fixture, month_with_a_late_crash_loop()).unwrap();
    let mut medic = Command::new(env!("CARGO_BIN_EXE_medic"))
        .arg("replay")
        .arg(&fixture)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until its Prometheus runs, serving from the temp directory.
    let deadline = Instant::now() + Duration::from_secs(120);
    let dir = loop {
        if let Some(dir) = replay_dirs(tmp.path()).into_iter().next() {
            let data = dir.join("data").display().to_string();
            if processes_mentioning(&format!("--storage.tsdb.path={data}"))
                .iter()
                .any(|p| p.contains("prometheus"))
            {
                break dir;
            }
        }
        assert!(
            medic.try_wait().unwrap().is_none(),
            "the replay ended before its Prometheus was seen"
        );
        assert!(Instant::now() < deadline, "no Prometheus started");
        std::thread::sleep(Duration::from_millis(50));
    };
    let pid = medic.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = medic.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted by SIGTERM"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    // The child is killed on drop; give the kernel a moment to reap it.
    let needle = dir.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_mentioning(&needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running: {:?}",
            processes_mentioning(&needle)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
