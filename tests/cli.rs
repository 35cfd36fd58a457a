//! The medic binary as users run it: output, exit codes, error messages.

use std::path::Path;
use std::process::{Command, Output};

fn medic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn replay_json_is_the_documented_report() {
    let o = medic(&[
        "replay",
        "fixtures/incidents/crash-loop-after-deploy.yaml",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        r["fixture"],
        "checkout crash-loops after a deploy and is rolled back"
    );
    assert_eq!(r["passed"], true);
    assert_eq!(r["failures"], serde_json::json!([]));
    assert_eq!(r["signals"][0]["signal"], "crash_loop");
    assert_eq!(r["signals"][0]["target"], "Pod/shop/checkout-8d9e1-kq2zt");
    assert_eq!(r["signals"][0]["severity"], "high");
    assert!(r["signals"][0]["at_s"].as_i64().unwrap() > 300);
    let inc = &r["incidents"][0];
    assert_eq!(inc["root_cause"], "Deployment/shop/checkout");
    assert_eq!(inc["diagnosis"]["source"], "rules");
    assert_eq!(inc["diagnosis"]["category"], "crash_loop");
    assert_eq!(inc["actions"][1]["action"], "rollout_undo");
    assert_eq!(inc["actions"][1]["target"], "Deployment/shop/checkout");
    assert_eq!(inc["actions"][1]["risk"], "medium");
    assert_eq!(inc["actions"][1]["result"], "ok");
    assert_eq!(inc["escalations"], serde_json::json!([]));
    assert!(inc["resolved_at_s"].as_i64().is_some());
    assert!(inc["opened_at_s"].as_i64().is_some());
}

#[test]
fn replay_without_arguments_replays_the_bundled_incidents() {
    let o = medic(&["replay"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("EXECUTE   rollout_undo Deployment/production/analytics-worker"),
        "{out}"
    );
    assert!(
        out.contains("PASS a healthy but noisy hour raises no incident"),
        "{out}"
    );
    let count = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents"))
        .unwrap()
        .count();
    assert!(
        out.contains(&format!("{count}/{count} fixtures passed")),
        "{out}"
    );
}

#[test]
fn a_failing_expectation_exits_1_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents/disk-filling-node.yaml"),
    )
    .unwrap()
    .replace("escalations: 1", "escalations: 0");
    let file = dir.path().join("edited.yaml");
    std::fs::write(&file, text).unwrap();
    let o = medic(&["replay", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("FAIL node-b's root filesystem fills"), "{out}");
    assert!(out.contains("expected 0 escalation(s), got 1"), "{out}");
}

#[test]
fn a_broken_fixture_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "name: x\ninterval: 15s\nduration: 10m\nseries:\n  - series: 'up{job=\"a\"}'\n    values: '1 2 three'\nexpect: {}\n",
    )
    .unwrap();
    let o = medic(&["replay", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("broken.yaml:6:5: series[0].values: values item `three`: not a number"),
        "{err}"
    );
}

#[test]
fn a_missing_prometheus_says_how_to_install_it() {
    let o = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["replay"])
        .env("PATH", "/nonexistent")
        .env_remove("MEDIC_PROMTOOL")
        .env_remove("MEDIC_PROMETHEUS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("`promtool` not found on PATH"), "{err}");
    assert!(err.contains("apt-get install -y prometheus"), "{err}");
}

#[test]
fn lint_passes_the_shipped_playbooks() {
    let o = medic(&["lint", "playbooks"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let shipped = medic::playbook::Library::embedded().unwrap();
    let want = format!(
        "{} detector(s), {} playbook(s), 0 error(s), 0 warning(s)",
        shipped.detectors.len(),
        shipped.playbooks.len()
    );
    assert!(stdout(&o).contains(&want), "{}", stdout(&o));
}

const BAD: &str = r#"apiVersion: medic.dev/v1alpha1
kind: Playbook
metadata: {name: bad}
spec:
  trigger: {signal: crash_loop, when: "tagret.kind == 'Pod'"}
  maxAutonomousRisk: medium
  steps:
    - {action: capture_logs, risk: none, when: "1 > 2"}
    - {action: rollback_undo, risk: medium}
    - {action: drain_node, risk: low}
    - action: scale
      risk: low
      params: {delta: 1, factor: 2}
      waitFor: {query: 'sum(up{job="{{ target.owner.name }}"}) >', for: 1m, timeout: 5m}
---
apiVersion: medic.dev/v1alpha1
kind: Playbook
metadata: {name: typo}
spec:
  trigger: {signal: crash_loop}
  maxAutonomousRisk: low
  stpes: []
"#;

#[test]
fn lint_points_at_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD).unwrap();
    // Lint together with the shipped detectors, so the trigger signal exists.
    let o = medic(&["lint", "playbooks/detectors.yaml", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let f = file.display();
    for expected in [
        format!(
            "{f}:5:33: error: spec.trigger.when: unknown variable `tagret` (available: signal, target, incident)"
        ),
        format!(
            "{f}:9:8: error: spec.steps[1].action: unknown action `rollback_undo` (hint: did you mean `rollout_undo`?)"
        ),
        format!(
            "{f}:10:28: error: spec.steps[2].risk: `drain_node` is at least high risk; a playbook may rate it higher, never lower (got low)"
        ),
        format!(
            "{f}:13:26: error: spec.steps[3].params.factor: unknown parameter `factor` (hint: `scale` takes: delta, replicas)"
        ),
        format!("{f}:14:17: error: spec.steps[3].waitFor.query: PromQL does not parse"),
        format!("{f}:22:3: error: spec.stpes: unknown field `stpes`"),
        format!(
            "{f}:8:42: warning: spec.steps[0].when: `1 > 2` is always false: this never happens"
        ),
        format!(
            "{f}:4:1: warning: spec: the playbook changes the cluster but says nothing about rollback"
        ),
        // The source line and a caret under the column.
        "\n 9 |     - {action: rollback_undo, risk: medium}\n   |        ^".to_string(),
    ] {
        assert!(out.contains(&expected), "missing:\n{expected}\nin:\n{out}");
    }
}

#[test]
fn lint_json_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, BAD).unwrap();
    let o = medic(&[
        "lint",
        "--format",
        "json",
        "playbooks/detectors.yaml",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let when = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "spec.trigger.when")
        .unwrap();
    assert_eq!(when["level"], "error");
    assert_eq!(
        (when["line"].as_u64(), when["column"].as_u64()),
        (Some(5), Some(33))
    );
    assert_eq!(
        when["snippet"],
        "  trigger: {signal: crash_loop, when: \"tagret.kind == 'Pod'\"}"
    );
}

#[test]
fn explain_shows_what_a_playbook_would_do_without_acting() {
    let o = medic(&[
        "explain",
        "pod-crash-loop",
        "--fixture",
        "fixtures/incidents/step-above-autonomy-bound.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for expected in [
        "medic would choose: pod-crash-loop",
        "crash_loop on Pod/shop/checkout-8d9e1-kq2zt: matches: `signal.value >= 3.0` is true",
        "bounds: mode Enforce, autonomy up to low (medic.yaml low, playbook medium)",
        "1. capture_logs Pod/shop/checkout-8d9e1-kq2zt [none]: RUN",
        "2. rollout_undo Deployment/shop/checkout [medium]: ESCALATE (risk above bound: step 2 (rollout_undo) is medium risk, autonomy allows up to low)",
        "then waits up to 15m for `sum(kube_deployment_status_replicas_available{namespace=\"shop\", deployment=\"checkout\"})",
        "3. escalate - [none]: NOT REACHED (the plan stops at step 2)",
        "rollback: none",
    ] {
        assert!(out.contains(expected), "missing:\n{expected}\nin:\n{out}");
    }
}

#[test]
fn explain_json_says_why_a_trigger_did_not_match() {
    let o = medic(&[
        "explain",
        "pod-crash-loop",
        "--fixture",
        "fixtures/incidents/crash-loop-no-recent-deploy.yaml",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(e["triggered"], true);
    assert_eq!(e["steps"][1]["action"], "rollout_undo");
    assert_eq!(e["steps"][1]["decision"], "skip");
    assert_eq!(
        e["steps"][1]["when"],
        "`target.owner.kind == 'Deployment' && target.owner.deployedWithin('1h')` is false"
    );
    assert_eq!(e["steps"][2]["decision"], "escalate");
    let o = medic(&[
        "explain",
        "no-such-playbook",
        "--fixture",
        "fixtures/incidents/crash-loop-no-recent-deploy.yaml",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no playbook named `no-such-playbook` (known: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_against_an_unreachable_cluster_fails_with_a_reason_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u, namespace: medic-system}}]\n\
         users: [{name: u, user: {token: t}}]\n",
    )
    .unwrap();
    let config = dir.path().join("medic.yaml");
    std::fs::write(&config, "listen: 127.0.0.1:0\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error: lease medic-leader:")
            && err.contains("Connection refused")
            && !err.contains("panicked"),
        "{err}"
    );
}

/// A "billion laughs" document: nine levels of nine aliases.
fn alias_bomb(indent: &str) -> String {
    let mut lines = vec![format!(
        "{indent}- &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"
    )];
    let mut prev = 'a';
    for n in "bcdefghi".chars() {
        lines.push(format!(
            "{indent}- &{n} [{}]",
            vec![format!("*{prev}"); 9].join(",")
        ));
        prev = n;
    }
    lines.join("\n")
}

#[test]
fn alias_bombs_are_refused_quickly_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("bomb-fixture.yaml");
    std::fs::write(
        &fixture,
        format!(
            "name: bomb\ninterval: 15s\nduration: 1m\nseries: []\ncluster:\n{}\nexpect: {{}}\n",
            alias_bomb("  ")
        ),
    )
    .unwrap();
    let o = medic(&["replay", fixture.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bomb-fixture.yaml") && err.contains("repetition limit exceeded"),
        "{err}"
    );

    let playbook = dir.path().join("bomb-playbook.yaml");
    std::fs::write(
        &playbook,
        format!(
            "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {{name: bomb}}\nspec:\n  description: x\n  trigger: {{signal: crash_loop}}\n  steps:\n    - action: capture_logs\n      risk: none\n      params:\n        x:\n{}\n",
            alias_bomb("          ")
        ),
    )
    .unwrap();
    let o = medic(&["lint", playbook.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("bomb-playbook.yaml:1:1: error: not valid YAML: repetition limit exceeded"),
        "{out}"
    );
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(65 << 20).unwrap();
    let o = medic(&["replay", big.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("big.yaml") && err.contains("over the 64 MiB limit"),
        "{err}"
    );
}

#[test]
fn user_playbooks_are_laid_over_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    // One playbook on a built-in detector, and a kustomization beside it.
    std::fs::write(
        mine.join("crash.yaml"),
        "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {name: my-leak}\nspec:\n  trigger: {signal: memory_leak}\n  maxAutonomousRisk: none\n  steps: [{action: escalate, risk: none, params: {reason: call the owner}}]\n  rollback: []\n",
    )
    .unwrap();
    std::fs::write(mine.join("kustomization.yaml"), "resources: [crash.yaml]\n").unwrap();
    let path = mine.to_str().unwrap();
    let o = medic(&["lint", path]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let builtin = medic::playbook::Library::embedded().unwrap();
    assert!(
        stdout(&o).contains(&format!(
            "{} playbook(s), 0 error(s)",
            builtin.playbooks.len() + 1
        )),
        "{}",
        stdout(&o)
    );
    // Alone, it names a detector nobody defines (and no alert raises).
    let o = medic(&["lint", "--no-builtin", path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("no detector named `memory_leak`"),
        "{}",
        stdout(&o)
    );
    // The built-in ones, written out to start from: a verbatim copy lints
    // quietly; once one is edited, lint says it replaces the built-in one.
    let out = dir.path().join("builtin");
    let o = medic(&["builtin", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.join("detectors.yaml").exists());
    let o = medic(&["lint", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        !stderr(&o).contains("replaces the built-in"),
        "{}",
        stderr(&o)
    );
    let crash = out.join("pod-crash-loop.yaml");
    let text = std::fs::read_to_string(&crash).unwrap();
    std::fs::write(&crash, format!("# mine now\n{text}\n# edited\n")).unwrap();
    let o = medic(&["lint", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("Playbook pod-crash-loop replaces the built-in one"),
        "{}",
        stderr(&o)
    );
    // --json is --format json.
    let o = medic(&["lint", "--json", path]);
    assert!(serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok());
}

#[test]
fn trust_reads_each_steps_record_from_the_journal_a_run_kept() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("state");
    let o = medic(&[
        "replay",
        "fixtures/incidents/autonomy-lost-after-failed-verification.yaml",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let config = dir.path().join("medic.yaml");
    std::fs::write(
        &config,
        "autonomy: {earn: {approvals: 1, verified: 1, window: 30d}}\n",
    )
    .unwrap();
    // The fixture's end, 160 minutes after its time 0 (2024-01-01).
    let args = [
        "trust",
        "--journal",
        journal.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--at",
        "2024-01-01T02:40:00Z",
    ];
    let o = medic(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "PLAYBOOK        STEP  ACTION  ON          PROPOSED  ASKED  APPROVED  DENIED  RAN  VERIFIED  FAILED  ROLLED BACK  STANDING"
    );
    assert!(
        lines[1].starts_with(
            "cpu-throttling  2     scale   Deployment  0         2      1         0       2    1         1       1            demoted: rolled back in inc-"
        ),
        "{out}"
    );
    assert_eq!(
        lines[2],
        "earned autonomy: 1 approvals and 1 verified runs within 30d, none denied, failed or rolled back since"
    );
    let o = medic(&[&args[..], &["--format", "json"]].concat());
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["standing"], "demoted");
    assert_eq!(
        (
            rows[0]["approved"].as_u64(),
            rows[0]["rolled_back"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // A month later nothing of it counts: the step asks, from nothing.
    let later = [&args[..5], &["--at", "2024-02-15T00:00:00Z", "--json"]].concat();
    let rows: serde_json::Value = serde_json::from_slice(&medic(&later).stdout).unwrap();
    assert_eq!(rows[0]["standing"], "asks");
    assert_eq!(rows[0]["ran"], 0);
    // No journal where it is told to look: said, not a panic.
    let o = medic(&[
        "trust",
        "--journal",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no journal at"), "{}", stderr(&o));
}

#[test]
fn every_command_takes_format_json_and_says_its_exit_codes() {
    let fixture = "fixtures/incidents/crash-loop-after-deploy.yaml";
    let by_flag = medic(&["replay", fixture, "--format", "json"]);
    let by_alias = medic(&["replay", fixture, "--json"]);
    assert_eq!(by_flag.status.code(), Some(0), "{}", stderr(&by_flag));
    let a: serde_json::Value = serde_json::from_slice(&by_flag.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&by_alias.stdout).unwrap();
    assert_eq!(a["signals"], b["signals"]);
    let o = medic(&[
        "explain",
        "pod-crash-loop",
        "--fixture",
        fixture,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok());
    for command in ["replay", "lint", "run", "approve", "explain", "trust"] {
        let help = stdout(&medic(&[command, "--help"]));
        assert!(help.contains("Exit status: 0"), "{command}: {help}");
    }
    let help = stdout(&medic(&["replay", "--help"]));
    assert!(help.contains("MEDIC_PROMETHEUS") && help.contains("MEDIC_PROMTOOL"));
    assert!(stdout(&medic(&["--help"])).contains("MEDIC_LOG"));
}
