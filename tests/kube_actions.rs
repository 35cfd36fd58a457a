//! The kube adapter's exact requests, checked with tower-test scenarios as
//! kube-rs's own tests do: method, path and query (dryRun), body, and what
//! each error status becomes.

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use medic::act::Action;
use medic::cluster::{ActionRequest, Cluster, ClusterError, EvictionRetry, KubeCluster};
use medic::model::Risk;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// One expected request and the answer to give.
struct Exchange {
    method: &'static str,
    uri: String,
    status: u16,
    reply: Value,
    /// The content type the request must carry, when the test says.
    content_type: Option<&'static str>,
}

fn ex(method: &'static str, uri: &str, status: u16, reply: Value) -> Exchange {
    Exchange {
        method,
        uri: uri.to_string(),
        status,
        reply,
        content_type: None,
    }
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": if code < 300 { "Success" } else { "Failure" },
           "message": format!("{reason} (test)"), "reason": reason, "code": code})
}

fn event_reply() -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "medic-x", "namespace": "default"}, "involvedObject": {}})
}

fn request(action: Action, target: &str, dry_run: bool) -> ActionRequest {
    ActionRequest {
        action,
        target: target.parse().unwrap(),
        params: BTreeMap::new(),
        dry_run,
        risk: Risk::Low,
        at: 1_704_067_200,
        incident: "inc-1".into(),
        playbook: "pb".into(),
        step: 2,
    }
}

/// Runs `req` against a mock API server that expects exactly `exchanges`;
/// returns the outcome and the bodies sent.
async fn scenario(
    req: ActionRequest,
    exchanges: Vec<Exchange>,
) -> (Result<String, ClusterError>, Vec<Value>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let server = tokio::spawn(async move {
        let mut bodies = Vec::new();
        for e in exchanges {
            let (request, send) = handle
                .next_request()
                .await
                .expect("an expected request was not sent");
            assert_eq!(request.method().as_str(), e.method, "{}", request.uri());
            assert_eq!(request.uri().to_string(), e.uri);
            if let Some(ct) = e.content_type {
                assert_eq!(request.headers()["content-type"], ct, "{}", e.uri);
            }
            let bytes = request.into_body().collect_bytes().await.unwrap();
            bodies.push(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
            let response = Response::builder()
                .status(e.status)
                .body(Body::from(serde_json::to_vec(&e.reply).unwrap()))
                .unwrap();
            send.send_response(response);
        }
        bodies
    });
    let cluster = KubeCluster::new(client).with_eviction_retry(EvictionRetry {
        attempts: 3,
        backoff: Duration::from_millis(1),
    });
    let outcome = cluster.perform(&req).await;
    drop(cluster);
    let bodies = server.await.expect("the mock server failed an assertion");
    (outcome, bodies)
}

const NODE: &str = "/api/v1/nodes/node-a?&fieldManager=medic";

#[tokio::test]
async fn cordon_patches_the_node_and_records_an_event() {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}});
    let (outcome, bodies) = scenario(
        request(Action::CordonNode, "Node/node-a", false),
        vec![
            ex("PATCH", NODE, 200, node),
            ex(
                "POST",
                "/api/v1/namespaces/default/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(outcome.unwrap(), "cordoned node-a");
    assert_eq!(bodies[0], json!({"spec": {"unschedulable": true}}));
    let event = &bodies[1];
    assert_eq!(event["reason"], "MedicCordonNode");
    assert_eq!(
        event["involvedObject"],
        json!({"apiVersion": "v1", "kind": "Node", "name": "node-a"})
    );
    assert_eq!(
        event["message"],
        "cordoned node-a (incident inc-1, playbook pb, step 2, risk low)"
    );
}

#[tokio::test]
async fn observe_mode_sends_dry_run_all_and_records_nothing() {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}});
    let (outcome, _) = scenario(
        request(Action::UncordonNode, "Node/node-a", true),
        vec![ex(
            "PATCH",
            "/api/v1/nodes/node-a?&dryRun=All&fieldManager=medic",
            200,
            node,
        )],
    )
    .await;
    assert_eq!(outcome.unwrap(), "uncordoned node-a");
}

#[tokio::test]
async fn a_missing_node_is_not_found_and_nothing_is_recorded() {
    let (outcome, _) = scenario(
        request(Action::CordonNode, "Node/node-a", false),
        vec![ex("PATCH", NODE, 404, status(404, "NotFound"))],
    )
    .await;
    assert_eq!(
        outcome.unwrap_err(),
        ClusterError::NotFound("Node/node-a".parse().unwrap())
    );
}

const EVICT: &str = "/api/v1/namespaces/shop/pods/api-1/eviction?";

#[tokio::test]
async fn eviction_is_preflighted_and_retried_while_a_pdb_says_429() {
    let ok = status(201, "Created");
    let (outcome, bodies) = scenario(
        request(Action::EvictPod, "Pod/shop/api-1", false),
        vec![
            ex(
                "POST",
                &format!("{EVICT}&dryRun=All&fieldManager=medic"),
                201,
                ok.clone(),
            ),
            ex(
                "POST",
                &format!("{EVICT}&fieldManager=medic"),
                429,
                status(429, "TooManyRequests"),
            ),
            ex("POST", &format!("{EVICT}&fieldManager=medic"), 201, ok),
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(outcome.unwrap(), "evicted Pod/shop/api-1");
    // kube-rs's Eviction body: the pod's name, default delete options.
    assert_eq!(
        bodies[1],
        json!({"delete_options": null, "metadata": {"name": "api-1"}})
    );
}

#[tokio::test]
async fn a_pdb_that_keeps_saying_429_refuses_the_eviction() {
    let (outcome, _) = scenario(
        request(Action::EvictPod, "Pod/shop/api-1", false),
        vec![
            ex(
                "POST",
                &format!("{EVICT}&dryRun=All&fieldManager=medic"),
                201,
                status(201, "Created"),
            ),
            ex(
                "POST",
                &format!("{EVICT}&fieldManager=medic"),
                429,
                status(429, "TooManyRequests"),
            ),
            ex(
                "POST",
                &format!("{EVICT}&fieldManager=medic"),
                429,
                status(429, "TooManyRequests"),
            ),
            ex(
                "POST",
                &format!("{EVICT}&fieldManager=medic"),
                429,
                status(429, "TooManyRequests"),
            ),
        ],
    )
    .await;
    assert!(
        matches!(outcome, Err(ClusterError::Refused { ref reason, .. }) if reason.contains("PodDisruptionBudget"))
    );
}

#[tokio::test]
async fn a_server_error_or_forbidden_eviction_is_an_error_not_a_retry() {
    for code in [500, 403] {
        let (outcome, _) = scenario(
            request(Action::EvictPod, "Pod/shop/api-1", false),
            vec![ex(
                "POST",
                &format!("{EVICT}&dryRun=All&fieldManager=medic"),
                code,
                status(code, "Nope"),
            )],
        )
        .await;
        assert!(
            matches!(outcome, Err(ClusterError::Api(ref m)) if m.starts_with(&code.to_string())),
            "{outcome:?}"
        );
    }
}

fn deployment(paused: bool) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "api", "namespace": "shop", "uid": "d-uid", "annotations": {"deployment.kubernetes.io/revision": "2"}},
           "spec": {"paused": paused, "selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}}}}})
}

fn replica_set(name: &str, revision: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
           "metadata": {"name": name, "namespace": "shop", "annotations": {"deployment.kubernetes.io/revision": revision},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "d-uid", "controller": true}]},
           "spec": {"selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api", "pod-template-hash": name}},
                                 "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

#[tokio::test]
async fn rollout_undo_replaces_the_template_with_the_previous_revisions() {
    let sets = json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
                      "items": [replica_set("api-v2", "2", "api:v2"), replica_set("api-v1", "1", "api:v1")]});
    let (outcome, bodies) = scenario(
        request(Action::RolloutUndo, "Deployment/shop/api", false),
        vec![
            ex(
                "GET",
                "/apis/apps/v1/namespaces/shop/deployments/api",
                200,
                deployment(false),
            ),
            ex(
                "GET",
                "/apis/apps/v1/namespaces/shop/replicasets?&labelSelector=app%3Dapi",
                200,
                sets,
            ),
            ex(
                "PATCH",
                "/apis/apps/v1/namespaces/shop/deployments/api?&fieldManager=medic",
                200,
                deployment(false),
            ),
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.unwrap(),
        "rolled back Deployment/shop/api from revision 2 to 1 (api-v1)"
    );
    assert_eq!(
        bodies[2],
        json!([{"op": "replace", "path": "/spec/template",
                "value": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "app", "image": "api:v1"}]}}}])
    );
    assert_eq!(bodies[3]["involvedObject"]["apiVersion"], "apps/v1");
}

#[tokio::test]
async fn a_paused_deployment_is_not_rolled_back() {
    let (outcome, _) = scenario(
        request(Action::RolloutUndo, "Deployment/shop/api", false),
        vec![ex(
            "GET",
            "/apis/apps/v1/namespaces/shop/deployments/api",
            200,
            deployment(true),
        )],
    )
    .await;
    assert!(
        matches!(outcome, Err(ClusterError::Refused { ref reason, .. }) if reason.contains("paused"))
    );
}

#[tokio::test]
async fn a_pod_no_controller_owns_is_never_deleted() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-1", "namespace": "shop"}});
    let (outcome, _) = scenario(
        request(Action::DeletePod, "Pod/shop/api-1", false),
        vec![ex("GET", "/api/v1/namespaces/shop/pods/api-1", 200, pod)],
    )
    .await;
    assert!(matches!(outcome, Err(ClusterError::Refused { .. })));
}

#[tokio::test]
async fn scale_reads_and_patches_the_scale_subresource() {
    let scale = |n: i64| json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "api", "namespace": "shop"}, "spec": {"replicas": n}});
    let mut req = request(Action::Scale, "Deployment/shop/api", false);
    req.params
        .insert("delta".into(), serde_yaml::Value::from(1));
    let (outcome, bodies) = scenario(
        req,
        vec![
            ex(
                "GET",
                "/apis/apps/v1/namespaces/shop/deployments/api/scale",
                200,
                scale(2),
            ),
            ex(
                "PATCH",
                "/apis/apps/v1/namespaces/shop/deployments/api/scale?&fieldManager=medic",
                200,
                scale(3),
            ),
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.unwrap(),
        "scaled Deployment/shop/api from 2 to 3 replicas"
    );
    assert_eq!(bodies[1], json!({"spec": {"replicas": 3}}));
}

#[tokio::test]
async fn rollout_restart_stamps_the_template_like_kubectl() {
    let (outcome, bodies) = scenario(
        request(Action::RolloutRestart, "Deployment/shop/api", false),
        vec![
            ex(
                "PATCH",
                "/apis/apps/v1/namespaces/shop/deployments/api?&fieldManager=medic",
                200,
                deployment(false),
            ),
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(outcome.unwrap(), "restarted Deployment/shop/api");
    assert_eq!(
        bodies[0],
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}})
    );
}

#[tokio::test]
async fn drain_cordons_then_evicts_all_but_daemonset_and_mirror_pods() {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}});
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
        {"metadata": {"name": "api-1", "namespace": "shop", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-v1", "uid": "u1", "controller": true}]}},
        {"metadata": {"name": "fluentd-x", "namespace": "logging", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "u2", "controller": true}]}},
        {"metadata": {"name": "etcd-node-a", "namespace": "kube-system", "annotations": {"kubernetes.io/config.mirror": "abc"}}}
    ]});
    let ok = status(201, "Created");
    let (outcome, _) = scenario(
        request(Action::DrainNode, "Node/node-a", false),
        vec![
            ex("PATCH", NODE, 200, node),
            ex(
                "GET",
                "/api/v1/pods?&fieldSelector=spec.nodeName%3Dnode-a",
                200,
                pods,
            ),
            ex(
                "POST",
                &format!("{EVICT}&dryRun=All&fieldManager=medic"),
                201,
                ok.clone(),
            ),
            ex("POST", &format!("{EVICT}&fieldManager=medic"), 201, ok),
            ex(
                "POST",
                "/api/v1/namespaces/default/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(outcome.unwrap(), "drained node-a: evicted 1 pods");
}

#[tokio::test]
async fn the_snapshot_lifts_pods_and_reads_deploys_from_replicasets() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let lists = vec![
        (
            "/api/v1/nodes?&limit=250",
            json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [{"metadata": {"name": "node-a"}, "spec": {"unschedulable": true}}]}),
        ),
        (
            "/apis/apps/v1/deployments?&limit=250",
            json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [deployment(false)]}),
        ),
        (
            "/apis/apps/v1/replicasets?&limit=250",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {}, "items": [
            {"metadata": {"name": "api-v2", "namespace": "shop", "creationTimestamp": "2024-01-01T00:00:00Z",
                          "annotations": {"deployment.kubernetes.io/revision": "2"},
                          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "d-uid", "controller": true}]}}]}),
        ),
        // Pods come a page at a time: the continue token asks for the next.
        (
            "/api/v1/pods?&limit=250",
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"continue": "page-2"}, "items": [
            {"metadata": {"name": "api-v2-x", "namespace": "shop", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-v2", "uid": "r2", "controller": true}]}, "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "api:2"}]}}]}),
        ),
        (
            "/api/v1/pods?&limit=250&continue=page-2",
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
            {"metadata": {"name": "api-v2-y", "namespace": "shop", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-v2", "uid": "r2", "controller": true}]}, "spec": {"nodeName": "node-b", "containers": []}}]}),
        ),
    ];
    let server = tokio::spawn(async move {
        for (uri, reply) in lists {
            let (request, send) = handle.next_request().await.unwrap();
            assert_eq!(request.uri().to_string(), uri);
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    let snap = KubeCluster::new(client).snapshot().await.unwrap();
    server.await.unwrap();
    let pod = "Pod/shop/api-v2-x".parse().unwrap();
    assert_eq!(
        snap.workload_of(&pod),
        Some("Deployment/shop/api".parse().unwrap())
    );
    assert_eq!(snap.node_of(&pod), Some("Node/node-a".parse().unwrap()));
    let second = "Pod/shop/api-v2-y".parse().unwrap();
    assert_eq!(
        snap.workload_of(&second),
        Some("Deployment/shop/api".parse().unwrap())
    );
    assert_eq!(snap.node_of(&second), Some("Node/node-b".parse().unwrap()));
    assert!(snap.nodes["node-a"].unschedulable);
    assert_eq!(snap.changes.len(), 1);
    assert_eq!(
        (snap.changes[0].at, snap.changes[0].kind.as_str()),
        (1_704_067_200, "deploy")
    );
    assert_eq!(snap.changes[0].message, "revision 2 (api-v2)");
}

/// A Deployment whose one container has a 512Mi limit, with `annotations`.
fn limited_deployment(annotations: Value, memory: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "api", "namespace": "shop", "annotations": annotations},
           "spec": {"selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api"}},
                                 "spec": {"containers": [{"name": "app", "image": "api:1",
                                     "resources": {"limits": {"memory": memory}}}]}}}})
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/api";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

#[tokio::test]
async fn set_memory_limit_reads_the_nodes_and_patches_one_container() {
    let mut req = request(Action::SetMemoryLimit, "Deployment/shop/api", false);
    req.params.insert("container".into(), "app".into());
    req.params.insert("percent".into(), 100.into());
    let nodes = json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [
        {"metadata": {"name": "a"}, "status": {"allocatable": {"memory": "900Mi"}}},
        {"metadata": {"name": "b"}, "status": {"allocatable": {"memory": "800Mi"}}}]});
    let mut patch = ex(
        "PATCH",
        &format!("{DEPLOYMENT}?&fieldManager=medic"),
        200,
        limited_deployment(json!({}), "900Mi"),
    );
    patch.content_type = Some(STRATEGIC);
    let (outcome, bodies) = scenario(
        req,
        vec![
            ex(
                "GET",
                DEPLOYMENT,
                200,
                limited_deployment(json!({}), "512Mi"),
            ),
            ex("GET", "/api/v1/nodes?", 200, nodes),
            patch,
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    // Doubling 512Mi would be 1024Mi: capped at the largest node's 900Mi.
    assert_eq!(
        outcome.unwrap(),
        "raised the memory limit of container app of Deployment/shop/api from 512Mi to 900Mi"
    );
    assert_eq!(
        bodies[2],
        json!({"metadata": {"annotations": {"medic.dev/memory-limit.app": "512Mi"}},
               "spec": {"template": {"spec": {"containers": [
                   {"name": "app", "resources": {"limits": {"memory": "900Mi"}}}]}}}})
    );
}

#[tokio::test]
async fn restore_memory_limit_puts_back_the_kept_limit_and_a_limit_at_the_node_is_refused() {
    let mut patch = ex(
        "PATCH",
        &format!("{DEPLOYMENT}?&fieldManager=medic"),
        200,
        limited_deployment(json!({}), "512Mi"),
    );
    patch.content_type = Some(STRATEGIC);
    let (outcome, bodies) = scenario(
        request(Action::RestoreMemoryLimit, "Deployment/shop/api", false),
        vec![
            ex(
                "GET",
                DEPLOYMENT,
                200,
                limited_deployment(json!({"medic.dev/memory-limit.app": "512Mi"}), "900Mi"),
            ),
            patch,
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.unwrap(),
        "restored the memory limit of container app of Deployment/shop/api from 900Mi to 512Mi"
    );
    assert_eq!(
        bodies[1]["metadata"]["annotations"]["medic.dev/memory-limit.app"],
        Value::Null
    );
    assert_eq!(
        bodies[1]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        "512Mi"
    );
    // Already at the largest node: refused, nothing patched.
    let nodes = json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [
        {"metadata": {"name": "a"}, "status": {"allocatable": {"memory": "512Mi"}}}]});
    let (outcome, _) = scenario(
        request(Action::SetMemoryLimit, "Deployment/shop/api", false),
        vec![
            ex(
                "GET",
                DEPLOYMENT,
                200,
                limited_deployment(json!({}), "512Mi"),
            ),
            ex("GET", "/api/v1/nodes?", 200, nodes),
        ],
    )
    .await;
    assert!(
        matches!(&outcome, Err(ClusterError::Refused { reason, .. }) if reason.contains("already at")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_statefulset_is_rolled_back_with_its_previous_controller_revision() {
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop", "uid": "s-uid"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "db:2"}]}}}});
    let revision = |name: &str, n: i64, image: &str, owner: &str| {
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
               "metadata": {"name": name, "namespace": "shop",
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": owner, "controller": true}]},
               "revision": n,
               "data": {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "db"}},
                                              "spec": {"containers": [{"name": "db", "image": image}]}}}}})
    };
    let list = json!({"apiVersion": "apps/v1", "kind": "ControllerRevisionList", "metadata": {}, "items": [
        revision("db-7b9", 2, "db:2", "s-uid"),
        revision("db-5c4", 1, "db:1", "s-uid"),
        // Another StatefulSet's, with the same labels: not ours.
        revision("other-1", 3, "other:9", "x-uid")]});
    let mut patch = ex(
        "PATCH",
        "/apis/apps/v1/namespaces/shop/statefulsets/db?&fieldManager=medic",
        200,
        sts.clone(),
    );
    patch.content_type = Some(STRATEGIC);
    let (outcome, bodies) = scenario(
        request(Action::RolloutUndo, "StatefulSet/shop/db", false),
        vec![
            ex(
                "GET",
                "/apis/apps/v1/namespaces/shop/statefulsets/db",
                200,
                sts,
            ),
            ex(
                "GET",
                "/apis/apps/v1/namespaces/shop/controllerrevisions?&labelSelector=app%3Ddb",
                200,
                list,
            ),
            patch,
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.unwrap(),
        "rolled back StatefulSet/shop/db from revision 2 to 1 (db-5c4)"
    );
    assert_eq!(
        bodies[2],
        json!({"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "db"}},
                                     "spec": {"containers": [{"name": "db", "image": "db:1"}]}}}})
    );
    let event = &bodies[3];
    assert_eq!(
        event["involvedObject"],
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "namespace": "shop"})
    );
}

#[tokio::test]
async fn a_daemonset_is_restarted_like_kubectl() {
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "shop"},
                    "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}}}}});
    let (outcome, bodies) = scenario(
        request(Action::RolloutRestart, "DaemonSet/shop/agent", false),
        vec![
            ex(
                "PATCH",
                "/apis/apps/v1/namespaces/shop/daemonsets/agent?&fieldManager=medic",
                200,
                ds,
            ),
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(outcome.unwrap(), "restarted DaemonSet/shop/agent");
    assert_eq!(
        bodies[0],
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}})
    );
}

#[tokio::test]
async fn set_hpa_max_patches_the_maximum_and_keeps_the_old_one() {
    let hpa = |max: i64, annotations: Value| {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
               "spec": {"maxReplicas": max, "minReplicas": 2,
                        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}})
    };
    const HPA: &str = "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web";
    let (outcome, bodies) = scenario(
        request(Action::SetHpaMax, "HorizontalPodAutoscaler/shop/web", false),
        vec![
            ex("GET", HPA, 200, hpa(10, json!({}))),
            ex(
                "PATCH",
                &format!("{HPA}?&fieldManager=medic"),
                200,
                hpa(15, json!({})),
            ),
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.unwrap(),
        "raised the maximum of HorizontalPodAutoscaler/shop/web from 10 to 15 replicas"
    );
    assert_eq!(
        bodies[1],
        json!({"metadata": {"annotations": {"medic.dev/max-replicas": "10"}}, "spec": {"maxReplicas": 15}})
    );
    assert_eq!(
        bodies[2]["involvedObject"],
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web", "namespace": "shop"})
    );
    let (outcome, bodies) = scenario(
        request(
            Action::RestoreHpaMax,
            "HorizontalPodAutoscaler/shop/web",
            false,
        ),
        vec![
            ex(
                "GET",
                HPA,
                200,
                hpa(15, json!({"medic.dev/max-replicas": "10"})),
            ),
            ex(
                "PATCH",
                &format!("{HPA}?&fieldManager=medic"),
                200,
                hpa(10, json!({})),
            ),
            ex(
                "POST",
                "/api/v1/namespaces/shop/events?",
                201,
                event_reply(),
            ),
        ],
    )
    .await;
    assert_eq!(
        outcome.unwrap(),
        "restored the maximum of HorizontalPodAutoscaler/shop/web from 15 to 10 replicas"
    );
    assert_eq!(
        bodies[1],
        json!({"metadata": {"annotations": {"medic.dev/max-replicas": null}}, "spec": {"maxReplicas": 10}})
    );
}

#[tokio::test]
async fn describe_scheduling_reads_the_pod_its_events_the_nodes_and_the_placed_pods() {
    let pod = |name: &str, node: Option<&str>, cpu: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                        "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}})
    };
    let list = |kind: &str, items: Vec<Value>| json!({"apiVersion": "v1", "kind": kind, "metadata": {}, "items": items});
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "name": "orders-x", "namespace": "shop"},
        "reason": "FailedScheduling", "message": "0/1 nodes are available: 1 Insufficient cpu."});
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
        "status": {"allocatable": {"cpu": "2", "memory": "8Gi"}}});
    let (outcome, _) = scenario(
        request(Action::DescribeScheduling, "Pod/shop/orders-x", false),
        vec![
            ex("GET", "/api/v1/namespaces/shop/pods/orders-x", 200, pod("orders-x", None, "1")),
            ex(
                "GET",
                "/api/v1/namespaces/shop/events?&fieldSelector=involvedObject.kind%3DPod%2CinvolvedObject.name%3Dorders-x",
                200,
                list("EventList", vec![event]),
            ),
            ex("GET", "/api/v1/nodes?", 200, list("NodeList", vec![node])),
            ex(
                "GET",
                "/api/v1/pods?&fieldSelector=status.phase%21%3DSucceeded%2Cstatus.phase%21%3DFailed",
                200,
                list("PodList", vec![pod("web-1", Some("node-a"), "1500m")]),
            ),
        ],
    )
    .await;
    // Read-only: no Event is recorded for it.
    assert_eq!(
        outcome.unwrap(),
        "the scheduler says: 0/1 nodes are available: 1 Insufficient cpu.; the pod requests 1 CPU and 1024Mi; \
         the most free on a schedulable node is 0.50 CPU (node-a) and 7168Mi (node-a); 0.50 CPU short"
    );
}
