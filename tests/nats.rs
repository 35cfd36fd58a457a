//! Escalations, events and approvals against a real nats-server with
//! JetStream, started on a free loopback port (scripts/install-deps puts a
//! 2.10 build in .tools/bin). Skips with a message when none is found.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use medic::escalate::{
    Answer, ApprovalError, ApprovalRecord, ApprovalStore, Escalator, Message, NatsApprovals,
    NatsConfig, NatsSink, Notification, Outbox, PlanLine, ServiceWarning, Verdict, connect_nats,
    plan_digest,
};
use medic::model::{ObjectRef, Risk};
use medic::replay::{Loaded, ReplayOptions, replay_loaded};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;
use common::nats::NatsServer;

fn config(server: &NatsServer) -> NatsConfig {
    NatsConfig {
        url: server.url(),
        ..NatsConfig::default()
    }
}

fn event(id: &str, incident: &str) -> Notification {
    Notification {
        id: id.into(),
        incident: incident.into(),
        at: 1_704_067_200,
        kind: "opened".into(),
        text: format!("incident {incident} opened"),
    }
}

/// Everything in the stream, from the start, as (subject, msg id, JSON).
async fn read_all(
    js: &jetstream::Context,
    expect: usize,
) -> Vec<(String, String, serde_json::Value)> {
    let stream = js.get_stream("MEDIC").await.unwrap();
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer
        .fetch()
        .max_messages(expect + 5)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(m) = messages.next().await {
        let m = m.unwrap();
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push((
            m.subject.to_string(),
            id,
            serde_json::from_slice(&m.payload).unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn a_late_consumer_gets_every_escalation_event_and_warning() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let js = connect_nats(&config(&server)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(
        dir.path(),
        vec![Arc::new(NatsSink::new(js.clone(), config(&server)))],
    )
    .unwrap();
    let escalation: medic::escalate::Escalation = serde_json::from_value(serde_json::json!({
        "id": "inc-1-esc-abc", "incident": "inc-1", "severity": "high", "at": 1_704_067_260,
        "reason": "risk above bound: step 2 (drain_node) is high risk, autonomy allows up to medium",
        "root_cause": "Node/worker-1", "summary": "memory pressure on worker-1",
        "playbook": "memory-pressure-node",
        "plan": [{"index": 1, "action": "cordon_node", "target": "Node/worker-1", "risk": "low"},
                 {"index": 2, "action": "drain_node", "target": "Node/worker-1", "risk": "high"}],
        "stopped_at_step": 2, "diagnosis": null, "approval": null
    }))
    .unwrap();
    outbox.escalate(&escalation).await.unwrap();
    outbox.notify(&event("inc-1-ev-3", "inc-1")).await.unwrap();
    outbox
        .warn(&ServiceWarning {
            id: "inc-1-warn-frontend".into(),
            at: 1_704_067_260,
            service: ObjectRef::namespaced("Deployment", "shop", "frontend"),
            upstream: ObjectRef::namespaced("Deployment", "shop", "cart"),
            incident: "inc-1".into(),
            recommendation: "expect slower cart calls; do not restart frontend for them".into(),
            expected_recovery_s: Some(600),
        })
        .await
        .unwrap();
    assert_eq!(outbox.deliver_pending().await, 0);

    let got = read_all(&js, 3).await;
    let subjects: Vec<&str> = got.iter().map(|(s, ..)| s.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "medic.escalations.high",
            "medic.incidents.inc-1.events",
            "medic.services.shop.frontend.warning"
        ]
    );
    let ids: Vec<&str> = got.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["inc-1-esc-abc", "inc-1-ev-3", "inc-1-warn-frontend"]
    );
    let esc = &got[0].2;
    assert_eq!(esc["type"], "escalation");
    assert_eq!(esc["plan"][1]["risk"], "high");
    assert_eq!(esc["root_cause"], "Node/worker-1");
    assert_eq!(got[2].2["upstream"], "Deployment/shop/cart");
}

#[tokio::test]
async fn nats_killed_mid_run_and_medic_restarted_loses_nothing() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let js = connect_nats(&config(&server)).await.unwrap();
        let outbox = Outbox::open(
            dir.path(),
            vec![Arc::new(NatsSink::new(js, config(&server)))],
        )
        .unwrap();
        outbox.notify(&event("inc-1-ev-1", "inc-1")).await.unwrap();
        assert_eq!(outbox.deliver_pending().await, 0, "delivered while up");
        server.kill();
        outbox.notify(&event("inc-1-ev-2", "inc-1")).await.unwrap();
        outbox.notify(&event("inc-1-ev-3", "inc-1")).await.unwrap();
        assert_eq!(outbox.deliver_pending().await, 2, "NATS down: kept");
        // medic stops here (the outbox is dropped with the messages queued).
    }
    server.restart();
    let js = connect_nats(&config(&server)).await.unwrap();
    let outbox = Arc::new(
        Outbox::open(
            dir.path(),
            vec![Arc::new(NatsSink::new(js.clone(), config(&server)))],
        )
        .unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(outbox.clone().run(async {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !outbox.queued("nats").is_empty() {
        assert!(Instant::now() < deadline, "queue not drained after restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    runner.await.unwrap();
    let ids: Vec<String> = read_all(&js, 3)
        .await
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    assert_eq!(ids, vec!["inc-1-ev-1", "inc-1-ev-2", "inc-1-ev-3"]);
}

#[tokio::test]
async fn a_redelivered_message_is_stored_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let js = connect_nats(&config(&server)).await.unwrap();
    let sink = NatsSink::new(js.clone(), config(&server));
    let message = Message::Event(event("inc-1-ev-1", "inc-1"));
    use medic::escalate::Sink;
    sink.deliver(&message).await.unwrap();
    sink.deliver(&message).await.unwrap();
    assert_eq!(read_all(&js, 2).await.len(), 1);
}

fn request(expires_at: i64) -> ApprovalRecord {
    let plan = vec![PlanLine {
        index: 2,
        action: "drain_node".into(),
        target: Some(ObjectRef::node("worker-1")),
        risk: Risk::High,
    }];
    ApprovalRecord {
        incident: "inc-7".into(),
        step: 2,
        playbook: "memory-pressure-node".into(),
        action: "drain_node".into(),
        target: Some("Node/worker-1".into()),
        risk: Risk::High,
        plan_digest: plan_digest("memory-pressure-node", &plan),
        plan,
        approvers: vec!["alice".into(), "bob".into()],
        allow_anyone: false,
        requested_at: 1000,
        expires_at,
        answer: None,
        record: None,
    }
}

fn answer(by: &str, approved: bool, at: i64) -> Answer {
    Answer {
        approved,
        by: by.into(),
        at,
        via: "cli".into(),
    }
}

#[tokio::test]
async fn approvals_live_in_kv_are_answered_once_and_expire() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let js = connect_nats(&config(&server)).await.unwrap();
    let store = NatsApprovals::new(js.clone(), "medic-approvals");
    let before = store.generation().await.unwrap();
    store.request(&request(2000)).await.unwrap();
    let asked = store.generation().await.unwrap();
    assert!(asked > before, "a request moves the generation on");
    assert_eq!(store.generation().await.unwrap(), asked, "reading does not");
    assert_eq!(store.pending(1500).await.unwrap().len(), 1);
    assert_eq!(store.pending(2000).await.unwrap().len(), 0, "expired");
    assert!(matches!(
        store
            .answer("inc-7", 2, answer("mallory", true, 1500), None)
            .await,
        Err(ApprovalError::NotAllowed(..))
    ));
    assert!(matches!(
        store
            .answer("inc-7", 2, answer("alice", true, 1500), Some("feedface"))
            .await,
        Err(ApprovalError::PlanChanged { .. })
    ));

    // Two people answer at once: exactly one answer is stored.
    let other = NatsApprovals::new(js.clone(), "medic-approvals");
    let (a, b) = tokio::join!(
        store.answer("inc-7", 2, answer("alice", true, 1500), None),
        other.answer("inc-7", 2, answer("bob", false, 1500), None)
    );
    assert!(a.is_ok() ^ b.is_ok(), "{a:?} {b:?}");
    assert!(
        store.generation().await.unwrap() > asked,
        "an answer moves it on, whichever replica stored it"
    );
    let lost = if a.is_ok() { b } else { a };
    assert!(
        matches!(
            lost,
            Err(ApprovalError::Conflict | ApprovalError::AlreadyAnswered { .. })
        ),
        "{lost:?}"
    );
    let stored = store.get("inc-7", 2).await.unwrap().unwrap();
    assert!(matches!(
        stored.verdict(1600),
        Verdict::Approved(_) | Verdict::Denied(_)
    ));

    // Someone reading the bucket directly sees the record medic wrote.
    let kv = js.get_key_value("medic-approvals").await.unwrap();
    let raw: serde_json::Value =
        serde_json::from_slice(&kv.get("inc-7.2").await.unwrap().unwrap()).unwrap();
    assert_eq!(raw["expires_at"], 2000);
    assert_eq!(raw["approvers"], serde_json::json!(["alice", "bob"]));
}

#[tokio::test]
async fn an_approval_through_kv_resumes_a_replayed_plan() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let js = connect_nats(&config(&server)).await.unwrap();
    let store: Arc<dyn ApprovalStore> = Arc::new(NatsApprovals::new(js.clone(), "medic-approvals"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents/approved-rollback-resumes-plan.yaml");
    let loaded = Loaded::load(&path).unwrap();
    let options = ReplayOptions {
        approvals: Some(store.clone()),
        ..ReplayOptions::embedded()
    };
    let report = replay_loaded(&loaded, &options).await.unwrap();
    assert!(report.passed, "{:?}", report.failures);
    let actions: Vec<&str> = report.incidents[0]
        .actions
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(actions, vec!["capture_logs", "rollout_undo"]);
    // The request and alice's answer are in the bucket.
    let incident = &report.incidents[0].id;
    let record = store.get(incident, 2).await.unwrap().unwrap();
    assert_eq!(record.action, "rollout_undo");
    assert_eq!(record.answer.unwrap().by, "alice");
}

fn incident(id: &str, severity: medic::model::Severity) -> medic::incident::Incident {
    medic::incident::Incident::new(id, 100, severity)
}

fn intent(step: usize) -> medic::journal::IntentEntry {
    medic::journal::IntentEntry {
        incident: "inc-1".into(),
        playbook: "pb".into(),
        step,
        action: medic::act::Action::CordonNode,
        target: ObjectRef::node("node-a"),
        at: 120,
        rollback: false,
        revision: None,
        wanted_replicas: None,
    }
}

#[tokio::test]
async fn the_journal_in_jetstream_keeps_each_incidents_latest_state_and_every_action() {
    use medic::journal::{Entry, JetStreamJournal};
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let day = Duration::from_secs(86_400);
    let js = connect_nats(&config(&server)).await.unwrap();
    let (journal, restored) = JetStreamJournal::open(js.clone(), "MEDIC_JOURNAL", day)
        .await
        .unwrap();
    assert_eq!(restored, medic::journal::Restored::default());
    let done = medic::journal::found_done(&intent(1), Risk::Low);
    let v2 = incident("inc-1", medic::model::Severity::Critical);
    for entry in [
        Entry::Incident(Box::new(incident("inc-1", medic::model::Severity::High))),
        Entry::Intent(intent(1)),
        Entry::Result {
            incident: "inc-1".into(),
            record: done.clone(),
        },
        Entry::Intent(intent(2)),
        Entry::Incident(Box::new(v2.clone())),
        Entry::Ledger(ledger(130, medic::trust::Event::Approved)),
        Entry::Tick { at: 120 },
        Entry::Ledger(ledger(140, medic::trust::Event::Ran)),
        Entry::Tick { at: 150 },
    ] {
        journal.append(&entry).await.unwrap();
    }
    // Rollups keep one incident state and one tick: 3 actions + 1 + 1, and
    // every ledger record.
    let mut stream = js.get_stream("MEDIC_JOURNAL").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 7);
    // Another replica (or this one restarted), after NATS itself restarted.
    server.restart();
    let js = connect_nats(&config(&server)).await.unwrap();
    let (_, restored) = JetStreamJournal::open(js, "MEDIC_JOURNAL", day)
        .await
        .unwrap();
    let mut want = v2;
    want.actions.push(done);
    assert_eq!(restored.incidents.len(), 1);
    assert_eq!(restored.incidents[0].severity, want.severity);
    assert_eq!(restored.incidents[0].actions, want.actions);
    assert_eq!(restored.unfinished, vec![intent(2)], "step 2 has no result");
    assert_eq!(restored.last_tick, Some(150));
    assert_eq!(
        restored.ledger,
        vec![
            ledger(130, medic::trust::Event::Approved),
            ledger(140, medic::trust::Event::Ran)
        ],
        "every replica reads the same track record"
    );
    assert_eq!(restored.cut, None);
}

fn ledger(at: i64, event: medic::trust::Event) -> medic::trust::LedgerEntry {
    medic::trust::LedgerEntry {
        at,
        key: medic::trust::StepKey {
            playbook: "pool".into(),
            step: 2,
            action: medic::act::Action::RolloutRestart,
            target_kind: "Deployment".into(),
        },
        event,
        incident: "inc-1".into(),
        by: None,
        digest: Some("d1".into()),
    }
}

/// `medic trust` reads the record the replicas share from JetStream, as a
/// replay that kept its journal there (as `medic run` does with NATS) wrote it.
#[test]
fn trust_reads_the_record_from_the_jetstream_journal() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let medic = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let o = medic(&[
        "replay",
        "fixtures/incidents/autonomy-earned-after-approvals.yaml",
        "--journal",
        dir.path().join("sim").to_str().unwrap(),
        "--journal-nats",
        &server.url(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = dir.path().join("medic.yaml");
    std::fs::write(
        &config,
        format!(
            "nats: {{url: '{}'}}\nautonomy: {{earn: {{approvals: 2, verified: 2}}}}\n",
            server.url()
        ),
    )
    .unwrap();
    let o = medic(&[
        "trust",
        "--config",
        config.to_str().unwrap(),
        "--at",
        "2024-01-01T02:40:00Z",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["playbook"], "cpu-throttling");
    assert_eq!(rows[0]["standing"], "earned");
    assert_eq!(
        (
            rows[0]["asked"].as_u64(),
            rows[0]["approved"].as_u64(),
            rows[0]["ran"].as_u64(),
            rows[0]["verified"].as_u64()
        ),
        (Some(2), Some(2), Some(3), Some(3))
    );
}
