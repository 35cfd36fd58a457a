//! A loopback fake of the Kubernetes Lease API. It keeps Leases in memory
//! and implements what kube-lease-manager relies on: create (409
//! AlreadyExists), get (404), server-side apply that conflicts when another
//! field manager owns `holderIdentity`, and strategic merge patches where
//! `null` removes a field.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use medic::ha::LeaderElection;
use medic::model::Secs;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NS: &str = "medic-system";
pub const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/medic-system/leases";

#[derive(Default)]
pub struct Store {
    /// name -> (lease, field manager owning holderIdentity)
    pub leases: BTreeMap<String, (Value, Option<String>)>,
    pub version: u64,
    /// "METHOD path?query" of every request, in order.
    pub log: Vec<String>,
}

pub type Fake = Arc<Mutex<Store>>;

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

pub async fn fake_apiserver() -> (Fake, kube::Client) {
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

pub fn election() -> LeaderElection {
    LeaderElection {
        namespace: NS.into(),
        lease_duration: Secs(3),
        renew_before: Secs(1),
        target_wait: Secs(1),
        ..LeaderElection::default()
    }
}

pub fn holder(fake: &Fake, lease: &str) -> Option<String> {
    let store = fake.lock().unwrap();
    let (l, _) = store.leases.get(lease)?;
    l["spec"]["holderIdentity"].as_str().map(String::from)
}

pub async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Another way into the same fake, for one replica: while `cut` is set it
/// answers every request 503, as for a replica cut off from the API server.
pub async fn partitionable_client(fake: &Fake) -> (kube::Client, Arc<AtomicBool>) {
    let cut = Arc::new(AtomicBool::new(false));
    let (store, switch) = (fake.clone(), cut.clone());
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (store, switch) = (store.clone(), switch.clone());
            async move {
                if switch.load(Ordering::SeqCst) {
                    return status(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        "cut off",
                    );
                }
                api(axum::extract::State(store), method, uri, headers, body).await
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    config.default_namespace = NS.into();
    (kube::Client::try_from(config).unwrap(), cut)
}
