//! medic's Prometheus client sends the configured credentials and headers,
//! checked against a loopback endpoint that answers like Prometheus.

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use medic::metrics::{BasicAuth, Metrics, PrometheusConfig, PrometheusMetrics};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

async fn endpoint() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let app = Router::new().route(
        "/api/v1/query",
        get(move |headers: HeaderMap| {
            s.lock().unwrap().push(headers);
            async {
                axum::Json(serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": {"__name__": "up", "job": "api"}, "value": [1704067200, "1"]}]}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn bearer_token_and_extra_headers_are_sent() {
    let (url, seen) = endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let config = PrometheusConfig {
        url,
        bearer_token_file: Some(token.display().to_string()),
        headers: BTreeMap::from([("X-Scope-OrgID".to_string(), "tenant-1".to_string())]),
        ..PrometheusConfig::default()
    };
    let metrics = PrometheusMetrics::from_config(&config).unwrap();
    let result = metrics.instant("up", 1_704_067_200).await.unwrap();
    assert_eq!(result[0].labels["job"], "api");
    assert_eq!(result[0].value, 1.0);
    let headers = &seen.lock().unwrap()[0];
    assert_eq!(headers["authorization"], "Bearer s3cret-token");
    assert_eq!(headers["x-scope-orgid"], "tenant-1");
}

#[tokio::test]
async fn basic_auth_is_sent_and_a_missing_secret_is_a_clear_error() {
    let (url, seen) = endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "pass").unwrap();
    let mut config = PrometheusConfig {
        url,
        basic_auth: Some(BasicAuth {
            username: "user".into(),
            password_file: password.display().to_string(),
        }),
        ..PrometheusConfig::default()
    };
    PrometheusMetrics::from_config(&config)
        .unwrap()
        .instant("up", 0)
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap()[0]["authorization"],
        "Basic dXNlcjpwYXNz"
    );
    config.bearer_token_file = Some("/nonexistent/token".into());
    let err = PrometheusMetrics::from_config(&config)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cannot read /nonexistent/token"), "{err}");
}
