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
pub use rank::rank_root_causes;
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
