//! Incidents: signals grouped by time and topology, with a timeline and a
//! ranked list of root-cause candidates.

mod correlate;
mod index;
mod rank;
mod suspects;
mod timeline;
mod topology;

pub use correlate::{CorrelationConfig, correlate, fmt_value};
pub use index::IncidentIndex;
pub use rank::{Assessment, assess, rank_root_causes};
pub use suspects::{Suspect, recent_suspects};
pub use timeline::{Stage, TimelineEntry};
pub use topology::Topology;

use crate::act::ActionRecord;
use crate::diagnose::Diagnosis;
use crate::escalate::EscalationRecord;
use crate::model::{ObjectRef, Severity, Timestamp};
use crate::signal::Signal;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SignalRecord {
    pub signal: Signal,
    /// The workload (or the target itself) the signal is about.
    pub subject: ObjectRef,
    pub cleared_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    pub id: String,
    pub opened_at: Timestamp,
    pub severity: Severity,
    pub signals: Vec<SignalRecord>,
    /// Targets, their workloads and the nodes they run on.
    pub affected: BTreeSet<ObjectRef>,
    /// Ranked, most likely first; empty until ranked.
    pub candidates: Vec<ObjectRef>,
    /// Roots of incidents opened shortly before, ranked after the
    /// candidates; never planned for (see `suspects.rs`).
    #[serde(default)]
    pub suspects: Vec<Suspect>,
    pub diagnosis: Option<Diagnosis>,
    pub actions: Vec<ActionRecord>,
    pub escalations: Vec<EscalationRecord>,
    pub timeline: Vec<TimelineEntry>,
    pub resolved_at: Option<Timestamp>,
    /// What `capture_logs` read, redacted and bounded: evidence for people.
    #[serde(default)]
    pub logs: Vec<CapturedLogs>,
}

/// The last lines of a pod's logs, as `capture_logs` kept them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CapturedLogs {
    pub at: Timestamp,
    pub pod: ObjectRef,
    /// Secrets replaced by `[REDACTED]`; at most the last 100 lines and 8 KiB.
    pub text: String,
}

impl CapturedLogs {
    pub const MAX_LINES: usize = 100;
    pub const MAX_BYTES: usize = 8 * 1024;

    /// Keeps the end of `raw`, redacted, within the bounds: the last lines
    /// are the ones nearest the trouble.
    pub fn keep(at: Timestamp, pod: ObjectRef, raw: &str) -> CapturedLogs {
        let redacted = crate::diagnose::llm::redact(raw);
        let lines: Vec<&str> = redacted.lines().collect();
        let mut text = lines[lines.len().saturating_sub(Self::MAX_LINES)..].join("\n");
        if text.len() > Self::MAX_BYTES {
            let mut cut = text.len() - Self::MAX_BYTES;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            // Start at the next whole line.
            let from = text[cut..].find('\n').map_or(cut, |i| cut + i + 1);
            text = text[from..].to_string();
        }
        CapturedLogs { at, pod, text }
    }
}

impl Incident {
    /// A new incident with nothing in it yet.
    pub fn new(id: impl Into<String>, opened_at: Timestamp, severity: Severity) -> Self {
        Incident {
            id: id.into(),
            opened_at,
            severity,
            signals: Vec::new(),
            affected: BTreeSet::new(),
            candidates: Vec::new(),
            suspects: Vec::new(),
            diagnosis: None,
            actions: Vec::new(),
            escalations: Vec::new(),
            timeline: Vec::new(),
            resolved_at: None,
            logs: Vec::new(),
        }
    }

    pub fn root_cause(&self) -> Option<&ObjectRef> {
        self.candidates.first()
    }

    /// Every object that might be the root cause, most likely first: the
    /// candidates, then the suspects from recent history.
    pub fn ranking(&self) -> impl Iterator<Item = &ObjectRef> {
        self.candidates
            .iter()
            .chain(self.suspects.iter().map(|s| &s.object))
    }

    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }

    /// When the last signal cleared, if every signal has.
    pub fn all_cleared_at(&self) -> Option<Timestamp> {
        self.signals
            .iter()
            .map(|s| s.cleared_at)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max())
    }

    pub fn record(&mut self, at: Timestamp, stage: Stage, text: impl Into<String>) {
        let text = text.into();
        tracing::info!(incident = %self.id, stage = ?stage, "{text}");
        self.timeline.push(TimelineEntry { at, stage, text });
    }
}

/// A signal record for tests: `subject` behind `target`, firing a minute
/// after `onset`.
#[cfg(test)]
pub(crate) fn test_record(subject: &str, target: &str, onset: Timestamp) -> SignalRecord {
    SignalRecord {
        signal: Signal {
            name: "x".into(),
            target: target.parse().unwrap(),
            severity: Severity::High,
            value: 1.0,
            labels: Default::default(),
            onset,
            fired_at: onset + 60,
            onset_value: 1.0,
            peak: 1.0,
            slope_per_min: 0.0,
            from_alert: false,
        },
        subject: subject.parse().unwrap(),
        cleared_at: None,
    }
}

#[cfg(test)]
mod logs_tests {
    use super::*;

    #[test]
    fn captured_logs_keep_the_last_lines_redacted_and_bounded() {
        let pod = ObjectRef::namespaced("Pod", "shop", "api-1");
        let raw: String = (1..=300)
            .map(|i| format!("line {i} password=s3cret\n"))
            .collect();
        let kept = CapturedLogs::keep(10, pod.clone(), &raw);
        let lines: Vec<&str> = kept.text.lines().collect();
        assert_eq!(lines.len(), CapturedLogs::MAX_LINES);
        assert!(lines[0].starts_with("line 201 "), "{}", lines[0]);
        assert!(lines[99].starts_with("line 300 "), "{}", lines[99]);
        assert!(!kept.text.contains("s3cret"), "{}", lines[0]);
        // Long lines: the byte bound keeps whole lines from the end.
        let long: String = (1..=20)
            .map(|i| format!("{i} {}\n", "x".repeat(1000)))
            .collect();
        let kept = CapturedLogs::keep(10, pod, &long);
        assert!(kept.text.len() <= CapturedLogs::MAX_BYTES);
        assert!(
            kept.text.starts_with(|c: char| c.is_ascii_digit()),
            "starts mid-line"
        );
        assert!(kept.text.lines().last().unwrap().starts_with("20 "));
    }
}
