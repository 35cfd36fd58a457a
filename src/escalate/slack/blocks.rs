//! Block Kit messages: what an incident looks like in Slack.

use crate::escalate::{Escalation, Notification, ServiceWarning};
use crate::model::Risk;
use serde_json::{Value, json};

fn badge(risk: Risk) -> &'static str {
    match risk {
        Risk::None => ":white_circle: none",
        Risk::Low => ":large_green_circle: low",
        Risk::Medium => ":large_yellow_circle: medium",
        Risk::High => ":red_circle: high",
        Risk::Critical => ":black_circle: critical",
    }
}

/// Slack's text fields take at most 3000 characters.
fn clip(text: &str) -> String {
    if text.chars().count() <= 2900 {
        return text.to_string();
    }
    let cut: String = text.chars().take(2900).collect();
    format!("{cut}…")
}

pub fn header_text(e: &Escalation, resolved: bool) -> String {
    let root = e
        .root_cause
        .as_ref()
        .map_or("unknown root cause".into(), ToString::to_string);
    let mark = if resolved {
        ":white_check_mark: Resolved"
    } else {
        ":rotating_light: Needs a person"
    };
    let text = format!("{mark} [{}] {}: {root}", e.severity, e.incident);
    // Header blocks take at most 150 characters.
    text.chars().take(150).collect()
}

/// The escalation: summary, root cause, evidence, the plan with risk badges,
/// why medic stopped, and Approve/Deny when a person's answer resumes it.
pub fn escalation(e: &Escalation, buttons: bool, resolved: bool) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header_text(e, resolved)}
    })];
    if !e.summary.is_empty() {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&e.summary)}}));
    }
    let mut facts = vec![format!(
        "*Root cause:* {}",
        e.root_cause
            .as_ref()
            .map_or("unknown".into(), |r| format!("`{r}`"))
    )];
    if let Some(d) = &e.diagnosis {
        facts.push(format!(
            "*Diagnosis:* {} ({}, confidence {:.2})",
            d.category, d.source, d.confidence
        ));
    }
    blocks.push(
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&facts.join("\n"))}}),
    );
    if let Some(d) = &e.diagnosis
        && !d.evidence.is_empty()
    {
        let evidence: Vec<String> = d
            .evidence
            .iter()
            .take(8)
            .map(|x| format!("• {x}"))
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": clip(&format!("*Evidence*\n{}", evidence.join("\n")))}}));
    }
    if !e.plan.is_empty() {
        let lines: Vec<String> = e
            .plan
            .iter()
            .map(|l| {
                let stop = if Some(l.index) == e.stopped_at_step {
                    "  ← stopped here"
                } else {
                    ""
                };
                match &l.target {
                    Some(t) => format!("{}. `{}` {t}  {}{stop}", l.index, l.action, badge(l.risk)),
                    None => format!("{}. `{}`  {}{stop}", l.index, l.action, badge(l.risk)),
                }
            })
            .collect();
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!(
                "*Plan* ({})\n{}",
                e.playbook.as_deref().unwrap_or("no playbook"),
                lines.join("\n")
            ))}}),
        );
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": clip(&format!("*Why medic stopped:* {}", e.reason))}]}));
    if let Some(record) = e.approval.as_ref().and_then(|a| a.record.as_ref()) {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": clip(&format!("*This step's record:* {record}"))}]}));
    }
    if buttons
        && !resolved
        && let Some(a) = &e.approval
    {
        let value = format!("{}|{}|{}", e.incident, a.step, a.plan_digest);
        blocks.push(json!({"type": "actions", "block_id": format!("medic-approval-{}", a.key), "elements": [
            {"type": "button", "action_id": "medic_approve", "style": "primary",
             "text": {"type": "plain_text", "text": format!("Approve step {}", a.step)}, "value": value},
            {"type": "button", "action_id": "medic_deny", "style": "danger",
             "text": {"type": "plain_text", "text": "Deny"}, "value": value}
        ]}));
    }
    Value::Array(blocks)
}

/// The plain-text fallback Slack shows in notifications.
pub fn escalation_text(e: &Escalation) -> String {
    clip(&format!("{}: {}", header_text(e, false), e.reason))
}

pub fn event(n: &Notification) -> Value {
    json!([{"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!("*{}* {}", n.kind, n.text))}}])
}

pub fn warning(w: &ServiceWarning) -> Value {
    json!([{"type": "section", "text": {"type": "mrkdwn", "text": clip(&format!(
        ":warning: *{}*: upstream `{}` is degraded. {}",
        w.service, w.upstream, w.recommendation
    ))}}])
}
