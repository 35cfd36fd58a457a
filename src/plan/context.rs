//! The variables conditions and queries see, built from the incident.

use crate::cluster::ClusterSnapshot;
use crate::incident::Incident;
use crate::model::Timestamp;
use crate::playbook::{EvalContext, IncidentVars, OwnerVars, SignalVars, TargetVars};

/// The context of the incident's `signal`-th signal at `now`.
pub fn build_context(
    incident: &Incident,
    signal: usize,
    snap: &ClusterSnapshot,
    now: Timestamp,
) -> EvalContext {
    let Some(record) = incident.signals.get(signal) else {
        return EvalContext::default();
    };
    let s = &record.signal;
    let target = &s.target;
    let node = if target.is("Node") {
        target.name.clone()
    } else {
        snap.node_of(target).map(|n| n.name).unwrap_or_default()
    };
    let owner = snap.workload_of(target).map(|w| {
        // Only a deploy made before the trouble began can have caused it: a
        // plan must not roll back a deploy made after (a fix being tried).
        let deployed = snap
            .changes
            .iter()
            .filter(|c| c.object == w && c.kind == "deploy" && c.at <= s.onset.min(now))
            .map(|c| c.at)
            .max();
        OwnerVars {
            kind: w.kind.clone(),
            namespace: w.namespace.clone().unwrap_or_default(),
            name: w.name.clone(),
            replicas: snap.workloads.get(&w).and_then(|i| i.replicas).unwrap_or(0),
            deployed_ago_seconds: deployed.map(|at| now - at),
        }
    });
    EvalContext {
        signal: SignalVars {
            name: s.name.clone(),
            value: s.value,
            severity: s.severity.to_string(),
            labels: s.labels.clone(),
            age_seconds: now - s.fired_at,
        },
        target: TargetVars {
            reference: target.to_string(),
            kind: target.kind.clone(),
            namespace: target.namespace.clone().unwrap_or_default(),
            name: target.name.clone(),
            node,
            owner: owner.unwrap_or_default(),
        },
        incident: IncidentVars {
            id: incident.id.clone(),
            severity: incident.severity.to_string(),
            signals: incident.signals.len() as i64,
            root_cause: incident
                .root_cause()
                .map(ToString::to_string)
                .unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ChangeEvent, ClusterObject};
    use crate::incident::SignalRecord;
    use crate::model::{ObjectRef, Severity};
    use crate::signal::Signal;

    fn object(yaml: &str) -> ClusterObject {
        ClusterObject::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    /// A crash loop on shop/api's pod from `onset`, with deploys at `deploys`.
    fn situation(onset: Timestamp, deploys: &[Timestamp]) -> (Incident, ClusterSnapshot) {
        let objects = [
            object(
                "{apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}, spec: {replicas: 2}}",
            ),
            object(
                "{apiVersion: apps/v1, kind: ReplicaSet, metadata: {name: api-7c9, namespace: shop, ownerReferences: [{kind: Deployment, name: api, controller: true}]}}",
            ),
            object(
                "{apiVersion: v1, kind: Pod, metadata: {name: api-7c9-x, namespace: shop, ownerReferences: [{kind: ReplicaSet, name: api-7c9, controller: true}]}, spec: {nodeName: n1}}",
            ),
        ];
        let changes = deploys
            .iter()
            .map(|&at| ChangeEvent {
                at,
                kind: "deploy".into(),
                object: ObjectRef::namespaced("Deployment", "shop", "api"),
                message: String::new(),
            })
            .collect();
        let snap = ClusterSnapshot::from_objects(objects.iter(), changes);
        let mut inc = Incident::new("inc-1", onset + 120, Severity::High);
        inc.signals.push(SignalRecord {
            signal: Signal {
                name: "crash_loop".into(),
                target: ObjectRef::namespaced("Pod", "shop", "api-7c9-x"),
                severity: Severity::High,
                value: 3.0,
                labels: Default::default(),
                onset,
                fired_at: onset + 120,
                onset_value: 3.0,
                peak: 3.0,
                slope_per_min: 0.0,
                from_alert: false,
            },
            subject: ObjectRef::namespaced("Deployment", "shop", "api"),
            cleared_at: None,
        });
        (inc, snap)
    }

    #[test]
    fn a_deploy_before_the_onset_counts_and_one_after_it_does_not() {
        // Deployed at 1000, trouble from 1300: the deploy may be the cause.
        let (inc, snap) = situation(1300, &[1000]);
        let ctx = build_context(&inc, 0, &snap, 1600);
        assert_eq!(ctx.target.owner.deployed_ago_seconds, Some(600));
        // Trouble from 1300, a deploy at 1400 (someone trying a fix): it
        // did not cause the trouble and is not the plan's to roll back.
        let (inc, snap) = situation(1300, &[1400]);
        let ctx = build_context(&inc, 0, &snap, 1600);
        assert_eq!(ctx.target.owner.deployed_ago_seconds, None);
        // Both: the one before the onset is the one that counts.
        let (inc, snap) = situation(1300, &[1000, 1400]);
        let ctx = build_context(&inc, 0, &snap, 1600);
        assert_eq!(ctx.target.owner.deployed_ago_seconds, Some(600));
        let when =
            crate::playbook::Condition::compile("target.owner.deployedWithin('1h')").unwrap();
        assert!(when.eval(&ctx).unwrap());
        let (inc, snap) = situation(1300, &[1400]);
        assert!(!when.eval(&build_context(&inc, 0, &snap, 1600)).unwrap());
    }
}
