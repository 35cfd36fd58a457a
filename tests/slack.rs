//! Slack against a loopback fake of its Web API that records every call:
//! the exact methods, tokens and Block Kit payloads, threads, the header
//! edit on resolution, Retry-After, permanent errors, the rate-limit digest,
//! the incoming-webhook mode, and the signed interactions endpoint.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use medic::escalate::slack::{GroupLookup, sign};
use medic::escalate::{
    ApprovalAsk, ApprovalRecord, ApprovalStore, EscalateError, Escalation, MemoryApprovals,
    Message, Notification, Outbox, PlanLine, Sink, SlackConfig, SlackSink, plan_digest,
};
use medic::model::{ObjectRef, Risk, Secs, Severity};
use medic::run::{AnswerDesk, Shared, SlackDesk, Status, router};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

#[derive(Default)]
struct FakeSlack {
    /// (path, authorization, body, when)
    calls: Vec<(String, String, Value, Instant)>,
    /// Answers to give first, before the default `ok`.
    scripted: Vec<(u16, Value)>,
    next_ts: u32,
}

type Fake = Arc<Mutex<FakeSlack>>;

async fn api(
    axum::extract::State(fake): axum::extract::State<Fake>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut f = fake.lock().unwrap();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if uri.path() == "/usergroups.users.list" {
        let members = if uri.query() == Some("usergroup=S0SRE") {
            json!(["U0CAROL", "U0DAVE"])
        } else {
            json!([])
        };
        f.calls
            .push((uri.to_string(), auth, Value::Null, Instant::now()));
        return axum::Json(json!({"ok": true, "users": members})).into_response();
    }
    f.calls
        .push((uri.path().to_string(), auth, body, Instant::now()));
    if !f.scripted.is_empty() {
        let (code, reply) = f.scripted.remove(0);
        let mut r = (StatusCode::from_u16(code).unwrap(), axum::Json(reply)).into_response();
        if code == 429 {
            r.headers_mut().insert("retry-after", "1".parse().unwrap());
        }
        return r;
    }
    f.next_ts += 1;
    let ts = format!("1700000000.{:06}", f.next_ts);
    axum::Json(json!({"ok": true, "channel": "C0MEDIC", "ts": ts})).into_response()
}

async fn fake_slack() -> (Fake, String) {
    let fake: Fake = Arc::default();
    let app = Router::new().fallback(api).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}"))
}

fn bot_config(dir: &std::path::Path, api: &str) -> SlackConfig {
    let token = dir.join("token");
    std::fs::write(&token, "xoxb-test-token\n").unwrap();
    SlackConfig {
        bot_token_file: Some(token.display().to_string()),
        channel: "C0MEDIC".into(),
        api_url: api.into(),
        ..SlackConfig::default()
    }
}

fn plan() -> Vec<PlanLine> {
    vec![
        PlanLine {
            index: 1,
            action: "capture_logs".into(),
            target: Some(ObjectRef::namespaced("Pod", "shop", "checkout-1")),
            risk: Risk::None,
        },
        PlanLine {
            index: 2,
            action: "rollout_undo".into(),
            target: Some(ObjectRef::namespaced("Deployment", "shop", "checkout")),
            risk: Risk::Medium,
        },
    ]
}

fn escalation(incident: &str) -> Escalation {
    let digest = plan_digest("pod-crash-loop", &plan());
    Escalation {
        id: format!("{incident}-esc-1"),
        incident: incident.into(),
        severity: Severity::High,
        at: 1_700_000_000,
        reason: "risk above bound: step 2 (rollout_undo) is medium risk, autonomy allows up to low"
            .into(),
        root_cause: Some(ObjectRef::namespaced("Deployment", "shop", "checkout")),
        summary: "checkout crash-loops since its deploy 20m ago".into(),
        playbook: Some("pod-crash-loop".into()),
        plan: plan(),
        stopped_at_step: Some(2),
        diagnosis: None,
        approval: Some(ApprovalAsk {
            key: format!("{incident}.2"),
            step: 2,
            plan_digest: digest,
            expires_at: 1_700_003_600,
            approvers: vec![],
            record: Some("approved 1, denied 0, ran 1, verified 1, failed 0, rolled back 0; asks until earned".into()),
        }),
    }
}

fn event(incident: &str, kind: &str, text: &str) -> Message {
    Message::Event(Notification {
        id: format!("{incident}-ev-{kind}"),
        incident: incident.into(),
        at: 1_700_000_000,
        kind: kind.into(),
        text: text.into(),
    })
}

fn calls(fake: &Fake) -> Vec<(String, String, Value, Instant)> {
    fake.lock().unwrap().calls.clone()
}

#[tokio::test]
async fn one_message_per_incident_with_replies_in_its_thread_and_the_header_edited_on_resolution() {
    let (fake, api) = fake_slack().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = SlackSink::new(&bot_config(dir.path(), &api), dir.path()).unwrap();
    sink.deliver(&event("inc-1", "opened", "incident inc-1 opened (high)"))
        .await
        .unwrap();
    sink.deliver(&Message::Escalation(escalation("inc-1")))
        .await
        .unwrap();
    sink.deliver(&event("inc-1", "resolved", "incident inc-1 resolved"))
        .await
        .unwrap();

    let c = calls(&fake);
    let paths: Vec<&str> = c.iter().map(|(p, ..)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "/chat.postMessage",
            "/chat.postMessage",
            "/chat.postMessage",
            "/chat.update"
        ]
    );
    assert!(
        c.iter()
            .all(|(_, auth, ..)| auth == "Bearer xoxb-test-token")
    );
    let (top, esc, resolved, update) = (&c[0].2, &c[1].2, &c[2].2, &c[3].2);
    assert_eq!(top["channel"], "C0MEDIC");
    assert!(top.get("thread_ts").is_none(), "the incident's own message");
    assert_eq!(esc["thread_ts"], "1700000000.000001");
    assert_eq!(resolved["thread_ts"], "1700000000.000001");

    // The escalation: header, summary, root cause, plan with risk badges, why, buttons.
    let blocks = esc["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        blocks[0]["text"]["text"],
        ":rotating_light: Needs a person [high] inc-1: Deployment/shop/checkout"
    );
    let text = esc["blocks"].to_string();
    assert!(text.contains("2. `rollout_undo` Deployment/shop/checkout  :large_yellow_circle: medium  ← stopped here"), "{text}");
    assert!(
        text.contains("*Why medic stopped:* risk above bound"),
        "{text}"
    );
    // The person asked sees how the step has done before.
    assert!(
        text.contains("*This step's record:* approved 1, denied 0, ran 1, verified 1, failed 0, rolled back 0; asks until earned"),
        "{text}"
    );
    let buttons = &blocks.last().unwrap()["elements"];
    let digest = plan_digest("pod-crash-loop", &plan());
    assert_eq!(buttons[0]["action_id"], "medic_approve");
    assert_eq!(buttons[0]["value"], format!("inc-1|2|{digest}"));
    assert_eq!(buttons[1]["action_id"], "medic_deny");

    // Resolution edits the incident's message: resolved header, no buttons.
    assert_eq!(update["ts"], "1700000000.000001");
    assert_eq!(update["channel"], "C0MEDIC");
    assert!(
        update["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with(":white_check_mark: Resolved [high] inc-1")
    );
    assert!(!update["blocks"].to_string().contains("medic_approve"));

    // A restarted medic still answers in the same thread.
    let again = SlackSink::new(&bot_config(dir.path(), &api), dir.path()).unwrap();
    again
        .deliver(&event("inc-1", "action", "uncordon_node Node/n1: ok"))
        .await
        .unwrap();
    assert_eq!(calls(&fake)[4].2["thread_ts"], "1700000000.000001");
}

#[tokio::test]
async fn a_429_is_retried_after_the_time_slack_asks_for() {
    let (fake, api) = fake_slack().await;
    fake.lock()
        .unwrap()
        .scripted
        .push((429, json!({"ok": false, "error": "ratelimited"})));
    let dir = tempfile::tempdir().unwrap();
    let sink = SlackSink::new(&bot_config(dir.path(), &api), dir.path()).unwrap();
    sink.deliver(&Message::Escalation(escalation("inc-1")))
        .await
        .unwrap();
    let c = calls(&fake);
    assert_eq!(c.len(), 2, "one retry");
    assert_eq!(c[0].2, c[1].2, "the same message again");
    assert!(
        c[1].3.duration_since(c[0].3).as_millis() >= 1000,
        "waited for Retry-After: 1"
    );
}

#[tokio::test]
async fn a_permanent_error_is_set_aside_and_the_queue_goes_on() {
    let (fake, api) = fake_slack().await;
    fake.lock()
        .unwrap()
        .scripted
        .push((200, json!({"ok": false, "error": "channel_not_found"})));
    let dir = tempfile::tempdir().unwrap();
    let sink = SlackSink::new(&bot_config(dir.path(), &api), dir.path()).unwrap();
    let err = sink
        .deliver(&Message::Escalation(escalation("inc-1")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EscalateError::Rejected { ref reason, .. } if reason == "chat.postMessage: channel_not_found"),
        "{err}"
    );

    fake.lock()
        .unwrap()
        .scripted
        .push((200, json!({"ok": false, "error": "channel_not_found"})));
    let outbox_dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(outbox_dir.path(), vec![Arc::new(sink)]).unwrap();
    outbox
        .enqueue(&Message::Escalation(escalation("inc-1")))
        .unwrap();
    outbox
        .enqueue(&event("inc-2", "opened", "incident inc-2 opened"))
        .unwrap();
    assert_eq!(outbox.deliver_pending().await, 0);
    let rejected = std::fs::read_dir(outbox_dir.path().join("slack"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "rejected")
        .count();
    assert_eq!(rejected, 1);
    assert_eq!(
        calls(&fake).last().unwrap().2["text"],
        "incident inc-2 opened"
    );
}

#[tokio::test]
async fn past_the_rate_limit_escalations_are_held_and_posted_as_one_digest() {
    let (fake, api) = fake_slack().await;
    let dir = tempfile::tempdir().unwrap();
    let config = SlackConfig {
        max_messages: 1,
        window: Secs(1),
        ..bot_config(dir.path(), &api)
    };
    let sink = SlackSink::new(&config, dir.path()).unwrap();
    for inc in ["inc-1", "inc-2", "inc-3"] {
        sink.deliver(&Message::Escalation(escalation(inc)))
            .await
            .unwrap();
    }
    assert_eq!(calls(&fake).len(), 1, "inc-2 and inc-3 held");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sink.deliver(&Message::Escalation(escalation("inc-4")))
        .await
        .unwrap();
    let c = calls(&fake);
    assert_eq!(c.len(), 2, "the digest, and inc-4 held for the next one");
    let digest = c[1].2["text"].as_str().unwrap();
    assert!(
        digest.contains("2 more escalation(s) were held back") && digest.contains("inc-2, inc-3"),
        "{digest}"
    );
}

#[tokio::test]
async fn an_incoming_webhook_gets_the_escalation_without_buttons() {
    let (fake, api) = fake_slack().await;
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("webhook");
    std::fs::write(&url, format!("{api}/services/T0/B0/secret")).unwrap();
    let config = SlackConfig {
        webhook_url_file: Some(url.display().to_string()),
        ..SlackConfig::default()
    };
    let sink = SlackSink::new(&config, dir.path()).unwrap();
    sink.deliver(&Message::Escalation(escalation("inc-1")))
        .await
        .unwrap();
    sink.deliver(&event("inc-1", "action", "rollout_undo ok"))
        .await
        .unwrap();
    let c = calls(&fake);
    assert_eq!(
        c.len(),
        1,
        "a webhook gets escalations, openings and resolutions only"
    );
    assert_eq!(c[0].0, "/services/T0/B0/secret");
    assert_eq!(c[0].1, "", "no token");
    assert!(!c[0].2["blocks"].to_string().contains("medic_approve"));
}

// --- POST /slack/interactions ---

const SECRET: &str = "slack-signing-secret";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn interactions_server(store: Arc<MemoryApprovals>) -> String {
    interactions_server_with(store, None).await
}

async fn interactions_server_with(
    store: Arc<MemoryApprovals>,
    groups: Option<(&str, Vec<String>)>,
) -> String {
    let shared: Shared = Arc::new(RwLock::new(Status::default()));
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::mem::forget(rx);
    let desk = AnswerDesk {
        approvals: store.clone(),
        gate: Default::default(),
        paused: Default::default(),
    };
    let (approver_groups, lookup) = match groups {
        Some((api, groups)) => {
            let dir = tempfile::tempdir().unwrap();
            let config = bot_config(dir.path(), api);
            (groups, GroupLookup::new(&config).unwrap())
        }
        None => (vec![], None),
    };
    let slack = SlackDesk {
        signing_secret: SECRET.into(),
        approvers: vec!["U0ALICE".into()],
        approver_groups,
        groups: lookup,
        approvals: store,
    };
    let app = router(shared, tx, desk, Some(slack), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/slack/interactions")
}

fn click(user: &str, action: &str, value: &str) -> String {
    let payload = json!({"type": "block_actions", "user": {"id": user},
        "actions": [{"action_id": action, "value": value}]});
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

async fn send(url: &str, body: &str, ts: i64, signature: Option<String>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .body(body.to_string());
    if let Some(s) = signature {
        req = req.header("x-slack-signature", s);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn pending(incident: &str) -> ApprovalRecord {
    ApprovalRecord {
        incident: incident.into(),
        step: 2,
        playbook: "pod-crash-loop".into(),
        action: "rollout_undo".into(),
        target: Some("Deployment/shop/checkout".into()),
        risk: Risk::Medium,
        plan_digest: plan_digest("pod-crash-loop", &plan()),
        plan: plan(),
        approvers: vec![],
        allow_anyone: false,
        requested_at: now(),
        expires_at: now() + 3600,
        answer: None,
        record: None,
    }
}

#[tokio::test]
async fn only_signed_fresh_clicks_of_allowed_users_answer() {
    let store = Arc::new(MemoryApprovals::default());
    store.request(&pending("inc-1")).await.unwrap();
    let url = interactions_server(store.clone()).await;
    let value = format!("inc-1|2|{}", plan_digest("pod-crash-loop", &plan()));
    let body = click("U0ALICE", "medic_approve", &value);
    let t = now();

    let (code, text) = send(&url, &body, t, None).await;
    assert_eq!(code, 401, "{text}");
    let tampered = click("U0ALICE", "medic_approve", &value.replace("|2|", "|3|"));
    assert_eq!(
        send(&url, &tampered, t, Some(sign(SECRET, t, body.as_bytes())))
            .await
            .0,
        401
    );
    let stale = t - 600;
    let (code, text) = send(
        &url,
        &body,
        stale,
        Some(sign(SECRET, stale, body.as_bytes())),
    )
    .await;
    assert_eq!(code, 401);
    assert!(text.contains("outside the 5 minute window"), "{text}");
    let mallory = click("U0MALLORY", "medic_approve", &value);
    let (code, text) = send(&url, &mallory, t, Some(sign(SECRET, t, mallory.as_bytes()))).await;
    assert_eq!(code, 200);
    assert!(text.contains("may not answer"), "{text}");
    assert!(
        store
            .get("inc-1", 2)
            .await
            .unwrap()
            .unwrap()
            .answer
            .is_none()
    );

    let (code, text) = send(&url, &body, t, Some(sign(SECRET, t, body.as_bytes()))).await;
    assert_eq!(code, 200);
    assert!(
        text.contains("<@U0ALICE> approved step 2 of inc-1"),
        "{text}"
    );
    let answer = store
        .get("inc-1", 2)
        .await
        .unwrap()
        .unwrap()
        .answer
        .unwrap();
    assert_eq!(
        (answer.by.as_str(), answer.via.as_str(), answer.approved),
        ("U0ALICE", "slack", true)
    );
}

#[tokio::test]
async fn a_button_for_a_changed_plan_is_refused() {
    let store = Arc::new(MemoryApprovals::default());
    store.request(&pending("inc-1")).await.unwrap();
    let url = interactions_server(store.clone()).await;
    let body = click("U0ALICE", "medic_deny", "inc-1|2|0000000000000000");
    let t = now();
    let (code, text) = send(&url, &body, t, Some(sign(SECRET, t, body.as_bytes()))).await;
    assert_eq!(code, 200);
    assert!(text.contains("plan changed"), "{text}");
    assert!(
        store
            .get("inc-1", 2)
            .await
            .unwrap()
            .unwrap()
            .answer
            .is_none()
    );
}

#[tokio::test]
async fn members_of_an_approver_group_may_answer() {
    let (fake, api) = fake_slack().await;
    let store = Arc::new(MemoryApprovals::default());
    store.request(&pending("inc-1")).await.unwrap();
    let url = interactions_server_with(store.clone(), Some((&api, vec!["S0SRE".into()]))).await;
    let value = format!("inc-1|2|{}", plan_digest("pod-crash-loop", &plan()));
    let t = now();
    let eve = click("U0EVE", "medic_approve", &value);
    let (_, text) = send(&url, &eve, t, Some(sign(SECRET, t, eve.as_bytes()))).await;
    assert!(text.contains("may not answer"), "{text}");
    let carol = click("U0CAROL", "medic_approve", &value);
    let (code, text) = send(&url, &carol, t, Some(sign(SECRET, t, carol.as_bytes()))).await;
    assert_eq!(code, 200);
    assert!(
        text.contains("<@U0CAROL> approved step 2 of inc-1"),
        "{text}"
    );
    let lookups: Vec<(String, String)> = calls(&fake)
        .into_iter()
        .map(|(path, auth, ..)| (path, auth))
        .collect();
    assert_eq!(
        lookups[0],
        (
            "/usergroups.users.list?usergroup=S0SRE".to_string(),
            "Bearer xoxb-test-token".to_string()
        )
    );
}
