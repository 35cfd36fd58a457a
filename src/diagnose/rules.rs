//! Rule-based diagnosis. Pure: reads the ranked incident and the snapshot.

use super::Diagnosis;
use crate::cluster::ClusterSnapshot;
use crate::incident::{Incident, fmt_value};
use crate::model::format_secs;

/// What a category means, and how much a signal of it alone says.
fn meaning(category: &str) -> (&'static str, f64) {
    match category {
        "memory_leak" => ("its memory grows steadily towards the container limit", 0.6),
        "node_memory_pressure" => ("the node is running out of memory", 0.55),
        "crash_loop" => ("its containers keep crashing and restarting", 0.6),
        "connection_pool_exhaustion" => (
            "its database connection pool is exhausted and requests queue for a connection",
            0.7,
        ),
        "disk_pressure" => ("a filesystem on the node is filling up", 0.7),
        "cpu_throttling" => ("it is throttled by its CPU limit", 0.6),
        "latency_anomaly" => ("its latency is far above its own recent baseline", 0.45),
        "error_rate" => ("its error rate is far above its own recent baseline", 0.45),
        "certificate_expiry" => ("its certificate expires soon", 0.8),
        _ => ("a detector fired on it", 0.4),
    }
}

/// Diagnoses an incident whose candidates are ranked. None when it has none.
pub fn diagnose(
    incident: &Incident,
    snap: &ClusterSnapshot,
    change_window: i64,
) -> Option<Diagnosis> {
    let root = incident.root_cause()?;
    let root_signals: Vec<_> = incident
        .signals
        .iter()
        .filter(|s| &s.subject == root)
        .collect();
    let first = root_signals.iter().min_by_key(|s| s.signal.onset)?;
    let category = first.signal.name.clone();
    let (what, base) = meaning(&category);
    let mut confidence = base;
    let mut evidence: Vec<String> = incident
        .signals
        .iter()
        .map(|s| {
            let d = s.signal.onset - incident.opened_at;
            let when = if d < 0 {
                format!("onset {} before the incident opened", format_secs(-d))
            } else {
                format!("onset {} after the incident opened", format_secs(d))
            };
            format!(
                "{} on {}: value {}, {when}",
                s.signal.name,
                s.signal.target,
                fmt_value(s.signal.value)
            )
        })
        .collect();
    let mut because = String::new();
    if let Some(change) = snap.last_change(root, first.signal.onset) {
        let ago = first.signal.onset - change.at;
        if ago <= change_window {
            confidence += 0.2;
            because = format!(
                " It began {} after a {} of {} ({}), the likeliest cause.",
                format_secs(ago),
                change.kind,
                root,
                change.message
            );
            evidence.push(format!(
                "{} of {} {} before onset: {}",
                change.kind,
                root,
                format_secs(ago),
                change.message
            ));
        }
    }
    let others: Vec<String> = incident
        .candidates
        .iter()
        .skip(1)
        .map(ToString::to_string)
        .collect();
    if !others.is_empty() {
        confidence += 0.05 * others.len().min(2) as f64;
    }
    let mut summary = format!("{root} is the most likely root cause: {what}.{because}");
    if !others.is_empty() {
        summary.push_str(&format!(
            " Also affected, and explained by it: {}.",
            others.join(", ")
        ));
    }
    if !incident.suspects.is_empty() {
        let past: Vec<String> = incident
            .suspects
            .iter()
            .map(|s| s.describe(incident.opened_at))
            .collect();
        summary.push_str(&format!(
            " Not ruled out, from recent incidents: {}.",
            past.join("; ")
        ));
    }
    Some(Diagnosis {
        source: "rules".into(),
        category,
        confidence: (confidence.min(0.95) * 100.0).round() / 100.0,
        summary,
        evidence,
        llm: None,
    })
}
