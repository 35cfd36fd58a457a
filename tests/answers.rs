//! Answering approvals over HTTP: the API's checks (token, leader, who may
//! answer, the plan shown) and `medic approve|deny` talking to it, with the
//! answer landing in the store the executor reads.

use medic::escalate::{
    ApprovalRecord, ApprovalStore, MemoryApprovals, PlanLine, Verdict, plan_digest,
};
use medic::model::{ObjectRef, Risk};
use medic::run::{AnswerDesk, Credential, Gate, SecretFile, Shared, Status, router};
use std::process::Command;
use std::sync::{Arc, RwLock};

const TOKEN: &str = "t0ken-for-tests";

fn record(incident: &str, step: usize) -> ApprovalRecord {
    let plan = vec![PlanLine {
        index: step,
        action: "rollout_undo".into(),
        target: Some(ObjectRef::namespaced("Deployment", "shop", "checkout")),
        risk: Risk::Medium,
    }];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    ApprovalRecord {
        incident: incident.into(),
        step,
        playbook: "pod-crash-loop".into(),
        action: "rollout_undo".into(),
        target: Some("Deployment/shop/checkout".into()),
        risk: Risk::Medium,
        plan_digest: plan_digest("pod-crash-loop", &plan),
        plan,
        approvers: vec!["alice".into(), "bob".into()],
        allow_anyone: false,
        requested_at: now,
        expires_at: now + 3600,
        answer: None,
        record: None,
    }
}

/// A gate letting in `token`, read from a file as `medic run` reads it.
fn token_gate(token: &str) -> Gate {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("api-token");
    std::fs::write(&path, token).unwrap();
    Gate::new(
        vec![Credential::Bearer(SecretFile::open(path).unwrap())],
        "",
    )
}

/// A medic API on loopback over `store`; `leader` as the loop last saw it.
async fn serve(store: Arc<MemoryApprovals>, leader: Option<bool>) -> String {
    serve_with(store, leader, Default::default()).await
}

async fn serve_with(
    store: Arc<MemoryApprovals>,
    leader: Option<bool>,
    paused: Arc<std::sync::atomic::AtomicBool>,
) -> String {
    let shared: Shared = Arc::new(RwLock::new(Status {
        leader,
        ..Status::default()
    }));
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let desk = AnswerDesk {
        approvals: store,
        gate: token_gate(TOKEN),
        paused,
    };
    let app = router(shared, tx, desk, None, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Keep the channel's receiver alive for the server's lifetime.
    std::mem::forget(_rx);
    format!("http://{addr}")
}

async fn post(url: &str, token: Option<&str>, body: serde_json::Value) -> (u16, String) {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_api_checks_the_token_the_leader_the_person_and_the_plan() {
    let store = Arc::new(MemoryApprovals::default());
    store.request(&record("inc-1", 2)).await.unwrap();
    let base = serve(store.clone(), Some(true)).await;
    let url = format!("{base}/api/v1/incidents/inc-1/approve");
    let alice = serde_json::json!({"by": "alice"});

    assert_eq!(post(&url, None, alice.clone()).await.0, 401);
    assert_eq!(post(&url, Some("wrong"), alice.clone()).await.0, 401);
    let (code, text) = post(&url, Some(TOKEN), serde_json::json!({"by": "mallory"})).await;
    assert_eq!(
        (code, text.contains("mallory may not answer")),
        (403, true),
        "{text}"
    );
    let (code, text) = post(
        &url,
        Some(TOKEN),
        serde_json::json!({"by": "alice", "plan_digest": "0123456789abcdef"}),
    )
    .await;
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("plan changed"), "{text}");
    assert_eq!(
        post(
            &format!("{base}/api/v1/incidents/inc-9/approve"),
            Some(TOKEN),
            alice.clone()
        )
        .await
        .0,
        404
    );
    assert_eq!(
        post(&url, Some(TOKEN), serde_json::json!({"by": 1}))
            .await
            .0,
        422
    );

    let (code, text) = post(&url, Some(TOKEN), alice.clone()).await;
    assert_eq!(code, 200, "{text}");
    let answered: ApprovalRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(answered.answer.as_ref().unwrap().by, "alice");
    assert_eq!(answered.answer.as_ref().unwrap().via, "api");
    let (code, text) = post(
        &format!("{base}/api/v1/incidents/inc-1/deny"),
        Some(TOKEN),
        serde_json::json!({"by": "bob", "step": 2}),
    )
    .await;
    assert_eq!(code, 409, "answered once: {text}");
    assert!(text.contains("already approved by alice"), "{text}");
    let stored = store.get("inc-1", 2).await.unwrap().unwrap();
    assert!(
        matches!(stored.verdict(stored.requested_at + 1), Verdict::Approved(a) if a.by == "alice")
    );
}

#[tokio::test]
async fn a_follower_sends_people_to_the_leader() {
    let store = Arc::new(MemoryApprovals::default());
    store.request(&record("inc-1", 2)).await.unwrap();
    let base = serve(store.clone(), Some(false)).await;
    let (code, text) = post(
        &format!("{base}/api/v1/incidents/inc-1/approve"),
        Some(TOKEN),
        serde_json::json!({"by": "alice"}),
    )
    .await;
    assert_eq!(code, 503);
    assert!(text.contains("medic-webhook"), "{text}");
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

fn medic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_medic"))
        .args(args)
        .env("MEDIC_API_TOKEN", TOKEN)
        .output()
        .unwrap()
}

#[tokio::test]
async fn medic_approve_and_deny_answer_through_the_api() {
    let store = Arc::new(MemoryApprovals::default());
    store.request(&record("inc-1", 2)).await.unwrap();
    store.request(&record("inc-2", 3)).await.unwrap();
    let base = serve(store.clone(), None).await;

    let out = tokio::task::spawn_blocking({
        let base = base.clone();
        move || medic(&["approve", "inc-1", "--as", "alice", "--server", &base])
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed
            .starts_with("approved step 2 rollout_undo Deployment/shop/checkout of incident inc-1"),
        "{printed}"
    );

    let out = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            medic(&[
                "deny", "inc-2", "--step", "3", "--as", "bob", "--server", &base,
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let denied = store.get("inc-2", 3).await.unwrap().unwrap();
    assert!(matches!(denied.verdict(denied.requested_at + 1), Verdict::Denied(a) if a.by == "bob"));

    // A second answer is refused with the reason, and exits 2.
    let out = tokio::task::spawn_blocking(move || {
        medic(&["deny", "inc-1", "--as", "bob", "--server", &base])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing of incident inc-1 waits for approval"),
        "{err}"
    );
}

#[tokio::test]
async fn the_pause_switch_needs_the_token_and_flips_the_flag_the_loop_reads() {
    use std::sync::atomic::Ordering;
    let flag: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let base = serve_with(Arc::default(), None, flag.clone()).await;
    let pause = format!("{base}/api/v1/pause");
    assert_eq!(
        post(&pause, Some("nope"), serde_json::json!({})).await.0,
        401
    );
    assert!(!flag.load(Ordering::SeqCst));
    let (code, text) = post(&pause, Some(TOKEN), serde_json::json!({})).await;
    assert_eq!((code, text.as_str()), (200, r#"{"paused":true}"#));
    assert!(flag.load(Ordering::SeqCst));
    post(
        &format!("{base}/api/v1/resume"),
        Some(TOKEN),
        serde_json::json!({}),
    )
    .await;
    assert!(!flag.load(Ordering::SeqCst));
}

#[tokio::test]
async fn the_trust_table_needs_the_token_and_is_what_medic_trust_prints() {
    let mut ledger = medic::trust::Ledger::default();
    ledger.add(medic::trust::LedgerEntry {
        at: 100,
        key: medic::trust::StepKey {
            playbook: "cpu-throttling".into(),
            step: 2,
            action: medic::act::Action::Scale,
            target_kind: "Deployment".into(),
        },
        event: medic::trust::Event::Denied,
        incident: "inc-1".into(),
        by: Some("bob".into()),
        digest: None,
    });
    let earn = medic::trust::Earn::default();
    let shared: Shared = Arc::new(RwLock::new(Status {
        trust: medic::trust::rows(&ledger, Some(&earn), 200),
        ..Status::default()
    }));
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let desk = AnswerDesk {
        approvals: Arc::new(MemoryApprovals::default()),
        gate: token_gate(TOKEN),
        paused: Default::default(),
    };
    let app = router(shared, tx, desk, None, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/api/v1/trust");
    let client = reqwest::Client::new();
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "no token, no record");
    let r = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rows: serde_json::Value = r.json().await.unwrap();
    assert_eq!(rows[0]["playbook"], "cpu-throttling");
    assert_eq!(rows[0]["denied"], 1);
    assert_eq!(rows[0]["standing"], "demoted");
    assert_eq!(rows[0]["reason"], "denied by bob in inc-1");
}
