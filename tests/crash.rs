//! medic killed with SIGKILL mid-plan, at every step boundary, and started
//! again on its journal: no step is repeated, no incident is lost, and the
//! plan finishes (or goes to people when the cluster cannot tell).
//!
//! The replay runs as a real process with `--journal`; `MEDIC_TEST_PAUSE_AT`
//! stops it right after its Nth intent is on disk (before acting) or right
//! after its Nth action (before the result is written), and the test kills
//! its whole process group (medic and its Prometheus) there, as the kubelet
//! kills a container.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[allow(dead_code)]
mod common;
use common::nats::NatsServer;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents")
        .join(name)
        .display()
        .to_string()
}

/// Runs the replay until it pauses at `at`, then SIGKILLs it. Returns
/// false when the replay finished without reaching that point.
fn run_until_killed(fixture: &str, journal: &Path, nats: Option<&str>, at: &str) -> bool {
    use std::os::unix::process::CommandExt;
    // A killed replay cannot remove its Prometheus directory: keep it
    // inside the test's own temporary directory.
    let tmp = journal.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["replay", fixture, "--json", "--journal"])
        .arg(journal)
        .args(
            nats.map(|url| ["--journal-nats", url])
                .into_iter()
                .flatten(),
        )
        .env("MEDIC_TEST_PAUSE_AT", at)
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut paused = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.starts_with(&format!("medic: paused at {at}")) {
            paused = true;
            break;
        }
    }
    if paused {
        // The whole group: medic and the Prometheus it started.
        let group = format!("-{}", child.id());
        let status = Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let status = child.wait().unwrap();
    if paused {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed with SIGKILL");
    }
    paused
}

fn report(fixture: &str, journal: &Path, nats: Option<&str>) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["replay", fixture, "--json", "--journal"])
        .arg(journal)
        .args(
            nats.map(|url| ["--journal-nats", url])
                .into_iter()
                .flatten(),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (action, target, message) of every action that changed something.
fn actions(r: &serde_json::Value) -> Vec<(String, String, String)> {
    r["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["actions"].as_array().unwrap().iter())
        .filter(|a| a["action"] != "capture_logs")
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["target"].as_str().unwrap_or_default().to_string(),
                a["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Where the journal lives in a crash test.
#[derive(Clone, Copy)]
enum Store {
    /// The file in the --journal directory.
    File,
    /// A JetStream stream on a real nats-server (fresh for each kill): what
    /// a replica taking over from a killed leader reads.
    JetStream,
}

fn crash_at_every_boundary(name: &str, expected: &[(&str, &str)], revision_after: Option<&str>) {
    crash_at_every_boundary_in(Store::File, name, expected, revision_after);
}

fn crash_at_every_boundary_in(
    store: Store,
    name: &str,
    expected: &[(&str, &str)],
    revision_after: Option<&str>,
) {
    let fixture = fixture(name);
    let steps = expected.len();
    for n in 1..=steps {
        for kind in ["intent", "result"] {
            let at = format!("{kind}:{n}");
            let dir = tempfile::tempdir().unwrap();
            let server = match store {
                Store::File => None,
                Store::JetStream => match NatsServer::start() {
                    Some(s) => Some(s),
                    None => return,
                },
            };
            let url = server.as_ref().map(NatsServer::url);
            assert!(
                run_until_killed(&fixture, dir.path(), url.as_deref(), &at),
                "{name}: never reached {at}"
            );
            if matches!(store, Store::JetStream) {
                assert!(
                    !dir.path().join("journal.log").exists(),
                    "the journal went to JetStream, not the directory"
                );
            }
            let r = report(&fixture, dir.path(), url.as_deref());
            assert_eq!(
                r["passed"], true,
                "{name} killed at {at}: {}",
                r["failures"]
            );
            assert_eq!(
                r["incidents"].as_array().unwrap().len(),
                1,
                "{name} at {at}"
            );
            let done = actions(&r);
            let got: Vec<(&str, &str)> = done
                .iter()
                .map(|(a, t, _)| (a.as_str(), t.as_str()))
                .collect();
            assert_eq!(got, expected, "{name} killed at {at}: each step once");
            if kind == "result" {
                // The action happened but its result was never written:
                // the cluster said it was done, so it was not run again.
                assert_eq!(
                    done[n - 1].2,
                    "found done in the cluster after a restart",
                    "{name} killed at {at}"
                );
            }
            if let Some(rev) = revision_after {
                let cluster = std::fs::read_to_string(dir.path().join("cluster.json")).unwrap();
                assert!(
                    cluster.contains(rev),
                    "{name} killed at {at}: rolled back exactly once"
                );
            }
        }
    }
}

#[test]
fn a_leak_rollback_killed_at_every_step_boundary_runs_each_step_once() {
    crash_at_every_boundary(
        "memory-leak-after-deploy.yaml",
        &[
            ("cordon_node", "Node/node-a"),
            ("rollout_undo", "Deployment/production/analytics-worker"),
            ("uncordon_node", "Node/node-a"),
        ],
        // Revision 2 undone once is revision 3; twice would be 4.
        Some(r#""deployment.kubernetes.io/revision":"3""#),
    );
}

#[test]
fn a_leak_rollback_with_its_journal_in_jetstream_killed_at_every_boundary_runs_each_step_once() {
    crash_at_every_boundary_in(
        Store::JetStream,
        "memory-leak-after-deploy.yaml",
        &[
            ("cordon_node", "Node/node-a"),
            ("rollout_undo", "Deployment/production/analytics-worker"),
            ("uncordon_node", "Node/node-a"),
        ],
        Some(r#""deployment.kubernetes.io/revision":"3""#),
    );
}

#[test]
fn a_drain_killed_at_every_step_boundary_runs_each_step_once() {
    crash_at_every_boundary(
        "memory-pressure-node-drained.yaml",
        &[
            ("cordon_node", "Node/node-a"),
            ("drain_node", "Node/node-a"),
            ("uncordon_node", "Node/node-a"),
        ],
        None,
    );
}
