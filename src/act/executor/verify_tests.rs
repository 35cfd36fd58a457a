//! waitFor semantics, with a Prometheus that answers from a script.

use super::*;
use crate::cluster::{ClusterObject, SimCluster};
use crate::escalate::{MemoryApprovals, MemoryEscalator};
use crate::metrics::{MetricsError, SeriesRange, SeriesValue};
use crate::model::{Secs, Severity};
use crate::plan::Verification;
use async_trait::async_trait;
use std::sync::Mutex;

/// Answers each instant query with the next scripted answer; `None` is an
/// error, `Some(false)` an empty result, `Some(true)` one series.
struct Scripted {
    answers: Mutex<Vec<Option<bool>>>,
    asked_at: Mutex<Vec<Timestamp>>,
}

#[async_trait]
impl crate::metrics::Metrics for Scripted {
    async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<SeriesValue>, MetricsError> {
        self.asked_at.lock().unwrap().push(at);
        let next = {
            let mut a = self.answers.lock().unwrap();
            if a.is_empty() {
                Some(false)
            } else {
                a.remove(0)
            }
        };
        match next {
            None => Err(MetricsError::Query {
                query: query.into(),
                reason: "connection refused".into(),
            }),
            Some(false) => Ok(vec![]),
            Some(true) => Ok(vec![SeriesValue {
                labels: Default::default(),
                value: 1.0,
            }]),
        }
    }
    async fn range(
        &self,
        _: &str,
        _: Timestamp,
        _: Timestamp,
        _: i64,
    ) -> Result<Vec<SeriesRange>, MetricsError> {
        Ok(vec![])
    }
}

fn verification() -> Verification {
    Verification {
        query: "up".into(),
        for_: Secs(0),
        timeout: Secs(600),
        initial_delay: Secs(0),
        interval: Secs(0),
        failure_limit: 0,
        error_limit: 3,
        on_empty: OnEmpty::False,
    }
}

fn run_with(v: Verification) -> PlanRun {
    let step = PlannedStep {
        index: 1,
        action: Action::UncordonNode,
        risk: Risk::Low,
        target: Some(ObjectRef::node("n1")),
        when: None,
        params: Default::default(),
        verify: Some(v),
        problem: None,
    };
    PlanRun::new(Plan {
        playbook: "pb".into(),
        playbook_bound: Risk::High,
        signal: 0,
        steps: vec![step],
        rollback: vec![],
    })
}

/// An incident whose signal came from an alert that has not resolved: the
/// evidence holds without a query, so every query here is the waitFor's.
fn incident() -> Incident {
    let mut inc = Incident::new("inc-1", 0, Severity::High);
    inc.signals.push(crate::incident::SignalRecord {
        signal: crate::signal::Signal {
            name: "KubeNodeNotReady".into(),
            target: ObjectRef::node("n1"),
            severity: Severity::High,
            value: 1.0,
            labels: Default::default(),
            onset: 0,
            fired_at: 0,
            onset_value: 1.0,
            peak: 1.0,
            slope_per_min: 0.0,
            from_alert: true,
        },
        subject: ObjectRef::node("n1"),
        cleared_at: None,
    });
    inc
}

/// Advances the run every 30 s from 0 until it stops or `until`; returns
/// the final state and when Prometheus was asked.
async fn drive(
    v: Verification,
    answers: Vec<Option<bool>>,
    until: Timestamp,
) -> (RunState, Vec<Timestamp>, Incident) {
    let metrics = Scripted {
        answers: Mutex::new(answers),
        asked_at: Mutex::default(),
    };
    let node = ClusterObject::from_value(
        serde_yaml::from_str("{apiVersion: v1, kind: Node, metadata: {name: n1}}").unwrap(),
    )
    .unwrap();
    let cluster = SimCluster::new(vec![node], vec![]);
    let escalator = MemoryEscalator::default();
    let approvals = MemoryApprovals::default();
    let config = Config {
        mode: crate::config::Mode::Enforce,
        ..Config::default()
    };
    let snapshot = cluster.snapshot().await.unwrap();
    let guards = GuardView::default();
    let ports = Ports {
        cluster: &cluster,
        metrics: &metrics,
        escalator: &escalator,
        approvals: &approvals,
        guards: &guards,
        journal: None,
        config: &config,
        snapshot: &snapshot,
        approvals_generation: None,
        detectors: &[],
        trust: &crate::trust::Ledger::default(),
    };
    let mut run = run_with(v);
    let mut inc = incident();
    let mut now = 0;
    while now <= until {
        run.advance(&mut inc, &ports, now).await;
        if !run.is_active() {
            break;
        }
        now += 30;
    }
    let asked = metrics.asked_at.lock().unwrap().clone();
    (run.state, asked, inc)
}

fn failed_reason(state: &RunState) -> &str {
    match state {
        RunState::Failed { reason } => reason,
        other => panic!("not failed: {other:?}"),
    }
}

#[tokio::test]
async fn waits_the_initial_delay_then_checks_at_the_interval() {
    let v = Verification {
        initial_delay: Secs(120),
        interval: Secs(60),
        for_: Secs(120),
        ..verification()
    };
    let (state, asked, _) = drive(v, vec![Some(true); 10], 600).await;
    assert_eq!(state, RunState::Done);
    assert_eq!(
        asked,
        vec![120, 180, 240],
        "first at 2m, then every minute, held 2m"
    );
}

#[tokio::test]
async fn query_errors_in_a_row_fail_the_step_instead_of_waiting_blind() {
    let (state, asked, inc) = drive(verification(), vec![Some(false), None, None, None], 600).await;
    assert_eq!(asked.len(), 4);
    assert_eq!(
        failed_reason(&state),
        "step 1 uncordon_node not verified: 3 failed checks of `up` in a row (last: query `up` failed: connection refused); medic does not wait blind"
    );
    assert_eq!(inc.escalations.len(), 1, "and people are told");
}

#[tokio::test]
async fn an_error_between_answers_does_not_count_towards_the_limit() {
    let answers = vec![None, None, Some(false), None, None, Some(true)];
    let (state, _, _) = drive(verification(), answers, 600).await;
    assert_eq!(state, RunState::Done);
}

#[tokio::test]
async fn an_empty_result_is_missing_data_when_the_step_says_so() {
    let v = Verification {
        on_empty: OnEmpty::Error,
        ..verification()
    };
    let (state, asked, _) = drive(v, vec![Some(false); 5], 600).await;
    assert_eq!(asked.len(), 3);
    assert!(failed_reason(&state).contains("an empty result, where the step needs data"));
}

#[tokio::test]
async fn the_failure_limit_gives_up_before_the_timeout() {
    let v = Verification {
        failure_limit: 4,
        ..verification()
    };
    let (state, asked, _) = drive(v, vec![Some(false); 10], 6000).await;
    assert_eq!(asked, vec![0, 30, 60, 90]);
    assert_eq!(
        failed_reason(&state),
        "step 1 uncordon_node not verified: `up` did not hold in 4 checks"
    );
}

#[tokio::test]
async fn the_timeout_still_bounds_the_wait() {
    let v = Verification {
        timeout: Secs(90),
        ..verification()
    };
    let (state, _, _) = drive(v, vec![Some(false); 10], 6000).await;
    assert_eq!(
        failed_reason(&state),
        "step 1 uncordon_node not verified within 1m30s: `up` did not hold 0s"
    );
}
