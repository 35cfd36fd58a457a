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
        let deployed = snap
            .changes
            .iter()
            .filter(|c| c.object == w && c.kind == "deploy" && c.at <= now)
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
