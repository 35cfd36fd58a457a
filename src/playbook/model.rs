//! The `Playbook` document and its loaded form.

use super::Condition;
use crate::act::Action;
use crate::model::{Risk, Secs};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaybookSpec {
    #[serde(default)]
    pub description: String,
    pub trigger: Trigger,
    /// The most risk this playbook may take without asking; the global bound
    /// in medic.yaml caps it further.
    pub max_autonomous_risk: Risk,
    pub steps: Vec<StepSpec>,
    /// Steps run, in order, when a step fails or its verification does.
    /// Write `rollback: []` to say there is deliberately nothing to undo.
    #[serde(default)]
    pub rollback: Option<Vec<StepSpec>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// The detector whose signal starts this playbook.
    pub signal: String,
    /// CEL over `signal`, `target` and `incident`; absent means always.
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepSpec {
    /// A name from the action catalog.
    #[schemars(schema_with = "action_names")]
    pub action: String,
    pub risk: Risk,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub params: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub wait_for: Option<WaitFor>,
}

/// Verification after a step: the query must return a result continuously
/// for `for`, within `timeout` of the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    pub query: String,
    #[serde(default, rename = "for")]
    pub for_: Secs,
    pub timeout: Secs,
    /// No check before this long after the step: a change takes time to
    /// show in the metrics.
    #[serde(default, rename = "initialDelay")]
    pub initial_delay: Secs,
    /// Check at most this often (default: every evaluation cycle).
    #[serde(default)]
    pub interval: Secs,
    /// Give up after this many checks where the condition did not hold
    /// (0: only the timeout ends the wait).
    #[serde(default, rename = "failureLimit")]
    pub failure_limit: u32,
    /// Give up after this many failed queries in a row: medic does not
    /// wait blind for a Prometheus that does not answer.
    #[serde(default = "default_error_limit", rename = "errorLimit")]
    pub error_limit: u32,
    /// What an empty result means: the condition does not hold (`false`,
    /// the default), or the data medic needs is missing (`error`, counted
    /// like a failed query).
    #[serde(default, rename = "onEmpty")]
    pub on_empty: OnEmpty,
}

fn default_error_limit() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnEmpty {
    #[default]
    False,
    Error,
}

fn action_names(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = crate::act::CATALOG.iter().map(|a| a.name).collect();
    json_schema!({"type": "string", "enum": names})
}

/// A medic document as written: `Document<DetectorSpec>` is a Detector,
/// `Document<PlaybookSpec>` a Playbook.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document<S> {
    /// Always `medic.dev/v1alpha1`.
    pub api_version: String,
    /// `Detector` or `Playbook`.
    pub kind: String,
    pub metadata: Metadata,
    pub spec: S,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A linted playbook with its conditions compiled.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub spec: PlaybookSpec,
    pub trigger_when: Option<Condition>,
    pub steps: Vec<Step>,
    pub rollback: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    pub risk: Risk,
    pub when: Option<Condition>,
    pub params: BTreeMap<String, serde_yaml::Value>,
    pub wait_for: Option<WaitFor>,
}
