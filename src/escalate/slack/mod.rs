//! Slack: one message per incident, later events as replies in its thread,
//! the header edited when it resolves, and Approve/Deny buttons on an
//! escalation that waits for a person. A bot token (chat.postMessage,
//! chat.update) does all of that; an incoming webhook posts only, without
//! threads or buttons. The buttons come back to POST /slack/interactions
//! (see `run`), checked with `verify_signature`.

mod blocks;
mod signature;

pub use signature::{REPLAY_WINDOW, SignatureError, sign, verify_signature};

use super::outbox::{Message, Sink};
use super::{EscalateError, Escalation};
use crate::model::Secs;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("cannot read {path}: {source}")]
    Secret {
        path: String,
        source: std::io::Error,
    },
    #[error("slack: set channel with botTokenFile")]
    NoChannel,
    #[error("slack: cannot build the HTTP client: {0}")]
    Client(String),
}

/// `slack` in medic.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SlackConfig {
    /// A file with a bot token (`xoxb-...`): threads, header edits, buttons.
    pub bot_token_file: Option<String>,
    /// The channel id the bot posts in.
    pub channel: String,
    /// Or a file with an incoming webhook URL: posts only, no buttons.
    pub webhook_url_file: Option<String>,
    /// A file with the app's signing secret, for POST /slack/interactions.
    pub signing_secret_file: Option<String>,
    /// Slack user ids whose Approve/Deny counts. Empty: the buttons answer
    /// nobody's question (refused with a message).
    pub approvers: Vec<String>,
    /// Slack user group ids (`S...`) whose members' Approve/Deny counts,
    /// looked up with the bot token (usergroups.users.list) at each click.
    pub approver_groups: Vec<String>,
    /// At most this many top-level messages per `window`; past it,
    /// escalations are collected into one digest posted when it reopens.
    pub max_messages: u32,
    /// The window `maxMessages` counts over.
    pub window: Secs,
    /// Slack's Web API base URL.
    pub api_url: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            bot_token_file: None,
            channel: String::new(),
            webhook_url_file: None,
            signing_secret_file: None,
            approvers: Vec::new(),
            approver_groups: Vec::new(),
            max_messages: 20,
            window: Secs(600),
            api_url: "https://slack.com/api".into(),
        }
    }
}

impl SlackConfig {
    pub fn enabled(&self) -> bool {
        self.bot_token_file.is_some() || self.webhook_url_file.is_some()
    }
}

pub fn read_secret(path: &str) -> Result<String, SlackError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| SlackError::Secret {
            path: path.into(),
            source,
        })
}

enum Mode {
    Bot { token: String, channel: String },
    Webhook { url: String },
}

/// The incident's message: where its thread is, and the escalation shown
/// in it (to redraw the header when it resolves).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Thread {
    channel: String,
    ts: String,
    escalation: Option<Escalation>,
}

/// Top-level messages in the current window, and what was held back.
struct Window {
    started: Instant,
    sent: u32,
    held: Vec<String>,
}

pub struct SlackSink {
    http: reqwest::Client,
    mode: Mode,
    api_url: String,
    threads: Mutex<BTreeMap<String, Thread>>,
    threads_file: PathBuf,
    window: Mutex<Window>,
    max_messages: u32,
    window_len: Duration,
}

const RETRY_AFTER_CAP: u64 = 30;

impl SlackSink {
    /// `state_dir` keeps each incident's thread across restarts.
    pub fn new(config: &SlackConfig, state_dir: &Path) -> Result<SlackSink, SlackError> {
        let mode = match (&config.bot_token_file, &config.webhook_url_file) {
            (Some(token), _) => {
                if config.channel.is_empty() {
                    return Err(SlackError::NoChannel);
                }
                Mode::Bot {
                    token: read_secret(token)?,
                    channel: config.channel.clone(),
                }
            }
            (None, Some(url)) => Mode::Webhook {
                url: read_secret(url)?,
            },
            (None, None) => Mode::Webhook { url: String::new() },
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SlackError::Client(e.to_string()))?;
        let threads_file = state_dir.join("slack-threads.json");
        let threads = std::fs::read(&threads_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(SlackSink {
            http,
            mode,
            api_url: config.api_url.trim_end_matches('/').to_string(),
            threads: Mutex::new(threads),
            threads_file,
            window: Mutex::new(Window {
                started: Instant::now(),
                sent: 0,
                held: Vec::new(),
            }),
            max_messages: config.max_messages.max(1),
            window_len: Duration::from_secs(config.window.0.max(1).unsigned_abs()),
        })
    }

    fn thread(&self, incident: &str) -> Option<Thread> {
        self.threads
            .lock()
            .ok()
            .and_then(|t| t.get(incident).cloned())
    }

    fn remember(&self, incident: &str, thread: Thread) {
        let Ok(mut threads) = self.threads.lock() else {
            return;
        };
        threads.insert(incident.to_string(), thread);
        match serde_json::to_vec(&*threads) {
            Ok(body) => {
                if let Err(e) = std::fs::write(&self.threads_file, body) {
                    tracing::warn!(file = %self.threads_file.display(), error = %e, "Slack threads not saved");
                }
            }
            Err(e) => tracing::warn!(error = %e, "Slack threads not encoded"),
        }
    }

    /// Whether a new top-level message may go out now; if not, `what` is
    /// kept for the digest. Returns the digest to post first, if one is due.
    fn admit(&self, what: &str) -> (bool, Option<Vec<String>>) {
        let Ok(mut w) = self.window.lock() else {
            return (true, None);
        };
        let mut digest = None;
        if w.started.elapsed() >= self.window_len {
            w.started = Instant::now();
            w.sent = 0;
            if !w.held.is_empty() {
                digest = Some(std::mem::take(&mut w.held));
                w.sent = 1;
            }
        }
        if w.sent >= self.max_messages {
            w.held.push(what.to_string());
            return (false, digest);
        }
        w.sent += 1;
        (true, digest)
    }

    /// Calls a Web API method (or the webhook), honouring one 429.
    async fn call(&self, method: &str, body: Value) -> Result<Value, EscalateError> {
        let (url, token) = match &self.mode {
            Mode::Bot { token, .. } => (format!("{}/{method}", self.api_url), Some(token)),
            Mode::Webhook { url } => (url.clone(), None),
        };
        for attempt in 0..2 {
            let mut req = self.http.post(&url).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.map_err(|e| unavailable(e.to_string()))?;
            let status = resp.status();
            if status.as_u16() == 429 {
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .min(RETRY_AFTER_CAP);
                if attempt == 0 {
                    tracing::info!(
                        method,
                        wait,
                        "Slack rate limit; waiting as Retry-After says"
                    );
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    continue;
                }
                return Err(unavailable(format!("rate limited (retry after {wait}s)")));
            }
            let text = resp.text().await.map_err(|e| unavailable(e.to_string()))?;
            if status.is_server_error() {
                return Err(unavailable(format!("{method}: HTTP {status}")));
            }
            if token.is_none() {
                // Incoming webhooks answer `ok` or an error string.
                return if status.is_success() {
                    Ok(Value::Null)
                } else {
                    Err(rejected(format!("webhook: HTTP {status}: {text}")))
                };
            }
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| unavailable(format!("{method}: not JSON ({e})")))?;
            if value["ok"] == json!(true) {
                return Ok(value);
            }
            let error = value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string();
            return Err(match error.as_str() {
                "ratelimited"
                | "internal_error"
                | "fatal_error"
                | "service_unavailable"
                | "request_timeout" => unavailable(format!("{method}: {error}")),
                _ => rejected(format!("{method}: {error}")),
            });
        }
        Err(unavailable(format!("{method}: rate limited")))
    }

    async fn post(
        &self,
        incident: Option<&str>,
        text: String,
        blocks: Value,
        escalation: Option<&Escalation>,
    ) -> Result<(), EscalateError> {
        let channel = match &self.mode {
            Mode::Bot { channel, .. } => channel.clone(),
            Mode::Webhook { .. } => {
                return self
                    .call("", json!({"text": text, "blocks": blocks}))
                    .await
                    .map(|_| ());
            }
        };
        let thread = incident.and_then(|i| self.thread(i));
        let mut body = json!({"channel": channel, "text": text, "blocks": blocks});
        if let Some(t) = &thread {
            body["thread_ts"] = json!(t.ts);
        }
        let reply = self.call("chat.postMessage", body).await?;
        if let Some(incident) = incident {
            match thread {
                Some(mut t) => {
                    if let Some(e) = escalation {
                        t.escalation = Some(e.clone());
                        self.remember(incident, t);
                    }
                }
                None => self.remember(
                    incident,
                    Thread {
                        channel: reply["channel"].as_str().unwrap_or(&channel).to_string(),
                        ts: reply["ts"].as_str().unwrap_or_default().to_string(),
                        escalation: escalation.cloned(),
                    },
                ),
            }
        }
        Ok(())
    }

    /// Posts the digest of what the rate limit held back.
    async fn post_digest(&self, held: Vec<String>) -> Result<(), EscalateError> {
        let text = format!(
            ":mailbox_with_mail: {} more escalation(s) were held back by the Slack rate limit: {}. See /api/v1/incidents or the NATS stream for each.",
            held.len(),
            held.join(", ")
        );
        let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": text}}]);
        self.post(None, text.clone(), blocks, None).await
    }
}

fn unavailable(reason: String) -> EscalateError {
    EscalateError::Unavailable {
        channel: "slack".into(),
        reason,
    }
}

fn rejected(reason: String) -> EscalateError {
    EscalateError::Rejected {
        channel: "slack".into(),
        reason,
    }
}

#[async_trait]
impl Sink for SlackSink {
    fn name(&self) -> &str {
        "slack"
    }

    async fn deliver(&self, message: &Message) -> Result<(), EscalateError> {
        let bot = matches!(self.mode, Mode::Bot { .. });
        match message {
            Message::Escalation(e) => {
                let top_level = !bot || self.thread(&e.incident).is_none();
                if top_level {
                    let (admitted, digest) = self.admit(&e.incident);
                    if let Some(held) = digest {
                        self.post_digest(held).await?;
                    }
                    if !admitted {
                        tracing::info!(incident = %e.incident, "Slack rate limit: escalation held for the digest");
                        return Ok(());
                    }
                }
                let blocks = blocks::escalation(e, bot, false);
                self.post(
                    Some(&e.incident),
                    blocks::escalation_text(e),
                    blocks,
                    Some(e),
                )
                .await
            }
            Message::Event(n) => {
                let thread = self.thread(&n.incident);
                match (bot, &thread) {
                    (true, Some(t)) => {
                        self.post(Some(&n.incident), n.text.clone(), blocks::event(n), None)
                            .await?;
                        if n.kind == "resolved"
                            && let Some(e) = &t.escalation
                        {
                            self.call(
                                "chat.update",
                                json!({"channel": t.channel, "ts": t.ts,
                                       "text": blocks::header_text(e, true),
                                       "blocks": blocks::escalation(e, false, true)}),
                            )
                            .await?;
                        }
                        Ok(())
                    }
                    // Only the opening starts a thread; a webhook gets
                    // openings and resolutions, not every step.
                    _ if n.kind == "opened" || (!bot && n.kind == "resolved") => {
                        let (admitted, digest) = self.admit(&n.incident);
                        if let Some(held) = digest {
                            self.post_digest(held).await?;
                        }
                        if !admitted {
                            return Ok(());
                        }
                        self.post(Some(&n.incident), n.text.clone(), blocks::event(n), None)
                            .await
                    }
                    _ => Ok(()),
                }
            }
            Message::Warning(w) => {
                let (admitted, digest) = self.admit(&w.service.to_string());
                if let Some(held) = digest {
                    self.post_digest(held).await?;
                }
                if !admitted {
                    return Ok(());
                }
                self.post(None, w.recommendation.clone(), blocks::warning(w), None)
                    .await
            }
        }
    }
}

/// Reads a user group's members (usergroups.users.list) with the bot token.
#[derive(Clone)]
pub struct GroupLookup {
    http: reqwest::Client,
    api_url: String,
    token: String,
}

impl GroupLookup {
    pub fn new(config: &SlackConfig) -> Result<Option<GroupLookup>, SlackError> {
        let Some(path) = &config.bot_token_file else {
            return Ok(None);
        };
        Ok(Some(GroupLookup {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| SlackError::Client(e.to_string()))?,
            api_url: config.api_url.trim_end_matches('/').to_string(),
            token: read_secret(path)?,
        }))
    }

    pub async fn members(&self, group: &str) -> Result<Vec<String>, String> {
        let reply: Value = self
            .http
            .get(format!("{}/usergroups.users.list", self.api_url))
            .query(&[("usergroup", group)])
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if reply["ok"] != json!(true) {
            return Err(format!(
                "usergroups.users.list {group}: {}",
                reply["error"].as_str().unwrap_or("unknown error")
            ));
        }
        Ok(reply["users"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default())
    }
}
