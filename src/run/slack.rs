//! POST /slack/interactions: the Approve and Deny buttons of an escalation.
//! Only requests signed with the app's signing secret within five minutes
//! count, and only the configured Slack users may answer; the answer lands
//! in the same approval store as the CLI's and the API's.

use crate::escalate::slack::{GroupLookup, verify_signature};
use crate::escalate::{Answer, ApprovalStore};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Clone)]
pub struct SlackDesk {
    pub signing_secret: String,
    /// Slack user ids whose answers count.
    pub approvers: Vec<String>,
    /// User groups whose members' answers count, and how to read them.
    pub approver_groups: Vec<String>,
    pub groups: Option<GroupLookup>,
    pub approvals: Arc<dyn ApprovalStore>,
}

/// Slack shows `text` to the person who pressed the button.
fn reply(text: impl Into<String>) -> Response {
    let text = text.into();
    Json(json!({"response_type": "ephemeral", "replace_original": false, "text": text}))
}

#[allow(non_snake_case)]
fn Json(v: Value) -> Response {
    axum::Json(v).into_response()
}

async fn allowed(desk: &SlackDesk, user: &str) -> Result<bool, String> {
    if desk.approvers.iter().any(|a| a == user) {
        return Ok(true);
    }
    let Some(lookup) = &desk.groups else {
        return Ok(false);
    };
    for group in &desk.approver_groups {
        if lookup.members(group).await?.iter().any(|m| m == user) {
            return Ok(true);
        }
    }
    Ok(false)
}

pub async fn interaction(
    desk: &SlackDesk,
    leads: bool,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = verify_signature(
        &desk.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        body,
        now,
    ) {
        tracing::warn!(error = %e, "Slack interaction refused");
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    if !leads {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this replica does not lead: point Slack at the medic-webhook Service",
        )
            .into_response();
    }
    let Some(payload) = form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
    else {
        return (StatusCode::BAD_REQUEST, "no `payload` field").into_response();
    };
    let Ok(payload) = serde_json::from_str::<Value>(&payload) else {
        return (StatusCode::BAD_REQUEST, "`payload` is not JSON").into_response();
    };
    let user = payload["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(action) = payload["actions"].as_array().and_then(|a| a.first()) else {
        return reply("nothing to do");
    };
    let approved = match action["action_id"].as_str() {
        Some("medic_approve") => true,
        Some("medic_deny") => false,
        _ => return reply("not a medic button"),
    };
    match allowed(desk, &user).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(%user, "Slack user not allowed to answer approvals");
            return reply(format!("<@{user}> may not answer medic's approvals"));
        }
        Err(e) => {
            // Fail closed: a membership medic cannot read is no membership.
            tracing::warn!(%user, error = %e, "cannot check the Slack approver groups");
            return reply(format!("cannot check who may answer ({e}); not recorded"));
        }
    }
    let value = action["value"].as_str().unwrap_or_default();
    let parts: Vec<&str> = value.split('|').collect();
    let (incident, step, digest) = match parts.as_slice() {
        [i, s, d] => match s.parse::<usize>() {
            Ok(s) => (*i, s, *d),
            Err(_) => return reply("malformed button"),
        },
        _ => return reply("malformed button"),
    };
    let answer = Answer {
        approved,
        by: user.clone(),
        at: now,
        via: "slack".into(),
    };
    match desk
        .approvals
        .answer(incident, step, answer, Some(digest))
        .await
    {
        Ok(_) => {
            let verb = if approved { "approved" } else { "denied" };
            tracing::info!(incident, step, %user, verb, "approval answered from Slack");
            reply(format!("<@{user}> {verb} step {step} of {incident}"))
        }
        Err(e) => reply(format!("not recorded: {e}")),
    }
}
