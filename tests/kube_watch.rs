//! The watch-fed cluster view against a tower-test API server: the exact
//! list and watch requests, watch events folded into the snapshot, and a
//! failed watch failing closed until a fresh list.

use axum::body::Body as ReplyBody;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use medic::cluster::{Cluster, WatchedCluster};
use medic::model::ObjectRef;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

type Line = Result<bytes::Bytes, std::convert::Infallible>;

/// What the fake API server answers for one path, in order.
#[derive(Default)]
struct Script {
    /// List replies; each waits for its gate, when it has one.
    lists: VecDeque<(Option<oneshot::Receiver<()>>, Value)>,
    /// Watch streams, one per watch request; none left means a silent one.
    watches: VecDeque<mpsc::UnboundedReceiver<Line>>,
}

struct Server {
    uris: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn serve(mut scripts: BTreeMap<String, Script>) -> (Client, Server) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<ReplyBody>>();
    let client = Client::new(service, "default");
    let uris = Arc::new(Mutex::new(Vec::new()));
    let seen = uris.clone();
    let task = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let uri = request.uri().to_string();
            seen.lock().unwrap().push(uri.clone());
            let script = scripts.entry(request.uri().path().to_string()).or_default();
            if uri.contains("watch=true") {
                let body = match script.watches.pop_front() {
                    Some(mut rx) => {
                        ReplyBody::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
                    }
                    None => ReplyBody::from_stream(futures::stream::pending::<Line>()),
                };
                send.send_response(Response::new(body));
                continue;
            }
            let Some((gate, reply)) = script.lists.pop_front() else {
                panic!("an unexpected list: {uri}");
            };
            tokio::spawn(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                send.send_response(Response::new(ReplyBody::from(
                    serde_json::to_vec(&reply).unwrap(),
                )));
            });
        }
    });
    (client, Server { uris, task })
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": if kind == "NodeList" || kind == "PodList" { "v1" } else { "apps/v1" },
           "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items})
}

fn pod(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "shop", "resourceVersion": "11",
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-v2", "uid": "r2", "controller": true}]},
           "spec": {"nodeName": node, "containers": [{"name": "app", "image": "api:2"}]}})
}

fn scripts(pods: Vec<Script>) -> BTreeMap<String, Script> {
    let one = |reply: Value| Script {
        lists: VecDeque::from([(None, reply)]),
        watches: VecDeque::new(),
    };
    let mut pods_script = Script::default();
    for s in pods {
        pods_script.lists.extend(s.lists);
        pods_script.watches.extend(s.watches);
    }
    BTreeMap::from([
        (
            "/api/v1/nodes",
            one(list(
                "NodeList",
                vec![json!({"metadata": {"name": "node-a", "resourceVersion": "3"}})],
            )),
        ),
        (
            "/apis/apps/v1/deployments",
            one(list(
                "DeploymentList",
                vec![json!({
            "metadata": {"name": "api", "namespace": "shop", "resourceVersion": "4"}, "spec": {"replicas": 2}})],
            )),
        ),
        (
            "/apis/apps/v1/replicasets",
            one(list(
                "ReplicaSetList",
                vec![json!({
            "metadata": {"name": "api-v2", "namespace": "shop", "resourceVersion": "5", "creationTimestamp": "2024-01-01T00:00:00Z",
                         "annotations": {"deployment.kubernetes.io/revision": "2"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "d-uid", "controller": true}]}})],
            )),
        ),
        ("/api/v1/pods", pods_script),
    ])
    .into_iter()
    .map(|(path, script)| (path.to_string(), script))
    .collect()
}

fn event(kind: &str, object: Value) -> Line {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
    line.push(b'\n');
    Ok(bytes::Bytes::from(line))
}

/// Polls the snapshot until `ok` holds of it (or of its error).
async fn until<F>(
    cluster: &WatchedCluster,
    what: &str,
    ok: F,
) -> Result<Arc<medic::cluster::ClusterSnapshot>, String>
where
    F: Fn(&Result<Arc<medic::cluster::ClusterSnapshot>, String>) -> bool,
{
    for _ in 0..200 {
        let s = cluster.snapshot().await.map_err(|e| e.to_string());
        if ok(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never: {what}");
}

fn r(s: &str) -> ObjectRef {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_cluster_is_listed_once_then_followed() {
    let (gate, release) = oneshot::channel();
    let (events, rx) = mpsc::unbounded_channel();
    let (client, server) = serve(scripts(vec![Script {
        lists: VecDeque::from([(
            Some(release),
            list("PodList", vec![pod("api-v2-x", "node-a")]),
        )]),
        watches: VecDeque::from([rx]),
    }]));
    let cluster = WatchedCluster::start(client);

    // Until the pods are listed, there is no view to act on.
    let early = until(&cluster, "the other kinds listed", |s| {
        s.as_ref()
            .is_err_and(|e| e.contains("pods: not listed yet"))
    })
    .await;
    assert!(early.is_err());
    gate.send(()).unwrap();
    let snap = until(&cluster, "in sync", Result::is_ok).await.unwrap();
    assert_eq!(
        snap.workload_of(&r("Pod/shop/api-v2-x")),
        Some(r("Deployment/shop/api"))
    );
    assert_eq!(
        snap.node_of(&r("Pod/shop/api-v2-x")),
        Some(r("Node/node-a"))
    );
    assert_eq!(snap.changes.len(), 1, "the ReplicaSet's deploy");
    let again = cluster.snapshot().await.unwrap();
    assert!(
        Arc::ptr_eq(&snap, &again),
        "nothing changed: the same snapshot"
    );

    // A pod scheduled, then one deleted: each shows in the next snapshot.
    events
        .send(event("ADDED", pod("api-v2-y", "node-b")))
        .unwrap();
    let snap = until(&cluster, "the new pod", |s| {
        s.as_ref()
            .is_ok_and(|s| s.pods.contains_key(&r("Pod/shop/api-v2-y")))
    })
    .await
    .unwrap();
    assert_eq!(
        snap.workload_of(&r("Pod/shop/api-v2-y")),
        Some(r("Deployment/shop/api"))
    );
    events
        .send(event("DELETED", pod("api-v2-x", "node-a")))
        .unwrap();
    until(&cluster, "the pod gone", |s| {
        s.as_ref()
            .is_ok_and(|s| !s.pods.contains_key(&r("Pod/shop/api-v2-x")))
    })
    .await
    .unwrap();

    let uris = server.uris.lock().unwrap().clone();
    let pods: Vec<&String> = uris
        .iter()
        .filter(|u| u.starts_with("/api/v1/pods"))
        .collect();
    assert_eq!(
        pods,
        [
            "/api/v1/pods?&limit=250",
            "/api/v1/pods?&watch=true&timeoutSeconds=60&allowWatchBookmarks=true&resourceVersion=10",
        ],
        "one list, then one watch from the list's version, however many snapshots"
    );
    for prefix in [
        "/api/v1/nodes",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
    ] {
        assert_eq!(
            uris.iter().filter(|u| u.starts_with(prefix)).count(),
            2,
            "{prefix}: {uris:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_watch_fails_closed_until_a_fresh_list() {
    let (events, rx) = mpsc::unbounded_channel();
    let (gate, release) = oneshot::channel();
    let (client, server) = serve(scripts(vec![
        Script {
            lists: VecDeque::from([(
                None,
                list(
                    "PodList",
                    vec![pod("api-v2-x", "node-a"), pod("api-v2-y", "node-b")],
                ),
            )]),
            watches: VecDeque::from([rx]),
        },
        // The fresh list after the failure: api-v2-x went meanwhile.
        Script {
            lists: VecDeque::from([(
                Some(release),
                list("PodList", vec![pod("api-v2-y", "node-b")]),
            )]),
            watches: VecDeque::new(),
        },
    ]));
    let cluster = WatchedCluster::start(client);
    until(&cluster, "in sync", Result::is_ok).await.unwrap();

    events
        .send(event(
            "ERROR",
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "etcd unavailable (test)", "reason": "InternalError", "code": 500}),
        ))
        .unwrap();
    let err = until(&cluster, "stale", Result::is_err).await.unwrap_err();
    assert!(
        err.contains("the watch of pods") && err.contains("etcd unavailable"),
        "{err}"
    );
    // Still stale while the fresh list is pending: no view, no action.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cluster.snapshot().await.is_err());
    gate.send(()).unwrap();
    let snap = until(&cluster, "in sync again", Result::is_ok)
        .await
        .unwrap();
    assert!(
        !snap.pods.contains_key(&r("Pod/shop/api-v2-x")),
        "gone by the fresh list"
    );
    assert!(snap.pods.contains_key(&r("Pod/shop/api-v2-y")));
    let lists = server
        .uris
        .lock()
        .unwrap()
        .iter()
        .filter(|u| u.as_str() == "/api/v1/pods?&limit=250")
        .count();
    assert_eq!(lists, 2, "listed again after the failure, once");
}
