//! Placing a new signal: into the open incident it belongs to, or a new one.
//! Pure: the cluster snapshot, topology and time are arguments.

use super::{Incident, IncidentIndex, SignalRecord, Stage, Topology};
use crate::cluster::ClusterSnapshot;
use crate::model::{ObjectRef, Secs, format_secs};
use crate::signal::Signal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// How far apart in the dependency graph two workloads may be and still
    /// share an incident.
    pub topology_hops: usize,
    /// Wait this long after an incident opens before planning, so signals
    /// that arrive together are ranked together.
    pub settle: Secs,
    /// An incident resolves once all its signals have been clear this long.
    pub resolve_after: Secs,
    /// A change this close before a signal's onset counts as its suspect.
    pub change_window: Secs,
    /// The root causes of incidents opened this long before an incident
    /// are listed after its own candidates, as suspects from history.
    pub suspect_window: Secs,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            topology_hops: 2,
            settle: Secs(60),
            resolve_after: Secs(300),
            change_window: Secs(3600),
            suspect_window: Secs(1800),
        }
    }
}

/// What a signal touches: its target, the workload behind it, its node.
struct Footprint {
    target: ObjectRef,
    subject: ObjectRef,
    node: Option<ObjectRef>,
}

impl Footprint {
    fn of(signal: &Signal, snap: &ClusterSnapshot) -> Self {
        Footprint {
            target: signal.target.clone(),
            subject: snap.subject_of(&signal.target),
            node: snap.node_of(&signal.target),
        }
    }
}

fn belongs(
    fp: &Footprint,
    inc: &Incident,
    snap: &ClusterSnapshot,
    topo: &Topology,
    hops: usize,
) -> bool {
    // Called for every open incident with every new signal: no allocation
    // on the common paths.
    let has_subject = |o: &ObjectRef| inc.signals.iter().any(|s| &s.subject == o);
    if has_subject(&fp.subject) || inc.affected.contains(&fp.target) && !fp.target.is("Node") {
        return true;
    }
    // Every signal has cleared and the incident is only waiting to resolve:
    // a re-fire on its own objects (above) is a flap and joins it, but
    // trouble elsewhere is new and gets an incident of its own.
    if inc.signals.iter().all(|s| s.cleared_at.is_some()) {
        return false;
    }
    if fp.target.is("Node")
        && inc
            .signals
            .iter()
            .any(|s| snap.node_of(&s.signal.target).as_ref() == Some(&fp.target))
    {
        return true;
    }
    if let Some(node) = &fp.node
        && has_subject(node)
    {
        return true;
    }
    if topo.is_empty() {
        return false;
    }
    let subjects: BTreeSet<&ObjectRef> = inc.signals.iter().map(|s| &s.subject).collect();
    subjects.iter().any(|s| topo.within(s, &fp.subject, hops))
}

/// Places `signal` in the first open incident (in order) it belongs to, or
/// a new one; returns its position. `index` names the incidents worth
/// checking: only those touching the signal's objects or its neighbours in
/// the call graph can match, except for a node signal, which is checked
/// against every incident (it matches through the pods on the node).
pub fn correlate(
    incidents: &mut Vec<Incident>,
    index: &mut IncidentIndex,
    signal: Signal,
    snap: &ClusterSnapshot,
    topo: &Topology,
    config: &CorrelationConfig,
) -> usize {
    let fp = Footprint::of(&signal, snap);
    let now = signal.fired_at;
    index.sync(incidents);
    let matches =
        |inc: &Incident| inc.is_open() && belongs(&fp, inc, snap, topo, config.topology_hops);
    let found = if fp.target.is("Node") {
        incidents.iter().position(matches)
    } else {
        let mut objects = vec![&fp.subject, &fp.target];
        objects.extend(fp.node.as_ref());
        index
            .candidates(&objects, &fp.subject, topo, config.topology_hops)
            .into_iter()
            .find(|&i| incidents.get(i).is_some_and(matches))
    };
    let idx = match found {
        Some(i) => i,
        None => {
            let id = format!("inc-{}-{}", now, incidents.len() + 1);
            incidents.push(Incident::new(id, now, signal.severity));
            index.opened();
            incidents.len() - 1
        }
    };
    let inc = &mut incidents[idx];
    let opened = inc.signals.is_empty();
    let text = format!(
        "{} on {} (value {}, {}, condition held since {})",
        signal.name,
        signal.target,
        fmt_value(signal.value),
        signal.severity,
        format_secs(now - signal.onset)
    );
    inc.record(now, Stage::Detect, text);
    if opened {
        let id = inc.id.clone();
        inc.record(
            now,
            Stage::Open,
            format!("incident {id} opened, severity {}", signal.severity),
        );
    }
    inc.severity = inc.severity.max(signal.severity);
    index.add(&fp.target, idx);
    index.add(&fp.subject, idx);
    inc.affected.insert(fp.target.clone());
    inc.affected.insert(fp.subject.clone());
    if let Some(node) = fp.node {
        index.add(&node, idx);
        inc.affected.insert(node);
    }
    inc.signals.push(SignalRecord {
        signal,
        subject: fp.subject,
        cleared_at: None,
    });
    idx
}

/// A signal value for people: no more digits than it needs.
pub fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ClusterSnapshot, PodInfo};
    use crate::model::Severity;
    use std::collections::BTreeMap;

    fn pod(name: &str, owner: &str, node: &str) -> (ObjectRef, PodInfo) {
        (
            ObjectRef::namespaced("Pod", "p", name),
            PodInfo {
                node: Some(node.into()),
                owner: Some(ObjectRef::namespaced("Deployment", "p", owner)),
                ..Default::default()
            },
        )
    }

    fn snap() -> ClusterSnapshot {
        ClusterSnapshot {
            pods: BTreeMap::from([
                pod("fe-1", "fe", "n1"),
                pod("orders-1", "orders", "n2"),
                pod("batch-1", "batch", "n1"),
                pod("fe-2", "fe", "n2"),
            ]),
            ..Default::default()
        }
    }

    fn signal(name: &str, target: &str, at: i64) -> Signal {
        Signal {
            name: name.into(),
            target: target.parse().unwrap(),
            severity: Severity::High,
            value: 1.0,
            labels: BTreeMap::new(),
            onset: at - 60,
            fired_at: at,
            onset_value: 1.0,
            peak: 1.0,
            slope_per_min: 0.0,
            from_alert: false,
        }
    }

    fn topo() -> Topology {
        Topology::new([(
            "Deployment/p/fe".parse().unwrap(),
            "Deployment/p/orders".parse().unwrap(),
        )])
    }

    #[test]
    fn groups_by_owner_node_and_topology() {
        let mut incs = Vec::new();
        let mut idx = IncidentIndex::default();
        let cfg = CorrelationConfig::default();
        let s = snap();
        assert_eq!(
            correlate(
                &mut incs,
                &mut idx,
                signal("latency_anomaly", "Pod/p/fe-1", 100),
                &s,
                &topo(),
                &cfg
            ),
            0
        );
        // the other replica of the same workload
        assert_eq!(
            correlate(
                &mut incs,
                &mut idx,
                signal("error_rate", "Pod/p/fe-2", 110),
                &s,
                &topo(),
                &cfg
            ),
            0
        );
        // a callee of the workload
        assert_eq!(
            correlate(
                &mut incs,
                &mut idx,
                signal("connection_pool_exhaustion", "Pod/p/orders-1", 120),
                &s,
                &topo(),
                &cfg
            ),
            0
        );
        // the node one of its pods runs on
        assert_eq!(
            correlate(
                &mut incs,
                &mut idx,
                signal("node_memory_pressure", "Node/n1", 130),
                &s,
                &topo(),
                &cfg
            ),
            0
        );
        assert_eq!(incs.len(), 1);
        assert_eq!(incs[0].signals.len(), 4);
        assert!(incs[0].affected.contains(&ObjectRef::node("n2")));
    }

    #[test]
    fn workloads_that_only_share_a_node_stay_apart() {
        let mut incs = Vec::new();
        let mut idx = IncidentIndex::default();
        let cfg = CorrelationConfig::default();
        let s = snap();
        correlate(
            &mut incs,
            &mut idx,
            signal("crash_loop", "Pod/p/fe-1", 100),
            &s,
            &Topology::default(),
            &cfg,
        );
        let i = correlate(
            &mut incs,
            &mut idx,
            signal("crash_loop", "Pod/p/batch-1", 100),
            &s,
            &Topology::default(),
            &cfg,
        );
        assert_eq!(i, 1);
        assert_eq!(
            incs[1].timeline[1].text,
            format!("incident {} opened, severity high", incs[1].id)
        );
    }

    #[test]
    fn a_resolved_incident_is_not_reopened() {
        let mut incs = Vec::new();
        let mut idx = IncidentIndex::default();
        let cfg = CorrelationConfig::default();
        let s = snap();
        correlate(
            &mut incs,
            &mut idx,
            signal("crash_loop", "Pod/p/fe-1", 100),
            &s,
            &Topology::default(),
            &cfg,
        );
        incs[0].resolved_at = Some(500);
        assert_eq!(
            correlate(
                &mut incs,
                &mut idx,
                signal("crash_loop", "Pod/p/fe-1", 900),
                &s,
                &Topology::default(),
                &cfg
            ),
            1
        );
    }

    #[test]
    fn a_quiet_incident_takes_back_a_flap_but_not_new_trouble_next_door() {
        let mut incs = Vec::new();
        let mut idx = IncidentIndex::default();
        let cfg = CorrelationConfig::default();
        let s = snap();
        let mut place = |incs: &mut Vec<Incident>, target: &str, at: i64| {
            correlate(
                incs,
                &mut idx,
                signal("latency_anomaly", target, at),
                &s,
                &topo(),
                &cfg,
            )
        };
        let clear = |incs: &mut Vec<Incident>, at: i64| {
            for r in &mut incs[0].signals {
                r.cleared_at = Some(at);
            }
        };
        place(&mut incs, "Pod/p/fe-1", 100);
        clear(&mut incs, 200);
        // All clear, waiting to resolve: the same pod flapping joins it,
        assert_eq!(place(&mut incs, "Pod/p/fe-1", 230), 0);
        clear(&mut incs, 260);
        // and so does the other replica of the workload it is about,
        assert_eq!(place(&mut incs, "Pod/p/fe-2", 270), 0);
        clear(&mut incs, 280);
        // but its callee's new trouble (which would join while fe's signals
        // fire) opens an incident of its own.
        assert_eq!(place(&mut incs, "Pod/p/orders-1", 300), 1);
        assert_eq!(incs[0].signals.len(), 3);
    }

    /// The indexed search finds the incident the plain scan would, in a
    /// mix of pods, workloads, nodes and call-graph neighbours, with
    /// incidents resolving and being forgotten along the way.
    #[test]
    fn the_index_finds_what_a_scan_of_every_incident_finds() {
        let cfg = CorrelationConfig::default();
        let mut pods = BTreeMap::new();
        for i in 0..40 {
            let (r, info) = pod(
                &format!("w{}-{i}", i % 9),
                &format!("w{}", i % 9),
                &format!("n{}", i % 5),
            );
            pods.insert(r, info);
        }
        let s = ClusterSnapshot {
            pods,
            ..Default::default()
        };
        let d = |i: usize| ObjectRef::namespaced("Deployment", "p", &format!("w{i}"));
        let topo = Topology::new([(d(0), d(1)), (d(1), d(2)), (d(3), d(4)), (d(6), d(7))]);
        let targets: Vec<String> = (0..40)
            .map(|i| format!("Pod/p/w{}-{i}", i % 9))
            .chain((0..5).map(|n| format!("Node/n{n}")))
            .chain(["Deployment/p/w8".to_string(), "Pod/p/stray".to_string()])
            .collect();
        for t in [&Topology::default(), &topo] {
            let (mut indexed, mut scanned) = (Vec::new(), Vec::new());
            let mut idx = IncidentIndex::default();
            let mut seed = 7u64;
            let mut opened = 0;
            for step in 0..400i64 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let target = &targets[(seed >> 33) as usize % targets.len()];
                let sig = signal("x", target, 100 + step);
                let fp = Footprint::of(&sig, &s);
                let expected = scanned.iter().position(|inc: &Incident| {
                    inc.is_open() && belongs(&fp, inc, &s, t, cfg.topology_hops)
                });
                let got = correlate(&mut indexed, &mut idx, sig.clone(), &s, t, &cfg);
                let want = match expected {
                    Some(i) => i,
                    None => {
                        opened += 1;
                        scanned.push(Incident::new(
                            format!("inc-{}-{}", sig.fired_at, scanned.len() + 1),
                            sig.fired_at,
                            sig.severity,
                        ));
                        scanned.len() - 1
                    }
                };
                assert_eq!(got, want, "step {step}: {target}");
                scanned[want].affected = indexed[want].affected.clone();
                scanned[want].signals = indexed[want].signals.clone();
                if step % 37 == 36 {
                    // One resolves; every so often the resolved are forgotten.
                    let k = (seed >> 40) as usize % indexed.len();
                    indexed[k].resolved_at = Some(100 + step);
                    scanned[k].resolved_at = Some(100 + step);
                    if step % 74 == 73 {
                        indexed.retain(Incident::is_open);
                        scanned.retain(Incident::is_open);
                        idx = IncidentIndex::default();
                    }
                }
            }
            assert!(opened > 10, "too few incidents to compare: {opened}");
        }
    }
}
