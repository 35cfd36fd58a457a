//! The cluster as watch streams keep it: nodes, deployments, replica sets
//! and pods are listed once, a page at a time, then followed, so a cycle
//! reads memory instead of listing every pod again. Actions and logs go to
//! the API server as `KubeCluster` sends them.
//!
//! Fails closed: until every kind is listed, and from a watch error until
//! the fresh list that follows it is done, `snapshot` is an error and the
//! cycle takes no action.

use super::kube::{PAGE, deploy_of, trimmed};
use super::snapshot::replica_set_owner;
use super::{
    ActionRequest, ChangeEvent, Cluster, ClusterError, ClusterSnapshot, KubeCluster, NodeInfo,
    PodRecord, WorkloadInfo,
};
use crate::model::ObjectRef;
use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long a watch request stays open. The API server ends it then and
/// the watcher resumes from where it was; a connection that died without a
/// word is noticed within this (plus kube's 5 s margin).
const WATCH_TIMEOUT_S: u32 = 60;

/// The pause before a failed watch starts over, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(30);

/// One kind's objects as last seen.
#[derive(Debug)]
struct Kept<T> {
    live: BTreeMap<ObjectRef, T>,
    /// Filled between a list's start and its end, then swapped in whole:
    /// an object missing from a fresh list was deleted meanwhile.
    relist: Option<BTreeMap<ObjectRef, T>>,
    /// Why this kind is not in sync (never listed, or its watch failed).
    stale: Option<String>,
}

impl<T> Kept<T> {
    fn new() -> Self {
        Kept {
            live: BTreeMap::new(),
            relist: None,
            stale: Some("not listed yet".into()),
        }
    }
}

/// What the snapshot reads of a ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
struct ReplicaSetRecord {
    info: WorkloadInfo,
    owner: Option<ObjectRef>,
    deploy: Option<ChangeEvent>,
}

/// Each kind as the snapshot reads it, not the objects: a second copy of
/// every object would cost more than the whole snapshot.
#[derive(Debug)]
struct View {
    nodes: Kept<NodeInfo>,
    deployments: Kept<WorkloadInfo>,
    replica_sets: Kept<ReplicaSetRecord>,
    pods: Kept<PodRecord>,
    /// The snapshot built since the last change, handed out as is.
    built: Option<Arc<ClusterSnapshot>>,
}

impl View {
    fn new() -> Self {
        View {
            nodes: Kept::new(),
            deployments: Kept::new(),
            replica_sets: Kept::new(),
            pods: Kept::new(),
            built: None,
        }
    }

    fn stale(&self) -> Option<String> {
        [
            ("nodes", &self.nodes.stale),
            ("deployments", &self.deployments.stale),
            ("replicasets", &self.replica_sets.stale),
            ("pods", &self.pods.stale),
        ]
        .into_iter()
        .find_map(|(kind, why)| why.as_ref().map(|w| format!("the watch of {kind}: {w}")))
    }

    fn build(&self) -> ClusterSnapshot {
        let rs = &self.replica_sets.live;
        let mut snap = ClusterSnapshot {
            nodes: (self.nodes.live.iter())
                .map(|(r, n)| (r.name.clone(), n.clone()))
                .collect(),
            workloads: (self.deployments.live.clone().into_iter())
                .chain(rs.iter().map(|(r, x)| (r.clone(), x.info.clone())))
                .collect(),
            replica_set_owners: (rs.iter())
                .filter_map(|(r, x)| Some((r.clone(), x.owner.clone()?)))
                .collect(),
            changes: rs.values().filter_map(|x| x.deploy.clone()).collect(),
            pods: BTreeMap::new(),
        };
        // Owners are all in: each pod is lifted to its Deployment.
        for (r, p) in &self.pods.live {
            snap.add_pod(r, p.clone());
        }
        snap
    }
}

/// Applies one watch event to a kind; says whether what the snapshot shows
/// changed (a pod's status ticking over changes nothing medic reads).
fn apply<K, T: PartialEq>(
    kept: &mut Kept<T>,
    event: Event<K>,
    entry: fn(&K) -> Option<(ObjectRef, T)>,
) -> bool {
    match event {
        // An equal entry is not stored: the one kept shares its labels
        // with the snapshot built from it.
        Event::Apply(k) => entry(&k).is_some_and(|(r, t)| {
            let changed = kept.live.get(&r) != Some(&t);
            if changed {
                kept.live.insert(r, t);
            }
            changed
        }),
        Event::Delete(k) => entry(&k).is_some_and(|(r, _)| kept.live.remove(&r).is_some()),
        Event::Init => {
            kept.relist = Some(BTreeMap::new());
            false
        }
        Event::InitApply(k) => {
            if let (Some(buffer), Some((r, t))) = (kept.relist.as_mut(), entry(&k)) {
                buffer.insert(r, t);
            }
            false
        }
        Event::InitDone => {
            let fresh = kept.relist.take().unwrap_or_default();
            let changed = fresh != kept.live;
            if changed {
                kept.live = fresh;
            }
            kept.stale = None;
            changed
        }
    }
}

fn node(n: &Node) -> Option<(ObjectRef, NodeInfo)> {
    trimmed(n).map(|o| (o.reference.clone(), NodeInfo::of(&o)))
}

fn deployment(d: &Deployment) -> Option<(ObjectRef, WorkloadInfo)> {
    trimmed(d).map(|o| (o.reference.clone(), WorkloadInfo::of(&o)))
}

fn replica_set(rs: &ReplicaSet) -> Option<(ObjectRef, ReplicaSetRecord)> {
    trimmed(rs).map(|o| {
        let record = ReplicaSetRecord {
            info: WorkloadInfo::of(&o),
            owner: replica_set_owner(&o),
            deploy: deploy_of(rs),
        };
        (o.reference, record)
    })
}

fn pod(p: &Pod) -> Option<(ObjectRef, PodRecord)> {
    trimmed(p).map(|o| (o.reference.clone(), PodRecord::of(&o)))
}

pub struct WatchedCluster {
    writes: KubeCluster,
    view: Arc<Mutex<View>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchedCluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WatchedCluster {
    /// Starts the four watches; the view is in sync once each has listed.
    pub fn start(client: Client) -> Self {
        let view = Arc::new(Mutex::new(View::new()));
        // One task for the four: their events are folded one at a time,
        // and the lists are read by one thread at once, not four.
        let writes = KubeCluster::new(client.clone());
        let task = tokio::spawn({
            let view = view.clone();
            async move {
                futures::join!(
                    follow(
                        Api::all(client.clone()),
                        view.clone(),
                        |v| &mut v.nodes,
                        node
                    ),
                    follow(
                        Api::all(client.clone()),
                        view.clone(),
                        |v| &mut v.deployments,
                        deployment
                    ),
                    follow(
                        Api::all(client.clone()),
                        view.clone(),
                        |v| &mut v.replica_sets,
                        replica_set
                    ),
                    follow(Api::all(client.clone()), view, |v| &mut v.pods, pod),
                );
            }
        });
        WatchedCluster { writes, view, task }
    }
}

/// Follows one kind until aborted. A watch error marks the kind stale and
/// starts over with a fresh list after a pause: the watcher could resume
/// silently, and medic would not know when its view was whole again.
fn follow<K, T>(
    api: Api<K>,
    view: Arc<Mutex<View>>,
    kept: fn(&mut View) -> &mut Kept<T>,
    entry: fn(&K) -> Option<(ObjectRef, T)>,
) -> impl Future<Output = ()> + Send
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    T: PartialEq + Send + 'static,
{
    let kind = K::kind(&()).to_string();
    async move {
        let mut pause = RETRY_FIRST;
        loop {
            let config = watcher::Config::default()
                .page_size(PAGE)
                .timeout(WATCH_TIMEOUT_S);
            let mut events = std::pin::pin!(watcher::watcher(api.clone(), config));
            while let Some(event) = events.next().await {
                let mut v = view.lock().unwrap_or_else(PoisonError::into_inner);
                match event {
                    Ok(event) => {
                        let listed = matches!(event, Event::InitDone);
                        if apply(kept(&mut v), event, entry) {
                            v.built = None;
                        }
                        if listed {
                            pause = RETRY_FIRST;
                            tracing::debug!(kind = %kind, "listed; following");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(kind = %kind, error = %e, "watch failed; the cluster view is stale until a fresh list");
                        let k = kept(&mut v);
                        k.stale = Some(e.to_string());
                        k.relist = None;
                        break;
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_CAP);
        }
    }
}

#[async_trait]
impl Cluster for WatchedCluster {
    async fn snapshot(&self) -> Result<Arc<ClusterSnapshot>, ClusterError> {
        let mut v = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(why) = v.stale() {
            return Err(ClusterError::Api(format!("no view of the cluster: {why}")));
        }
        if let Some(built) = &v.built {
            return Ok(built.clone());
        }
        let built = Arc::new(v.build());
        v.built = Some(built.clone());
        Ok(built)
    }

    async fn perform(&self, request: &ActionRequest) -> Result<String, ClusterError> {
        self.writes.perform(request).await
    }

    async fn logs(&self, pod: &ObjectRef, tail: usize) -> Result<String, ClusterError> {
        self.writes.logs(pod, tail).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> Kept<i32> {
        Kept::new()
    }

    fn entry(k: &(ObjectRef, i32)) -> Option<(ObjectRef, i32)> {
        Some(k.clone())
    }

    fn r(name: &str) -> ObjectRef {
        ObjectRef::cluster("Node", name)
    }

    #[test]
    fn a_fresh_list_replaces_what_was_kept_and_ends_staleness() {
        let mut k = kept();
        assert!(k.stale.is_some(), "nothing is known before the first list");
        assert!(apply(&mut k, Event::Apply((r("a"), 1)), entry));
        assert!(!apply(&mut k, Event::Init, entry));
        assert!(!apply(&mut k, Event::InitApply((r("b"), 2)), entry));
        assert_eq!(k.live.len(), 1, "the list is swapped in only when done");
        assert!(apply(&mut k, Event::InitDone, entry));
        assert_eq!(
            k.live,
            BTreeMap::from([(r("b"), 2)]),
            "a was deleted meanwhile"
        );
        assert_eq!(k.stale, None);
    }

    #[test]
    fn only_a_change_in_what_is_kept_counts() {
        let mut k = kept();
        assert!(apply(&mut k, Event::Apply((r("a"), 1)), entry));
        assert!(
            !apply(&mut k, Event::Apply((r("a"), 1)), entry),
            "same entry"
        );
        assert!(apply(&mut k, Event::Apply((r("a"), 2)), entry));
        assert!(apply(&mut k, Event::Delete((r("a"), 2)), entry));
        assert!(
            !apply(&mut k, Event::Delete((r("a"), 2)), entry),
            "already gone"
        );
        assert!(!apply(&mut k, Event::Init, entry));
        assert!(!apply(&mut k, Event::InitDone, entry), "an equal list");
    }
}
