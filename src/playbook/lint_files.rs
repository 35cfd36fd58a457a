//! `medic lint` on the other files medic reads, told apart by content: a
//! fixture (no `kind`, a `series` or `expect`) is loaded as replay would,
//! with its strict checks; a medic.yaml (no `kind`, one of the
//! configuration's fields) as `medic run` would.

use super::lint::{Finding, FindingLevel};
use crate::config::{Config, ConfigError};
use crate::replay::{FixtureError, Loaded};

/// Fields only a medic.yaml has at its top level.
const CONFIG_FIELDS: &[&str] = &[
    "mode",
    "interval",
    "listen",
    "prometheus",
    "autonomy",
    "guards",
    "approvals",
    "nats",
    "slack",
    "api",
    "stateDir",
    "playbooksDir",
    "correlation",
    "llm",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Fixture,
    Config,
    /// Detectors and playbooks.
    Documents,
}

pub fn file_kind(text: &str) -> FileKind {
    let Ok(serde_yaml::Value::Mapping(top)) = serde_yaml::from_str::<serde_yaml::Value>(text)
    else {
        return FileKind::Documents;
    };
    let has = |k: &str| top.contains_key(serde_yaml::Value::from(k));
    if has("kind") || has("apiVersion") {
        FileKind::Documents
    } else if has("series") || has("expect") {
        FileKind::Fixture
    } else if CONFIG_FIELDS.iter().any(|k| has(k)) {
        FileKind::Config
    } else {
        FileKind::Documents
    }
}

/// The findings for a fixture or medic.yaml: none, or the first error with
/// its place (these files are read whole, and stop at their first error).
pub fn lint_file(file: &str, text: &str, kind: FileKind) -> Vec<Finding> {
    let error = |line: usize, column: usize, field: String, message: String| Finding {
        level: FindingLevel::Error,
        file: file.to_string(),
        line,
        column,
        field,
        message,
        hint: None,
        snippet: text.lines().nth(line.saturating_sub(1)).map(str::to_string),
    };
    match kind {
        FileKind::Fixture => match Loaded::parse(text, file) {
            Ok(_) => Vec::new(),
            Err(FixtureError::Invalid {
                location,
                field,
                message,
                ..
            }) => {
                let (line, column) = place(&location);
                let field = field.trim_end_matches(": ").to_string();
                vec![error(line, column, field, message)]
            }
            Err(e) => vec![error(1, 1, String::new(), e.to_string())],
        },
        FileKind::Config => match Config::parse(text, file) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { path, message }) => {
                let (line, column) = place(path.strip_prefix(file).unwrap_or(""));
                // `field: message`, the place already said once.
                let (field, message) = message.split_once(": ").unwrap_or(("", &message));
                vec![error(line, column, field.to_string(), message.to_string())]
            }
            Err(e) => vec![error(1, 1, String::new(), e.to_string())],
        },
        FileKind::Documents => Vec::new(),
    }
}

/// `:line:column` as numbers; 1:1 when there is none.
fn place(location: &str) -> (usize, usize) {
    let mut at = location
        .trim_start_matches(':')
        .split(':')
        .map(|n| n.parse::<usize>().unwrap_or(1));
    (at.next().unwrap_or(1), at.next().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_and_configs_are_told_apart_from_documents() {
        assert_eq!(file_kind("name: x\nseries: []\n"), FileKind::Fixture);
        assert_eq!(file_kind("mode: enforce\n"), FileKind::Config);
        assert_eq!(
            file_kind("apiVersion: medic.dev/v1alpha1\nkind: Playbook\n"),
            FileKind::Documents
        );
        assert_eq!(file_kind("a: [\n"), FileKind::Documents);
    }

    #[test]
    fn a_fixture_error_has_its_place() {
        let text = "name: x\ninterval: 30s\nduration: 10m\nseries: []\nexpect:\n  not_actions: [delete_pods]\n";
        let findings = lint_file("f.yaml", text, FileKind::Fixture);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let f = &findings[0];
        assert_eq!(
            (f.line, f.field.as_str()),
            (6, "expect.not_actions[0]"),
            "{f}"
        );
        assert!(f.message.contains("delete_pods"), "{f}");
    }

    #[test]
    fn a_config_error_is_reported_and_a_good_one_is_quiet() {
        assert!(lint_file("m.yaml", "mode: enforce\n", FileKind::Config).is_empty());
        let findings = lint_file("m.yaml", "interval: 30s\nmode: enforse\n", FileKind::Config);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            findings[0].to_string().lines().next().unwrap(),
            "m.yaml:2:7: error: mode: unknown variant `enforse` (did you mean `enforce`?); expected `observe` or `enforce`"
        );
    }
}
