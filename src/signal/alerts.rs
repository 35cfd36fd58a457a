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

/// kube-prometheus alerts that are one of medic's own signals under
/// another name: the alert raises that signal, so the shipped playbooks
/// answer it. Alerts mapped by a label are in [`BY_LABEL`].
pub const KUBE_PROMETHEUS_SIGNALS: &[(&str, &str)] = &[
    ("KubePodCrashLooping", "crash_loop"),
    ("KubePodNotReady", "pod_not_ready"),
    ("KubeContainerWaiting", "container_cannot_start"),
    ("KubeDeploymentRolloutStuck", "rollout_stuck"),
    ("KubeDaemonSetRolloutStuck", "rollout_stuck"),
    ("KubeStatefulSetUpdateNotRolledOut", "rollout_stuck"),
    // Fewer available replicas than wanted for 15 minutes: after a deploy
    // that is a rollout that did not finish; otherwise the playbook only
    // escalates.
    ("KubeDeploymentReplicasMismatch", "rollout_stuck"),
    ("KubeStatefulSetReplicasMismatch", "rollout_stuck"),
    ("KubeNodeNotReady", "node_not_ready"),
    ("KubeNodeUnreachable", "node_not_ready"),
    ("KubeNodeReadinessFlapping", "node_not_ready"),
    ("KubeletDown", "node_not_ready"),
    ("KubePersistentVolumeFillingUp", "volume_filling"),
    ("KubePersistentVolumeInodesFillingUp", "volume_filling"),
    ("KubeJobFailed", "job_failed"),
    ("KubeHpaMaxedOut", "hpa_maxed_out"),
    ("CPUThrottlingHigh", "cpu_throttling"),
    ("NodeFilesystemSpaceFillingUp", "disk_pressure"),
    ("NodeFilesystemAlmostOutOfSpace", "disk_pressure"),
    ("NodeFilesystemFilesFillingUp", "disk_pressure"),
    ("NodeFilesystemAlmostOutOfFiles", "disk_pressure"),
    ("NodeMemoryHighUtilization", "node_memory_pressure"),
    ("NodeMemoryMajorPagesFaults", "node_memory_pressure"),
    // Hardware, network and clock faults of a node: nothing medic can
    // repair, but a person may want new pods kept off it.
    ("NodeRAIDDegraded", "node_degraded"),
    ("NodeRAIDDiskFailure", "node_degraded"),
    ("NodeNetworkReceiveErrs", "node_degraded"),
    ("NodeNetworkTransmitErrs", "node_degraded"),
    ("NodeNetworkInterfaceFlapping", "node_degraded"),
    ("NodeBondingDegraded", "node_degraded"),
    ("NodeClockSkewDetected", "node_degraded"),
    ("NodeClockNotSynchronising", "node_degraded"),
];

/// (label value prefix, signal) pairs.
type Prefixes = &'static [(&'static str, &'static str)];

/// Alerts whose signal depends on one of their labels: (alert, label,
/// [(value prefix, signal)]). Other values keep the alert's own name.
pub const BY_LABEL: &[(&str, &str, Prefixes)] = &[
    (
        "KubeNodePressure",
        "condition",
        &[
            ("MemoryPressure", "node_memory_pressure"),
            ("DiskPressure", "disk_pressure"),
        ],
    ),
    // The kubelet's eviction signals: memory.available, nodefs.available,
    // nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available.
    (
        "KubeNodeEviction",
        "eviction_signal",
        &[
            ("memory.", "node_memory_pressure"),
            ("nodefs.", "disk_pressure"),
            ("imagefs.", "disk_pressure"),
        ],
    ),
];

/// Every medic signal an alert can raise, whatever its labels.
pub fn signals_of(alert: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = KUBE_PROMETHEUS_SIGNALS
        .iter()
        .filter(|(a, _)| *a == alert)
        .map(|(_, s)| *s)
        .collect();
    for (a, _, values) in BY_LABEL {
        if *a == alert {
            for (_, s) in values.iter() {
                if !out.contains(s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Whether an Alertmanager alert can raise this signal: one of medic's own
/// that an alert maps onto, or a kube-prometheus alert's own name.
pub fn raised_by_alerts(signal: &str) -> bool {
    KUBE_PROMETHEUS_SIGNALS.iter().any(|(_, s)| *s == signal)
        || BY_LABEL
            .iter()
            .any(|(_, _, values)| values.iter().any(|(_, s)| *s == signal))
        || crate::replay::rules::all()
            .iter()
            .any(|r| r.alert == signal)
}

/// The signal an alert raises: medic's own for the alerts it maps, else one
/// named after the alert.
pub fn signal_name(labels: &BTreeMap<String, String>) -> Option<String> {
    let alert = labels.get("alertname")?;
    if let Some((_, label, values)) = BY_LABEL.iter().find(|(a, _, _)| a == alert) {
        let value = labels.get(*label).map_or("", String::as_str);
        let mapped = values
            .iter()
            .find(|(prefix, _)| value.starts_with(prefix))
            .map_or(alert.as_str(), |(_, s)| s);
        return Some(mapped.to_string());
    }
    Some(
        KUBE_PROMETHEUS_SIGNALS
            .iter()
            .find(|(a, _)| a == alert)
            .map_or(alert.as_str(), |(_, s)| s)
            .to_string(),
    )
}

/// The `job` label of node-exporter's series in kube-prometheus.
pub const NODE_EXPORTER_JOB: &str = "node-exporter";

/// The object an alert is about, from the labels kube-prometheus uses.
/// node-exporter's `instance` (host:port) is taken as a node's name or
/// address; the engine resolves it against the cluster.
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
    let instance = || {
        let i = labels.get("instance")?;
        // host:port, [v6]:port or a bare host.
        let host = match i.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => i.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty()).then(|| ObjectRef::node(host))
    };
    // node-exporter runs as a DaemonSet: its alerts carry the exporter's
    // own pod and namespace, but they are about the node it runs on.
    if labels.get("job").map(String::as_str) == Some(NODE_EXPORTER_JOB) {
        return pick("Node", "node").or_else(instance);
    }
    pick("Pod", "pod")
        .or_else(|| pick("Deployment", "deployment"))
        .or_else(|| pick("StatefulSet", "statefulset"))
        .or_else(|| pick("DaemonSet", "daemonset"))
        .or_else(|| pick("Job", "job_name"))
        .or_else(|| pick("HorizontalPodAutoscaler", "horizontalpodautoscaler"))
        .or_else(|| pick("PersistentVolumeClaim", "persistentvolumeclaim"))
        .or_else(|| pick("Node", "node"))
        .or_else(instance)
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
        let Some(name) = signal_name(&a.labels) else {
            skipped.push("an alert without an alertname label".to_string());
            continue;
        };
        let Some(target) = target(&a.labels) else {
            skipped.push(format!(
                "{name}: no pod, deployment, statefulset, daemonset, job_name, horizontalpodautoscaler, persistentvolumeclaim, node or instance label"
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
            vec![
                "Watchdog: no pod, deployment, statefulset, daemonset, job_name, horizontalpodautoscaler, persistentvolumeclaim, node or instance label"
            ]
        );
        // kube-prometheus's names become medic's signals.
        assert_eq!(events[0].signal.name, "crash_loop");
        assert_eq!(events[1].signal.name, "disk_pressure");
    }

    #[test]
    fn alerts_about_volumes_jobs_autoscalers_and_node_exporter_targets_are_taken_in() {
        let p = payload(
            r#"{"version": "4", "status": "firing", "alerts": [
                {"status": "firing", "labels": {"alertname": "KubePersistentVolumeFillingUp", "namespace": "data", "persistentvolumeclaim": "pg", "node": "n1", "job": "kubelet"}},
                {"status": "firing", "labels": {"alertname": "KubeJobFailed", "namespace": "batch", "job_name": "export-1", "job": "kube-state-metrics"}},
                {"status": "firing", "labels": {"alertname": "KubeHpaMaxedOut", "namespace": "shop", "horizontalpodautoscaler": "web"}},
                {"status": "firing", "labels": {"alertname": "NodeMemoryHighUtilization", "instance": "10.0.1.5:9100", "job": "node-exporter"}},
                {"status": "firing", "labels": {"alertname": "KubeNodePressure", "node": "n2", "condition": "DiskPressure"}},
                {"status": "firing", "labels": {"alertname": "KubeQuotaFullyUsed", "namespace": "shop", "resourcequota": "q"}}
            ]}"#,
        );
        let (events, skipped) = from_webhook(&p, 1_704_067_300).unwrap();
        let got: Vec<(String, String)> = events
            .iter()
            .map(|e| (e.signal.name.clone(), e.signal.target.to_string()))
            .collect();
        let want = [
            ("volume_filling", "PersistentVolumeClaim/data/pg"),
            ("job_failed", "Job/batch/export-1"),
            ("hpa_maxed_out", "HorizontalPodAutoscaler/shop/web"),
            ("node_memory_pressure", "Node/10.0.1.5"),
            ("disk_pressure", "Node/n2"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].starts_with("KubeQuotaFullyUsed"));
    }

    #[test]
    fn evictions_follow_their_signal_and_node_exporter_alerts_their_node() {
        let p = payload(
            r#"{"version": "4", "alerts": [
                {"status": "firing", "labels": {"alertname": "KubeNodeEviction", "node": "n1", "eviction_signal": "memory.available"}},
                {"status": "firing", "labels": {"alertname": "KubeNodeEviction", "node": "n1", "eviction_signal": "imagefs.inodesFree"}},
                {"status": "firing", "labels": {"alertname": "KubeNodeEviction", "node": "n1", "eviction_signal": "pid.available"}},
                {"status": "firing", "labels": {"alertname": "NodeClockSkewDetected", "job": "node-exporter", "namespace": "monitoring", "pod": "node-exporter-x", "instance": "n2"}},
                {"status": "firing", "labels": {"alertname": "NodeSystemdServiceFailed", "job": "node-exporter", "namespace": "monitoring", "pod": "node-exporter-y", "instance": "10.0.1.7:9100"}},
                {"status": "firing", "labels": {"alertname": "KubeStatefulSetReplicasMismatch", "namespace": "data", "statefulset": "pg", "job": "kube-state-metrics"}},
                {"status": "firing", "labels": {"alertname": "KubePodNotReady", "namespace": "shop", "pod": "api-1"}}
            ]}"#,
        );
        let (events, skipped) = from_webhook(&p, 0).unwrap();
        assert!(skipped.is_empty());
        let got: Vec<String> = events
            .iter()
            .map(|e| format!("{} {}", e.signal.name, e.signal.target))
            .collect();
        assert_eq!(
            got,
            [
                "node_memory_pressure Node/n1",
                "disk_pressure Node/n1",
                "KubeNodeEviction Node/n1",
                "node_degraded Node/n2",
                "NodeSystemdServiceFailed Node/10.0.1.7",
                "rollout_stuck StatefulSet/data/pg",
                "pod_not_ready Pod/shop/api-1",
            ]
        );
        assert!(raised_by_alerts("node_degraded") && raised_by_alerts("KubeQuotaExceeded"));
        assert!(!raised_by_alerts("memory_leak"));
    }

    #[test]
    fn rejects_other_versions() {
        let p = payload(r#"{"version": "3", "alerts": []}"#);
        assert!(from_webhook(&p, 0).unwrap_err().contains("expected 4"));
    }
}
