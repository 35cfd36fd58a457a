//! Escalation: handing an incident to people, with the plan and the reason
//! medic stopped, and taking their answer. The `Escalator` port publishes;
//! adapters (NATS, Slack) slot in behind it. `MemoryEscalator` keeps what
//! was sent, for replay. Approvals live in an `ApprovalStore`.

mod approval;
mod nats;
mod outbox;
pub mod slack;

pub use nats::{NatsApprovals, NatsConfig, NatsError, NatsSink, connect as connect_nats};
pub use outbox::{Message, Outbox, OutboxError, Sink};
pub use slack::{SlackConfig, SlackError, SlackSink};

pub use approval::{
    Answer, ApprovalConfig, ApprovalError, ApprovalRecord, ApprovalStore, MemoryApprovals, Verdict,
    approval_key, plan_digest,
};

use crate::model::{ObjectRef, Risk, Severity, Timestamp};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// A planned step as people see it in an escalation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanLine {
    pub index: usize,
    pub action: String,
    pub target: Option<ObjectRef>,
    pub risk: Risk,
}

/// What the diagnosis said, as people see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisLine {
    pub category: String,
    pub confidence: f64,
    /// `rules` or `llm`.
    pub source: String,
    pub evidence: Vec<String>,
}

/// The question an escalation asks, when a person can let the plan go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalAsk {
    /// The approval store key, `<incident>.<step>`.
    pub key: String,
    pub step: usize,
    pub plan_digest: String,
    pub expires_at: Timestamp,
    pub approvers: Vec<String>,
    /// The step's track record, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// What is sent to people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// Stable for the same incident, severity, plan and reason: consumers
    /// deduplicate on it, and a redelivery carries the same id.
    pub id: String,
    pub incident: String,
    pub severity: Severity,
    pub at: Timestamp,
    pub reason: String,
    pub root_cause: Option<ObjectRef>,
    pub summary: String,
    pub playbook: Option<String>,
    pub plan: Vec<PlanLine>,
    /// The step medic stopped at, if any.
    pub stopped_at_step: Option<usize>,
    pub diagnosis: Option<DiagnosisLine>,
    /// Present when a person's approval resumes the plan.
    pub approval: Option<ApprovalAsk>,
}

/// What the incident keeps of an escalation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRecord {
    /// The escalation's id: the same incident, severity, plan and reason
    /// are escalated once.
    pub id: String,
    pub at: Timestamp,
    pub reason: String,
    pub channel: String,
    /// Accepted by the channel (with NATS or Slack: queued in the outbox,
    /// which delivers it).
    pub delivered: bool,
}

/// A note to people that needs no answer (medic acted, an incident resolved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub incident: String,
    pub at: Timestamp,
    /// `opened`, `action`, `verified`, `rolled_back`, `approved`, `denied`,
    /// `completed`, `failed`, `resolved`.
    pub kind: String,
    pub text: String,
}

/// A heads-up to a service whose upstream is degraded: its own latency or
/// errors may follow, and it should not be remediated for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceWarning {
    pub id: String,
    pub at: Timestamp,
    /// The caller being warned.
    pub service: ObjectRef,
    /// The degraded service it calls (the incident's root cause).
    pub upstream: ObjectRef,
    pub incident: String,
    pub recommendation: String,
    /// Seconds until the upstream is expected back, from the plan's
    /// verification windows; None when no plan runs.
    pub expected_recovery_s: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EscalateError {
    /// Worth retrying: the sink is down, slow or rate-limiting.
    #[error("{channel} unavailable: {reason}")]
    Unavailable { channel: String, reason: String },
    /// Retrying cannot help (bad credentials, unknown channel, a payload
    /// the sink refuses): the message is set aside, not retried forever.
    #[error("{channel} rejected the message: {reason}")]
    Rejected { channel: String, reason: String },
}

#[async_trait]
pub trait Escalator: Send + Sync {
    /// The channel name shown in reports (`nats`, `slack`, `log`).
    fn channel(&self) -> &str;
    async fn escalate(&self, escalation: &Escalation) -> Result<(), EscalateError>;
    async fn notify(&self, notification: &Notification) -> Result<(), EscalateError>;
    async fn warn(&self, warning: &ServiceWarning) -> Result<(), EscalateError>;
}

/// Keeps every message in memory and logs it: replay's escalator, and the
/// fallback when no channel is configured.
#[derive(Default)]
pub struct MemoryEscalator {
    sent: Mutex<(Vec<Escalation>, Vec<Notification>)>,
    warnings: Mutex<Vec<ServiceWarning>>,
}

impl MemoryEscalator {
    pub fn escalations(&self) -> Vec<Escalation> {
        self.sent.lock().map(|s| s.0.clone()).unwrap_or_default()
    }

    pub fn notifications(&self) -> Vec<Notification> {
        self.sent.lock().map(|s| s.1.clone()).unwrap_or_default()
    }

    pub fn warnings(&self) -> Vec<ServiceWarning> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Escalator for MemoryEscalator {
    fn channel(&self) -> &str {
        "log"
    }

    async fn escalate(&self, e: &Escalation) -> Result<(), EscalateError> {
        tracing::debug!(incident = %e.incident, reason = %e.reason, "escalated to people");
        if let Ok(mut s) = self.sent.lock() {
            s.0.push(e.clone());
        }
        Ok(())
    }

    async fn notify(&self, n: &Notification) -> Result<(), EscalateError> {
        tracing::debug!(incident = %n.incident, "{}", n.text);
        if let Ok(mut s) = self.sent.lock() {
            s.1.push(n.clone());
        }
        Ok(())
    }

    async fn warn(&self, w: &ServiceWarning) -> Result<(), EscalateError> {
        tracing::debug!(incident = %w.incident, service = %w.service, "{}", w.recommendation);
        if let Ok(mut ws) = self.warnings.lock() {
            ws.push(w.clone());
        }
        Ok(())
    }
}
