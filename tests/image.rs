//! The image: the Dockerfile builds what the binary embeds, runs it as
//! uid 65532 on a runtime with no shell, the binary links only what that
//! runtime holds, and deploy/ names the image of this version.

use std::collections::BTreeSet;
use std::process::Command;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Dockerfile's stages: (FROM line, instructions).
fn stages() -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in repo_file("Dockerfile").lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(from) = line.strip_prefix("FROM ") {
            out.push((from.to_string(), Vec::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push(line.to_string());
        }
    }
    out
}

#[test]
fn the_image_is_built_in_two_stages_and_runs_as_65532_without_a_shell() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "{stages:?}");
    let (builder, _) = &stages[0];
    // Pinned: a version in the tag, never `latest`.
    let tag = builder.split_whitespace().next().unwrap();
    let version = tag.rsplit(':').next().unwrap();
    assert!(
        version.starts_with(|c: char| c.is_ascii_digit()),
        "the builder is not pinned: {builder}"
    );
    let (runtime, body) = &stages[1];
    assert!(
        runtime.starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "{runtime}"
    );
    assert!(body.contains(&"USER 65532:65532".to_string()), "{body:?}");
    assert!(
        !body.iter().any(|l| l.starts_with("RUN")),
        "the runtime has no shell to RUN with"
    );
    assert_eq!(
        body.iter().filter(|l| l.starts_with("COPY")).count(),
        1,
        "the binary only"
    );
}

/// Every folder the binary embeds a file from (`include_str!`) is copied
/// into the builder and let through .dockerignore.
#[test]
fn the_builder_gets_every_file_the_binary_embeds() {
    let mut embedded = BTreeSet::new();
    let re = regex::Regex::new(r#"include_str!\("((?:\.\./)+)([^/"]+)/"#).unwrap();
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for c in re.captures_iter(&text) {
                    embedded.insert(c[2].to_string());
                }
            }
        }
    }
    assert!(embedded.contains("playbooks"), "{embedded:?}");
    let builder = &stages()[0].1;
    let ignore = repo_file(".dockerignore");
    for dir in &embedded {
        assert!(
            builder.contains(&format!("COPY {dir} {dir}")),
            "the Dockerfile does not copy {dir}/"
        );
        assert!(
            ignore.lines().any(|l| l == format!("!{dir}/")),
            ".dockerignore keeps {dir}/ out of the build"
        );
    }
}

#[test]
fn the_binary_links_only_what_the_runtime_image_holds() {
    // distroless/cc-debian12: glibc (libc, libm, libpthread, libdl, librt,
    // the loader) and libgcc_s. A debug build links the same libraries as a
    // release build: both come from the same crates and features.
    let allowed = [
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    ];
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_medic"))
        .output()
        .expect("ldd (libc-bin) is on every Debian");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let linked: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|lib| lib.rsplit('/').next().unwrap_or(lib))
        .collect();
    assert!(linked.contains(&"libc.so.6"), "{text}");
    for lib in linked {
        assert!(
            allowed.contains(&lib),
            "{lib} is not in the runtime image:\n{text}"
        );
    }
}

#[test]
fn deploy_names_the_image_of_this_version() {
    let deployment: serde_yaml::Value =
        serde_yaml::from_str(&repo_file("deploy/base/deployment.yaml")).unwrap();
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert_eq!(
        image,
        format!("ghcr.io/medic-dev/medic:{}", env!("CARGO_PKG_VERSION")),
        "deploy/ and Cargo.toml disagree on the version"
    );
    assert!(
        repo_file("Dockerfile").contains(&format!("medic:{}", env!("CARGO_PKG_VERSION"))),
        "the Dockerfile's build command names another tag"
    );
}
