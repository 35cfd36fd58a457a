//! The HTTP server of `medic run`: liveness, readiness, metrics, and the
//! incidents API.

use super::answers::{self, AnswerDesk, AnswerRequest};
use super::slack::{self, SlackDesk};
use crate::model::unix_now;
use crate::replay::IncidentReport;
use crate::signal::{AlertEvent, WebhookPayload, from_webhook};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::{Arc, RwLock};

/// What the loop last saw, for the endpoints.
#[derive(Debug, Default, Clone)]
pub struct Status {
    pub prometheus_ok: bool,
    pub prometheus_error: Option<String>,
    pub detectors: usize,
    pub playbooks: usize,
    pub cycles: u64,
    /// Whether this replica leads; `None` without leader election.
    pub leader: Option<bool>,
    pub incidents: Vec<IncidentReport>,
}

pub type Shared = Arc<RwLock<Status>>;

/// Largest webhook body accepted.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
struct App {
    status: Shared,
    alerts: tokio::sync::mpsc::Sender<Vec<AlertEvent>>,
    desk: AnswerDesk,
    slack: Option<SlackDesk>,
}

fn read(shared: &Shared) -> Status {
    shared.read().map(|s| s.clone()).unwrap_or_default()
}

/// `alerts` carries accepted Alertmanager alerts to the loop.
/// `slack`: where Slack's buttons answer, when Slack is configured.
pub fn router(
    shared: Shared,
    alerts: tokio::sync::mpsc::Sender<Vec<AlertEvent>>,
    desk: AnswerDesk,
    slack: Option<SlackDesk>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents/{id}", get(incident))
        .route("/api/v1/alerts", axum::routing::post(receive_alerts))
        .route(
            "/api/v1/incidents/{id}/approve",
            axum::routing::post(approve),
        )
        .route("/api/v1/incidents/{id}/deny", axum::routing::post(deny))
        .route("/api/v1/pause", axum::routing::post(pause))
        .route("/api/v1/resume", axum::routing::post(resume))
        .route(
            "/slack/interactions",
            axum::routing::post(slack_interaction),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(App {
            status: shared,
            alerts,
            desk,
            slack,
        })
}

/// Alertmanager's webhook (version 4): each alert that names a pod,
/// workload or node becomes a signal; repeats are deduplicated by
/// fingerprint in the engine.
async fn receive_alerts(
    State(app): State<App>,
    body: Result<Json<WebhookPayload>, JsonRejection>,
) -> Response {
    let Json(payload) = match body {
        Ok(b) => b,
        Err(e) => {
            return (
                e.status(),
                format!("not an Alertmanager webhook payload: {}", e.body_text()),
            )
                .into_response();
        }
    };
    let (events, skipped) = match from_webhook(&payload, unix_now()) {
        Ok(x) => x,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let accepted = events.len();
    if app.alerts.try_send(events).is_err() {
        // Alertmanager retries a 5xx: nothing is lost.
        return (StatusCode::SERVICE_UNAVAILABLE, "busy: retry").into_response();
    }
    Json(serde_json::json!({"accepted": accepted, "skipped": skipped})).into_response()
}

async fn approve(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AnswerRequest>, JsonRejection>,
) -> Response {
    answer_route(app, id, headers, body, true).await
}

async fn deny(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<AnswerRequest>, JsonRejection>,
) -> Response {
    answer_route(app, id, headers, body, false).await
}

async fn pause(State(app): State<App>, headers: HeaderMap) -> Response {
    answers::set_paused(&app.desk, &headers, true)
}

async fn resume(State(app): State<App>, headers: HeaderMap) -> Response {
    answers::set_paused(&app.desk, &headers, false)
}

async fn answer_route(
    app: App,
    id: String,
    headers: HeaderMap,
    body: Result<Json<AnswerRequest>, JsonRejection>,
    approved: bool,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return (e.status(), format!("bad answer: {}", e.body_text())).into_response(),
    };
    let leads = read(&app.status).leader != Some(false);
    answers::answer(&app.desk, leads, &headers, &id, approved, body, unix_now()).await
}

async fn slack_interaction(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(desk) = &app.slack else {
        return (StatusCode::NOT_FOUND, "Slack is not configured").into_response();
    };
    let leads = read(&app.status).leader != Some(false);
    slack::interaction(desk, leads, &headers, &body, unix_now()).await
}

async fn readyz(State(app): State<App>) -> Response {
    let s = read(&app.status);
    let mut problems = Vec::new();
    if s.cycles == 0 {
        problems.push("no detection cycle has run yet".to_string());
    }
    if !s.prometheus_ok {
        problems.push(format!(
            "Prometheus is not answering: {}",
            s.prometheus_error.as_deref().unwrap_or("no answer yet")
        ));
    }
    if s.detectors == 0 {
        problems.push("no detectors loaded".to_string());
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("; ")).into_response()
    }
}

async fn metrics() -> Response {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::telemetry::render(),
    )
        .into_response()
}

async fn incidents(State(app): State<App>) -> Json<Vec<IncidentReport>> {
    Json(read(&app.status).incidents)
}

async fn incident(State(app): State<App>, Path(id): Path<String>) -> Response {
    match read(&app.status).incidents.into_iter().find(|i| i.id == id) {
        Some(i) => Json(i).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no incident {id}")).into_response(),
    }
}
