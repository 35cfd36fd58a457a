//! The set of detectors and playbooks medic runs with, loaded all or nothing.

use super::{EMBEDDED, Finding, FindingLevel, Playbook, lint_sources};
use crate::signal::Detector;
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
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_yaml(p))
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
