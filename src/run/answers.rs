//! POST /api/v1/incidents/{id}/approve|deny: people answer an approval
//! request over HTTP (the `medic approve|deny` CLI uses this too). A
//! bearer token guards it; the answer lands in the same approval store the
//! executor reads, exactly as a Slack button or a NATS KV write does.

use crate::escalate::{Answer, ApprovalError, ApprovalStore};
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The body of an approve or deny request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    /// Who answers; must be one of `approvals.approvers` when that is set.
    pub by: String,
    /// The step; may be left out when only one step of the incident waits.
    #[serde(default)]
    pub step: Option<usize>,
    /// The plan digest the person was shown; refused if the plan changed.
    #[serde(default)]
    pub plan_digest: Option<String>,
}

/// What answering needs from the running medic.
#[derive(Clone)]
pub struct AnswerDesk {
    pub approvals: Arc<dyn ApprovalStore>,
    /// None: approvals (and pause) over HTTP are off.
    pub token: Option<String>,
    /// The pause switch people flip over the API; the loop reads it each cycle.
    pub paused: Arc<std::sync::atomic::AtomicBool>,
}

/// Checks the bearer token; the refusal to send when it does not pass.
pub fn authorize(desk: &AnswerDesk, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
    let Some(expected) = &desk.token else {
        return Err((
            StatusCode::FORBIDDEN,
            "this endpoint is off: set api.tokenFile in medic.yaml",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| token_matches(g, expected)) {
        return Err((StatusCode::UNAUTHORIZED, "missing or wrong bearer token"));
    }
    Ok(())
}

/// POST /api/v1/pause|resume: stops (or allows again) new actions on this
/// replica and, through the loop, in the engine. Planning and escalation
/// go on.
pub fn set_paused(desk: &AnswerDesk, headers: &HeaderMap, paused: bool) -> Response {
    if let Err(refusal) = authorize(desk, headers) {
        return refusal.into_response();
    }
    desk.paused
        .store(paused, std::sync::atomic::Ordering::SeqCst);
    tracing::warn!(paused, "pause switch set over the API");
    Json(serde_json::json!({"paused": paused})).into_response()
}

/// Compares digests of both, so neither content nor length leaks by timing.
fn token_matches(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, reason.into()).into_response()
}

pub async fn answer(
    desk: &AnswerDesk,
    leads: bool,
    headers: &HeaderMap,
    incident: &str,
    approved: bool,
    body: AnswerRequest,
    now: i64,
) -> Response {
    if let Err(refusal) = authorize(desk, headers) {
        return refusal.into_response();
    }
    if !leads {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "this replica does not lead: answer through the medic-webhook Service",
        );
    }
    if body.by.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "`by` must name who answers");
    }
    let step = match body.step {
        Some(s) => s,
        None => {
            let pending = match desk.approvals.pending(now).await {
                Ok(p) => p,
                Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            };
            let steps: Vec<usize> = pending
                .iter()
                .filter(|r| r.incident == incident)
                .map(|r| r.step)
                .collect();
            match steps.as_slice() {
                [one] => *one,
                [] => {
                    return refuse(
                        StatusCode::NOT_FOUND,
                        format!("nothing of incident {incident} waits for approval"),
                    );
                }
                many => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        format!("steps {many:?} wait for approval: say which with `step`"),
                    );
                }
            }
        }
    };
    let answer = Answer {
        approved,
        by: body.by,
        at: now,
        via: "api".into(),
    };
    match desk
        .approvals
        .answer(incident, step, answer, body.plan_digest.as_deref())
        .await
    {
        Ok(record) => {
            tracing::info!(incident, step, approved, by = ?record.answer.as_ref().map(|a| &a.by), "approval answered");
            Json(record).into_response()
        }
        Err(e) => {
            let status = match e {
                ApprovalError::NotFound { .. } => StatusCode::NOT_FOUND,
                ApprovalError::AlreadyAnswered { .. }
                | ApprovalError::PlanChanged { .. }
                | ApprovalError::Conflict => StatusCode::CONFLICT,
                ApprovalError::Expired(_) => StatusCode::GONE,
                ApprovalError::NotAllowed(..) => StatusCode::FORBIDDEN,
                ApprovalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            refuse(status, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_exactly() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("", "s3cret"));
        assert!(!token_matches("s3cret ", "s3cret"));
    }
}
