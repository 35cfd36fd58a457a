//! The set of detectors and playbooks medic runs with, loaded all or nothing.

use super::{EMBEDDED, Finding, FindingLevel, Playbook, lint_sources};
use crate::signal::Detector;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} error(s) in detectors and playbooks:\n{}", .0.iter().filter(|f| f.level == FindingLevel::Error).count(), render(.0))]
    Lint(Vec<Finding>),
}

fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Clone, Default)]
pub struct Library {
    pub detectors: Vec<Detector>,
    pub playbooks: Vec<Playbook>,
    /// Warnings found while loading; errors prevent loading at all.
    pub warnings: Vec<Finding>,
}

impl Library {
    /// Lints `sources` (name, text) and loads them only if there is no error.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Library, LoadError> {
        let (detectors, playbooks, findings) = lint_sources(sources);
        if findings.iter().any(|f| f.level == FindingLevel::Error) {
            return Err(LoadError::Lint(findings));
        }
        Ok(Library {
            detectors,
            playbooks,
            warnings: findings,
        })
    }

    /// The detectors and playbooks built into the binary (playbooks/).
    pub fn embedded() -> Result<Library, LoadError> {
        Self::from_sources(&embedded_sources())
    }

    /// Reads YAML files, or every `.yaml`/`.yml` file of directories, in name order.
    pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<(String, String)>, LoadError> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                let entries = std::fs::read_dir(path).map_err(|source| LoadError::Io {
                    path: path.clone(),
                    source,
                })?;
                // A kustomization beside the playbooks is not one of them.
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_yaml(p))
                    .filter(|p| {
                        !p.file_stem()
                            .is_some_and(|s| s.eq_ignore_ascii_case("kustomization"))
                    })
                    .collect();
                found.sort();
                files.extend(found);
            } else {
                files.push(path.clone());
            }
        }
        files
            .into_iter()
            .map(|path| {
                let text = crate::yaml::read_limited(&path).map_err(|source| LoadError::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok((path.display().to_string(), text))
            })
            .collect()
    }
}

/// `user` files on top of the built-in ones: a user document with the
/// kind and name of a built-in one replaces that document alone; the
/// others are added. Returns the sources and a note per replacement.
pub fn with_builtins(user: Vec<(String, String)>) -> (Vec<(String, String)>, Vec<String>) {
    // Each user document by its kind and name, with the file it is in.
    let mut theirs: std::collections::BTreeMap<(String, String), (String, String)> =
        Default::default();
    for (file, text) in &user {
        for doc in split_documents(text) {
            if let Some(key) = document_keys(&doc).into_iter().next() {
                theirs.insert(key, (file.clone(), doc));
            }
        }
    }
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for (file, text) in embedded_sources() {
        let mut kept = Vec::new();
        for doc in split_documents(&text) {
            let key = document_keys(&doc).into_iter().next();
            match key.as_ref().and_then(|k| theirs.get(k).map(|by| (k, by))) {
                Some(((kind, name), (by, mine))) => {
                    // A copy of the built-in one (`medic builtin --out`) is
                    // no news.
                    if mine.trim() != doc.trim() {
                        notes.push(format!(
                            "{by}: {kind} {name} replaces the built-in one ({file})"
                        ));
                    }
                }
                None => kept.push(doc),
            }
        }
        if !kept.is_empty() {
            out.push((file, kept.join("---\n")));
        }
    }
    out.extend(user);
    (out, notes)
}

/// A file's documents, split at `---` lines, each with its own text.
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// (kind, metadata.name) of each document that has both.
fn document_keys(text: &str) -> Vec<(String, String)> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| serde_yaml::Value::deserialize(doc).ok())
        .filter_map(|v| {
            Some((
                v.get("kind")?.as_str()?.to_string(),
                v.get("metadata")?.get("name")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

pub fn embedded_sources() -> Vec<(String, String)> {
    EMBEDDED
        .iter()
        .map(|(name, text)| (format!("playbooks/{name}"), text.to_string()))
        .collect()
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_of_the_built_ins_replaces_them_without_a_note() {
        let (sources, notes) = with_builtins(embedded_sources());
        assert_eq!(notes, Vec::<String>::new());
        let library = Library::from_sources(&sources).unwrap();
        assert_eq!(
            library.playbooks.len(),
            Library::embedded().unwrap().playbooks.len()
        );
    }

    #[test]
    fn a_user_document_replaces_the_built_in_of_its_name_and_the_rest_stay() {
        let user = vec![(
            "mine/crash.yaml".to_string(),
            "apiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {name: pod-crash-loop}\nspec:\n  trigger: {signal: crash_loop}\n  maxAutonomousRisk: none\n  steps: [{action: escalate, risk: none, params: {reason: mine}}]\n  rollback: []\n---\napiVersion: medic.dev/v1alpha1\nkind: Playbook\nmetadata: {name: my-own}\nspec:\n  trigger: {signal: crash_loop}\n  maxAutonomousRisk: none\n  steps: [{action: escalate, risk: none, params: {reason: also mine}}]\n  rollback: []\n"
                .to_string(),
        )];
        let (sources, notes) = with_builtins(user);
        assert_eq!(
            notes,
            vec![
                "mine/crash.yaml: Playbook pod-crash-loop replaces the built-in one (playbooks/pod-crash-loop.yaml)"
            ]
        );
        let library = Library::from_sources(&sources).unwrap();
        let builtin = Library::embedded().unwrap();
        // The built-in detectors are there for the user's playbooks to use.
        assert_eq!(library.detectors.len(), builtin.detectors.len());
        assert_eq!(library.playbooks.len(), builtin.playbooks.len() + 1);
        let crash = library
            .playbooks
            .iter()
            .find(|p| p.name == "pod-crash-loop")
            .unwrap();
        assert_eq!(crash.steps.len(), 1, "the user's, not the built-in");
    }

    #[test]
    fn a_kustomization_beside_the_playbooks_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kustomization.yaml"), "resources: []\n").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "kind: Playbook\n").unwrap();
        let sources = Library::read_sources(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(sources.len(), 1);
        assert!(sources[0].0.ends_with("a.yaml"));
    }
}
