//! The kube-prometheus alerting rules (`reference/kube-prometheus-rules/`,
//! built in): what clusters already alert on, and when each rule would
//! fire over a fixture, so replay can say whether medic saw it first.

use crate::metrics::{Metrics, MetricsError};
use crate::model::{Timestamp, parse_duration};
use serde::Deserialize;

const FILES: &[(&str, &str)] = &[
    (
        "kubernetesControlPlane-prometheusRule.yaml",
        include_str!(
            "../../reference/kube-prometheus-rules/kubernetesControlPlane-prometheusRule.yaml"
        ),
    ),
    (
        "nodeExporter-prometheusRule.yaml",
        include_str!("../../reference/kube-prometheus-rules/nodeExporter-prometheusRule.yaml"),
    ),
    (
        "kubeStateMetrics-prometheusRule.yaml",
        include_str!("../../reference/kube-prometheus-rules/kubeStateMetrics-prometheusRule.yaml"),
    ),
    (
        "kubePrometheus-prometheusRule.yaml",
        include_str!("../../reference/kube-prometheus-rules/kubePrometheus-prometheusRule.yaml"),
    ),
    (
        "alertmanager-prometheusRule.yaml",
        include_str!("../../reference/kube-prometheus-rules/alertmanager-prometheusRule.yaml"),
    ),
    (
        "prometheus-prometheusRule.yaml",
        include_str!("../../reference/kube-prometheus-rules/prometheus-prometheusRule.yaml"),
    ),
];

/// One alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub alert: String,
    /// The group it is in (kubernetes-apps, node-exporter, ...).
    pub group: String,
    /// The file it comes from.
    pub file: &'static str,
    pub expr: String,
    /// Seconds the expression must hold before the alert fires.
    pub for_secs: i64,
    pub severity: String,
    /// The description annotation: which labels the alert carries.
    pub description: String,
}

#[derive(Deserialize)]
struct Manifest {
    spec: Spec,
}

#[derive(Deserialize)]
struct Spec {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    name: String,
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    #[serde(default)]
    alert: Option<String>,
    expr: String,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// Every alerting rule, in file order (recording rules left out), parsed
/// once: every fixture load and every race reads them. The files are built
/// in and checked by a test, so a parse failure here is a bug.
pub fn all() -> &'static [Rule] {
    static RULES: std::sync::OnceLock<Vec<Rule>> = std::sync::OnceLock::new();
    RULES.get_or_init(parse_all)
}

fn parse_all() -> Vec<Rule> {
    let mut out = Vec::new();
    for (file, text) in FILES {
        let Ok(manifest) = serde_yaml::from_str::<Manifest>(text) else {
            tracing::error!(file, "a built-in rule file does not parse");
            continue;
        };
        for group in manifest.spec.groups {
            for r in group.rules {
                let Some(alert) = r.alert else { continue };
                out.push(Rule {
                    alert,
                    group: group.name.clone(),
                    file,
                    expr: r.expr,
                    for_secs: r.for_.as_deref().map_or(Ok(0), parse_duration).unwrap_or(0),
                    severity: r.labels.get("severity").cloned().unwrap_or_default(),
                    description: r
                        .annotations
                        .get("description")
                        .cloned()
                        .unwrap_or_default(),
                });
            }
        }
    }
    out
}

/// When the alert `name` would first fire over `[start, end]`, evaluated
/// every `step` as Prometheus evaluates a rule: its expression returns a
/// series at consecutive evaluations for at least `for`. Where several
/// rules share the name (a warning and a critical one), the earliest.
/// None: no rule of that name fires in the window.
pub async fn fires_at(
    metrics: &dyn Metrics,
    name: &str,
    start: Timestamp,
    end: Timestamp,
    step: i64,
) -> Result<Option<Timestamp>, MetricsError> {
    let mut first: Option<Timestamp> = None;
    for rule in all().iter().filter(|r| r.alert == name) {
        let ranges = metrics.range(&rule.expr, start, end, step).await?;
        // Each series pends from its first sample in a run of consecutive
        // evaluations and fires once the run is `for` long.
        for series in ranges {
            let mut run_start: Option<Timestamp> = None;
            let mut last: Option<Timestamp> = None;
            for &(t, _) in &series.samples {
                if last.is_none_or(|l| t - l > step) {
                    run_start = Some(t);
                }
                last = Some(t);
                if let Some(s) = run_start
                    && t - s >= rule.for_secs
                {
                    first = Some(first.map_or(t, |f| f.min(t)));
                    break;
                }
            }
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_file_parses_and_names_its_alerts() {
        for (file, text) in FILES {
            assert!(serde_yaml::from_str::<Manifest>(text).is_ok(), "{file}");
        }
        let rules = all();
        assert!(rules.len() > 100, "{}", rules.len());
        let stuck = rules
            .iter()
            .find(|r| r.alert == "KubeDeploymentRolloutStuck")
            .unwrap();
        assert_eq!(stuck.for_secs, 15 * 60);
        assert_eq!(stuck.group, "kubernetes-apps");
        assert!(stuck.expr.contains("Progressing"));
    }
}
