//! `SimCluster`: a fixture's objects in memory. Actions change them the way
//! the API server would, so later steps and checks see the result.

use super::{ActionRequest, ChangeEvent, Cluster, ClusterError, ClusterObject, ClusterSnapshot};
use crate::act::Action;
use crate::model::ObjectRef;
use async_trait::async_trait;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

const REVISION: &str = "deployment.kubernetes.io/revision";

#[derive(Default)]
struct State {
    objects: BTreeMap<ObjectRef, ClusterObject>,
    /// The snapshot of `objects`, until they change.
    cached: Option<std::sync::Arc<ClusterSnapshot>>,
    logs: BTreeMap<ObjectRef, String>,
    changes: Vec<ChangeEvent>,
    performed: Vec<ActionRequest>,
}

#[derive(Default)]
pub struct SimCluster {
    state: Mutex<State>,
    /// Where the objects are saved after each change, as an API server
    /// keeps them: replay with a journal survives medic being killed.
    persist: Option<std::path::PathBuf>,
}

/// `SimCluster` read as a new (equal) snapshot every time, as an adapter
/// that relists every cycle would hand out: where a cached snapshot would
/// hide the cost of a new one (the bench, the tests).
pub struct Relisted(pub std::sync::Arc<SimCluster>);

#[async_trait]
impl Cluster for Relisted {
    async fn snapshot(&self) -> Result<std::sync::Arc<ClusterSnapshot>, ClusterError> {
        Ok(std::sync::Arc::new((*self.0.snapshot().await?).clone()))
    }
    async fn perform(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        self.0.perform(req).await
    }
    async fn logs(&self, pod: &ObjectRef, tail: usize) -> Result<String, ClusterError> {
        self.0.logs(pod, tail).await
    }
}

impl SimCluster {
    pub fn new(objects: Vec<ClusterObject>, changes: Vec<ChangeEvent>) -> Self {
        let objects = objects
            .into_iter()
            .map(|o| (o.reference.clone(), o))
            .collect();
        SimCluster {
            state: Mutex::new(State {
                cached: None,
                objects,
                logs: BTreeMap::new(),
                changes,
                performed: Vec::new(),
            }),
            persist: None,
        }
    }

    /// Keeps the objects in `path`: loads them from it when it exists
    /// (instead of the ones given), and saves them after every change.
    pub fn persisted(mut self, path: &std::path::Path) -> Result<Self, ClusterError> {
        if let Ok(text) = std::fs::read_to_string(path) {
            let values: Vec<serde_yaml::Value> = serde_json::from_str(&text)
                .map_err(|e| ClusterError::Api(format!("{}: {e}", path.display())))?;
            let mut objects = BTreeMap::new();
            for v in values {
                let o = ClusterObject::from_value(v)
                    .map_err(|e| ClusterError::Api(format!("{}: {e}", path.display())))?;
                objects.insert(o.reference.clone(), o);
            }
            let mut state = self.lock();
            state.objects = objects;
            state.cached = None;
        }
        self.persist = Some(path.to_path_buf());
        Ok(self)
    }

    fn save(&self, state: &State) -> Result<(), ClusterError> {
        let Some(path) = &self.persist else {
            return Ok(());
        };
        let values: Vec<&serde_yaml::Value> = state.objects.values().map(|o| &o.value).collect();
        let text = serde_json::to_string(&values).map_err(|e| ClusterError::Api(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| ClusterError::Api(format!("{}: {e}", path.display())))
    }

    /// Gives pods recorded logs, served by `logs` and `capture_logs`.
    pub fn with_logs(self, logs: BTreeMap<ObjectRef, String>) -> Self {
        self.lock().logs = logs;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave objects half-changed in
        // a way later reads would misjudge, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request performed, in order (dry runs included).
    pub fn performed(&self) -> Vec<ActionRequest> {
        self.lock().performed.clone()
    }

    pub fn object(&self, reference: &ObjectRef) -> Option<ClusterObject> {
        self.lock().objects.get(reference).cloned()
    }
}

#[async_trait]
impl Cluster for SimCluster {
    async fn snapshot(&self) -> Result<std::sync::Arc<ClusterSnapshot>, ClusterError> {
        let mut state = self.lock();
        if let Some(snap) = &state.cached {
            return Ok(snap.clone());
        }
        let snap = std::sync::Arc::new(ClusterSnapshot::from_objects(
            state.objects.values(),
            state.changes.clone(),
        ));
        state.cached = Some(snap.clone());
        Ok(snap)
    }

    async fn logs(&self, pod: &ObjectRef, tail: usize) -> Result<String, ClusterError> {
        let state = self.lock();
        if !state.objects.contains_key(pod) && !state.logs.contains_key(pod) {
            return Err(ClusterError::NotFound(pod.clone()));
        }
        let text = state.logs.get(pod).map(String::as_str).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        Ok(lines[lines.len().saturating_sub(tail)..].join("\n"))
    }

    async fn perform(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let mut state = self.lock();
        state.performed.push(req.clone());
        let mut scratch;
        // A dry run validates against a copy and throws the copy away.
        let target_state: &mut State = if req.dry_run {
            scratch = State {
                cached: None,
                objects: state.objects.clone(),
                logs: state.logs.clone(),
                changes: Vec::new(),
                performed: Vec::new(),
            };
            &mut scratch
        } else {
            &mut state
        };
        let result = apply(target_state, req);
        // Reading logs changes nothing: the cached view stays valid.
        if !req.dry_run && result.is_ok() && req.action.spec().mutating {
            state.cached = None;
            self.save(&state)?;
        }
        result
    }
}

fn refused(req: &ActionRequest, reason: impl Into<String>) -> ClusterError {
    ClusterError::Refused {
        action: req.action,
        target: req.target.clone(),
        reason: reason.into(),
    }
}

fn expect_kind(req: &ActionRequest, kinds: &[&str]) -> Result<(), ClusterError> {
    if kinds.contains(&req.target.kind.as_str()) {
        Ok(())
    } else {
        Err(ClusterError::Unsupported {
            action: req.action,
            target: req.target.clone(),
            reason: format!("works on {}", kinds.join(" or ")),
        })
    }
}

fn apply(state: &mut State, req: &ActionRequest) -> Result<String, ClusterError> {
    let target = &req.target;
    if !state.objects.contains_key(target) {
        return Err(ClusterError::NotFound(target.clone()));
    }
    match req.action {
        Action::CaptureLogs => {
            expect_kind(req, &["Pod"])?;
            let lines = state.logs.get(target).map_or(0, |l| l.lines().count());
            Ok(format!("captured {lines} log lines of {target}"))
        }
        Action::CordonNode | Action::UncordonNode => {
            expect_kind(req, &["Node"])?;
            let cordon = req.action == Action::CordonNode;
            if let Some(node) = state.objects.get_mut(target) {
                node.set(&["spec", "unschedulable"], Value::Bool(cordon));
            }
            Ok(format!(
                "{} {}",
                if cordon { "cordoned" } else { "uncordoned" },
                target.name
            ))
        }
        Action::DrainNode => {
            expect_kind(req, &["Node"])?;
            if let Some(node) = state.objects.get_mut(target) {
                node.set(&["spec", "unschedulable"], Value::Bool(true));
            }
            let evict: Vec<ObjectRef> = state
                .objects
                .values()
                .filter(|o| {
                    o.reference.is("Pod") && o.str(&["spec", "nodeName"]) == Some(&target.name)
                })
                .filter(|o| o.controller().is_none_or(|(k, _)| k != "DaemonSet"))
                .map(|o| o.reference.clone())
                .collect();
            for pod in &evict {
                state.objects.remove(pod);
            }
            Ok(format!(
                "drained {}: evicted {} pods",
                target.name,
                evict.len()
            ))
        }
        Action::EvictPod => {
            expect_kind(req, &["Pod"])?;
            state.objects.remove(target);
            Ok(format!("evicted {target}"))
        }
        Action::DeletePod => {
            expect_kind(req, &["Pod"])?;
            let owned = state
                .objects
                .get(target)
                .and_then(ClusterObject::controller);
            if owned.is_none() {
                return Err(refused(
                    req,
                    "no controller owns the pod; it would not come back",
                ));
            }
            state.objects.remove(target);
            Ok(format!("deleted {target}"))
        }
        Action::RolloutUndo => rollout_undo(state, req),
        Action::RolloutRestart => {
            let at = req.at.to_string();
            if let Some(w) = state.objects.get_mut(target) {
                w.set(
                    &[
                        "spec",
                        "template",
                        "metadata",
                        "annotations",
                        "kubectl.kubernetes.io/restartedAt",
                    ],
                    Value::from(at),
                );
            }
            state.changes.push(ChangeEvent {
                at: req.at,
                kind: "restart".into(),
                object: target.clone(),
                message: format!("rollout restart by medic ({})", req.incident),
            });
            Ok(format!("restarted {target}"))
        }
        Action::Scale => scale(state, req),
        Action::SetMemoryLimit | Action::RestoreMemoryLimit => memory_limit(state, req),
        Action::SetHpaMax | Action::RestoreHpaMax => hpa_max(state, req),
        Action::DescribeScheduling => {
            expect_kind(req, &["Pod"])?;
            let json = |o: &ClusterObject| serde_json::to_value(&o.value).ok();
            let of_kind = |kind: &str| -> Vec<serde_json::Value> {
                state
                    .objects
                    .values()
                    .filter(|o| o.reference.is(kind))
                    .filter_map(json)
                    .collect()
            };
            let pod = state.objects.get(target).and_then(json).unwrap_or_default();
            let placed: Vec<serde_json::Value> = of_kind("Pod")
                .into_iter()
                .filter(|p| p.pointer("/spec/nodeName").is_some_and(|n| !n.is_null()))
                .collect();
            Ok(super::scheduling::report(
                &pod,
                &of_kind("Node"),
                &placed,
                &of_kind("Event"),
            ))
        }
        Action::Escalate => Err(ClusterError::Unsupported {
            action: req.action,
            target: target.clone(),
            reason: "escalation is not a cluster action".into(),
        }),
    }
}

/// As a merge patch's `null` for an annotation does.
fn remove_annotation(o: &mut ClusterObject, key: &str) {
    if let Some(Value::Mapping(a)) = o
        .value
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        a.remove(key);
    }
}

/// As the API server applies `hpa_max`'s merge patch.
fn hpa_max(state: &mut State, req: &ActionRequest) -> Result<String, ClusterError> {
    expect_kind(req, &["HorizontalPodAutoscaler"])?;
    let Some(h) = state.objects.get_mut(&req.target) else {
        return Err(ClusterError::NotFound(req.target.clone()));
    };
    let json = serde_json::to_value(&h.value).map_err(|e| ClusterError::Api(e.to_string()))?;
    let change = if req.action == Action::RestoreHpaMax {
        super::hpa_max::restore(&json)
    } else {
        super::hpa_max::raise(&json, &req.params)
    }
    .map_err(|reason| refused(req, reason))?;
    h.set(&["spec", "maxReplicas"], Value::from(change.to));
    if change.restoring {
        remove_annotation(h, super::hpa_max::ANNOTATION);
    } else {
        h.set(
            &["metadata", "annotations", super::hpa_max::ANNOTATION],
            Value::from(change.from.to_string()),
        );
    }
    Ok(change.describe(&req.target))
}

/// As the API server applies `memory_limit`'s strategic merge patch.
fn memory_limit(state: &mut State, req: &ActionRequest) -> Result<String, ClusterError> {
    expect_kind(req, &["Deployment"])?;
    let ceiling = state
        .objects
        .values()
        .filter(|o| o.reference.is("Node"))
        .filter_map(|o| o.get(&["status", "allocatable", "memory"])?.as_str())
        .filter_map(super::memory_limit::parse_bytes)
        .max();
    let Some(d) = state.objects.get_mut(&req.target) else {
        return Err(ClusterError::NotFound(req.target.clone()));
    };
    let json = serde_json::to_value(&d.value).map_err(|e| ClusterError::Api(e.to_string()))?;
    let change = if req.action == Action::RestoreMemoryLimit {
        super::memory_limit::restore(&json, &req.params)
    } else {
        super::memory_limit::raise(&json, &req.params, ceiling)
    }
    .map_err(|reason| refused(req, reason))?;
    let Some(Value::Sequence(containers)) = d
        .value
        .get_mut("spec")
        .and_then(|s| s.get_mut("template"))
        .and_then(|t| t.get_mut("spec"))
        .and_then(|s| s.get_mut("containers"))
    else {
        return Err(refused(req, "the Deployment has no containers"));
    };
    for c in containers.iter_mut() {
        if c.get("name").and_then(Value::as_str) == Some(change.container.as_str()) {
            let mut resources = c
                .get("resources")
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default();
            let mut all = resources
                .get("limits")
                .and_then(Value::as_mapping)
                .cloned()
                .unwrap_or_default();
            all.insert("memory".into(), change.to.clone().into());
            resources.insert("limits".into(), Value::Mapping(all));
            if let Some(m) = c.as_mapping_mut() {
                m.insert("resources".into(), Value::Mapping(resources));
            }
        }
    }
    let key = super::memory_limit::annotation(&change.container);
    if change.restoring {
        remove_annotation(d, &key);
    } else {
        d.set(
            &["metadata", "annotations", &key],
            change.from.clone().into(),
        );
    }
    Ok(change.describe(&req.target))
}

fn scale(state: &mut State, req: &ActionRequest) -> Result<String, ClusterError> {
    let Some(w) = state.objects.get_mut(&req.target) else {
        return Err(ClusterError::NotFound(req.target.clone()));
    };
    let current = w
        .get(&["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let wanted = req.wanted_replicas(current)?;
    w.set(&["spec", "replicas"], Value::from(wanted));
    Ok(format!(
        "scaled {} from {current} to {wanted} replicas",
        req.target
    ))
}

/// The newest and the previous revision of the target's history: the
/// `holder` objects (ReplicaSets, ControllerRevisions) it controls in its
/// namespace, numbered by `number`.
fn last_two_revisions(
    state: &State,
    req: &ActionRequest,
    holder: &str,
    number: impl Fn(&ClusterObject) -> Option<i64>,
) -> Result<(i64, i64, ObjectRef), ClusterError> {
    let ns = req.target.namespace.clone().unwrap_or_default();
    let mut revisions: Vec<(i64, ObjectRef)> = state
        .objects
        .values()
        .filter(|o| o.reference.is(holder) && o.reference.namespace.as_deref() == Some(ns.as_str()))
        .filter(|o| {
            o.controller()
                .is_some_and(|(k, n)| k == req.target.kind && n == req.target.name)
        })
        .filter_map(|o| Some((number(o)?, o.reference.clone())))
        .collect();
    revisions.sort();
    match (
        revisions.last().cloned(),
        revisions.iter().rev().nth(1).cloned(),
    ) {
        (Some((current, _)), Some((previous, prev))) => Ok((current, previous, prev)),
        _ => Err(refused(req, "no previous revision to roll back to")),
    }
}

/// Records a rollback as a change (what replay shows of it) and says it.
fn rolled_back(
    state: &mut State,
    req: &ActionRequest,
    current: i64,
    previous: i64,
    to: &ObjectRef,
) -> String {
    state.changes.push(ChangeEvent {
        at: req.at,
        kind: "rollback".into(),
        object: req.target.clone(),
        message: format!(
            "rolled back to revision {previous} by medic ({})",
            req.incident
        ),
    });
    format!(
        "rolled back {} from revision {current} to {previous} ({})",
        req.target, to.name
    )
}

/// As `kubectl rollout undo` on a StatefulSet or DaemonSet: the pod
/// template of the ControllerRevision before the newest one.
fn revision_undo(state: &mut State, req: &ActionRequest) -> Result<String, ClusterError> {
    let (current, previous, prev) = last_two_revisions(state, req, "ControllerRevision", |o| {
        o.get(&["revision"])?.as_i64()
    })?;
    let template = state
        .objects
        .get(&prev)
        .and_then(|r| r.get(&["data", "spec", "template"]).cloned())
        .ok_or_else(|| refused(req, format!("{prev} holds no pod template")))?;
    if let Some(o) = state.objects.get_mut(&req.target) {
        o.set(&["spec", "template"], template);
    }
    Ok(rolled_back(state, req, current, previous, &prev))
}

/// As `kubectl rollout undo`: copy the previous revision's pod template into
/// the Deployment and make that ReplicaSet the newest revision.
fn rollout_undo(state: &mut State, req: &ActionRequest) -> Result<String, ClusterError> {
    if req.target.is("StatefulSet") || req.target.is("DaemonSet") {
        return revision_undo(state, req);
    }
    expect_kind(req, &["Deployment"])?;
    let deployment = state
        .objects
        .get(&req.target)
        .ok_or_else(|| ClusterError::NotFound(req.target.clone()))?;
    if deployment.get(&["spec", "paused"]).and_then(Value::as_bool) == Some(true) {
        return Err(refused(
            req,
            "the Deployment is paused; resume it before rolling back",
        ));
    }
    let (current, previous, prev_rs) = last_two_revisions(state, req, "ReplicaSet", |o| {
        o.annotation(REVISION)?.parse().ok()
    })?;
    let template = state
        .objects
        .get(&prev_rs)
        .and_then(|rs| rs.get(&["spec", "template"]).cloned())
        .ok_or_else(|| refused(req, format!("{prev_rs} has no pod template")))?;
    let mut template = template;
    if let Some(labels) = template
        .get_mut("metadata")
        .and_then(|m| m.get_mut("labels"))
        .and_then(Value::as_mapping_mut)
    {
        labels.remove("pod-template-hash");
    }
    let next = current + 1;
    if let Some(d) = state.objects.get_mut(&req.target) {
        d.set(&["spec", "template"], template);
        d.set(
            &["metadata", "annotations", REVISION],
            Value::from(next.to_string()),
        );
    }
    if let Some(rs) = state.objects.get_mut(&prev_rs) {
        rs.set(
            &["metadata", "annotations", REVISION],
            Value::from(next.to_string()),
        );
    }
    Ok(rolled_back(state, req, current, previous, &prev_rs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> SimCluster {
        let values: Vec<Value> = serde_yaml::from_str(
            r#"
- {kind: Node, metadata: {name: n1}}
- {kind: Deployment, metadata: {name: api, namespace: p, annotations: {deployment.kubernetes.io/revision: "2"}}, spec: {replicas: 2, template: {spec: {containers: [{name: app, image: "api:v2"}]}}}}
- {kind: ReplicaSet, metadata: {name: api-v1, namespace: p, annotations: {deployment.kubernetes.io/revision: "1"}, ownerReferences: [{kind: Deployment, name: api, controller: true}]}, spec: {template: {metadata: {labels: {app: api, pod-template-hash: v1}}, spec: {containers: [{name: app, image: "api:v1"}]}}}}
- {kind: ReplicaSet, metadata: {name: api-v2, namespace: p, annotations: {deployment.kubernetes.io/revision: "2"}, ownerReferences: [{kind: Deployment, name: api, controller: true}]}, spec: {template: {spec: {containers: [{name: app, image: "api:v2"}]}}}}
- {kind: Pod, metadata: {name: api-v2-a, namespace: p, ownerReferences: [{kind: ReplicaSet, name: api-v2, controller: true}]}, spec: {nodeName: n1}}
- {kind: Pod, metadata: {name: bare, namespace: p}, spec: {nodeName: n1}}
"#,
        )
        .unwrap();
        SimCluster::new(
            values
                .into_iter()
                .map(|v| ClusterObject::from_value(v).unwrap())
                .collect(),
            vec![],
        )
    }

    fn request(action: Action, target: &str) -> ActionRequest {
        ActionRequest {
            action,
            target: target.parse().unwrap(),
            params: BTreeMap::new(),
            dry_run: false,
            risk: crate::model::Risk::Low,
            at: 100,
            incident: "inc-1".into(),
            playbook: "pb".into(),
            step: 0,
        }
    }

    #[tokio::test]
    async fn a_statefulset_is_rolled_back_to_its_previous_controller_revision() {
        let values: Vec<Value> = serde_yaml::from_str(
            r#"
- {kind: StatefulSet, metadata: {name: db, namespace: p}, spec: {template: {spec: {containers: [{name: db, image: "db:2"}]}}}}
- {kind: ControllerRevision, metadata: {name: db-1, namespace: p, ownerReferences: [{kind: StatefulSet, name: db, controller: true}]}, revision: 1, data: {spec: {template: {spec: {containers: [{name: db, image: "db:1"}]}}}}}
- {kind: ControllerRevision, metadata: {name: db-2, namespace: p, ownerReferences: [{kind: StatefulSet, name: db, controller: true}]}, revision: 2, data: {spec: {template: {spec: {containers: [{name: db, image: "db:2"}]}}}}}
- {kind: DaemonSet, metadata: {name: agent, namespace: p}, spec: {template: {spec: {containers: [{name: a, image: "a:1"}]}}}}
"#,
        )
        .unwrap();
        let c = SimCluster::new(
            values
                .into_iter()
                .map(|v| ClusterObject::from_value(v).unwrap())
                .collect(),
            vec![],
        );
        let msg = c
            .perform(&request(Action::RolloutUndo, "StatefulSet/p/db"))
            .await
            .unwrap();
        assert_eq!(
            msg,
            "rolled back StatefulSet/p/db from revision 2 to 1 (db-1)"
        );
        let db = c.object(&"StatefulSet/p/db".parse().unwrap()).unwrap();
        let image =
            db.get(&["spec", "template", "spec", "containers"]).unwrap()[0]["image"].as_str();
        assert_eq!(image, Some("db:1"));
        // A DaemonSet with no history: nothing to roll back to.
        let err = c
            .perform(&request(Action::RolloutUndo, "DaemonSet/p/agent"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no previous revision"), "{err}");
        c.perform(&request(Action::RolloutRestart, "DaemonSet/p/agent"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn rollout_undo_restores_the_previous_template() {
        let c = cluster();
        let msg = c
            .perform(&request(Action::RolloutUndo, "Deployment/p/api"))
            .await
            .unwrap();
        assert!(msg.contains("from revision 2 to 1"), "{msg}");
        let d = c.object(&"Deployment/p/api".parse().unwrap()).unwrap();
        let image =
            d.get(&["spec", "template", "spec", "containers"]).unwrap()[0]["image"].as_str();
        assert_eq!(image, Some("api:v1"));
        assert_eq!(d.annotation(REVISION), Some("3"));
        assert!(
            d.get(&[
                "spec",
                "template",
                "metadata",
                "labels",
                "pod-template-hash"
            ])
            .is_none()
        );
        let snap = c.snapshot().await.unwrap();
        assert_eq!(
            snap.changes.last().map(|e| e.kind.as_str()),
            Some("rollback")
        );
        // The first undo consumed the only older revision; a second goes back to v2.
        let msg = c
            .perform(&request(Action::RolloutUndo, "Deployment/p/api"))
            .await
            .unwrap();
        assert!(msg.contains("from revision 3 to 2"), "{msg}");
    }

    #[tokio::test]
    async fn cordon_and_scale_change_the_objects() {
        let c = cluster();
        c.perform(&request(Action::CordonNode, "Node/n1"))
            .await
            .unwrap();
        assert!(c.snapshot().await.unwrap().nodes["n1"].unschedulable);
        c.perform(&request(Action::UncordonNode, "Node/n1"))
            .await
            .unwrap();
        assert!(!c.snapshot().await.unwrap().nodes["n1"].unschedulable);
        let mut scale = request(Action::Scale, "Deployment/p/api");
        scale.params.insert("delta".into(), Value::from(1));
        c.perform(&scale).await.unwrap();
        assert_eq!(
            c.snapshot().await.unwrap().workloads[&"Deployment/p/api".parse().unwrap()].replicas,
            Some(3)
        );
        scale.params.insert("replicas".into(), Value::from(1));
        assert!(matches!(
            c.perform(&scale).await,
            Err(ClusterError::Refused { .. })
        ));
    }

    #[tokio::test]
    async fn refuses_what_would_not_come_back_and_what_does_not_exist() {
        let c = cluster();
        let err = c
            .perform(&request(Action::DeletePod, "Pod/p/bare"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Refused { .. }));
        let err = c
            .perform(&request(Action::CordonNode, "Node/missing"))
            .await
            .unwrap_err();
        assert_eq!(err, ClusterError::NotFound("Node/missing".parse().unwrap()));
        let err = c
            .perform(&request(Action::CordonNode, "Pod/p/bare"))
            .await
            .unwrap_err();
        assert!(matches!(err, ClusterError::Unsupported { .. }));
    }

    #[tokio::test]
    async fn a_dry_run_changes_nothing() {
        let c = cluster();
        let mut req = request(Action::DrainNode, "Node/n1");
        req.dry_run = true;
        let msg = c.perform(&req).await.unwrap();
        assert_eq!(msg, "drained n1: evicted 2 pods");
        assert!(!c.snapshot().await.unwrap().nodes["n1"].unschedulable);
        assert_eq!(c.performed().len(), 1);
    }
}
