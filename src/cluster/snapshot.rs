//! The cluster as the pure stages see it: who runs where, who owns whom,
//! what changed recently. Built from objects by either adapter.

use super::ClusterObject;
use crate::model::{ObjectRef, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A pod's labels and annotations. Shared: the watch-fed view and each
/// snapshot built from it hold one copy, not one each.
pub type Labels = Arc<BTreeMap<String, String>>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub node: Option<String>,
    /// Labels and annotations as written in the cluster: untrusted text.
    pub labels: Labels,
    /// The workload that owns the pod, lifted through its ReplicaSet.
    pub owner: Option<ObjectRef>,
}

/// A pod as read, before its owner is lifted to a workload: kept by the
/// watch-fed view, whose events come in any order, so a pod may arrive
/// before its ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRecord {
    /// The controller's kind and name, as the pod names it.
    pub controller: Option<(String, String)>,
    pub node: Option<String>,
    pub labels: Labels,
}

impl PodRecord {
    pub fn of(o: &ClusterObject) -> Self {
        let mut labels = BTreeMap::new();
        for field in ["labels", "annotations"] {
            if let Some(map) = o
                .get(&["metadata", field])
                .and_then(serde_yaml::Value::as_mapping)
            {
                for (k, v) in map {
                    if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                        labels.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        PodRecord {
            controller: o.controller(),
            node: o.str(&["spec", "nodeName"]).map(str::to_string),
            labels: Arc::new(labels),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeInfo {
    pub unschedulable: bool,
    pub control_plane: bool,
    /// The Ready condition; a node that reports none counts as ready.
    pub ready: bool,
    /// Its addresses (InternalIP, hostname): what a node-exporter alert's
    /// `instance` may name instead of the node.
    pub addresses: Vec<String>,
}

impl ClusterSnapshot {
    /// The node `host` names: by name, else by one of its addresses.
    pub fn node_named(&self, host: &str) -> Option<String> {
        if self.nodes.contains_key(host) {
            return Some(host.to_string());
        }
        self.nodes
            .iter()
            .find(|(_, n)| n.addresses.iter().any(|a| a == host))
            .map(|(name, _)| name.clone())
    }
}

impl NodeInfo {
    pub fn of(o: &ClusterObject) -> Self {
        let unschedulable = o
            .get(&["spec", "unschedulable"])
            .and_then(serde_yaml::Value::as_bool)
            .unwrap_or(false);
        let labels = o.get(&["metadata", "labels"]);
        let control_plane = labels.is_some_and(|l| {
            l.get("node-role.kubernetes.io/control-plane").is_some()
                || l.get("node-role.kubernetes.io/master").is_some()
        });
        let ready = o
            .get(&["status", "conditions"])
            .and_then(serde_yaml::Value::as_sequence)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(|t| t.as_str()) == Some("Ready"))
            })
            .is_none_or(|c| c.get("status").and_then(|s| s.as_str()) == Some("True"));
        let addresses = o
            .get(&["status", "addresses"])
            .and_then(serde_yaml::Value::as_sequence)
            .map(|list| {
                list.iter()
                    .filter_map(|a| a.get("address").and_then(|x| x.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        NodeInfo {
            unschedulable,
            control_plane,
            ready,
            addresses,
        }
    }
}

/// The Deployment a ReplicaSet belongs to, as its controller reference says.
pub fn replica_set_owner(o: &ClusterObject) -> Option<ObjectRef> {
    let r = &o.reference;
    match (o.controller(), &r.namespace) {
        (Some((kind, name)), Some(ns)) if r.is("ReplicaSet") => {
            Some(ObjectRef::namespaced(&kind, ns, &name))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadInfo {
    pub replicas: Option<i64>,
    /// `status.availableReplicas`, when the object has a status.
    pub available: Option<i64>,
    pub revision: Option<i64>,
    pub paused: bool,
}

impl WorkloadInfo {
    pub fn of(o: &ClusterObject) -> Self {
        WorkloadInfo {
            replicas: o
                .get(&["spec", "replicas"])
                .and_then(serde_yaml::Value::as_i64),
            available: o
                .get(&["status", "availableReplicas"])
                .and_then(serde_yaml::Value::as_i64),
            revision: o
                .annotation("deployment.kubernetes.io/revision")
                .and_then(|v| v.parse().ok()),
            paused: o
                .get(&["spec", "paused"])
                .and_then(serde_yaml::Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// A change to a workload: a deploy, a config change, a rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeEvent {
    pub at: Timestamp,
    pub kind: String,
    pub object: ObjectRef,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSnapshot {
    pub pods: BTreeMap<ObjectRef, PodInfo>,
    pub nodes: BTreeMap<String, NodeInfo>,
    pub workloads: BTreeMap<ObjectRef, WorkloadInfo>,
    /// ReplicaSet -> the Deployment that owns it.
    pub replica_set_owners: BTreeMap<ObjectRef, ObjectRef>,
    pub changes: Vec<ChangeEvent>,
}

const WORKLOAD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
];

impl ClusterSnapshot {
    pub fn from_objects<'a, I>(objects: I, changes: Vec<ChangeEvent>) -> Self
    where
        I: IntoIterator<Item = &'a ClusterObject>,
    {
        let mut snap = ClusterSnapshot {
            changes,
            ..Default::default()
        };
        // Owners first: a pod is lifted to its Deployment through them.
        let mut pods = Vec::new();
        for o in objects {
            if o.reference.is("Pod") {
                pods.push(o);
            } else {
                snap.add(o);
            }
        }
        for p in pods {
            snap.add(p);
        }
        snap
    }

    /// Adds one object. A pod's owners (its ReplicaSet, their Deployment)
    /// must be added before it, so pods can be read a page at a time.
    pub fn add(&mut self, o: &ClusterObject) {
        let r = &o.reference;
        match r.kind.as_str() {
            "Node" => {
                self.nodes.insert(r.name.clone(), NodeInfo::of(o));
            }
            "Pod" => self.add_pod(r, PodRecord::of(o)),
            k if WORKLOAD_KINDS.contains(&k) => {
                if let Some(owner) = replica_set_owner(o) {
                    self.replica_set_owners.insert(r.clone(), owner);
                }
                self.workloads.insert(r.clone(), WorkloadInfo::of(o));
            }
            _ => {}
        }
    }

    /// Adds one pod, its owner lifted through the workloads already added.
    pub fn add_pod(&mut self, r: &ObjectRef, p: PodRecord) {
        let owner = p
            .controller
            .and_then(|(kind, name)| lift_owner(self, r, &kind, &name));
        self.pods.insert(
            r.clone(),
            PodInfo {
                node: p.node,
                owner,
                labels: p.labels,
            },
        );
    }

    /// Replicas of `workload` available now: its status when it has one,
    /// else the pods it owns that are not on a NotReady node.
    pub fn available(&self, workload: &ObjectRef) -> i64 {
        if let Some(a) = self.workloads.get(workload).and_then(|w| w.available) {
            return a;
        }
        let on_ready = |p: &PodInfo| {
            p.node
                .as_ref()
                .is_none_or(|n| self.nodes.get(n).is_none_or(|n| n.ready))
        };
        self.pods
            .values()
            .filter(|p| p.owner.as_ref() == Some(workload) && on_ready(p))
            .count() as i64
    }

    /// The workload an object belongs to: a pod's owner, or the object itself.
    pub fn workload_of(&self, object: &ObjectRef) -> Option<ObjectRef> {
        if object.is("Pod") {
            match self.pods.get(object) {
                Some(p) => p.owner.clone(),
                None => self.workload_by_name(object),
            }
        } else if WORKLOAD_KINDS.contains(&object.kind.as_str()) {
            Some(object.clone())
        } else {
            None
        }
    }

    /// A pod medic has not seen (created after the snapshot, or named only
    /// by metrics) is lifted by its name, `<replicaset>-<suffix>` with the
    /// ReplicaSet named `<deployment>-<hash>`, when that ReplicaSet or
    /// Deployment is known.
    fn workload_by_name(&self, pod: &ObjectRef) -> Option<ObjectRef> {
        let ns = pod.namespace.as_deref()?;
        let (rs_name, _) = pod.name.rsplit_once('-')?;
        let rs = ObjectRef::namespaced("ReplicaSet", ns, rs_name);
        if let Some(owner) = self.replica_set_owners.get(&rs) {
            return Some(owner.clone());
        }
        let (deployment, _) = rs_name.rsplit_once('-')?;
        let d = ObjectRef::namespaced("Deployment", ns, deployment);
        self.workloads.contains_key(&d).then_some(d)
    }

    /// What an incident reasons about for a signal target: a pod's owning
    /// workload when known, else the target itself.
    pub fn subject_of(&self, target: &ObjectRef) -> ObjectRef {
        self.workload_of(target).unwrap_or_else(|| target.clone())
    }

    pub fn node_of(&self, pod: &ObjectRef) -> Option<ObjectRef> {
        self.pods
            .get(pod)
            .and_then(|p| p.node.as_deref())
            .map(ObjectRef::node)
    }

    /// Pods of `workload`, in name order.
    pub fn pods_of(&self, workload: &ObjectRef) -> Vec<&ObjectRef> {
        self.pods
            .iter()
            .filter(|(_, p)| p.owner.as_ref() == Some(workload))
            .map(|(r, _)| r)
            .collect()
    }

    /// Workloads with a pod on `node`.
    pub fn workloads_on(&self, node: &str) -> Vec<ObjectRef> {
        let mut out: Vec<ObjectRef> = self
            .pods
            .values()
            .filter(|p| p.node.as_deref() == Some(node))
            .filter_map(|p| p.owner.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The latest change to `object` at or before `at`.
    pub fn last_change(&self, object: &ObjectRef, at: Timestamp) -> Option<&ChangeEvent> {
        self.changes
            .iter()
            .filter(|c| &c.object == object && c.at <= at)
            .max_by_key(|c| c.at)
    }
}

/// Follows a pod's controller to its workload: a ReplicaSet is lifted to
/// the Deployment that owns it (read from the ReplicaSet, or from the name
/// `<deployment>-<hash>` when the ReplicaSet is not among the objects).
fn lift_owner(
    snap: &ClusterSnapshot,
    pod: &ObjectRef,
    kind: &str,
    name: &str,
) -> Option<ObjectRef> {
    let ns = pod.namespace.as_deref()?;
    if kind != "ReplicaSet" {
        return Some(ObjectRef::namespaced(kind, ns, name));
    }
    let rs = ObjectRef::namespaced("ReplicaSet", ns, name);
    if snap.workloads.contains_key(&rs) {
        return Some(snap.replica_set_owners.get(&rs).cloned().unwrap_or(rs));
    }
    if let Some((deployment, _hash)) = name.rsplit_once('-') {
        let d = ObjectRef::namespaced("Deployment", ns, deployment);
        if snap.workloads.contains_key(&d) {
            return Some(d);
        }
    }
    Some(rs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(yaml: &str) -> Vec<ClusterObject> {
        let values: Vec<serde_yaml::Value> = serde_yaml::from_str(yaml).unwrap();
        values
            .into_iter()
            .map(|v| ClusterObject::from_value(v).unwrap())
            .collect()
    }

    #[test]
    fn a_node_is_found_by_its_name_or_one_of_its_addresses() {
        let objs = objects(
            "- {apiVersion: v1, kind: Node, metadata: {name: worker-1}, status: {addresses: [{type: InternalIP, address: 10.0.1.5}, {type: Hostname, address: ip-10-0-1-5}]}}\n- {apiVersion: v1, kind: Node, metadata: {name: worker-2}}\n",
        );
        let snap = ClusterSnapshot::from_objects(objs.iter(), vec![]);
        assert_eq!(snap.node_named("worker-2").as_deref(), Some("worker-2"));
        assert_eq!(snap.node_named("10.0.1.5").as_deref(), Some("worker-1"));
        assert_eq!(snap.node_named("ip-10-0-1-5").as_deref(), Some("worker-1"));
        assert_eq!(snap.node_named("10.0.9.9"), None);
    }

    #[test]
    fn lifts_pods_to_deployments_through_replicasets() {
        let snap = ClusterSnapshot::from_objects(
            &objects(
                r#"
- {kind: Node, metadata: {name: n1, labels: {node-role.kubernetes.io/control-plane: ""}}, spec: {unschedulable: true}}
- {kind: Deployment, metadata: {name: api, namespace: p, annotations: {deployment.kubernetes.io/revision: "3"}}, spec: {replicas: 2}}
- {kind: ReplicaSet, metadata: {name: api-7c9, namespace: p, ownerReferences: [{kind: Deployment, name: api, controller: true}]}}
- {kind: Pod, metadata: {name: api-7c9-x, namespace: p, ownerReferences: [{kind: ReplicaSet, name: api-7c9, controller: true}]}, spec: {nodeName: n1}}
- {kind: Pod, metadata: {name: api-5b1-y, namespace: p, ownerReferences: [{kind: ReplicaSet, name: api-5b1}]}}
- {kind: Pod, metadata: {name: db-0, namespace: p, ownerReferences: [{kind: StatefulSet, name: db}]}}
- {kind: Pod, metadata: {name: lonely, namespace: p}}
"#,
            ),
            vec![],
        );
        let api = ObjectRef::namespaced("Deployment", "p", "api");
        let pod = |n: &str| ObjectRef::namespaced("Pod", "p", n);
        assert_eq!(snap.workload_of(&pod("api-7c9-x")), Some(api.clone()));
        assert_eq!(
            snap.workload_of(&pod("api-5b1-y")),
            Some(api.clone()),
            "by name"
        );
        assert_eq!(
            snap.workload_of(&pod("db-0")),
            Some(ObjectRef::namespaced("StatefulSet", "p", "db"))
        );
        assert_eq!(snap.subject_of(&pod("lonely")), pod("lonely"));
        // Pods not among the objects are lifted by name when their workload is known.
        assert_eq!(snap.workload_of(&pod("api-7c9-new01")), Some(api.clone()));
        assert_eq!(snap.workload_of(&pod("api-9f9-new02")), Some(api.clone()));
        assert_eq!(snap.workload_of(&pod("other-7c9-x")), None);
        assert_eq!(snap.node_of(&pod("api-7c9-x")), Some(ObjectRef::node("n1")));
        assert_eq!(snap.workloads_on("n1"), vec![api.clone()]);
        assert_eq!(snap.workloads[&api].revision, Some(3));
        assert!(snap.nodes["n1"].unschedulable && snap.nodes["n1"].control_plane);
    }
}
