//! medic.yaml: mode, autonomy bounds, timing. Every field has a default, so
//! an empty file is a valid (observe-only) configuration.

use crate::diagnose::llm::LlmConfig;
use crate::incident::CorrelationConfig;
use crate::metrics::PrometheusConfig;
use crate::model::{Risk, Secs};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub mod reference;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plan and escalate; write nothing.
    Observe,
    /// Run steps within the autonomy bounds.
    Enforce,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Autonomy {
    /// The most risk any step may take without approval, whatever its
    /// playbook allows.
    pub max_risk: Risk,
    /// Earned autonomy: a step within the ceilings still asks people until
    /// its record (approvals, verified runs) says it may run alone. Unset:
    /// the ceilings alone decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earn: Option<crate::trust::Earn>,
}

impl Default for Autonomy {
    fn default() -> Self {
        Autonomy {
            max_risk: Risk::Medium,
            earn: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// `observe`: detect, plan, dry-run and escalate, change nothing;
    /// `enforce`: run steps within the autonomy bounds.
    pub mode: Mode,
    /// Stops new actions; planning and escalation go on.
    pub paused: bool,
    /// How often detectors are evaluated.
    pub interval: Secs,
    pub autonomy: Autonomy,
    pub correlation: CorrelationConfig,
    /// Optional LLM-assisted diagnosis (off by default).
    pub llm: LlmConfig,
    /// Where `medic run` queries metrics.
    pub prometheus: PrometheusConfig,
    /// Detector and playbook files for `medic run` (reloaded when they
    /// change), laid over the built-in ones: a document with a built-in's
    /// kind and name replaces it. The built-in ones alone when unset.
    pub playbooks_dir: Option<String>,
    /// Use the built-in detectors and playbooks beside `playbooksDir`;
    /// false: only the directory's.
    pub builtin: bool,
    /// The HTTP server's address (health, metrics, incidents API).
    pub listen: String,
    /// Checks every mutating step passes, whatever its risk.
    pub guards: crate::guard::GuardConfig,
    /// Leases for running more than one replica against a real cluster.
    pub leader_election: crate::ha::LeaderElection,
    /// Who may approve a step medic would not run alone, and for how long.
    pub approvals: crate::escalate::ApprovalConfig,
    /// Escalations, incident events and approvals over NATS JetStream.
    pub nats: crate::escalate::NatsConfig,
    /// Escalations and approvals in Slack.
    pub slack: crate::escalate::SlackConfig,
    /// Where messages for people wait until delivered (the outbox); must
    /// survive a restart of medic's container (an emptyDir does).
    pub state_dir: String,
    pub api: ApiConfig,
}

/// `api` in medic.yaml. Secrets are files (a mounted Secret), read again
/// when they change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApiConfig {
    /// A file holding the bearer token people's tools send: approve/deny,
    /// pause/resume and the incidents API are off without it.
    pub token_file: Option<String>,
    /// Alertmanager's webhook, `POST /api/v1/alerts`.
    pub webhook: WebhookConfig,
}

/// `api.webhook` in medic.yaml: the credentials Alertmanager sends, as its
/// `http_config.authorization` (a bearer token) or `basic_auth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Off: the route answers 404 and only detectors raise signals.
    pub enabled: bool,
    /// A file holding the bearer token.
    pub token_file: Option<String>,
    /// HTTP basic auth: the user name, and a file holding the password.
    pub username: Option<String>,
    /// The file holding the basic auth password.
    pub password_file: Option<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            token_file: None,
            username: None,
            password_file: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Observe,
            paused: false,
            interval: Secs(30),
            autonomy: Autonomy::default(),
            correlation: CorrelationConfig::default(),
            llm: LlmConfig::default(),
            prometheus: PrometheusConfig::default(),
            playbooks_dir: None,
            builtin: true,
            listen: "0.0.0.0:8080".into(),
            guards: crate::guard::GuardConfig::default(),
            leader_election: crate::ha::LeaderElection::default(),
            approvals: crate::escalate::ApprovalConfig::default(),
            nats: crate::escalate::NatsConfig::default(),
            slack: crate::escalate::SlackConfig::default(),
            state_dir: "/var/lib/medic".into(),
            api: ApiConfig::default(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::yaml::read_limited(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let de = serde_yaml::Deserializer::from_str(text);
        let config: Config =
            serde_path_to_error::deserialize(de).map_err(|e| invalid(origin, e))?;
        config.checked(origin)
    }

    /// What the types cannot say: values out of their range.
    fn checked(self, origin: &str) -> Result<Config, ConfigError> {
        if let Some(earn) = &self.autonomy.earn
            && (earn.window.0 <= 0 || earn.window.0 > crate::trust::MAX_WINDOW)
        {
            return Err(ConfigError::Invalid {
                path: origin.into(),
                message: format!(
                    "autonomy.earn.window: {} is out of range: more than 0, at most 90d (what the journal keeps)",
                    earn.window
                ),
            });
        }
        Ok(self)
    }

    /// This configuration with `overrides` (a partial medic.yaml) laid over it.
    pub fn overlay(
        &self,
        overrides: &serde_yaml::Value,
        origin: &str,
    ) -> Result<Config, ConfigError> {
        let mut base = serde_yaml::to_value(self).map_err(|e| ConfigError::Invalid {
            path: origin.into(),
            message: e.to_string(),
        })?;
        merge(&mut base, overrides);
        let config: Config =
            serde_path_to_error::deserialize(base).map_err(|e| invalid(origin, e))?;
        config.checked(origin)
    }
}

fn invalid(origin: &str, e: serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError {
    let field = e.path().to_string();
    let inner = e.into_inner();
    let at = inner
        .location()
        .map(|l| format!(":{}:{}", l.line(), l.column()))
        .unwrap_or_default();
    ConfigError::Invalid {
        path: format!("{origin}{at}"),
        message: format!(
            "{field}: {}",
            crate::yaml::tidy_serde_message(&inner.to_string())
        ),
    }
}

fn merge(base: &mut serde_yaml::Value, over: &serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_observe_mode_with_a_medium_bound() {
        let c = Config::parse("", "medic.yaml").unwrap();
        assert_eq!(c.mode, Mode::Observe);
        assert_eq!(c.autonomy.max_risk, Risk::Medium);
        assert_eq!(c.interval, Secs(30));
    }

    #[test]
    fn overlay_changes_only_what_it_names() {
        let over: serde_yaml::Value =
            serde_yaml::from_str("{mode: enforce, autonomy: {maxRisk: low}}").unwrap();
        let c = Config::default().overlay(&over, "fixture").unwrap();
        assert_eq!(
            (c.mode, c.autonomy.max_risk, c.interval),
            (Mode::Enforce, Risk::Low, Secs(30))
        );
    }

    #[test]
    fn earned_autonomy_is_off_unless_set_and_its_window_is_bounded() {
        assert_eq!(Config::default().autonomy.earn, None);
        let c = Config::parse("autonomy: {earn: {approvals: 2}}\n", "m.yaml").unwrap();
        let earn = c.autonomy.earn.unwrap();
        assert_eq!(
            (earn.approvals, earn.verified, earn.window),
            (2, 2, Secs(30 * 24 * 3600))
        );
        let err = Config::parse("autonomy: {earn: {window: 365d}}\n", "m.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.yaml: autonomy.earn.window: 365d is out of range: more than 0, at most 90d (what the journal keeps)"
        );
    }

    #[test]
    fn unknown_fields_name_the_field_and_line() {
        let err =
            Config::parse("mode: enforce\nautonomy:\n  maxRsk: low\n", "medic.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("medic.yaml:3:"), "{msg}");
        assert!(msg.contains("autonomy") && msg.contains("maxRsk"), "{msg}");
    }
}
