//! The `Detector` document: one PromQL query evaluated for all targets.

use super::anomaly::AnomalySpec;
use crate::model::{ObjectRef, Secs, Severity};
use crate::template::{self, Escape, TemplateError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A loaded, linted detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    pub name: String,
    pub spec: DetectorSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectorSpec {
    pub severity: Severity,
    /// What the value means, for people reading the timeline.
    #[serde(default)]
    pub description: String,
    /// PromQL; every series it returns is one firing instance.
    pub query: String,
    /// How a returned series names the object it is about.
    pub target: TargetTemplate,
    /// How long the condition must hold before it becomes a signal.
    #[serde(default, rename = "for")]
    pub for_: Secs,
    /// Whether it shows the target's own resources saturating (CPU, memory,
    /// disk, a connection pool) rather than a symptom (latency, errors):
    /// root-cause ranking trusts it more.
    #[serde(default)]
    pub resource: bool,
    /// How long a firing signal stays up after the condition stops holding,
    /// so a signal that dips for one evaluation does not flap.
    #[serde(default)]
    pub keep_firing_for: Secs,
    /// Instead of firing on every series the query returns, fire on the
    /// series whose newest value is unusual for its own history (see
    /// `signal::anomaly`). The query then returns the raw value, with no
    /// threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<AnomalySpec>,
    /// Once firing, the signal also holds while this PromQL returns a
    /// series, rendered with the signal's labels and `onset` (when its
    /// condition began, in Unix seconds, for `@ {{ onset }}`). For a query
    /// that compares with a moving baseline: the baseline catches up with a
    /// fault that lasts, and the signal would clear with the fault still
    /// there; this compares with the level before the onset instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_while: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetTemplate {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

/// The names of the detectors that show a target's own resources
/// saturating (`resource: true`): what ranking and diagnosis weigh apart.
pub fn resource_names(detectors: &[Detector]) -> BTreeSet<String> {
    detectors
        .iter()
        .filter(|d| d.spec.resource)
        .map(|d| d.name.clone())
        .collect()
}

impl TargetTemplate {
    /// The object a series is about, from its labels.
    pub fn render(&self, labels: &BTreeMap<String, String>) -> Result<ObjectRef, TemplateError> {
        let name = template::render(&self.name, labels, Escape::None)?;
        let namespace = match &self.namespace {
            Some(ns) => Some(template::render(ns, labels, Escape::None)?),
            None => None,
        };
        Ok(ObjectRef {
            kind: self.kind.clone(),
            namespace,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_target_from_labels() {
        let t = TargetTemplate {
            kind: "Pod".into(),
            namespace: Some("{{ namespace }}".into()),
            name: "{{ pod }}".into(),
        };
        let labels = BTreeMap::from([
            ("namespace".to_string(), "prod".to_string()),
            ("pod".to_string(), "api-1".to_string()),
        ]);
        assert_eq!(t.render(&labels).unwrap().to_string(), "Pod/prod/api-1");
        assert!(t.render(&BTreeMap::new()).is_err());
    }
}
