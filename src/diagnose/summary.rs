//! The compact incident summary an LLM sees: numbers and names medic
//! produced, plus cluster-sourced text fenced as untrusted data.

use super::llm::{PromptInput, fence};
use crate::cluster::ClusterSnapshot;
use crate::incident::{Incident, Topology, fmt_value};
use crate::model::{ObjectRef, Timestamp, format_secs};
use crate::playbook::Playbook;
use crate::signal::Detector;
use std::collections::BTreeSet;

/// Identifies an incident by what it is about, not by LLM text: the set of
/// (signal, workload) pairs. A new kind of signal makes a new fingerprint.
pub fn fingerprint(inc: &Incident) -> String {
    let pairs: BTreeSet<String> = inc
        .signals
        .iter()
        .map(|s| format!("{}@{}", s.signal.name, s.subject))
        .collect();
    pairs.into_iter().collect::<Vec<_>>().join(",")
}

/// Everything the prompt may contain about this incident.
#[allow(clippy::too_many_arguments)]
pub fn prompt_input(
    inc: &Incident,
    snap: &ClusterSnapshot,
    topo: &Topology,
    detectors: &[Detector],
    playbooks: &[&Playbook],
    logs: &[(ObjectRef, String)],
    now: Timestamp,
) -> PromptInput {
    let root = inc.root_cause();
    let describe = |name: &str| {
        detectors
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.spec.description.clone())
            .unwrap_or_default()
    };
    let mut root_signals = Vec::new();
    let mut other_signals = Vec::new();
    for s in &inc.signals {
        let sig = &s.signal;
        let line = format!(
            "{} on {} (workload {}): {} = {} (at onset {}, peak {}, {}{}/min); condition held from {} ago, firing since {} ago{}",
            sig.name,
            sig.target,
            s.subject,
            describe(&sig.name),
            fmt_value(sig.value),
            fmt_value(sig.onset_value),
            fmt_value(sig.peak),
            if sig.slope_per_min >= 0.0 { "+" } else { "" },
            fmt_value(sig.slope_per_min),
            format_secs(now - sig.onset),
            format_secs(now - sig.fired_at),
            s.cleared_at
                .map(|c| format!(", cleared {} ago", format_secs(now - c)))
                .unwrap_or_default()
        );
        if Some(&s.subject) == root {
            root_signals.push(line);
        } else {
            other_signals.push(line);
        }
    }
    let timeline = inc
        .timeline
        .iter()
        .rev()
        .map(|t| {
            format!(
                "{} ago {}: {}",
                format_secs(now - t.at),
                t.stage.label(),
                t.text
            )
        })
        .collect();
    let subjects: BTreeSet<&ObjectRef> = inc.signals.iter().map(|s| &s.subject).collect();
    let recent: Vec<_> = snap
        .changes
        .iter()
        .filter(|c| subjects.contains(&c.object) && now - c.at <= 86_400 && c.at <= now)
        .collect();
    let changes = recent
        .iter()
        .map(|c| format!("{} of {} {} ago", c.kind, c.object, format_secs(now - c.at)))
        .collect();
    let mut neighbours = BTreeSet::new();
    for s in &subjects {
        for caller in topo.callers(s) {
            neighbours.insert(format!("{caller} -> {s}"));
        }
        for callee in topo.callees(s) {
            neighbours.insert(format!("{s} -> {callee}"));
        }
    }
    let hypothesis = inc
        .diagnosis
        .as_ref()
        .map(|d| {
            format!(
                "{} (confidence {:.2}): {}",
                d.category, d.confidence, d.summary
            )
        })
        .unwrap_or_else(|| "none".into());
    let mut objects: Vec<String> = inc.candidates.iter().map(ToString::to_string).collect();
    for a in &inc.affected {
        let a = a.to_string();
        if !objects.contains(&a) {
            objects.push(a);
        }
    }
    let mut untrusted = Vec::new();
    let messages: Vec<String> = recent
        .iter()
        .filter(|c| !c.message.is_empty())
        .map(|c| format!("{} of {}: {}", c.kind, c.object, c.message))
        .collect();
    if !messages.is_empty() {
        untrusted.push(fence("change messages", &messages.join("\n")));
    }
    for s in &inc.signals {
        if let Some(pod) = snap.pods.get(&s.signal.target)
            && !pod.labels.is_empty()
        {
            let text: Vec<String> = pod.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            untrusted.push(fence(
                &format!("labels and annotations of {}", s.signal.target),
                &text.join("\n"),
            ));
        }
    }
    for (pod, text) in logs {
        untrusted.push(fence(&format!("logs of {pod}"), text));
    }
    untrusted.dedup();
    PromptInput {
        incident: inc.id.clone(),
        severity: inc.severity.to_string(),
        root_signals,
        other_signals,
        timeline,
        changes,
        neighbours: neighbours.into_iter().collect(),
        hypothesis,
        objects,
        categories: detectors.iter().map(|d| d.name.clone()).collect(),
        playbooks: playbooks
            .iter()
            .map(|p| format!("{}: {}", p.name, p.spec.description))
            .collect(),
        untrusted,
    }
}
