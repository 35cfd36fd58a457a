//! The HTTP server of `medic run`: liveness, readiness, metrics, and the
//! incidents API.

use crate::replay::IncidentReport;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
    pub incidents: Vec<IncidentReport>,
}

pub type Shared = Arc<RwLock<Status>>;

fn read(shared: &Shared) -> Status {
    shared.read().map(|s| s.clone()).unwrap_or_default()
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents/{id}", get(incident))
        .with_state(shared)
}

async fn readyz(State(shared): State<Shared>) -> Response {
    let s = read(&shared);
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

async fn incidents(State(shared): State<Shared>) -> Json<Vec<IncidentReport>> {
    Json(read(&shared).incidents)
}

async fn incident(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match read(&shared).incidents.into_iter().find(|i| i.id == id) {
        Some(i) => Json(i).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no incident {id}")).into_response(),
    }
}
