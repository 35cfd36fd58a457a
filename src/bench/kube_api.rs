//! A loopback Kubernetes API for the memory figure: it serves the synthetic
//! cluster's lists the way the API server does (pages by `limit` and
//! `continue`), with pods as large as real ones, so `medic run` reads the
//! cluster through its production adapter.

use super::synth::{Shape, objects};
use super::{BenchError, setup};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Each list's items, serialized once, and the requests served.
struct Served {
    lists: BTreeMap<&'static str, (&'static str, &'static str, Vec<String>)>,
    requests: Arc<Requests>,
}

/// Requests the API server has answered: list pages and watches opened.
#[derive(Debug, Default)]
pub struct Requests {
    pub list_pages: AtomicUsize,
    pub watches: AtomicUsize,
}

pub struct KubeApi {
    pub url: String,
    pub requests: Arc<Requests>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a running pod carries besides its name and owner: containers with
/// images, resources, probes and env, and a status with conditions.
fn realistic_pod(mut pod: serde_json::Value, i: usize) -> serde_json::Value {
    let app = pod["metadata"]["name"]
        .as_str()
        .map(|n| n.split('-').take(2).collect::<Vec<_>>().join("-"))
        .unwrap_or_default();
    pod["metadata"]["labels"] = serde_json::json!({"app": app, "pod-template-hash": "6d5f7c9b8"});
    pod["metadata"]["uid"] = serde_json::json!(format!("3f1c2a4e-0000-4000-8000-{i:012}"));
    pod["metadata"]["resourceVersion"] = serde_json::json!(format!("{}", 100_000 + i));
    pod["metadata"]["creationTimestamp"] = serde_json::json!("2024-01-01T00:00:00Z");
    pod["metadata"]["managedFields"] = serde_json::json!([{
        "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
        "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}},
                     "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:resources": {}}}}}
    }]);
    pod["spec"]["containers"] = serde_json::json!([{
        "name": "app",
        "image": format!("registry.example.com/team/{app}:1.42.{}", i % 7),
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4317"}
        ],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
        "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
    }]);
    pod["spec"]["serviceAccountName"] = serde_json::json!("default");
    pod["spec"]["volumes"] = serde_json::json!([{"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}]);
    pod["status"] = serde_json::json!({
        "phase": "Running",
        "podIP": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "registry.example.com/team/app", "imageID": "sha256:0f3c", "started": true, "state": {"running": {"startedAt": "2024-01-01T00:00:05Z"}}}]
    });
    pod
}

/// Serves `shape` until dropped.
pub async fn serve(shape: &Shape) -> Result<KubeApi, BenchError> {
    let mut lists: BTreeMap<&'static str, (&'static str, &'static str, Vec<String>)> =
        BTreeMap::from([
            ("/api/v1/nodes", ("v1", "NodeList", Vec::new())),
            ("/api/v1/pods", ("v1", "PodList", Vec::new())),
            (
                "/apis/apps/v1/deployments",
                ("apps/v1", "DeploymentList", Vec::new()),
            ),
            (
                "/apis/apps/v1/replicasets",
                ("apps/v1", "ReplicaSetList", Vec::new()),
            ),
        ]);
    for (i, o) in objects(shape).into_iter().enumerate() {
        let mut json = serde_json::to_value(&o.value).map_err(setup)?;
        let path = match o.reference.kind.as_str() {
            "Node" => "/api/v1/nodes",
            "Pod" => {
                json = realistic_pod(json, i);
                "/api/v1/pods"
            }
            "Deployment" => "/apis/apps/v1/deployments",
            _ => "/apis/apps/v1/replicasets",
        };
        if let Some((_, _, items)) = lists.get_mut(path) {
            items.push(serde_json::to_string(&json).map_err(setup)?);
        }
    }
    let requests = Arc::new(Requests::default());
    let app = Router::new().fallback(list).with_state(Arc::new(Served {
        lists,
        requests: requests.clone(),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(setup)?;
    let url = format!("http://{}", listener.local_addr().map_err(setup)?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(KubeApi {
        url,
        requests,
        task,
    })
}

async fn list(
    State(served): State<Arc<Served>>,
    uri: Uri,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some((api_version, kind, items)) = served.lists.get(uri.path()) else {
        return (
            StatusCode::NOT_FOUND,
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#,
        )
            .into_response();
    };
    if q.get("watch").is_some_and(|w| w == "true") {
        served.requests.watches.fetch_add(1, Ordering::Relaxed);
        // Nothing changes in the synthetic cluster: the watch stays open
        // and silent, as a real one does between events.
        let silent = futures::stream::pending::<Result<bytes::Bytes, std::convert::Infallible>>();
        return (
            [("content-type", "application/json")],
            axum::body::Body::from_stream(silent),
        )
            .into_response();
    }
    served.requests.list_pages.fetch_add(1, Ordering::Relaxed);
    let from: usize = q.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let to = from.saturating_add(limit).min(items.len());
    let page = items.get(from..to).unwrap_or_default();
    let next = if to < items.len() {
        format!(r#","continue":"{to}""#)
    } else {
        String::new()
    };
    let body = format!(
        r#"{{"apiVersion":"{api_version}","kind":"{kind}","metadata":{{"resourceVersion":"1"{next}}},"items":[{}]}}"#,
        page.join(",")
    );
    ([("content-type", "application/json")], body).into_response()
}
