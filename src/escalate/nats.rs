//! NATS: escalations, incident events and service warnings published into
//! a JetStream stream (a consumer that connects late still gets them), and
//! approvals kept in a JetStream KV bucket.
//!
//! Subjects: `medic.escalations.<severity>`, `medic.incidents.<id>.events`,
//! `medic.services.<namespace>.<name>.warning`. Each message carries its id
//! as `Nats-Msg-Id`, so JetStream drops a redelivery inside its duplicate
//! window and consumers can deduplicate beyond it.

use super::EscalateError;
use super::approval::{
    Answer, ApprovalError, ApprovalRecord, ApprovalStore, Verdict, approval_key,
};
use super::outbox::{Message, Sink};
use crate::model::Timestamp;
use async_nats::jetstream::{self, kv, stream};
use async_trait::async_trait;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot read NATS credentials {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
}

/// `nats` in medic.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NatsConfig {
    /// e.g. `nats://nats.nats:4222`; NATS is off when empty.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials_file: Option<String>,
    /// The stream escalations and incident events go to.
    pub stream: String,
    /// The KV bucket approval requests and answers live in.
    pub approvals_bucket: String,
    /// How long the stream keeps messages.
    pub max_age: crate::model::Secs,
    /// The stream the journal lives in, shared by the replicas.
    pub journal_stream: String,
    /// How long the journal stream keeps a record (open incidents are
    /// written again daily, so they never age out).
    pub journal_max_age: crate::model::Secs,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: String::new(),
            credentials_file: None,
            stream: "MEDIC".into(),
            approvals_bucket: "medic-approvals".into(),
            max_age: crate::model::Secs(7 * 24 * 3600),
            journal_stream: "MEDIC_JOURNAL".into(),
            journal_max_age: crate::model::Secs(30 * 24 * 3600),
        }
    }
}

impl NatsConfig {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }
}

/// Connects without waiting for the server: while NATS is down, the client
/// keeps trying in the background and the outbox holds the messages.
pub async fn connect(config: &NatsConfig) -> Result<jetstream::Context, NatsError> {
    let options = match &config.credentials_file {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|source| NatsError::Credentials {
                path: path.clone(),
                source,
            })?,
        None => async_nats::ConnectOptions::new(),
    };
    let client = options
        .name("medic")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)))
        .connect(config.url.as_str())
        .await
        .map_err(|e| NatsError::Connect {
            url: config.url.clone(),
            reason: e.to_string(),
        })?;
    Ok(jetstream::new(client))
}

/// The subject a message is published on.
pub fn subject(message: &Message) -> String {
    match message {
        Message::Escalation(e) => format!("medic.escalations.{}", e.severity),
        Message::Event(n) => format!("medic.incidents.{}.events", token(&n.incident)),
        Message::Warning(w) => format!(
            "medic.services.{}.{}.warning",
            token(w.service.namespace.as_deref().unwrap_or("_")),
            token(&w.service.name)
        ),
    }
}

/// A subject token: no dots, spaces or wildcards.
fn token(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '.' | ' ' | '*' | '>' => '_',
            c => c,
        })
        .collect()
}

pub struct NatsSink {
    js: jetstream::Context,
    config: NatsConfig,
    stream: OnceCell<()>,
}

impl NatsSink {
    pub fn new(js: jetstream::Context, config: NatsConfig) -> Self {
        NatsSink {
            js,
            config,
            stream: OnceCell::new(),
        }
    }

    /// Creates the stream on first use (NATS may be down at start).
    async fn ensure_stream(&self) -> Result<(), EscalateError> {
        self.stream
            .get_or_try_init(|| async {
                self.js
                    .get_or_create_stream(stream::Config {
                        name: self.config.stream.clone(),
                        subjects: vec![
                            "medic.escalations.>".into(),
                            "medic.incidents.>".into(),
                            "medic.services.>".into(),
                        ],
                        max_age: Duration::from_secs(self.config.max_age.0.max(60).unsigned_abs()),
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable(format!("stream {}: {e}", self.config.stream)))
            })
            .await
            .copied()
    }
}

fn unavailable(reason: String) -> EscalateError {
    EscalateError::Unavailable {
        channel: "nats".into(),
        reason,
    }
}

#[async_trait]
impl Sink for NatsSink {
    fn name(&self) -> &str {
        "nats"
    }

    async fn deliver(&self, message: &Message) -> Result<(), EscalateError> {
        self.ensure_stream().await?;
        let payload = serde_json::to_vec(message).map_err(|e| unavailable(e.to_string()))?;
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .message_id(message.id());
        let ack = self
            .js
            .send_publish(subject(message), publish)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        // Delivered only once the stream has stored it.
        ack.await.map_err(|e| unavailable(e.to_string()))?;
        Ok(())
    }
}

/// Approval records in a JetStream KV bucket, one key per request
/// (`<incident>.<step>`). Answers use the entry's revision, so of two
/// concurrent answers exactly one is stored.
pub struct NatsApprovals {
    js: jetstream::Context,
    bucket: String,
    store: OnceCell<kv::Store>,
}

impl NatsApprovals {
    pub fn new(js: jetstream::Context, bucket: &str) -> Self {
        NatsApprovals {
            js,
            bucket: bucket.into(),
            store: OnceCell::new(),
        }
    }

    async fn kv(&self) -> Result<&kv::Store, ApprovalError> {
        self.store
            .get_or_try_init(|| async {
                if let Ok(store) = self.js.get_key_value(&self.bucket).await {
                    return Ok(store);
                }
                self.js
                    .create_key_value(kv::Config {
                        bucket: self.bucket.clone(),
                        description: "medic approval requests and answers".into(),
                        history: 5,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| ApprovalError::Unavailable(format!("bucket {}: {e}", self.bucket)))
            })
            .await
    }

    async fn read(&self, key: &str) -> Result<Option<(ApprovalRecord, u64)>, ApprovalError> {
        let entry = self
            .kv()
            .await?
            .entry(key)
            .await
            .map_err(|e| ApprovalError::Unavailable(e.to_string()))?;
        let Some(entry) = entry else { return Ok(None) };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let record = serde_json::from_slice(&entry.value).map_err(|e| {
            ApprovalError::Unavailable(format!("approval {key} is not a medic record: {e}"))
        })?;
        Ok(Some((record, entry.revision)))
    }
}

fn encode(record: &ApprovalRecord) -> Result<bytes::Bytes, ApprovalError> {
    serde_json::to_vec(record)
        .map(Into::into)
        .map_err(|e| ApprovalError::Unavailable(e.to_string()))
}

#[async_trait]
impl ApprovalStore for NatsApprovals {
    async fn request(&self, record: &ApprovalRecord) -> Result<(), ApprovalError> {
        self.kv()
            .await?
            .put(record.key(), encode(record)?)
            .await
            .map(|_| ())
            .map_err(|e| ApprovalError::Unavailable(e.to_string()))
    }

    async fn get(
        &self,
        incident: &str,
        step: usize,
    ) -> Result<Option<ApprovalRecord>, ApprovalError> {
        Ok(self
            .read(&approval_key(incident, step))
            .await?
            .map(|(r, _)| r))
    }

    async fn answer(
        &self,
        incident: &str,
        step: usize,
        answer: Answer,
        seen_digest: Option<&str>,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let key = approval_key(incident, step);
        let (mut record, revision) =
            self.read(&key)
                .await?
                .ok_or_else(|| ApprovalError::NotFound {
                    incident: incident.into(),
                    step,
                })?;
        record.apply(answer, seen_digest)?;
        match self
            .kv()
            .await?
            .update(&key, encode(&record)?, revision)
            .await
        {
            Ok(_) => Ok(record),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(ApprovalError::Conflict)
            }
            Err(e) => Err(ApprovalError::Unavailable(e.to_string())),
        }
    }

    async fn pending(&self, now: Timestamp) -> Result<Vec<ApprovalRecord>, ApprovalError> {
        let mut keys = self
            .kv()
            .await?
            .keys()
            .await
            .map_err(|e| ApprovalError::Unavailable(e.to_string()))?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| ApprovalError::Unavailable(e.to_string()))?;
            if let Some((r, _)) = self.read(&key).await?
                && r.verdict(now) == Verdict::Pending
            {
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.requested_at);
        Ok(out)
    }

    /// The bucket stream's last sequence: every put (a request or an
    /// answer, from any replica or channel) moves it on.
    async fn generation(&self) -> Result<u64, ApprovalError> {
        self.kv()
            .await?
            .stream
            .get_info()
            .await
            .map(|info| info.state.last_sequence)
            .map_err(|e| ApprovalError::Unavailable(e.to_string()))
    }
}
