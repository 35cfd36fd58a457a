//! A loopback OpenAI-compatible endpoint that serves a fixture's recorded
//! answers in order, so replay runs the real LLM client code. A request with
//! no recorded answer left is counted and fails the replay.

use crate::diagnose::llm::count_tokens;
use crate::model::Secs;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// One recorded exchange: an answer, or an error the endpoint gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordedAnswer {
    /// The answer object (sent as JSON text in the message content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    /// Raw message content, for answers that are not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// An HTTP error status instead of an answer (429, 500, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Retry-After seconds sent with `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Secs>,
}

#[derive(Default)]
struct Shared {
    answers: Vec<RecordedAnswer>,
    requests: Vec<Value>,
    unanswered: usize,
}

pub struct LlmServer {
    url: String,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl LlmServer {
    pub async fn start(answers: Vec<RecordedAnswer>) -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared {
            answers,
            ..Shared::default()
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .route("/chat/completions", post(complete))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(LlmServer { url, shared, task })
    }

    /// The base URL to configure as `llm.baseUrl`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared).requests.clone()
    }

    /// Requests that arrived after the recorded answers ran out.
    pub fn unanswered(&self) -> usize {
        lock(&self.shared).unanswered
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, Json(body)).into_response()
}

async fn complete(State(shared): State<Arc<Mutex<Shared>>>, Json(body): Json<Value>) -> Response {
    let (n, next) = {
        let mut s = lock(&shared);
        s.requests.push(body.clone());
        let n = s.requests.len();
        let next = if s.answers.is_empty() {
            s.unanswered += 1;
            None
        } else {
            Some(s.answers.remove(0))
        };
        (n, next)
    };
    let Some(answer) = next else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &format!("replay: no recorded answer for LLM request #{n}"),
        );
    };
    if let Some(d) = answer.delay {
        tokio::time::sleep(std::time::Duration::from_secs(d.0.max(0).unsigned_abs())).await;
    }
    if let Some(code) = answer.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = if code == 429 {
            "rate_limit_error"
        } else {
            "server_error"
        };
        let mut response = error(status, kind, "recorded error");
        if let Some(secs) = answer.retry_after {
            let headers: &mut HeaderMap = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from(secs));
        }
        return response;
    }
    let content = match (&answer.content, &answer.response) {
        (Some(c), _) => c.clone(),
        (None, Some(v)) => v.to_string(),
        (None, None) => String::new(),
    };
    let prompt: String = body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let (p, c) = (count_tokens(&prompt), count_tokens(&content));
    Json(json!({
        "id": format!("chatcmpl-replay-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
    }))
    .into_response()
}
