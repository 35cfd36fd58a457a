//! The incident timeline: what medic saw, decided and did, in order.

use crate::model::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Detect,
    Open,
    Diagnose,
    Plan,
    Skip,
    Execute,
    Verify,
    Rollback,
    Escalate,
    /// A person's answer to an approval request.
    Answer,
    Notify,
    Clear,
    Resolve,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Detect => "DETECT",
            Stage::Open => "OPEN",
            Stage::Diagnose => "DIAGNOSE",
            Stage::Plan => "PLAN",
            Stage::Skip => "SKIP",
            Stage::Execute => "EXECUTE",
            Stage::Verify => "VERIFY",
            Stage::Rollback => "ROLLBACK",
            Stage::Escalate => "ESCALATE",
            Stage::Answer => "ANSWER",
            Stage::Notify => "NOTIFY",
            Stage::Clear => "CLEAR",
            Stage::Resolve => "RESOLVE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TimelineEntry {
    pub at: Timestamp,
    pub stage: Stage,
    pub text: String,
}
