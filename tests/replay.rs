//! Every fixture replayed through the real pipeline against a real
//! Prometheus (promtool + prometheus must be installed), and the exact
//! outcomes of the scenarios that matter most.

use medic::act::ActionResult;
use medic::replay::{Loaded, ReplayOptions, Report, fixture_files, replay_file, replay_loaded};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents")
}

async fn replay(name: &str) -> Report {
    replay_file(&fixtures_dir().join(name), &ReplayOptions::embedded())
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (action, target, result) of every action, in order.
fn actions(r: &Report) -> Vec<(String, String, ActionResult, bool)> {
    r.incidents
        .iter()
        .flat_map(|i| &i.actions)
        .map(|a| {
            (
                a.action.clone(),
                a.target.clone().unwrap_or_default(),
                a.result,
                a.rollback,
            )
        })
        .collect()
}

fn act(
    action: &str,
    target: &str,
    result: ActionResult,
    rollback: bool,
) -> (String, String, ActionResult, bool) {
    (action.into(), target.into(), result, rollback)
}

#[tokio::test]
async fn every_fixture_passes() {
    let files = fixture_files(&fixtures_dir()).unwrap();
    assert!(
        files.len() >= 7,
        "expected the bundled fixtures, found {files:?}"
    );
    let mut failed = Vec::new();
    for f in files {
        let r = replay_file(&f, &ReplayOptions::embedded()).await.unwrap();
        if !r.passed {
            failed.push(format!("{}: {:?}", f.display(), r.failures));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[tokio::test]
async fn the_leak_is_rolled_back_with_the_node_protected_meanwhile() {
    let r = replay("memory-leak-after-deploy.yaml").await;
    assert_eq!(r.incidents.len(), 1);
    let inc = &r.incidents[0];
    assert_eq!(
        actions(&r),
        vec![
            act("cordon_node", "Node/node-a", ActionResult::Ok, false),
            act(
                "rollout_undo",
                "Deployment/production/analytics-worker",
                ActionResult::Ok,
                false
            ),
            act("uncordon_node", "Node/node-a", ActionResult::Ok, false),
        ]
    );
    // The node joined the incident, and the workload explains it.
    assert_eq!(
        inc.root_cause_candidates,
        vec!["Deployment/production/analytics-worker", "Node/node-a"]
    );
    let diagnosis = inc.diagnosis.as_ref().unwrap();
    assert_eq!(
        (diagnosis.source.as_str(), diagnosis.category.as_str()),
        ("rules", "memory_leak")
    );
    assert!(
        diagnosis.summary.contains("v1.4.1 -> v1.4.2"),
        "{}",
        diagnosis.summary
    );
    // Uncordon waits for the rollback's verification: memory below 70% for 5m.
    let at = |name: &str| inc.actions.iter().find(|a| a.action == name).unwrap().at_s;
    assert!(at("uncordon_node") - at("rollout_undo") >= 300);
    assert!(inc.resolved_at_s.is_some());
    assert_eq!(r.time_to_detect_s, Some(r.signals[0].at_s - 600));
}

#[tokio::test]
async fn the_pool_owner_is_the_root_cause_not_the_frontend_that_alerted_first() {
    let r = replay("connection-pool-cascade.yaml").await;
    assert_eq!(r.signals[0].signal, "latency_anomaly");
    assert_eq!(r.signals[0].target, "Pod/shop/frontend-7c9d8-abc12");
    let inc = &r.incidents[0];
    assert_eq!(inc.root_cause.as_deref(), Some("Deployment/shop/orders"));
    assert_eq!(
        actions(&r),
        vec![
            act(
                "capture_logs",
                "Pod/shop/orders-6b7c8-ghi56",
                ActionResult::Ok,
                false
            ),
            act(
                "rollout_restart",
                "Deployment/shop/orders",
                ActionResult::Ok,
                false
            ),
        ]
    );
    assert!(
        inc.timeline
            .iter()
            .any(|t| t.text
                == "warned the callers of Deployment/shop/orders: Deployment/shop/checkout"),
        "the cascade warning goes to the pool owner's caller"
    );
}

#[tokio::test]
async fn observe_mode_dry_runs_and_escalates_but_changes_nothing() {
    let r = replay("observe-mode-memory-leak.yaml").await;
    assert_eq!(
        actions(&r),
        vec![act(
            "cordon_node",
            "Node/node-a",
            ActionResult::DryRun,
            false
        )]
    );
    let esc = &r.incidents[0].escalations;
    assert_eq!(esc.len(), 1);
    assert!(
        esc[0].reason.starts_with("observe mode"),
        "{}",
        esc[0].reason
    );
}

#[tokio::test]
async fn a_failed_verification_runs_the_rollback_and_escalates() {
    let r = replay("rollback-when-verification-fails.yaml").await;
    assert_eq!(
        actions(&r),
        vec![
            act("cordon_node", "Node/node-a", ActionResult::Ok, false),
            act(
                "rollout_undo",
                "Deployment/production/analytics-worker",
                ActionResult::Ok,
                false
            ),
            act("uncordon_node", "Node/node-a", ActionResult::Ok, true),
        ]
    );
    let inc = &r.incidents[0];
    assert!(
        inc.escalations[0]
            .reason
            .contains("not verified within 20m")
    );
    // The v1.4.1 pod leaks too: once it has grown, unslowed, long enough
    // to tell from a warm-up, it is a second incident, still open at the
    // end, escalated and not acted on (medic does not know its node).
    assert_eq!(r.incidents.len(), 2);
    let second = &r.incidents[1];
    assert!(
        second
            .affected
            .contains(&"Pod/production/analytics-worker-5d4c8-q7wz2".to_string()),
        "{:?}",
        second.affected
    );
    assert_eq!(second.resolved_at_s, None);
    assert!(second.actions.is_empty());
    assert!(
        second.escalations[0]
            .reason
            .contains("runs on no known node"),
        "{}",
        second.escalations[0].reason
    );
}

#[tokio::test]
async fn a_step_above_the_bound_is_escalated_with_the_plan_and_not_run() {
    let r = replay("step-above-autonomy-bound.yaml").await;
    assert_eq!(
        actions(&r),
        vec![act(
            "capture_logs",
            "Pod/shop/checkout-8d9e1-kq2zt",
            ActionResult::Ok,
            false
        )]
    );
    let inc = &r.incidents[0];
    assert_eq!(
        inc.escalations[0].reason,
        "risk above bound: step 2 (rollout_undo) is medium risk, autonomy allows up to low"
    );
    let plan_line = inc
        .timeline
        .iter()
        .find(|t| t.text.contains("to people"))
        .unwrap();
    assert!(
        plan_line
            .text
            .contains("2. rollout_undo Deployment/shop/checkout [medium]")
    );
}

#[tokio::test]
async fn an_approval_resumes_the_plan_at_the_stopped_step() {
    let r = replay("approved-rollback-resumes-plan.yaml").await;
    assert!(r.passed, "{:?}", r.failures);
    assert_eq!(
        actions(&r),
        vec![
            act(
                "capture_logs",
                "Pod/shop/checkout-8d9e1-kq2zt",
                ActionResult::Ok,
                false
            ),
            act(
                "rollout_undo",
                "Deployment/shop/checkout",
                ActionResult::Ok,
                false
            ),
        ]
    );
    let inc = &r.incidents[0];
    let approved = inc
        .timeline
        .iter()
        .position(|t| t.text == "step 2 rollout_undo approved by alice via fixture")
        .expect("the approval is on the timeline");
    let undo = inc
        .timeline
        .iter()
        .position(|t| t.text.starts_with("rollout_undo Deployment/shop/checkout"))
        .unwrap();
    assert!(approved < undo, "approved, then run");
    assert_eq!(
        inc.actions[1].at_s,
        12 * 60 + 30,
        "run when the answer came"
    );
    assert!(inc.resolved_at_s.is_some());
}

#[tokio::test]
async fn a_denial_ends_the_plan_and_says_who_denied() {
    let r = replay("denied-rollback-ends-plan.yaml").await;
    assert!(r.passed, "{:?}", r.failures);
    assert_eq!(actions(&r).len(), 1, "only capture_logs");
    assert!(
        r.incidents[0]
            .timeline
            .iter()
            .any(|t| t.text == "step 2 rollout_undo denied by bob via fixture")
    );
}

#[tokio::test]
async fn an_approved_step_is_not_run_once_its_trouble_has_gone() {
    let r = replay("approval-after-errors-stopped.yaml").await;
    assert!(r.passed, "{:?}", r.failures);
    let done: Vec<String> = actions(&r).into_iter().map(|a| a.0).collect();
    assert_eq!(done, vec!["capture_logs"], "approved, but not rolled back");
    let inc = &r.incidents[0];
    let skipped = inc
        .timeline
        .iter()
        .find(|t| t.text.starts_with("step 2 rollout_undo not run"))
        .expect("the timeline says why");
    assert!(
        skipped
            .text
            .contains("error_rate's condition no longer holds"),
        "{}",
        skipped.text
    );
    // The signal had not cleared yet (keepFiringFor): only asking
    // Prometheus again at that moment showed the errors had stopped.
    let cleared = inc
        .timeline
        .iter()
        .filter(|t| t.stage == medic::incident::Stage::Clear)
        .map(|t| t.at_s)
        .min()
        .unwrap();
    assert!(skipped.at_s < cleared, "{} >= {cleared}", skipped.at_s);
}

#[tokio::test]
async fn captured_logs_are_kept_in_the_incident_redacted() {
    let r = replay("llm-prompt-injection.yaml").await;
    assert!(r.passed, "{:?}", r.failures);
    let logs = &r.incidents[0].logs;
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].pod, "Pod/shop/checkout-8d9e1-kq2zt");
    assert!(
        logs[0]
            .text
            .contains("missing required environment variable PAYMENT_GATEWAY_URL")
    );
    assert!(!logs[0].text.contains("hunter2"), "{}", logs[0].text);
    assert!(!logs[0].text.contains("abcdef123456"), "{}", logs[0].text);
}

#[tokio::test]
async fn an_answer_with_nothing_waiting_fails_the_replay() {
    let path = fixtures_dir().join("denied-rollback-ends-plan.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("{at: 13m, step: 2,", "{at: 5m, step: 2,");
    let loaded = Loaded::parse(&text, "edited.yaml").unwrap();
    let r = replay_loaded(&loaded, &ReplayOptions::embedded())
        .await
        .unwrap();
    assert!(!r.passed);
    assert!(
        r.failures.contains(
            &"approvals: at 5m bob answers step 2, but nothing waits for approval there"
                .to_string()
        ),
        "{:?}",
        r.failures
    );
}

#[tokio::test]
async fn wrong_expectations_fail_with_reasons() {
    let path = fixtures_dir().join("memory-leak-after-deploy.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "actions: [cordon_node, rollout_undo, uncordon_node]",
            "actions: [drain_node]",
        )
        .replace("incidents: 1", "incidents: 2")
        .replace("by: 20m", "by: 12m");
    let loaded = Loaded::parse(&text, "edited.yaml").unwrap();
    let r = replay_loaded(&loaded, &ReplayOptions::embedded())
        .await
        .unwrap();
    assert!(!r.passed);
    assert_eq!(
        r.failures,
        vec![
            "expected 2 incident(s), got 1".to_string(),
            "expected signal memory_leak on Pod/production/analytics-worker-7f8d9-x2k4p by 12m, it fired at 18m".to_string(),
            "expected actions [drain_node], got [cordon_node, rollout_undo, uncordon_node]".to_string(),
        ]
    );
}

/// An approval store that counts the records read, around the real one.
#[derive(Default)]
struct CountingApprovals {
    inner: medic::escalate::MemoryApprovals,
    gets: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl medic::escalate::ApprovalStore for CountingApprovals {
    async fn request(
        &self,
        record: &medic::escalate::ApprovalRecord,
    ) -> Result<(), medic::escalate::ApprovalError> {
        self.inner.request(record).await
    }
    async fn get(
        &self,
        incident: &str,
        step: usize,
    ) -> Result<Option<medic::escalate::ApprovalRecord>, medic::escalate::ApprovalError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get(incident, step).await
    }
    async fn answer(
        &self,
        incident: &str,
        step: usize,
        answer: medic::escalate::Answer,
        seen_digest: Option<&str>,
    ) -> Result<medic::escalate::ApprovalRecord, medic::escalate::ApprovalError> {
        self.inner.answer(incident, step, answer, seen_digest).await
    }
    async fn pending(
        &self,
        now: i64,
    ) -> Result<Vec<medic::escalate::ApprovalRecord>, medic::escalate::ApprovalError> {
        self.inner.pending(now).await
    }
    async fn generation(&self) -> Result<u64, medic::escalate::ApprovalError> {
        self.inner.generation().await
    }
}

#[tokio::test]
async fn a_waiting_run_reads_its_approval_again_only_once_the_store_has_changed() {
    let mut loaded =
        Loaded::load(&fixtures_dir().join("approved-rollback-resumes-plan.yaml")).unwrap();
    // Alice answers eight minutes after the request, not thirty seconds,
    // and the pod is still crash-looping then (a restart every two minutes
    // to the end), so the rollback still has its evidence.
    loaded.fixture.approvals[0].at = medic::model::Secs(20 * 60);
    let crashing = loaded
        .series
        .iter_mut()
        .find(|s| s.labels.get("pod").map(String::as_str) == Some("checkout-8d9e1-kq2zt"))
        .unwrap();
    crashing.values = (0..=160)
        .map(|i: i32| Some(f64::from((i - 12).max(0) / 8)))
        .collect();
    let store = std::sync::Arc::new(CountingApprovals::default());
    let options = ReplayOptions {
        approvals: Some(store.clone()),
        ..ReplayOptions::embedded()
    };
    let r = replay_loaded(&loaded, &options).await.unwrap();
    let undo = &r.incidents[0].actions[1];
    assert_eq!(
        (undo.action.as_str(), undo.at_s),
        ("rollout_undo", 20 * 60),
        "run when the answer came"
    );
    // Asking checks for an earlier request; the first wait reads it once;
    // then nothing, over 15 ticks, until alice's answer changes the store.
    assert_eq!(store.gets.load(std::sync::atomic::Ordering::SeqCst), 3);
}
