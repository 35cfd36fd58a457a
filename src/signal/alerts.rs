//! Alertmanager webhook payloads (version 4) as signals. Pure: the HTTP
//! server parses, this maps, the engine deduplicates by fingerprint.

use super::Signal;
use crate::model::{ObjectRef, Severity, Timestamp};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    #[serde(default)]
    pub alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub fingerprint: String,
}

/// One alert, as the engine takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub fingerprint: String,
    pub signal: Signal,
    pub resolved: bool,
}

fn severity(labels: &BTreeMap<String, String>) -> Severity {
    match labels.get("severity").map(String::as_str) {
        Some("critical" | "page") => Severity::Critical,
        Some("high" | "error") => Severity::High,
        Some("info" | "none") => Severity::Info,
        _ => Severity::Warning,
    }
}

/// The object an alert is about, from the labels kube-prometheus uses.
fn target(labels: &BTreeMap<String, String>) -> Option<ObjectRef> {
    let ns = labels.get("namespace");
    let pick = |kind: &str, key: &str| -> Option<ObjectRef> {
        let name = labels.get(key)?;
        match ns {
            Some(ns) if kind != "Node" => Some(ObjectRef::namespaced(kind, ns, name)),
            _ if kind == "Node" => Some(ObjectRef::node(name)),
            _ => None,
        }
    };
    pick("Pod", "pod")
        .or_else(|| pick("Deployment", "deployment"))
        .or_else(|| pick("StatefulSet", "statefulset"))
        .or_else(|| pick("DaemonSet", "daemonset"))
        .or_else(|| pick("Node", "node"))
}

/// Maps a payload to alert events; alerts that name no object are returned
/// as the reasons they were skipped.
pub fn from_webhook(
    payload: &WebhookPayload,
    now: Timestamp,
) -> Result<(Vec<AlertEvent>, Vec<String>), String> {
    if payload.version != "4" {
        return Err(format!(
            "unsupported webhook version `{}`; expected 4",
            payload.version
        ));
    }
    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for a in &payload.alerts {
        let Some(name) = a.labels.get("alertname") else {
            skipped.push("an alert without an alertname label".to_string());
            continue;
        };
        let Some(target) = target(&a.labels) else {
            skipped.push(format!(
                "{name}: no pod, deployment, statefulset, daemonset or node label"
            ));
            continue;
        };
        let fingerprint = if a.fingerprint.is_empty() {
            format!("{name}@{target}")
        } else {
            a.fingerprint.clone()
        };
        let onset = a
            .starts_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.timestamp().min(now));
        events.push(AlertEvent {
            fingerprint,
            resolved: a.status == "resolved",
            signal: Signal {
                name: name.clone(),
                target,
                severity: severity(&a.labels),
                value: 1.0,
                labels: a.labels.clone(),
                onset,
                fired_at: now,
                onset_value: 1.0,
                peak: 1.0,
                slope_per_min: 0.0,
                from_alert: true,
            },
        });
    }
    Ok((events, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(json: &str) -> WebhookPayload {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn maps_alerts_to_targets_and_severities() {
        let p = payload(
            r#"{"version": "4", "status": "firing", "alerts": [
                {"status": "firing", "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "api-1", "severity": "critical"}, "startsAt": "2024-01-01T00:00:00Z", "fingerprint": "f1"},
                {"status": "resolved", "labels": {"alertname": "NodeFilesystemAlmostOutOfSpace", "node": "n1"}, "fingerprint": "f2"},
                {"status": "firing", "labels": {"alertname": "Watchdog"}}
            ]}"#,
        );
        let (events, skipped) = from_webhook(&p, 1_704_067_300).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].signal.target.to_string(), "Pod/shop/api-1");
        assert_eq!(
            (events[0].signal.severity, events[0].signal.onset),
            (Severity::Critical, 1_704_067_200)
        );
        assert!(!events[0].resolved);
        assert_eq!(events[1].signal.target.to_string(), "Node/n1");
        assert!(events[1].resolved);
        assert_eq!(
            skipped,
            vec!["Watchdog: no pod, deployment, statefulset, daemonset or node label"]
        );
    }

    #[test]
    fn rejects_other_versions() {
        let p = payload(r#"{"version": "3", "alerts": []}"#);
        assert!(from_webhook(&p, 0).unwrap_err().contains("expected 4"));
    }
}
