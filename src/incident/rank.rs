//! Ranking root-cause candidates. Pure.
//!
//! A candidate is the workload (or node, or other object) behind a signal.
//! Order, strongest first:
//! 1. not explained by another degraded candidate it depends on: a callee
//!    explains its callers (even when they alerted first: the design card's
//!    cascade), and a workload on a node explains the node's pressure; but a
//!    callee showing only symptoms (latency, errors) cannot explain a caller
//!    whose own resources saturate;
//! 2. its own resources saturate (a `resource` detector fired on it);
//! 3. changed (deployed, rolled back, restarted) shortly before its onset;
//! 4. earliest onset;
//! 5. strongest signal (largest value), then name, so the order is stable.

use super::{Incident, Topology};
use crate::cluster::{ChangeEvent, ClusterSnapshot};
use crate::model::{ObjectRef, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// What the ranking knows of one candidate: the facts its order comes
/// from, kept so the diagnosis can say why it ranks where it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment<'a> {
    /// Its earliest signal's onset.
    pub onset: Timestamp,
    /// A `resource` detector fired on it.
    pub resource: bool,
    /// Its largest signal value.
    pub strength: f64,
    /// A degraded candidate it depends on, which explains it (rule 1).
    pub explained_by: Option<ObjectRef>,
    /// Its last change, when within the change window before its onset.
    pub changed: Option<&'a ChangeEvent>,
}

/// The facts behind the ranking, for every object with a signal in the incident.
pub fn assess<'a>(
    incident: &Incident,
    snap: &'a ClusterSnapshot,
    topo: &Topology,
    change_window: i64,
    resource: &BTreeSet<String>,
) -> BTreeMap<ObjectRef, Assessment<'a>> {
    let mut cands: BTreeMap<ObjectRef, Assessment<'a>> = BTreeMap::new();
    for s in &incident.signals {
        // Looked up first: most signals are about a subject already seen.
        if !cands.contains_key(&s.subject) {
            cands.insert(
                s.subject.clone(),
                Assessment {
                    onset: s.signal.onset,
                    resource: false,
                    strength: f64::MIN,
                    explained_by: None,
                    changed: None,
                },
            );
        }
        let Some(c) = cands.get_mut(&s.subject) else {
            continue; // inserted just above
        };
        c.onset = c.onset.min(s.signal.onset);
        c.resource |= resource.contains(&s.signal.name);
        c.strength = c.strength.max(s.signal.value);
    }
    let explained: Vec<Option<ObjectRef>> = cands
        .iter()
        .map(|(c, info)| {
            let depends: BTreeSet<ObjectRef> = if c.is("Node") {
                snap.workloads_on(&c.name).into_iter().collect()
            } else {
                topo.downstream(c)
            };
            depends.into_iter().find(|d| {
                d != c
                    && cands
                        .get(d)
                        .is_some_and(|dep| dep.resource || !info.resource)
            })
        })
        .collect();
    for ((c, info), by) in cands.iter_mut().zip(explained) {
        info.explained_by = by;
        info.changed = snap
            .last_change(c, info.onset)
            .filter(|ch| info.onset - ch.at <= change_window);
    }
    cands
}

/// `resource` names the detectors that show a target's own resources saturating.
pub fn rank_root_causes(
    incident: &Incident,
    snap: &ClusterSnapshot,
    topo: &Topology,
    change_window: i64,
    resource: &BTreeSet<String>,
) -> Vec<ObjectRef> {
    let cands = assess(incident, snap, topo, change_window, resource);
    let mut keyed: Vec<(&ObjectRef, &Assessment)> = cands.iter().collect();
    // (explained, no resource signal, no recent change, onset): smaller
    // first; then the strongest signal, then the name, so the order is stable.
    keyed.sort_by(|(a, x), (b, y)| {
        let key = |i: &Assessment| {
            (
                i.explained_by.is_some(),
                !i.resource,
                i.changed.is_none(),
                i.onset,
            )
        };
        key(x)
            .cmp(&key(y))
            .then(
                y.strength
                    .partial_cmp(&x.strength)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(a.cmp(b))
    });
    keyed.into_iter().map(|(c, _)| c.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ChangeEvent, PodInfo};
    use crate::incident::{SignalRecord, test_record as record};
    use crate::model::Severity;

    fn incident(signals: Vec<SignalRecord>) -> Incident {
        let mut i = Incident::new("i", 0, Severity::High);
        i.signals = signals;
        i
    }

    fn d(n: &str) -> ObjectRef {
        ObjectRef::namespaced("Deployment", "p", n)
    }

    #[test]
    fn a_degraded_callee_outranks_the_caller_that_alerted_first() {
        let inc = incident(vec![
            record("Deployment/p/frontend", "Pod/p/frontend-1", 100),
            record("Deployment/p/checkout", "Pod/p/checkout-1", 200),
            record("Deployment/p/orders", "Pod/p/orders-1", 300),
        ]);
        let topo = Topology::new([(d("frontend"), d("checkout")), (d("checkout"), d("orders"))]);
        let ranked = rank_root_causes(
            &inc,
            &ClusterSnapshot::default(),
            &topo,
            3600,
            &BTreeSet::new(),
        );
        assert_eq!(ranked, vec![d("orders"), d("frontend"), d("checkout")]);
    }

    #[test]
    fn a_workload_explains_its_nodes_pressure() {
        let inc = incident(vec![
            record("Node/n1", "Node/n1", 100),
            record("Deployment/p/worker", "Pod/p/worker-1", 400),
        ]);
        let snap = ClusterSnapshot {
            pods: BTreeMap::from([(
                "Pod/p/worker-1".parse().unwrap(),
                PodInfo {
                    node: Some("n1".into()),
                    owner: Some(d("worker")),
                    ..Default::default()
                },
            )]),
            ..Default::default()
        };
        let ranked = rank_root_causes(&inc, &snap, &Topology::default(), 3600, &BTreeSet::new());
        assert_eq!(ranked, vec![d("worker"), ObjectRef::node("n1")]);
    }

    #[test]
    fn a_symptom_in_a_callee_does_not_explain_a_caller_that_saturates() {
        let mut inc = incident(vec![
            record("Deployment/p/frontend", "Pod/p/frontend-1", 200),
            record("Deployment/p/currency", "Pod/p/currency-1", 100),
        ]);
        inc.signals[0].signal.name = "cpu_saturation".into();
        inc.signals[1].signal.name = "latency_anomaly".into();
        let topo = Topology::new([(d("frontend"), d("currency"))]);
        let resource = BTreeSet::from(["cpu_saturation".to_string()]);
        let ranked = rank_root_causes(&inc, &ClusterSnapshot::default(), &topo, 3600, &resource);
        assert_eq!(ranked, vec![d("frontend"), d("currency")]);
        // Without the resource signal the degraded callee explains the caller.
        let ranked = rank_root_causes(
            &inc,
            &ClusterSnapshot::default(),
            &topo,
            3600,
            &BTreeSet::new(),
        );
        assert_eq!(ranked, vec![d("currency"), d("frontend")]);
    }

    #[test]
    fn a_recent_change_outranks_an_earlier_onset() {
        let inc = incident(vec![
            record("Deployment/p/a", "Pod/p/a-1", 100),
            record("Deployment/p/b", "Pod/p/b-1", 200),
        ]);
        let change = |at| ChangeEvent {
            at,
            kind: "deploy".into(),
            object: d("b"),
            message: String::new(),
        };
        let snap = ClusterSnapshot {
            changes: vec![change(-1000)],
            ..Default::default()
        };
        assert_eq!(
            rank_root_causes(&inc, &snap, &Topology::default(), 3600, &BTreeSet::new()),
            vec![d("b"), d("a")]
        );
        // A change outside the window does not count.
        let snap = ClusterSnapshot {
            changes: vec![change(-5000)],
            ..Default::default()
        };
        assert_eq!(
            rank_root_causes(&inc, &snap, &Topology::default(), 3600, &BTreeSet::new()),
            vec![d("a"), d("b")]
        );
    }
}
