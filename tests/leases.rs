//! Leader election and per-target Leases against a loopback fake of the
//! Kubernetes Lease API. The fake keeps Leases in memory and implements what
//! kube-lease-manager relies on: create (409 AlreadyExists), get (404),
//! server-side apply that conflicts when another field manager owns
//! `holderIdentity`, and strategic merge patches where `null` removes a field.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use medic::act::Action;
use medic::cluster::{ActionRequest, Cluster, ClusterError, ClusterSnapshot, SimCluster};
use medic::ha::{FencedCluster, LeaderElection, Leadership};
use medic::model::{ObjectRef, Risk, Secs};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NS: &str = "medic-system";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/medic-system/leases";

#[derive(Default)]
struct Store {
    /// name -> (lease, field manager owning holderIdentity)
    leases: BTreeMap<String, (Value, Option<String>)>,
    version: u64,
    /// "METHOD path?query" of every request, in order.
    log: Vec<String>,
}

type Fake = Arc<Mutex<Store>>;

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    (code, axum::Json(body)).into_response()
}

fn field_manager(uri: &Uri) -> String {
    uri.query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("fieldManager="))
        .unwrap_or("")
        .to_string()
}

/// Merges `patch` into `target`; `null` removes a key (strategic merge and
/// apply agree on this for the scalar fields a Lease has).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

async fn api(
    axum::extract::State(fake): axum::extract::State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut store = fake.lock().unwrap();
    store.log.push(format!(
        "{method} {}{}",
        uri.path(),
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    ));
    let Some(rest) = uri.path().strip_prefix(LEASES) else {
        return status(StatusCode::NOT_FOUND, "NotFound", "unknown path");
    };
    let name = rest.trim_start_matches('/').to_string();
    store.version += 1;
    let version = store.version.to_string();
    match method {
        Method::GET => match store.leases.get(&name) {
            Some((lease, _)) => axum::Json(lease.clone()).into_response(),
            None => status(StatusCode::NOT_FOUND, "NotFound", "lease not found"),
        },
        Method::POST => {
            let mut lease: Value = serde_json::from_slice(&body).unwrap();
            let name = lease["metadata"]["name"].as_str().unwrap().to_string();
            if store.leases.contains_key(&name) {
                return status(StatusCode::CONFLICT, "AlreadyExists", "lease exists");
            }
            lease["metadata"]["namespace"] = json!(NS);
            lease["metadata"]["resourceVersion"] = json!(version);
            store.leases.insert(name, (lease.clone(), None));
            (StatusCode::CREATED, axum::Json(lease)).into_response()
        }
        Method::PATCH => {
            let manager = field_manager(&uri);
            let apply = headers
                .get("content-type")
                .is_some_and(|c| c.as_bytes().starts_with(b"application/apply-patch"));
            let patch: Value = serde_json::from_slice(&body).unwrap();
            let Some((lease, owner)) = store.leases.get_mut(&name) else {
                return status(StatusCode::NOT_FOUND, "NotFound", "lease not found");
            };
            let wanted = patch["spec"].get("holderIdentity");
            let current = lease["spec"].get("holderIdentity").cloned();
            if apply
                && let (Some(w), Some(c)) = (wanted, &current)
                && w != c
                && owner.as_deref() != Some(manager.as_str())
            {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    "Apply failed with 1 conflict: conflict with another manager: .spec.holderIdentity",
                );
            }
            if let Some(w) = wanted {
                *owner = (!w.is_null()).then_some(manager);
            }
            if lease.get("spec").is_none_or(Value::is_null) {
                lease["spec"] = json!({});
            }
            merge(&mut lease["spec"], &patch["spec"]);
            lease["metadata"]["resourceVersion"] = json!(version);
            axum::Json(lease.clone()).into_response()
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "no"),
    }
}

async fn fake_apiserver() -> (Fake, kube::Client) {
    medic::tls::install_crypto_provider();
    let fake: Fake = Arc::default();
    let app = Router::new().fallback(api).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    config.default_namespace = NS.into();
    (fake, kube::Client::try_from(config).unwrap())
}

fn election() -> LeaderElection {
    LeaderElection {
        namespace: NS.into(),
        lease_duration: Secs(3),
        renew_before: Secs(1),
        target_wait: Secs(1),
        ..LeaderElection::default()
    }
}

fn holder(fake: &Fake, lease: &str) -> Option<String> {
    let store = fake.lock().unwrap();
    let (l, _) = store.leases.get(lease)?;
    l["spec"]["holderIdentity"].as_str().map(String::from)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

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
