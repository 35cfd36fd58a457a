//! The HTTP server of `medic run`: liveness, readiness, metrics, and the
//! incidents API.

use super::answers::{self, AnswerDesk, AnswerRequest, refusal};
use super::auth::Gate;
use super::slack::{self, SlackDesk};
use crate::model::{Timestamp, unix_now};
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
    /// Each playbook step's track record (`medic trust`), as of the last cycle.
    pub trust: Vec<crate::trust::Row>,
    /// When the loop started (None: no loop behind these endpoints, as in
    /// the bench's intake server), and when it last finished a cycle.
    pub started_at: Option<Timestamp>,
    pub last_cycle_at: Option<Timestamp>,
    /// The cycle interval, in seconds: how late a cycle may be.
    pub interval: i64,
}

impl Status {
    /// Why the loop counts as stuck once `cycles` intervals (at least
    /// `floor` seconds) pass without a cycle finishing.
    fn quiet_beyond(&self, now: Timestamp, cycles: i64, floor: i64) -> Option<String> {
        let since = self.last_cycle_at.or(self.started_at)?;
        let (quiet, limit) = (now - since, (cycles * self.interval).max(floor));
        (quiet > limit).then(|| format!("no cycle has finished for {quiet}s (more than {limit}s)"))
    }

    /// Not ready once three cycles are missed (at least a minute): a loop
    /// stuck on a slow API should not take alerts.
    fn late(&self, now: Timestamp) -> Option<String> {
        self.quiet_beyond(now, 3, 60)
            .map(|why| format!("{why}: the loop is stuck"))
    }

    /// Not alive once ten cycles are missed (at least five minutes), so
    /// Kubernetes restarts a hung medic, which gives up the leader Lease
    /// the background renewal would otherwise keep.
    fn stuck(&self, now: Timestamp) -> Option<String> {
        self.quiet_beyond(now, 10, 300)
            .map(|why| format!("{why}: restart me"))
    }
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
    /// Alertmanager's credentials; None: the webhook is off.
    webhook: Option<Gate>,
}

fn read(shared: &Shared) -> Status {
    shared.read().map(|s| s.clone()).unwrap_or_default()
}

/// `alerts` carries accepted Alertmanager alerts to the loop, when
/// `webhook` (Alertmanager's credentials) is set.
/// `slack`: where Slack's buttons answer, when Slack is configured.
/// Health, readiness and metrics are open; everything else needs
/// credentials.
pub fn router(
    shared: Shared,
    alerts: tokio::sync::mpsc::Sender<Vec<AlertEvent>>,
    desk: AnswerDesk,
    slack: Option<SlackDesk>,
    webhook: Option<Gate>,
) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents/{id}", get(incident))
        .route("/api/v1/trust", get(trust))
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
            webhook,
        })
}

/// Alertmanager's webhook (version 4): each alert that names a pod,
/// workload or node becomes a signal; repeats are deduplicated by
/// fingerprint in the engine.
async fn receive_alerts(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(gate) = &app.webhook else {
        return (
            StatusCode::NOT_FOUND,
            "the Alertmanager webhook is off (api.webhook.enabled: false)",
        )
            .into_response();
    };
    // Credentials before the body: a refused request is not even parsed.
    if let Some(refused) = refusal(gate, &headers, "alerts") {
        return refused;
    }
    let payload: WebhookPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("not an Alertmanager webhook payload: {e}"),
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

async fn healthz(State(app): State<App>) -> Response {
    match read(&app.status).stuck(unix_now()) {
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, problem).into_response(),
        None => (StatusCode::OK, "ok").into_response(),
    }
}

async fn readyz(State(app): State<App>) -> Response {
    let s = read(&app.status);
    let mut problems = Vec::new();
    problems.extend(s.late(unix_now()));
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

async fn incidents(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&app.desk.gate, &headers, "incidents") {
        return refused;
    }
    Json(read(&app.status).incidents).into_response()
}

/// What `medic trust --format json` prints, from the running medic.
async fn trust(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&app.desk.gate, &headers, "incidents") {
        return refused;
    }
    Json(read(&app.status).trust).into_response()
}

async fn incident(State(app): State<App>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&app.desk.gate, &headers, "incidents") {
        return refused;
    }
    match read(&app.status).incidents.into_iter().find(|i| i.id == id) {
        Some(i) => Json(i).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no incident {id}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_stops_finishing_cycles_is_first_unready_then_dead() {
        let mut s = Status {
            started_at: Some(1000),
            interval: 30,
            ..Status::default()
        };
        assert_eq!(s.late(1090), None, "starting: three cycles of grace");
        assert!(
            s.late(1091)
                .unwrap()
                .contains("no cycle has finished for 91s")
        );
        s.last_cycle_at = Some(1100);
        assert_eq!(s.late(1190), None);
        assert_eq!(s.stuck(1400), None);
        assert!(s.stuck(1401).unwrap().contains("more than 300s"));
        // A slow interval stretches both limits.
        s.interval = 120;
        assert_eq!(s.late(1100 + 360), None);
        assert!(s.late(1100 + 361).is_some());
        assert_eq!(s.stuck(1100 + 1200), None);
        // No loop behind it (the bench's intake server): never late.
        assert_eq!(Status::default().late(1_000_000), None);
    }
}
