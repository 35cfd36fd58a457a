//! Approvals: a step medic would not run on its own waits for a person.
//! The record says exactly which plan it approves, who may answer and when
//! it expires; an expired request counts as denied. Stores keep records
//! and answer with compare-and-set, so two people answering at once, or an
//! answer racing a new request, cannot both win.

use super::PlanLine;
use crate::model::{Risk, Secs, Timestamp};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no approval is pending for incident {incident} step {step}")]
    NotFound { incident: String, step: usize },
    #[error("already {verdict} by {by}")]
    AlreadyAnswered { verdict: String, by: String },
    #[error("the request expired at {0} (expired means denied)")]
    Expired(Timestamp),
    #[error("{0} may not answer this request (approvers: {1})")]
    NotAllowed(String, String),
    #[error(
        "nobody may answer: approvals.approvers is empty (name who may approve, or set approvals.allowAnyone: true)"
    )]
    NoApprovers,
    #[error("the plan changed since this approval was asked (asked for {asked}, now {now})")]
    PlanChanged { asked: String, now: String },
    #[error("someone else answered or the request changed meanwhile; read it again")]
    Conflict,
    #[error("approval store unavailable: {0}")]
    Unavailable(String),
}

/// `approvals` in medic.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// How long a request waits for an answer; then it is denied.
    pub ttl: Secs,
    /// Who may answer (CLI/API user names, Slack user ids). Empty: nobody,
    /// unless `allowAnyone` is set.
    pub approvers: Vec<String>,
    /// With no `approvers`, let anyone who can reach an approval channel
    /// (the API token, the NATS bucket, Slack's signing secret) answer.
    pub allow_anyone: bool,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig {
            ttl: Secs(3600),
            approvers: Vec::new(),
            allow_anyone: false,
        }
    }
}

/// An answer from a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub approved: bool,
    pub by: String,
    pub at: Timestamp,
    /// `cli`, `api`, `slack`, `nats`, `fixture`.
    pub via: String,
}

/// One pending (or answered) approval, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub incident: String,
    /// The index of the step in its playbook.
    pub step: usize,
    pub playbook: String,
    pub action: String,
    pub target: Option<String>,
    pub risk: Risk,
    /// The whole plan, as people were shown it.
    pub plan: Vec<PlanLine>,
    pub plan_digest: String,
    pub approvers: Vec<String>,
    /// `approvals.allowAnyone` when the request was made; records written
    /// before it existed read as false, so they fail closed.
    #[serde(default)]
    pub allow_anyone: bool,
    pub requested_at: Timestamp,
    pub expires_at: Timestamp,
    pub answer: Option<Answer>,
    /// The step's track record when it was asked (`medic trust`), so the
    /// person answering sees how it has done before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Approved(Answer),
    Denied(Answer),
    Expired(Timestamp),
}

impl ApprovalRecord {
    /// The store key: `<incident>.<step>`.
    pub fn key(&self) -> String {
        approval_key(&self.incident, self.step)
    }

    pub fn verdict(&self, now: Timestamp) -> Verdict {
        match &self.answer {
            Some(a) if a.approved => Verdict::Approved(a.clone()),
            Some(a) => Verdict::Denied(a.clone()),
            None if now >= self.expires_at => Verdict::Expired(self.expires_at),
            None => Verdict::Pending,
        }
    }

    /// Records `answer` if it may be given now. `seen_digest` is the plan
    /// the person was shown, when the channel knows it.
    pub fn apply(
        &mut self,
        answer: Answer,
        seen_digest: Option<&str>,
    ) -> Result<(), ApprovalError> {
        if let Some(a) = &self.answer {
            return Err(ApprovalError::AlreadyAnswered {
                verdict: if a.approved { "approved" } else { "denied" }.into(),
                by: a.by.clone(),
            });
        }
        if answer.at >= self.expires_at {
            return Err(ApprovalError::Expired(self.expires_at));
        }
        // Slack's channel checks its own list (`slack.approvers`, groups)
        // before an answer gets here, and refuses everyone when it is empty.
        if self.approvers.is_empty() && !self.allow_anyone && answer.via != "slack" {
            return Err(ApprovalError::NoApprovers);
        }
        if !self.approvers.is_empty() && !self.approvers.contains(&answer.by) {
            return Err(ApprovalError::NotAllowed(
                answer.by,
                self.approvers.join(", "),
            ));
        }
        if let Some(seen) = seen_digest
            && seen != self.plan_digest
        {
            return Err(ApprovalError::PlanChanged {
                asked: seen.to_string(),
                now: self.plan_digest.clone(),
            });
        }
        self.answer = Some(answer);
        Ok(())
    }
}

/// A key valid in a NATS KV bucket and readable by people.
pub fn approval_key(incident: &str, step: usize) -> String {
    let incident: String = incident
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{incident}.{step}")
}

/// A short, stable digest of a plan: playbook and each step's action,
/// target and risk. Any change to what would run changes it.
pub fn plan_digest(playbook: &str, plan: &[PlanLine]) -> String {
    let mut h = Sha256::new();
    h.update(playbook.as_bytes());
    for line in plan {
        h.update(
            format!(
                "\n{}|{}|{}|{}",
                line.index,
                line.action,
                line.target
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                line.risk
            )
            .as_bytes(),
        );
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where approval records live: NATS KV in a cluster, memory in replay.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Stores a new request, replacing any earlier one for the same step.
    async fn request(&self, record: &ApprovalRecord) -> Result<(), ApprovalError>;

    async fn get(
        &self,
        incident: &str,
        step: usize,
    ) -> Result<Option<ApprovalRecord>, ApprovalError>;

    /// Answers a pending request, atomically.
    async fn answer(
        &self,
        incident: &str,
        step: usize,
        answer: Answer,
        seen_digest: Option<&str>,
    ) -> Result<ApprovalRecord, ApprovalError>;

    /// Requests still waiting, oldest first.
    async fn pending(&self, now: Timestamp) -> Result<Vec<ApprovalRecord>, ApprovalError>;

    /// A number that changes whenever any record is stored or answered. The
    /// engine reads it once a tick, so a run waiting on an unchanged store
    /// need not read its own record again (one request a tick, not one per
    /// waiting incident).
    async fn generation(&self) -> Result<u64, ApprovalError>;
}

/// Records in memory: replay's store, and `medic run` without NATS (the
/// HTTP API answers into it).
#[derive(Default)]
pub struct MemoryApprovals {
    records: Mutex<BTreeMap<String, ApprovalRecord>>,
    /// Bumped under the records' lock by every write.
    generation: AtomicU64,
}

impl MemoryApprovals {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ApprovalRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ApprovalStore for MemoryApprovals {
    async fn request(&self, record: &ApprovalRecord) -> Result<(), ApprovalError> {
        let mut records = self.lock();
        records.insert(record.key(), record.clone());
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn get(
        &self,
        incident: &str,
        step: usize,
    ) -> Result<Option<ApprovalRecord>, ApprovalError> {
        Ok(self.lock().get(&approval_key(incident, step)).cloned())
    }

    async fn answer(
        &self,
        incident: &str,
        step: usize,
        answer: Answer,
        seen_digest: Option<&str>,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let mut records = self.lock();
        let record = records
            .get_mut(&approval_key(incident, step))
            .ok_or_else(|| ApprovalError::NotFound {
                incident: incident.into(),
                step,
            })?;
        record.apply(answer, seen_digest)?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(record.clone())
    }

    async fn pending(&self, now: Timestamp) -> Result<Vec<ApprovalRecord>, ApprovalError> {
        let mut out: Vec<ApprovalRecord> = self
            .lock()
            .values()
            .filter(|r| r.verdict(now) == Verdict::Pending)
            .cloned()
            .collect();
        out.sort_by_key(|r| r.requested_at);
        Ok(out)
    }

    async fn generation(&self) -> Result<u64, ApprovalError> {
        Ok(self.generation.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(approvers: &[&str]) -> ApprovalRecord {
        let plan = vec![PlanLine {
            index: 1,
            action: "drain_node".into(),
            target: Some("Node/worker-1".parse().unwrap()),
            risk: Risk::High,
        }];
        ApprovalRecord {
            incident: "inc-1".into(),
            step: 1,
            playbook: "memory-pressure-node".into(),
            action: "drain_node".into(),
            target: Some("Node/worker-1".into()),
            risk: Risk::High,
            plan_digest: plan_digest("memory-pressure-node", &plan),
            plan,
            approvers: approvers.iter().map(|s| s.to_string()).collect(),
            allow_anyone: approvers.is_empty(),
            requested_at: 100,
            expires_at: 200,
            answer: None,
            record: None,
        }
    }

    fn answer(by: &str, approved: bool, at: Timestamp) -> Answer {
        Answer {
            approved,
            by: by.into(),
            at,
            via: "cli".into(),
        }
    }

    #[test]
    fn pending_until_answered_and_expired_means_denied() {
        let r = record(&[]);
        assert_eq!(r.verdict(150), Verdict::Pending);
        assert_eq!(r.verdict(200), Verdict::Expired(200));
        let mut late = r.clone();
        assert_eq!(
            late.apply(answer("alice", true, 200), None),
            Err(ApprovalError::Expired(200))
        );
    }

    #[test]
    fn only_listed_approvers_answer_and_only_once() {
        let mut r = record(&["alice"]);
        assert!(matches!(
            r.apply(answer("mallory", true, 150), None),
            Err(ApprovalError::NotAllowed(..))
        ));
        r.apply(answer("alice", false, 150), None).unwrap();
        assert_eq!(r.verdict(160), Verdict::Denied(answer("alice", false, 150)));
        assert_eq!(
            r.apply(answer("alice", true, 160), None),
            Err(ApprovalError::AlreadyAnswered {
                verdict: "denied".into(),
                by: "alice".into()
            })
        );
    }

    #[test]
    fn no_approvers_means_nobody_unless_anyone_is_allowed() {
        let mut r = record(&[]);
        r.allow_anyone = false;
        assert_eq!(
            r.apply(answer("alice", true, 150), None),
            Err(ApprovalError::NoApprovers)
        );
        assert_eq!(r.verdict(160), Verdict::Pending);
        r.allow_anyone = true;
        r.apply(answer("alice", true, 150), None).unwrap();
        // A record written before allowAnyone existed fails closed.
        let mut old = serde_json::to_value(record(&[])).unwrap();
        old.as_object_mut().unwrap().remove("allow_anyone");
        let old: ApprovalRecord = serde_json::from_value(old).unwrap();
        assert!(!old.allow_anyone);
    }

    #[test]
    fn an_answer_for_another_plan_is_refused() {
        let mut r = record(&[]);
        let err = r
            .apply(answer("alice", true, 150), Some("0000"))
            .unwrap_err();
        assert!(matches!(err, ApprovalError::PlanChanged { .. }));
        let digest = r.plan_digest.clone();
        r.apply(answer("alice", true, 150), Some(&digest)).unwrap();
    }

    #[test]
    fn the_digest_changes_with_any_step() {
        let r = record(&[]);
        let mut other = r.plan.clone();
        other[0].risk = Risk::Medium;
        assert_ne!(r.plan_digest, plan_digest(&r.playbook, &other));
        assert_eq!(r.plan_digest, plan_digest(&r.playbook, &r.plan));
        assert_eq!(r.plan_digest.len(), 16);
    }

    #[test]
    fn keys_are_valid_kv_keys() {
        assert_eq!(approval_key("inc/7 x", 2), "inc_7_x.2");
    }
}
