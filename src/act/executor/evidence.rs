//! Current evidence: right before a step changes the cluster, the signal
//! the plan answers must still hold. A plan made minutes ago (it waited
//! for an approval, a guard, the settle time) must not act on trouble that
//! has gone away.

use crate::act::Action;
use crate::incident::Incident;
use crate::metrics::Metrics;
use crate::model::Timestamp;
use crate::signal::{Detector, DetectorOutcome, observe_at};

/// What a fresh look at the plan's signal found.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    Holds,
    /// The trouble is gone: the plan ends without acting.
    Cleared(String),
    /// It could not be checked (the query failed): the step waits.
    Unknown(String),
}

/// A step that only puts back what this incident's earlier steps changed
/// (uncordoning the node it cordoned) is not judged by the signal: the
/// signal clearing is exactly when it should run.
pub fn restores(action: Action, target: Option<&crate::model::ObjectRef>, inc: &Incident) -> bool {
    let undoes: &[Action] = match action {
        Action::UncordonNode => &[Action::CordonNode, Action::DrainNode],
        _ => return false,
    };
    inc.actions.iter().any(|a| {
        undoes.contains(&a.action)
            && a.target.as_ref() == target
            && a.result == crate::act::ActionResult::Ok
            && !a.rollback
    })
}

/// Looks again at the signal `signal` (an index into the incident's) at
/// `now`: its detector's condition, with one instant query (an anomaly
/// detector: one range query over its baseline), or, for a signal an
/// Alertmanager alert raised, whether the alert has resolved.
///
/// The trouble is the workload's, not one pod's: it holds while the
/// detector still fires for the plan's target or for any other target the
/// incident holds an open signal of the same detector on, about the same
/// workload. A rollout replaces the pod whose signal started the plan;
/// its successors failing the same way is the trouble still there.
pub async fn check(
    inc: &Incident,
    signal: usize,
    detectors: &[Detector],
    metrics: &dyn Metrics,
    now: Timestamp,
    step: i64,
) -> Evidence {
    let Some(record) = inc.signals.get(signal) else {
        return Evidence::Unknown("the plan's signal is not in the incident".into());
    };
    let s = &record.signal;
    // The open signals of this detector on the workload, the plan's own among them.
    let open: Vec<&crate::model::ObjectRef> = inc
        .signals
        .iter()
        .filter(|r| {
            r.signal.name == s.name && r.subject == record.subject && r.cleared_at.is_none()
        })
        .map(|r| &r.signal.target)
        .collect();
    if open.is_empty() {
        let at = record.cleared_at.unwrap_or(now);
        return Evidence::Cleared(format!(
            "{} on {} cleared {}s ago",
            s.name,
            s.target,
            now - at
        ));
    }
    if s.from_alert {
        // Alertmanager resolves it (cleared_at above); until then it holds.
        return Evidence::Holds;
    }
    let Some(detector) = detectors.iter().find(|d| d.name == s.name) else {
        return Evidence::Unknown(format!("no detector named {} to check it with", s.name));
    };
    let mut outcome = observe_at(metrics, std::slice::from_ref(detector), now, step).await;
    match outcome.remove(&detector.name) {
        Some(DetectorOutcome::Ok(found)) => {
            let holds = found.iter().any(|o| {
                detector
                    .spec
                    .target
                    .render(&o.labels)
                    .is_ok_and(|t| open.contains(&&t))
            });
            if holds {
                Evidence::Holds
            } else {
                Evidence::Cleared(format!(
                    "{}'s condition no longer holds for {}",
                    s.name, s.target
                ))
            }
        }
        Some(DetectorOutcome::Failed(e)) => Evidence::Unknown(e),
        None => Evidence::Unknown(format!("{} gave no answer", s.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::{ActionRecord, ActionResult};
    use crate::incident::SignalRecord;
    use crate::metrics::{MetricsError, SeriesRange, SeriesValue};
    use crate::model::{ObjectRef, Risk, Severity};
    use crate::signal::{DetectorSpec, Signal};
    use async_trait::async_trait;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Answers every instant query with the pods it is given (None: an
    /// error), and remembers the queries and times.
    struct Answering {
        pods: Option<Vec<&'static str>>,
        asked: Mutex<Vec<(String, Timestamp)>>,
    }

    #[async_trait]
    impl Metrics for Answering {
        async fn instant(
            &self,
            query: &str,
            at: Timestamp,
        ) -> Result<Vec<SeriesValue>, MetricsError> {
            self.asked.lock().unwrap().push((query.to_string(), at));
            match &self.pods {
                None => Err(MetricsError::Query {
                    query: query.into(),
                    reason: "connection refused".into(),
                }),
                Some(pods) => Ok(pods
                    .iter()
                    .map(|p| SeriesValue {
                        labels: BTreeMap::from([
                            ("namespace".to_string(), "shop".to_string()),
                            ("pod".to_string(), p.to_string()),
                        ]),
                        value: 0.2,
                    })
                    .collect()),
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

    fn metrics(pods: Option<Vec<&'static str>>) -> Answering {
        Answering {
            pods,
            asked: Mutex::default(),
        }
    }

    fn detectors() -> Vec<Detector> {
        let spec: DetectorSpec = serde_yaml::from_str(
            "{severity: high, query: 'error_ratio > 0.05', target: {kind: Pod, namespace: '{{ namespace }}', name: '{{ pod }}'}}",
        )
        .unwrap();
        vec![Detector {
            name: "error_rate".into(),
            spec,
        }]
    }

    fn incident(from_alert: bool, cleared_at: Option<Timestamp>) -> Incident {
        let mut inc = Incident::new("inc-1", 100, Severity::High);
        inc.signals.push(SignalRecord {
            signal: Signal {
                name: "error_rate".into(),
                target: ObjectRef::namespaced("Pod", "shop", "api-1"),
                severity: Severity::High,
                value: 0.2,
                labels: Default::default(),
                onset: 0,
                fired_at: 100,
                onset_value: 0.2,
                peak: 0.2,
                slope_per_min: 0.0,
                from_alert,
            },
            subject: ObjectRef::namespaced("Deployment", "shop", "api"),
            cleared_at,
        });
        inc
    }

    #[tokio::test]
    async fn the_detector_is_asked_again_at_the_moment_of_acting() {
        let firing = metrics(Some(vec!["api-1"]));
        let inc = incident(false, None);
        assert_eq!(
            check(&inc, 0, &detectors(), &firing, 900, 30).await,
            Evidence::Holds
        );
        assert_eq!(
            *firing.asked.lock().unwrap(),
            vec![("error_ratio > 0.05".to_string(), 900)]
        );
        // Another pod still errs; this one no longer does.
        let elsewhere = metrics(Some(vec!["api-2"]));
        assert_eq!(
            check(&inc, 0, &detectors(), &elsewhere, 900, 30).await,
            Evidence::Cleared("error_rate's condition no longer holds for Pod/shop/api-1".into())
        );
        // Prometheus does not answer: not known, so the step waits.
        let down = metrics(None);
        assert!(matches!(
            check(&inc, 0, &detectors(), &down, 900, 30).await,
            Evidence::Unknown(e) if e.contains("connection refused")
        ));
    }

    #[tokio::test]
    async fn a_cleared_signal_needs_no_query_and_an_alert_holds_until_resolved() {
        let none = metrics(Some(vec![]));
        let cleared = incident(false, Some(800));
        assert_eq!(
            check(&cleared, 0, &detectors(), &none, 900, 30).await,
            Evidence::Cleared("error_rate on Pod/shop/api-1 cleared 100s ago".into())
        );
        // Raised by Alertmanager: its query is not medic's to re-run.
        assert_eq!(
            check(&incident(true, None), 0, &detectors(), &none, 900, 30).await,
            Evidence::Holds
        );
        assert!(none.asked.lock().unwrap().is_empty());
        assert!(matches!(
            check(&cleared, 3, &detectors(), &none, 900, 30).await,
            Evidence::Unknown(_)
        ));
    }

    #[tokio::test]
    async fn a_replaced_pod_leaves_the_trouble_to_its_successors_on_the_same_workload() {
        let sibling = |pod: &str, workload: &str| {
            let mut r = incident(false, None).signals.remove(0);
            r.signal.target = ObjectRef::namespaced("Pod", "shop", pod);
            r.subject = ObjectRef::namespaced("Deployment", "shop", workload);
            r
        };
        // api-1 (the plan's signal) went with the old ReplicaSet; the new
        // pod api-2 errs the same way.
        let mut inc = incident(false, Some(800));
        inc.signals.push(sibling("api-2", "api"));
        let new_pod_errs = metrics(Some(vec!["api-2"]));
        assert_eq!(
            check(&inc, 0, &detectors(), &new_pod_errs, 900, 30).await,
            Evidence::Holds
        );
        // Another workload's pod erring is not this plan's trouble.
        let mut inc = incident(false, None);
        inc.signals.push(sibling("web-1", "web"));
        assert_eq!(
            check(
                &inc,
                0,
                &detectors(),
                &metrics(Some(vec!["web-1"])),
                900,
                30
            )
            .await,
            Evidence::Cleared("error_rate's condition no longer holds for Pod/shop/api-1".into())
        );
        // Nor is a sibling whose signal has cleared.
        let mut inc = incident(false, Some(800));
        let mut gone = sibling("api-2", "api");
        gone.cleared_at = Some(850);
        inc.signals.push(gone);
        let none = metrics(Some(vec!["api-2"]));
        assert_eq!(
            check(&inc, 0, &detectors(), &none, 900, 30).await,
            Evidence::Cleared("error_rate on Pod/shop/api-1 cleared 100s ago".into())
        );
        assert!(none.asked.lock().unwrap().is_empty());
    }

    #[test]
    fn only_putting_back_what_this_incident_changed_skips_the_check() {
        let node = ObjectRef::node("n1");
        let mut inc = incident(false, None);
        assert!(!restores(Action::UncordonNode, Some(&node), &inc));
        inc.actions.push(ActionRecord {
            at: 100,
            playbook: "pb".into(),
            step: 1,
            action: Action::CordonNode,
            target: Some(node.clone()),
            risk: Risk::Low,
            result: ActionResult::Ok,
            message: String::new(),
            rollback: false,
        });
        assert!(restores(Action::UncordonNode, Some(&node), &inc));
        assert!(!restores(
            Action::UncordonNode,
            Some(&ObjectRef::node("n2")),
            &inc
        ));
        assert!(!restores(Action::RolloutUndo, Some(&node), &inc));
    }
}
