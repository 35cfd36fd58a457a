//! POST /api/v1/incidents/{id}/approve|deny: people answer an approval
//! request over HTTP (the `medic approve|deny` CLI uses this too). A
//! bearer token guards it; the answer lands in the same approval store the
//! executor reads, exactly as a Slack button or a NATS KV write does.

use super::auth::Gate;
use crate::escalate::{Answer, ApprovalError, ApprovalStore};
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
    /// Who may answer, pause and read incidents over HTTP (`api.tokenFile`).
    pub gate: Gate,
    /// The pause switch people flip over the API; the loop reads it each cycle.
    pub paused: Arc<std::sync::atomic::AtomicBool>,
}

/// The answer refusing a request `gate` does not let through (counted in
/// `medic_http_refused_total` by `endpoint`); None lets it through.
pub fn refusal(gate: &Gate, headers: &HeaderMap, endpoint: &'static str) -> Option<Response> {
    gate.check(headers).err().map(|refusal| {
        crate::telemetry::metrics()
            .http_refused
            .get_or_create(&crate::telemetry::EndpointLabels { endpoint })
            .inc();
        tracing::warn!(endpoint, status = %refusal.status, "request refused: {}", refusal.reason);
        (refusal.status, refusal.reason).into_response()
    })
}

/// POST /api/v1/pause|resume: stops (or allows again) new actions on this
/// replica and, through the loop, in the engine. Planning and escalation
/// go on.
pub fn set_paused(desk: &AnswerDesk, headers: &HeaderMap, paused: bool) -> Response {
    if let Some(refused) = refusal(&desk.gate, headers, "pause") {
        return refused;
    }
    desk.paused
        .store(paused, std::sync::atomic::Ordering::SeqCst);
    tracing::warn!(paused, "pause switch set over the API");
    Json(serde_json::json!({"paused": paused})).into_response()
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
    if let Some(refused) = refusal(&desk.gate, headers, "answer") {
        return refused;
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
                ApprovalError::NotAllowed(..) | ApprovalError::NoApprovers => StatusCode::FORBIDDEN,
                ApprovalError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            refuse(status, e.to_string())
        }
    }
}
