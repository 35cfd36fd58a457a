//! The journal in a JetStream stream, shared by every replica: a leader that
//! takes over reads what the previous one intended and did, so a failover
//! repeats no step blindly.
//!
//! Subjects under `medic.journal.`: `incident.<id>` (each incident's latest
//! state) and `tick` (the last finished cycle) are published with a
//! `Nats-Rollup: sub` header, so the stream keeps only the newest of each;
//! `action.<id>` holds every intent and result of an incident, in order;
//! `ledger` every step's track record (earned autonomy).
//! The stream keeps messages `maxAge`; medic writes every open incident
//! again once a day so a long one is never aged out.

use super::{Entry, JournalError, Restored};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use std::time::Duration;

pub struct JetStreamJournal {
    js: jetstream::Context,
    stream: String,
}

/// The subject an entry goes to, and whether it replaces the previous one.
fn subject(entry: &Entry) -> (String, bool) {
    // Subject tokens cannot hold `.`, `*`, `>` or whitespace.
    let token = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    match entry {
        Entry::Intent(i) => (
            format!("medic.journal.action.{}", token(&i.incident)),
            false,
        ),
        Entry::Result { incident, .. } => {
            (format!("medic.journal.action.{}", token(incident)), false)
        }
        Entry::Incident(inc) => (format!("medic.journal.incident.{}", token(&inc.id)), true),
        Entry::Tick { .. } => ("medic.journal.tick".to_string(), true),
        Entry::Ledger(_) => ("medic.journal.ledger".to_string(), false),
    }
}

fn nats_error(stream: &str, reason: impl ToString) -> JournalError {
    JournalError::Nats {
        stream: stream.to_string(),
        reason: reason.to_string(),
    }
}

impl JetStreamJournal {
    /// Creates the stream if needed and reads back everything it holds, in
    /// the order it was written. A record that does not parse (written by
    /// another version, say) is skipped and reported in `Restored::cut`.
    pub async fn open(
        js: jetstream::Context,
        stream_name: &str,
        max_age: Duration,
    ) -> Result<(JetStreamJournal, Restored), JournalError> {
        let mut s = js
            .get_or_create_stream(stream::Config {
                name: stream_name.to_string(),
                subjects: vec!["medic.journal.>".into()],
                max_age,
                storage: stream::StorageType::File,
                allow_rollup: true,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_error(stream_name, e))?;
        let last = s
            .info()
            .await
            .map_err(|e| nats_error(stream_name, e))?
            .state
            .last_sequence;
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        if last > 0 {
            let reader = s
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .map_err(|e| nats_error(stream_name, e))?;
            let mut messages = reader
                .messages()
                .await
                .map_err(|e| nats_error(stream_name, e))?;
            while let Some(m) = messages.next().await {
                let m = m.map_err(|e| nats_error(stream_name, e))?;
                let seq = m.info().map(|i| i.stream_sequence).unwrap_or(last);
                match serde_json::from_slice::<Entry>(&m.payload) {
                    Ok(e) => entries.push(e),
                    Err(e) => skipped.push(format!("message {seq}: not a journal record: {e}")),
                }
                if seq >= last {
                    break;
                }
            }
        }
        let mut restored = Restored::from_entries(entries);
        if !skipped.is_empty() {
            restored.cut = Some(format!("skipped {}", skipped.join("; ")));
        }
        Ok((
            JetStreamJournal {
                js,
                stream: stream_name.to_string(),
            },
            restored,
        ))
    }

    pub fn describe(&self) -> String {
        format!("JetStream stream {}", self.stream)
    }

    /// Publishes a record and waits for the stream to store it.
    pub async fn append(&self, entry: &Entry) -> Result<(), JournalError> {
        let payload = serde_json::to_vec(entry).map_err(|source| JournalError::Encode {
            path: self.stream.clone(),
            source,
        })?;
        let (subject, rollup) = subject(entry);
        let mut publish = jetstream::message::PublishMessage::build().payload(payload.into());
        if rollup {
            publish = publish.header("Nats-Rollup", "sub");
        }
        let ack = self
            .js
            .send_publish(subject, publish)
            .await
            .map_err(|e| nats_error(&self.stream, e))?;
        ack.await.map_err(|e| nats_error(&self.stream, e))?;
        Ok(())
    }
}
