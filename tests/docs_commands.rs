//! Every command in the README and docs/ either runs here as written (in a
//! scratch copy of the repository's fixtures, with the user's own files the
//! text names made up) and succeeds, or is listed below with what it needs
//! that a test machine lacks. A command added to the docs fails this test
//! until it is one or the other.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Commands that need something outside this machine, by how they start.
const NEEDS: &[(&str, &str)] = &[
    ("kubectl ", "a Kubernetes cluster"),
    ("docker ", "a container daemon and a registry"),
    (
        "openssl ",
        "nothing medic does: it makes the tokens for a Secret",
    ),
    ("curl ", "a running medic in a cluster"),
    ("medic approve ", "a running medic in a cluster"),
    ("medic deny ", "a running medic in a cluster"),
    ("medic record ", "a Prometheus and a cluster of yours"),
    (
        "medic trust --config ",
        "the journal of a medic that has run",
    ),
    ("medic detectors --prometheus ", "a Prometheus of yours"),
    (
        "medic bench",
        "minutes of measuring: the benchmarks, run by hand",
    ),
    (
        "cargo build --release",
        "a release build: the benchmarks, run by hand",
    ),
    ("perf ", "perf and a release build"),
    ("cargo install ", "the network"),
    ("cd fuzz", "a nightly toolchain and minutes of fuzzing"),
    (
        "RUSTC_BOOTSTRAP=1 cargo fuzz",
        "a nightly toolchain and minutes of fuzzing",
    ),
    (
        "medic replay my-incident.yaml --config medic.yaml --llm-live",
        "an LLM API key",
    ),
    ("for d in ", "the Nezha data set (docs/ranking.md)"),
    ("done", "the Nezha data set: the end of the loop above"),
    (
        "cargo run --release --example import_nezha",
        "the Nezha data set",
    ),
    ("medic replay /tmp/nezha", "the Nezha data set, imported"),
    ("medic replay /tmp/tt", "the Nezha data set, imported"),
    ("mkdir -p /tmp/obx-src/", "the Nezha data set"),
    ("cp -r $NEZHA/", "the Nezha data set"),
    ("rm /tmp/obx-src/", "the Nezha data set, copied"),
    ("medic replay /tmp/obx", "the Nezha data set, imported"),
    (
        "scripts/install-deps",
        "root, to install packages: CI runs it",
    ),
    (".ci/run", "CI itself"),
];

/// The commands of every `sh` block: continuation lines joined, comments
/// dropped; in a block with `$ ` prompts, only the prompted lines.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```sh\n") {
        let body = &rest[start + 6..];
        let Some(end) = body.find("```") else { break };
        let block = &body[..end];
        rest = &body[end + 3..];
        let prompted = block.lines().any(|l| l.starts_with("$ "));
        let mut pending = String::new();
        for line in block.lines() {
            let line = if prompted {
                match line.strip_prefix("$ ") {
                    Some(l) => l,
                    None if !pending.is_empty() => line,
                    None => continue,
                }
            } else {
                line
            };
            let code = match line.find(" #") {
                Some(i) => &line[..i],
                None if line.trim_start().starts_with('#') => "",
                None => line,
            };
            let code = code.trim();
            if let Some(head) = code.strip_suffix('\\') {
                pending.push_str(head.trim());
                pending.push(' ');
                continue;
            }
            pending.push_str(code);
            if !pending.trim().is_empty() {
                out.push(pending.trim().to_string());
            }
            pending.clear();
        }
    }
    out
}

/// `cargo run -- x`, `./target/release/medic x` and `medic x` all mean medic.
fn as_medic(command: &str) -> String {
    for prefix in [
        "cargo run --release -- ",
        "cargo run -- ",
        "./target/release/medic ",
    ] {
        if let Some(rest) = command.strip_prefix(prefix) {
            return format!("medic {rest}");
        }
    }
    command.to_string()
}

fn docs() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A scratch directory laid out as the docs assume: the fixtures, and the
/// user's own playbooks, incidents and medic.yaml they name.
fn workspace(medic: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&root.join("fixtures"), &dir.path().join("fixtures"));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(medic, bin.join("medic")).unwrap();
    let out = Command::new(medic)
        .args(["builtin", "--out", "my-playbooks"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::create_dir(dir.path().join("my-incidents")).unwrap();
    std::fs::copy(
        root.join("fixtures/incidents/crash-loop-after-deploy.yaml"),
        dir.path().join("my-incidents/crash-loop-after-deploy.yaml"),
    )
    .unwrap();
    // The fixture's own expectations are for enforce mode.
    std::fs::write(dir.path().join("medic.yaml"), "mode: enforce\n").unwrap();
    dir
}

#[test]
fn every_command_in_the_docs_runs_or_says_what_it_needs() {
    let medic = PathBuf::from(env!("CARGO_BIN_EXE_medic"));
    let dir = workspace(&medic);
    let path = format!(
        "{}:{}",
        dir.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut ran = Vec::new();
    let mut failed = Vec::new();
    for (file, text) in docs() {
        let parts = commands(&text)
            .into_iter()
            .flat_map(|c| c.split(" && ").map(str::to_string).collect::<Vec<_>>());
        for command in parts {
            let command = as_medic(&command);
            if NEEDS.iter().any(|(p, _)| command.starts_with(p)) {
                continue;
            }
            // Scratch files the docs put in /tmp go in the scratch directory.
            let command = command.replace("/tmp/", &format!("{}/", tmp.display()));
            if !command.starts_with("medic ") {
                failed.push(format!(
                    "{}: `{command}` is neither run here nor listed in NEEDS",
                    file.display()
                ));
                continue;
            }
            let out = Command::new("sh")
                .args(["-c", &command])
                .current_dir(dir.path())
                .env("PATH", &path)
                .output()
                .unwrap();
            if !out.status.success() {
                failed.push(format!(
                    "{}: `{command}` exited {:?}: {}{}",
                    file.display(),
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join(" | "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            ran.push(command);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    // The README's main command and the authoring tools are among them.
    assert!(ran.iter().any(|c| c == "medic replay"), "{ran:?}");
    for must in [
        "medic replay",
        "medic lint my-playbooks/",
        "medic explain pod-crash-loop",
    ] {
        assert!(
            ran.iter().any(|c| c.starts_with(must)),
            "{must} not run: {ran:?}"
        );
    }
}

#[test]
fn commands_are_read_from_blocks_with_continuations_and_prompts() {
    let text = "x\n```sh\n# a comment\ncargo run -- lint a/   # why\nmedic record --a 1 \\\n  --b 2\n```\n```sh\n$ medic detectors\ndetector  can fire\n```\n";
    assert_eq!(
        commands(text),
        [
            "cargo run -- lint a/",
            "medic record --a 1 --b 2",
            "medic detectors"
        ]
    );
    assert_eq!(as_medic("cargo run --release -- bench"), "medic bench");
}
