//! kube-rs against the API server: each action done the way kubectl does
//! it, with a Kubernetes Event recorded on the target of every action it
//! takes (in observe mode every write is sent with `dryRun=All`), and a
//! snapshot listed in full (`medic record`; `medic run` watches instead).

use super::{ActionRequest, ChangeEvent, Cluster, ClusterError, ClusterObject, ClusterSnapshot};
use crate::act::Action;
use crate::model::{ObjectRef, Timestamp};
use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, EvictParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::time::Duration;

const REVISION: &str = "deployment.kubernetes.io/revision";

/// How a PodDisruptionBudget refusal (429) is retried before giving up.
#[derive(Debug, Clone, Copy)]
pub struct EvictionRetry {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for EvictionRetry {
    fn default() -> Self {
        EvictionRetry {
            attempts: 5,
            backoff: Duration::from_secs(5),
        }
    }
}

pub struct KubeCluster {
    client: Client,
    retry: EvictionRetry,
}

impl KubeCluster {
    /// Lists every object of a kind, a page at a time; `each` sees each
    /// object once, before the next page is fetched.
    async fn list_all<K>(&self, each: &mut (dyn FnMut(&K) + Send)) -> Result<(), ClusterError>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let all = ObjectRef::cluster("Cluster", "all");
        let api = Api::<K>::all(self.client.clone());
        let mut lp = ListParams::default().limit(PAGE);
        loop {
            let page = api.list(&lp).await.map_err(|e| api_error(&all, e))?;
            page.items.iter().for_each(&mut *each);
            match page.metadata.continue_ {
                Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
                _ => return Ok(()),
            }
        }
    }

    pub fn new(client: Client) -> Self {
        KubeCluster {
            client,
            retry: EvictionRetry::default(),
        }
    }

    pub fn with_eviction_retry(mut self, retry: EvictionRetry) -> Self {
        self.retry = retry;
        self
    }

    fn ns<K>(&self, target: &ObjectRef) -> Result<Api<K>, ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        let ns = target
            .namespace
            .as_deref()
            .ok_or_else(|| ClusterError::Api(format!("{target} has no namespace")))?;
        Ok(Api::namespaced(self.client.clone(), ns))
    }
}

fn api_error(target: &ObjectRef, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.code == 404 => ClusterError::NotFound(target.clone()),
        kube::Error::Api(s) => ClusterError::Api(format!("{} {}: {}", s.code, s.reason, s.message)),
        other => ClusterError::Api(other.to_string()),
    }
}

fn refused(req: &ActionRequest, reason: impl Into<String>) -> ClusterError {
    ClusterError::Refused {
        action: req.action,
        target: req.target.clone(),
        reason: reason.into(),
    }
}

fn patch_params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        field_manager: Some("medic".into()),
        ..PatchParams::default()
    }
}

fn post_params(dry_run: bool) -> PostParams {
    PostParams {
        dry_run,
        field_manager: Some("medic".into()),
    }
}

/// A JSON merge patch of the request's target, as a dry run when asked.
async fn merge_patch<K>(
    api: &Api<K>,
    req: &ActionRequest,
    patch: serde_json::Value,
) -> Result<(), ClusterError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        &req.target.name,
        &patch_params(req.dry_run),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|e| api_error(&req.target, e))
}

fn to_values<T: serde::Serialize>(items: &[T]) -> Vec<serde_json::Value> {
    items
        .iter()
        .filter_map(|x| serde_json::to_value(x).ok())
        .collect()
}

/// Each ReplicaSet is a rollout of its Deployment: a deploy at its creation.
pub(super) fn deploy_of(rs: &ReplicaSet) -> Option<ChangeEvent> {
    let owner = rs
        .metadata
        .owner_references
        .as_deref()?
        .iter()
        .find(|o| o.kind == "Deployment")?;
    let ns = rs.metadata.namespace.as_deref()?;
    let at = rs.metadata.creation_timestamp.as_ref()?.0.as_second();
    let revision = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .cloned();
    Some(ChangeEvent {
        at,
        kind: "deploy".into(),
        object: ObjectRef::namespaced("Deployment", ns, &owner.name),
        message: format!(
            "revision {} ({})",
            revision.unwrap_or_else(|| "?".into()),
            rs.metadata.name.clone().unwrap_or_default()
        ),
    })
}

/// Objects per list request: a 10,000-pod cluster is read 250 pods at a
/// time, so at most one page of full objects is in memory at once.
pub const PAGE: u32 = 250;

/// The object with only what the snapshot reads: names, labels and
/// annotations, owners, creation time, and the few spec and status fields
/// the guards and ranking need. A full pod spec is dropped at once.
pub(super) fn trimmed<T: serde::Serialize>(value: &T) -> Option<ClusterObject> {
    let mut json = serde_json::to_value(value).ok()?;
    let keep = |v: &mut serde_json::Value, fields: &[&str]| {
        if let Some(map) = v.as_object_mut() {
            map.retain(|k, _| fields.contains(&k.as_str()));
        }
    };
    if let Some(obj) = json.as_object_mut() {
        obj.retain(|k, _| {
            matches!(
                k.as_str(),
                "apiVersion" | "kind" | "metadata" | "spec" | "status"
            )
        });
        if let Some(m) = obj.get_mut("metadata") {
            keep(
                m,
                &[
                    "name",
                    "namespace",
                    "labels",
                    "annotations",
                    "ownerReferences",
                    "creationTimestamp",
                ],
            );
        }
        if let Some(s) = obj.get_mut("spec") {
            keep(s, &["nodeName", "unschedulable", "replicas", "paused"]);
        }
        if let Some(s) = obj.get_mut("status") {
            keep(
                s,
                &[
                    "conditions",
                    "availableReplicas",
                    "readyReplicas",
                    "replicas",
                ],
            );
        }
    }
    let yaml: serde_yaml::Value = serde_json::from_value(json).ok()?;
    ClusterObject::from_value(yaml).ok()
}

impl KubeCluster {
    async fn cordon(
        &self,
        req: &ActionRequest,
        unschedulable: bool,
    ) -> Result<String, ClusterError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        merge_patch(
            &nodes,
            req,
            json!({"spec": {"unschedulable": unschedulable}}),
        )
        .await?;
        Ok(format!(
            "{} {}",
            if unschedulable {
                "cordoned"
            } else {
                "uncordoned"
            },
            req.target.name
        ))
    }

    /// Eviction through the Eviction API: a server-side dry run first, then
    /// the eviction, retrying while a PodDisruptionBudget says 429.
    async fn evict(&self, req: &ActionRequest, pod: &ObjectRef) -> Result<String, ClusterError> {
        let pods: Api<Pod> = self.ns(pod)?;
        let params = |dry_run| EvictParams {
            delete_options: None,
            post_options: post_params(dry_run),
        };
        pods.evict(&pod.name, &params(true))
            .await
            .map_err(|e| self.eviction_error(req, pod, e))?;
        if req.dry_run {
            return Ok(format!("{pod} can be evicted"));
        }
        let mut attempt = 0;
        loop {
            match pods.evict(&pod.name, &params(false)).await {
                Ok(_) => return Ok(format!("evicted {pod}")),
                Err(kube::Error::Api(s)) if s.code == 429 && attempt + 1 < self.retry.attempts => {
                    attempt += 1;
                    tracing::info!(incident = %req.incident, pod = %pod, attempt, "eviction refused by a PodDisruptionBudget; retrying");
                    tokio::time::sleep(self.retry.backoff * attempt).await;
                }
                Err(e) => return Err(self.eviction_error(req, pod, e)),
            }
        }
    }

    fn eviction_error(&self, req: &ActionRequest, pod: &ObjectRef, e: kube::Error) -> ClusterError {
        match e {
            kube::Error::Api(s) if s.code == 429 => refused(
                req,
                format!(
                    "a PodDisruptionBudget does not allow evicting {pod} now: {}",
                    s.message
                ),
            ),
            other => api_error(pod, other),
        }
    }

    async fn delete_pod(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let pods: Api<Pod> = self.ns(&req.target)?;
        let pod = pods
            .get(&req.target.name)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let owned = pod
            .metadata
            .owner_references
            .unwrap_or_default()
            .iter()
            .any(|o| o.controller == Some(true));
        if !owned {
            return Err(refused(
                req,
                "no controller owns the pod; it would not come back",
            ));
        }
        let dp = DeleteParams {
            dry_run: req.dry_run,
            ..DeleteParams::default()
        };
        pods.delete(&req.target.name, &dp)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        Ok(format!("deleted {}", req.target))
    }

    async fn drain(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        self.cordon(req, true).await?;
        let pods: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", req.target.name));
        let list = pods
            .list(&lp)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let mut evicted = 0;
        for p in list.items {
            let daemon = p
                .metadata
                .owner_references
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|o| o.kind == "DaemonSet");
            let mirror = p
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
            if daemon || mirror {
                continue;
            }
            let (Some(name), Some(ns)) = (p.metadata.name, p.metadata.namespace) else {
                continue;
            };
            self.evict(req, &ObjectRef::namespaced("Pod", &ns, &name))
                .await?;
            evicted += 1;
        }
        Ok(format!(
            "drained {}: evicted {evicted} pods",
            req.target.name
        ))
    }

    /// As `kubectl rollout undo`: find the previous revision's ReplicaSet
    /// and replace the Deployment's pod template with its template.
    async fn rollout_undo(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        match req.target.kind.as_str() {
            "StatefulSet" => return self.revision_undo::<StatefulSet>(req).await,
            "DaemonSet" => return self.revision_undo::<DaemonSet>(req).await,
            _ => {}
        }
        let deployments: Api<Deployment> = self.ns(&req.target)?;
        let d = deployments
            .get(&req.target.name)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let spec = d.spec.clone().unwrap_or_default();
        if spec.paused == Some(true) {
            return Err(refused(
                req,
                "the Deployment is paused; resume it before rolling back",
            ));
        }
        let selector = spec
            .selector
            .match_labels
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let sets: Api<ReplicaSet> = self.ns(&req.target)?;
        let list = sets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let uid = d.metadata.uid.clone();
        let mut revisions: Vec<(i64, ReplicaSet)> = list
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
            })
            .filter_map(|rs| {
                let rev = rs
                    .metadata
                    .annotations
                    .as_ref()?
                    .get(REVISION)?
                    .parse()
                    .ok()?;
                Some((rev, rs))
            })
            .collect();
        revisions.sort_by_key(|(rev, _)| *rev);
        let current = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .and_then(|r| r.parse::<i64>().ok())
            .or(revisions.last().map(|(r, _)| *r))
            .unwrap_or(0);
        let Some((previous, rs)) = revisions.into_iter().rev().find(|(r, _)| *r < current) else {
            return Err(refused(req, "no previous revision to roll back to"));
        };
        let mut template = rs.spec.and_then(|s| s.template).unwrap_or_default();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove("pod-template-hash");
        }
        let ops = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
        let patch: json_patch::Patch =
            serde_json::from_value(ops).map_err(|e| ClusterError::Api(e.to_string()))?;
        deployments
            .patch(
                &req.target.name,
                &patch_params(req.dry_run),
                &Patch::<()>::Json(patch),
            )
            .await
            .map_err(|e| api_error(&req.target, e))?;
        Ok(format!(
            "rolled back {} from revision {current} to {previous} ({})",
            req.target,
            rs.metadata.name.unwrap_or_default()
        ))
    }

    async fn rollout_restart(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let at = rfc3339(req.at);
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}});
        match req.target.kind.as_str() {
            "StatefulSet" => merge_patch(&self.ns::<StatefulSet>(&req.target)?, req, patch).await?,
            "DaemonSet" => merge_patch(&self.ns::<DaemonSet>(&req.target)?, req, patch).await?,
            _ => merge_patch(&self.ns::<Deployment>(&req.target)?, req, patch).await?,
        }
        Ok(format!("restarted {}", req.target))
    }

    /// As `kubectl rollout undo` on a StatefulSet or DaemonSet: the
    /// ControllerRevision before the newest one holds the old pod template
    /// as a strategic merge patch, which is applied to the object.
    async fn revision_undo<K>(&self, req: &ActionRequest) -> Result<String, ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api: Api<K> = self.ns(&req.target)?;
        let object = api
            .get(&req.target.name)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let object = serde_json::to_value(&object).map_err(|e| ClusterError::Api(e.to_string()))?;
        let uid = object
            .pointer("/metadata/uid")
            .and_then(|u| u.as_str())
            .map(str::to_string);
        let selector = object
            .pointer("/spec/selector/matchLabels")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let revisions: Api<ControllerRevision> = self.ns(&req.target)?;
        let mut owned: Vec<ControllerRevision> = revisions
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_error(&req.target, e))?
            .items
            .into_iter()
            .filter(|r| {
                r.metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
            })
            .collect();
        owned.sort_by_key(|r| r.revision);
        let Some(current) = owned.last().map(|r| r.revision) else {
            return Err(refused(req, "no revision history to roll back to"));
        };
        let Some(previous) = owned.into_iter().rev().find(|r| r.revision < current) else {
            return Err(refused(req, "no previous revision to roll back to"));
        };
        let data = previous.data.map(|d| d.0).unwrap_or_default();
        api.patch(
            &req.target.name,
            &patch_params(req.dry_run),
            &Patch::Strategic(data),
        )
        .await
        .map_err(|e| api_error(&req.target, e))?;
        Ok(format!(
            "rolled back {} from revision {current} to {} ({})",
            req.target,
            previous.revision,
            previous.metadata.name.unwrap_or_default()
        ))
    }

    /// Reads the Deployment (and, to raise, every node's allocatable
    /// memory), decides the change in `memory_limit`, then patches it.
    async fn memory_limit(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let deployments: Api<Deployment> = self.ns(&req.target)?;
        let d = deployments
            .get(&req.target.name)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let d = serde_json::to_value(&d).map_err(|e| ClusterError::Api(e.to_string()))?;
        let refused = |reason: String| ClusterError::Refused {
            action: req.action,
            target: req.target.clone(),
            reason,
        };
        let change = if req.action == Action::RestoreMemoryLimit {
            super::memory_limit::restore(&d, &req.params).map_err(refused)?
        } else {
            let nodes: Api<Node> = Api::all(self.client.clone());
            let ceiling = nodes
                .list(&ListParams::default())
                .await
                .map_err(|e| ClusterError::Api(e.to_string()))?
                .items
                .iter()
                .filter_map(|n| {
                    let q = n.status.as_ref()?.allocatable.as_ref()?.get("memory")?;
                    super::memory_limit::parse_bytes(&q.0)
                })
                .max();
            super::memory_limit::raise(&d, &req.params, ceiling).map_err(refused)?
        };
        deployments
            .patch(
                &req.target.name,
                &patch_params(req.dry_run),
                &Patch::Strategic(change.patch()),
            )
            .await
            .map_err(|e| api_error(&req.target, e))?;
        Ok(change.describe(&req.target))
    }

    /// Reads the pod, its events, the nodes and the pods placed on them,
    /// and says why it cannot be scheduled (`scheduling::report`).
    async fn describe_scheduling(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let pods: Api<Pod> = self.ns(&req.target)?;
        let pod = pods
            .get(&req.target.name)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let events: Api<Event> = self.ns(&req.target)?;
        let fields = format!(
            "involvedObject.kind=Pod,involvedObject.name={}",
            req.target.name
        );
        let events = events
            .list(&ListParams::default().fields(&fields))
            .await
            .map_err(|e| api_error(&req.target, e))?
            .items;
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| ClusterError::Api(e.to_string()))?
            .items;
        let placed = Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed"))
            .await
            .map_err(|e| ClusterError::Api(e.to_string()))?
            .items;
        let pod = serde_json::to_value(&pod).map_err(|e| ClusterError::Api(e.to_string()))?;
        Ok(super::scheduling::report(
            &pod,
            &to_values(&nodes),
            &to_values(&placed),
            &to_values(&events),
        ))
    }

    async fn hpa_max(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let api: Api<HorizontalPodAutoscaler> = self.ns(&req.target)?;
        let hpa = api
            .get(&req.target.name)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let hpa = serde_json::to_value(&hpa).map_err(|e| ClusterError::Api(e.to_string()))?;
        let change = if req.action == Action::RestoreHpaMax {
            super::hpa_max::restore(&hpa)
        } else {
            super::hpa_max::raise(&hpa, &req.params)
        }
        .map_err(|reason| refused(req, reason))?;
        merge_patch(&api, req, change.patch()).await?;
        Ok(change.describe(&req.target))
    }

    async fn scale(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let deployments: Api<Deployment> = self.ns(&req.target)?;
        let scale = deployments
            .get_scale(&req.target.name)
            .await
            .map_err(|e| api_error(&req.target, e))?;
        let current = i64::from(scale.spec.and_then(|s| s.replicas).unwrap_or(0));
        let wanted = req.wanted_replicas(current)?;
        let patch = json!({"spec": {"replicas": wanted}});
        deployments
            .patch_scale(
                &req.target.name,
                &patch_params(req.dry_run),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| api_error(&req.target, e))?;
        Ok(format!(
            "scaled {} from {current} to {wanted} replicas",
            req.target
        ))
    }

    /// A Kubernetes Event on the target, so `kubectl describe` shows what
    /// medic did and why. Failing to record it does not undo the action.
    async fn record_event(&self, req: &ActionRequest, message: &str) {
        let ns = req
            .target
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let events: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let (api_version, kind) = match req.target.kind.as_str() {
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
                ("apps/v1", req.target.kind.clone())
            }
            "HorizontalPodAutoscaler" => ("autoscaling/v2", req.target.kind.clone()),
            other => ("v1", other.to_string()),
        };
        let now = Time(jiff_now(req.at));
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(format!("medic-{}-", req.action.name().replace('_', "-"))),
                namespace: Some(ns.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.into()),
                kind: Some(kind),
                name: Some(req.target.name.clone()),
                namespace: req.target.namespace.clone(),
                ..ObjectReference::default()
            },
            reason: Some(format!("Medic{}", camel(req.action.name()))),
            message: Some(format!(
                "{message} (incident {}, playbook {}, step {}, risk {})",
                req.incident, req.playbook, req.step, req.risk
            )),
            type_: Some("Normal".into()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            reporting_component: Some("medic".into()),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some("medic".into()),
                host: None,
            }),
            ..Event::default()
        };
        if let Err(e) = events.create(&PostParams::default(), &event).await {
            tracing::warn!(incident = %req.incident, error = %e, "could not record the Kubernetes Event");
        }
    }
}

fn camel(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn jiff_now(at: Timestamp) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(at)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

fn rfc3339(at: Timestamp) -> String {
    jiff_now(at).to_string()
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn snapshot(&self) -> Result<std::sync::Arc<ClusterSnapshot>, ClusterError> {
        // Nodes and workloads first, kept whole (trimmed); then pods, each
        // page folded into the snapshot and dropped.
        let mut owners: Vec<ClusterObject> = Vec::new();
        self.list_all::<Node>(&mut |n| owners.extend(trimmed(n)))
            .await?;
        self.list_all::<Deployment>(&mut |d| owners.extend(trimmed(d)))
            .await?;
        let mut changes = Vec::new();
        self.list_all::<ReplicaSet>(&mut |rs| {
            owners.extend(trimmed(rs));
            changes.extend(deploy_of(rs));
        })
        .await?;
        let mut snap = ClusterSnapshot::from_objects(&owners, changes);
        drop(owners);
        self.list_all::<Pod>(&mut |p| {
            if let Some(o) = trimmed(p) {
                snap.add(&o);
            }
        })
        .await?;
        Ok(std::sync::Arc::new(snap))
    }

    async fn perform(&self, req: &ActionRequest) -> Result<String, ClusterError> {
        let message = match req.action {
            Action::CaptureLogs => {
                let text = self.logs(&req.target, 200).await?;
                format!(
                    "captured {} log lines of {}",
                    text.lines().count(),
                    req.target
                )
            }
            Action::CordonNode => self.cordon(req, true).await?,
            Action::UncordonNode => self.cordon(req, false).await?,
            Action::DrainNode => self.drain(req).await?,
            Action::EvictPod => self.evict(req, &req.target).await?,
            Action::DeletePod => self.delete_pod(req).await?,
            Action::RolloutUndo => self.rollout_undo(req).await?,
            Action::RolloutRestart => self.rollout_restart(req).await?,
            Action::Scale => self.scale(req).await?,
            Action::SetMemoryLimit | Action::RestoreMemoryLimit => self.memory_limit(req).await?,
            Action::SetHpaMax | Action::RestoreHpaMax => self.hpa_max(req).await?,
            Action::DescribeScheduling => self.describe_scheduling(req).await?,
            Action::Escalate => {
                return Err(ClusterError::Unsupported {
                    action: req.action,
                    target: req.target.clone(),
                    reason: "escalation is not a cluster action".into(),
                });
            }
        };
        if !req.dry_run && req.action.spec().mutating {
            self.record_event(req, &message).await;
        }
        Ok(message)
    }

    async fn logs(&self, pod: &ObjectRef, tail: usize) -> Result<String, ClusterError> {
        let pods: Api<Pod> = self.ns(pod)?;
        let lp = LogParams {
            tail_lines: Some(i64::try_from(tail).unwrap_or(i64::MAX)),
            ..LogParams::default()
        };
        pods.logs(&pod.name, &lp)
            .await
            .map_err(|e| api_error(pod, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trimmed_pod_keeps_what_the_snapshot_reads_and_drops_its_spec() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "api-1", "namespace": "shop", "labels": {"app": "api"},
                "annotations": {"team": "payments"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-7", "uid": "u", "controller": true}],
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                "uid": "p-uid"
            },
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "api:1", "env": [{"name": "A", "value": "1"}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": []}
        }))
        .unwrap();
        let o = trimmed(&pod).unwrap();
        let expected: serde_yaml::Value = serde_yaml::from_str(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: api-1
  namespace: shop
  labels: {app: api}
  annotations: {team: payments}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: api-7, uid: u, controller: true}]
spec: {nodeName: node-a}
status: {conditions: [{type: Ready, status: "True"}]}
"#,
        )
        .unwrap();
        assert_eq!(o.value, expected);
        assert_eq!(o.reference.to_string(), "Pod/shop/api-1");
    }
}
