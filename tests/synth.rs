//! `medic synth`: the shipped healthy fixtures are exactly what their
//! scenarios give (so a scenario edit cannot drift from its fixture), the
//! same scenario always gives the same fixture, and what it writes is a
//! valid fixture with the churn it describes.

use medic::replay::Loaded;
use medic::synth::{Scenario, render};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_scenario_gives_its_shipped_fixture() {
    let scenarios = root().join("fixtures/scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(&scenarios).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let scenario = Scenario::load(&path).unwrap();
        let source = format!("fixtures/scenarios/{name}");
        let written = render(&scenario, &source).unwrap();
        let shipped = std::fs::read_to_string(root().join("fixtures/incidents").join(&name))
            .unwrap_or_else(|e| panic!("{name} has no fixture: {e}"));
        assert!(
            written == shipped,
            "fixtures/incidents/{name} differs from its scenario: run `medic synth {source} --out fixtures/incidents`"
        );
        let loaded = Loaded::parse(&written, &name).unwrap();
        assert_eq!(loaded.fixture.expect.incidents, Some(0), "{name}");
        assert!(
            loaded.fixture.duration.0 - loaded.fixture.history.map_or(0, |h| h.0) >= 2 * 3600,
            "{name}: a healthy recording watches at least 2 hours"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} scenarios");
}

#[test]
fn a_rollout_replaces_pods_one_by_one_with_fresh_series() {
    let scenario = Scenario::parse(
        r#"name: t
interval: 30s
duration: 30m
nodes: [n1, n2]
workloads:
  - name: shop/api
    replicas: 2
    memory: {limitMi: 100, steady: 0.5, warmup: 10m}
    events:
      - {at: 10m, rollout: v2}
      - {at: 20m, oom: 0}
"#,
        "t.yaml",
    )
    .unwrap();
    let text = render(&scenario, "t.yaml").unwrap();
    assert_eq!(
        text,
        render(&scenario, "t.yaml").unwrap(),
        "seeded: the same every time"
    );
    let loaded = Loaded::parse(&text, "t.yaml").unwrap();
    let memory: Vec<_> = loaded
        .series
        .iter()
        .filter(|s| s.name == "container_memory_working_set_bytes")
        .collect();
    assert_eq!(memory.len(), 4, "two old pods and two new ones");
    let first_sample =
        |s: &medic::replay::series::Series| s.values.iter().position(Option::is_some).unwrap();
    let mut starts: Vec<usize> = memory.iter().map(|s| first_sample(s)).collect();
    starts.sort();
    // Old pods from 0; new ones at 10m and a minute later (steps of 30 s).
    assert_eq!(starts, vec![0, 0, 20, 22]);
    // The old pods' series end; the new pods warm up from about 5%.
    for s in &memory {
        let i = first_sample(s);
        if i > 0 {
            let v = s.values[i].unwrap();
            assert!(v < 0.1 * 100.0 * 1048576.0, "warm-up starts low: {v}");
        } else {
            assert!(s.values.len() < 61, "the old pod's series ends");
        }
    }
    // One OOM kill: a restart counter goes to 1 and the reason is recorded.
    let restarts: Vec<f64> = loaded
        .series
        .iter()
        .filter(|s| s.name == "kube_pod_container_status_restarts_total")
        .filter_map(|s| s.values.iter().flatten().last().copied())
        .collect();
    assert_eq!(
        restarts.iter().filter(|&&r| r == 1.0).count(),
        1,
        "{restarts:?}"
    );
    assert!(loaded.series.iter().any(|s| s.name
        == "kube_pod_container_status_last_terminated_reason"
        && s.labels.get("reason").map(String::as_str) == Some("OOMKilled")));
    assert_eq!(loaded.changes.len(), 1);
    assert_eq!(loaded.changes[0].kind, "deploy");
    assert_eq!(loaded.changes[0].message, "v1 -> v2");
}

#[test]
fn a_bad_scenario_names_its_file_line_and_field() {
    let err = Scenario::parse(
        "name: t\nduration: 1h\nnodes: [a]\nworkloads:\n  - name: x\n    memroy: {}\n",
        "s.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("s.yaml:"), "{err}");
    assert!(err.contains("memroy"), "{err}");
}

#[test]
fn scaling_up_from_zero_and_odd_scenarios_give_a_fixture_not_a_panic() {
    let scenario = Scenario::parse(
        r#"name: t
interval: 30s
duration: 20m
nodes: [n1]
workloads:
  - name: shop/api
    replicas: 1
    memory: {limitMi: 100, steady: 0.5}
    events:
      - {at: 2m, scale: 0}
      - {at: 5m, scale: 2}
      - {at: 6m, oom: 7}
      - {at: 7m, scrapeGap: 9, for: 1m}
  - name: batch/job
    kind: CronJob
    memory: {limitMi: 100, steady: 0.5}
    schedule: {every: 0s, runs: 0s}
"#,
        "t.yaml",
    )
    .unwrap();
    let text = render(&scenario, "t.yaml").unwrap();
    let loaded = Loaded::parse(&text, "t.yaml").unwrap();
    let pods = loaded
        .series
        .iter()
        .filter(|s| {
            s.name == "container_memory_working_set_bytes" && s.labels["namespace"] == "shop"
        })
        .count();
    assert_eq!(pods, 3, "the first pod, then two new ones");
}

/// Share of a pod's requests answered within `le` seconds between two steps.
fn share_within(loaded: &Loaded, pod: &str, le: &str, from: usize, to: usize) -> f64 {
    let bucket = |bound: &str| {
        loaded
            .series
            .iter()
            .find(|s| {
                s.name == "http_server_request_duration_seconds_bucket"
                    && s.labels.get("pod").map(String::as_str) == Some(pod)
                    && s.labels.get("le").map(String::as_str) == Some(bound)
            })
            .unwrap()
    };
    let (fast, all) = (bucket(le), bucket("+Inf"));
    let delta = |s: &medic::replay::series::Series| s.values[to].unwrap() - s.values[from].unwrap();
    delta(fast) / delta(all)
}

#[test]
fn a_slower_version_and_a_warming_container_answer_slower() {
    let scenario = Scenario::parse(
        r#"name: t
interval: 30s
duration: 40m
nodes: [n1]
workloads:
  - name: shop/api
    replicas: 1
    memory: {limitMi: 100, steady: 0.5}
    http: {rps: 50, p99: 0.2, warmup: {slow: 10, for: 3m}}
    events:
      - {at: 10m, rollout: v2, slower: 4}
      - {at: 25m, rollout: v3, slower: 0.25}
"#,
        "t.yaml",
    )
    .unwrap();
    let loaded = Loaded::parse(&render(&scenario, "t.yaml").unwrap(), "t.yaml").unwrap();
    let pods: Vec<String> = loaded
        .series
        .iter()
        .filter(|s| s.name == "kube_pod_created")
        .map(|s| s.labels["pod"].clone())
        .collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    let (v1, v2, v3) = (&pods[0], &pods[1], &pods[2]);
    // v1 ran before the recording: warm, and nearly all within 0.25 s.
    assert!(share_within(&loaded, v1, "0.25", 0, 19) > 0.98);
    // v2 is four times slower throughout, after its warm-up too (its
    // median is about v1's p99).
    assert!(share_within(&loaded, v2, "0.25", 35, 49) < 0.8);
    // v3 undoes v2's slowness: slow while it warms up, then as fast as v1.
    assert!(share_within(&loaded, v3, "0.25", 50, 52) < 0.9);
    assert!(share_within(&loaded, v3, "0.25", 65, 79) > 0.98);
    // Creation times: three days before the start for the pod that was
    // already running, the step it started at for the others.
    let created = |pod: &str| {
        loaded
            .series
            .iter()
            .find(|s| s.name == "kube_pod_created" && s.labels["pod"] == pod)
            .and_then(|s| s.values.iter().flatten().next().copied())
            .unwrap()
    };
    let start = medic::replay::DEFAULT_START as f64;
    assert_eq!(created(v1), start - 3.0 * 86_400.0);
    assert_eq!(created(v2), start + 600.0);
    assert_eq!(created(v3), start + 1500.0);
}
