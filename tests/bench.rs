//! `medic bench` runs end to end at a small scale: each section reports,
//! detection asks one query per detector, and intake keeps each distinct
//! alert once. Timings are printed, never asserted.

use std::process::Command;

#[test]
fn the_benchmarks_run_and_report_each_figure() {
    let o = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args([
            "bench",
            "--pods",
            "100",
            "--nodes",
            "5",
            "--cycles",
            "3",
            "--alerts",
            "500",
            "--replay-pods",
            "5",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    if String::from_utf8_lossy(&o.stderr).contains("prometheus is not installed") {
        eprintln!("skipped: prometheus not installed");
        return;
    }
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for section in [
        "## Detection cycle",
        "## Memory of `medic run` watching the cluster (3 cycles",
        "## Decision latency (100 open signals)",
        "## Alertmanager intake (500 alerts",
        "## Anomaly scoring (100 series of each shape",
        "## Replay of 24 hours of a 5-pod cluster",
    ] {
        assert!(out.contains(section), "{section} missing:\n{out}");
    }
    // Every shape of series is scored, not given up on for want of history.
    assert_eq!(out.matches("(100 scored)").count(), 3, "{out}");
    let detectors = medic::playbook::Library::embedded()
        .unwrap()
        .detectors
        .len();
    assert!(
        out.contains(&format!(
            "queries per cycle:            {detectors} (one per detector"
        )),
        "{out}"
    );
    assert!(
        out.contains("received 500, distinct alerts kept 100 of 100"),
        "{out}"
    );
    assert!(out.contains("correlated into 10 incidents"), "{out}");
    // The memory figure comes from a real `medic run` that did its cycles.
    let by_cycle = out
        .lines()
        .find_map(|l| l.strip_prefix("by cycle (MiB): "))
        .unwrap_or_else(|| panic!("no memory by cycle:\n{out}"));
    assert_eq!(by_cycle.split_whitespace().count(), 3, "{out}");
    // Listed once, a page per kind, then watched: cycles send no lists.
    assert!(
        out.contains(
            "requests to the API server over the run: 4 list pages of 250 objects, 4 watches"
        ),
        "{out}"
    );
    assert!(out.contains("(100 batches)"), "{out}");
}
