//! Leader election and per-target Leases against a loopback fake of the
//! Kubernetes Lease API (`common/lease_api.rs`).

use medic::act::Action;
use medic::cluster::{ActionRequest, Cluster, ClusterError, ClusterSnapshot, SimCluster};
use medic::ha::{FencedCluster, Leadership};
use medic::model::{ObjectRef, Risk};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[allow(dead_code)]
mod common;
use common::lease_api::{Fake, LEASES, NS, election, fake_apiserver, holder, until};

#[tokio::test]
async fn two_replicas_elect_one_leader_and_hand_over_when_it_stops() {
    let (fake, client) = fake_apiserver().await;
    let a = Leadership::start(client.clone(), &election(), "medic-a")
        .await
        .unwrap();
    let b = Leadership::start(client.clone(), &election(), "medic-b")
        .await
        .unwrap();
    until("a leader", || a.is_leader() || b.is_leader()).await;
    // Give the loser time to try, and fail, to take the Lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a.is_leader() ^ b.is_leader(), "exactly one leader");
    let (leader, follower) = if a.is_leader() { (a, b) } else { (b, a) };
    assert_eq!(
        holder(&fake, "medic-leader").as_deref(),
        Some(leader.identity())
    );
    leader.confirm().await.unwrap();
    let err = follower.confirm().await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("held by {}", leader.identity())),
        "{err}"
    );

    leader.stop().await;
    until("the follower to take over", || follower.is_leader()).await;
    follower.confirm().await.unwrap();
    assert_eq!(
        holder(&fake, "medic-leader").as_deref(),
        Some(follower.identity())
    );
}

/// Records the target Lease's holder at the moment each action runs.
struct Probe {
    sim: SimCluster,
    fake: Fake,
    seen: Mutex<Vec<Option<String>>>,
}

#[async_trait::async_trait]
impl Cluster for Probe {
    async fn snapshot(&self) -> Result<std::sync::Arc<ClusterSnapshot>, ClusterError> {
        self.sim.snapshot().await
    }
    async fn perform(&self, r: &ActionRequest) -> Result<String, ClusterError> {
        let lease = medic::ha::target_lease_name(&r.target);
        self.seen.lock().unwrap().push(holder(&self.fake, &lease));
        self.sim.perform(r).await
    }
    async fn logs(&self, pod: &ObjectRef, tail: usize) -> Result<String, ClusterError> {
        self.sim.logs(pod, tail).await
    }
}

fn cordon(node: &str, dry_run: bool) -> ActionRequest {
    ActionRequest {
        action: Action::CordonNode,
        target: ObjectRef::node(node),
        params: BTreeMap::new(),
        dry_run,
        risk: Risk::Low,
        at: 0,
        incident: "inc-1".into(),
        playbook: "pb".into(),
        step: 0,
    }
}

async fn fenced(identity: &str) -> (Fake, Arc<Leadership>, Arc<Probe>, FencedCluster) {
    let (fake, client) = fake_apiserver().await;
    let leader = Arc::new(
        Leadership::start(client.clone(), &election(), identity)
            .await
            .unwrap(),
    );
    let node = medic::cluster::ClusterObject::from_value(
        serde_yaml::from_str("{apiVersion: v1, kind: Node, metadata: {name: worker-1}, spec: {}}")
            .unwrap(),
    )
    .unwrap();
    let probe = Arc::new(Probe {
        sim: SimCluster::new(vec![node], vec![]),
        fake: fake.clone(),
        seen: Mutex::default(),
    });
    let cluster = FencedCluster::new(probe.clone(), leader.clone(), client, election());
    (fake, leader, probe, cluster)
}

#[tokio::test]
async fn the_leader_holds_the_target_lease_while_it_writes_and_then_releases_it() {
    let (fake, leader, probe, cluster) = fenced("medic-a").await;
    until("leadership", || leader.is_leader()).await;
    cluster.perform(&cordon("worker-1", false)).await.unwrap();
    assert_eq!(
        *probe.seen.lock().unwrap(),
        vec![Some("medic-a".to_string())]
    );
    assert_eq!(holder(&fake, "medic-target.node.worker-1"), None);
    assert_eq!(probe.sim.performed().len(), 1);
    let log = fake.lock().unwrap().log.clone();
    let confirm = format!("GET {LEASES}/medic-leader");
    let first_target = log
        .iter()
        .position(|l| l.contains("medic-target.node.worker-1"))
        .unwrap();
    assert!(
        log[..first_target].iter().rev().any(|l| *l == confirm),
        "leadership confirmed from the API before the write: {log:#?}"
    );
}

#[tokio::test]
async fn a_dry_run_is_confirmed_but_takes_no_target_lease() {
    let (fake, leader, probe, cluster) = fenced("medic-a").await;
    until("leadership", || leader.is_leader()).await;
    cluster.perform(&cordon("worker-1", true)).await.unwrap();
    assert_eq!(*probe.seen.lock().unwrap(), vec![None]);
    assert!(
        !fake
            .lock()
            .unwrap()
            .log
            .iter()
            .any(|l| l.contains("medic-target"))
    );
}

#[tokio::test]
async fn a_target_lease_held_by_another_actor_refuses_the_write() {
    let (fake, leader, probe, cluster) = fenced("medic-a").await;
    until("leadership", || leader.is_leader()).await;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    fake.lock().unwrap().leases.insert(
        "medic-target.node.worker-1".into(),
        (
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": "medic-target.node.worker-1", "namespace": NS, "resourceVersion": "1"},
                   "spec": {"holderIdentity": "other-medic", "renewTime": now, "acquireTime": now,
                            "leaseDurationSeconds": 600}}),
            Some("kube-lease-manager-other-medic".into()),
        ),
    );
    let err = cluster
        .perform(&cordon("worker-1", false))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClusterError::Refused { reason, .. }
            if reason.contains("medic-target.node.worker-1 is held by other-medic")),
        "{err}"
    );
    assert!(probe.sim.performed().is_empty(), "nothing written");
    assert_eq!(
        holder(&fake, "medic-target.node.worker-1").as_deref(),
        Some("other-medic"),
        "the other actor's Lease is left alone"
    );
}

#[tokio::test]
async fn a_replica_that_does_not_lead_writes_nothing() {
    let (fake, leader, probe, cluster) = fenced("medic-a").await;
    until("leadership", || leader.is_leader()).await;
    // Another replica takes the Lease behind medic-a's back (a partition:
    // medic-a's background renewal has not noticed yet).
    {
        let mut store = fake.lock().unwrap();
        let (lease, owner) = store.leases.get_mut("medic-leader").unwrap();
        lease["spec"]["holderIdentity"] = json!("medic-b");
        *owner = Some("kube-lease-manager-medic-b".into());
    }
    let err = cluster
        .perform(&cordon("worker-1", false))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not the leader: lease medic-leader is held by medic-b"),
        "{err}"
    );
    assert!(probe.seen.lock().unwrap().is_empty());
    assert!(probe.sim.performed().is_empty());
}

#[tokio::test]
async fn a_blip_keeps_the_term_and_a_takeover_starts_a_new_one() {
    let (fake, _) = fake_apiserver().await;
    let (client, cut) = common::lease_api::partitionable_client(&fake).await;
    let a = Leadership::start(client, &election(), "medic-a")
        .await
        .unwrap();
    until("a leads", || a.is_leader()).await;
    let first = a.confirm().await.unwrap();
    assert_eq!(first.transitions, 1, "{first:?}");
    assert!(first.acquired.is_some());

    // The API does not answer for a moment: no confirmation, no action...
    cut.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(a.leads_now().await.is_none());
    cut.store(false, std::sync::atomic::Ordering::SeqCst);
    // ...then the same term, renewed meanwhile: nobody else led.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(a.leads_now().await, Some(first.clone()));

    // Another way into the same fake API server, for the second replica.
    let (b_client, _) = common::lease_api::partitionable_client(&fake).await;
    let b = Leadership::start(b_client, &election(), "medic-b")
        .await
        .unwrap();
    a.stop().await;
    until("b takes over", || b.is_leader()).await;
    let second = b.confirm().await.unwrap();
    assert_ne!(second, first, "a takeover is a new term");
    assert_eq!(second.transitions, 2);
}
