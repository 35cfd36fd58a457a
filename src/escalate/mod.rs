//! Escalation: handing an incident to people, with the plan and the reason
//! medic stopped. The `Escalator` port publishes; adapters (NATS, Slack)
//! slot in behind it. `MemoryEscalator` keeps what was sent, for replay.

use crate::model::{ObjectRef, Risk, Severity, Timestamp};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Mutex;

/// A planned step as people see it in an escalation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanLine {
    pub index: usize,
    pub action: String,
    pub target: Option<ObjectRef>,
    pub risk: Risk,
}

/// What is sent to people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub incident: String,
    pub severity: Severity,
    pub at: Timestamp,
    pub reason: String,
    pub root_cause: Option<ObjectRef>,
    pub summary: String,
    pub playbook: Option<String>,
    pub plan: Vec<PlanLine>,
    /// The step medic stopped at, waiting for approval, if any.
    pub stopped_at_step: Option<usize>,
}

/// What the incident keeps of an escalation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EscalationRecord {
    pub at: Timestamp,
    pub reason: String,
    pub channel: String,
    pub delivered: bool,
}

/// A note to people that needs no answer (medic acted, an incident resolved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub incident: String,
    pub at: Timestamp,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EscalateError {
    #[error("{channel} unavailable: {reason}")]
    Unavailable { channel: String, reason: String },
}

#[async_trait]
pub trait Escalator: Send + Sync {
    /// The channel name shown in reports (`nats`, `slack`, `log`).
    fn channel(&self) -> &str;
    async fn escalate(&self, escalation: &Escalation) -> Result<(), EscalateError>;
    async fn notify(&self, notification: &Notification) -> Result<(), EscalateError>;
}

/// Keeps every message in memory and logs it: replay's escalator, and the
/// fallback when no channel is configured.
#[derive(Default)]
pub struct MemoryEscalator {
    sent: Mutex<(Vec<Escalation>, Vec<Notification>)>,
}

impl MemoryEscalator {
    pub fn escalations(&self) -> Vec<Escalation> {
        self.sent.lock().map(|s| s.0.clone()).unwrap_or_default()
    }

    pub fn notifications(&self) -> Vec<Notification> {
        self.sent.lock().map(|s| s.1.clone()).unwrap_or_default()
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
}
