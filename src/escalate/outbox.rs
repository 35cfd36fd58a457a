//! The outbox: every message for people is written to disk, one queue per
//! sink, before anything is sent. A background task delivers each queue in
//! order and deletes a file only once its sink accepted it, retrying with
//! backoff while the sink is down. A restart picks the queues up where they
//! were, so an escalation survives NATS or Slack being down and medic being
//! restarted meanwhile (at least once: consumers deduplicate by id).

use super::{EscalateError, Escalation, Escalator, Notification, ServiceWarning};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("outbox {path}: cannot encode the message: {source}")]
    Encode {
        path: String,
        source: serde_json::Error,
    },
}

/// One message for people, as queued and as sinks receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Escalation(Escalation),
    Event(Notification),
    Warning(ServiceWarning),
}

impl Message {
    pub fn id(&self) -> &str {
        match self {
            Message::Escalation(e) => &e.id,
            Message::Event(n) => &n.id,
            Message::Warning(w) => &w.id,
        }
    }
}

/// Somewhere messages are delivered: NATS, Slack.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Names the sink's queue folder and the channel in reports.
    fn name(&self) -> &str;
    async fn deliver(&self, message: &Message) -> Result<(), EscalateError>;
}

pub struct Outbox {
    dir: PathBuf,
    sinks: Vec<Arc<dyn Sink>>,
    channel: String,
    seq: AtomicU64,
    wake: Notify,
}

const MAX_BACKOFF: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(30);

impl Outbox {
    /// Opens (or creates) the queues under `dir`; messages already queued
    /// there are delivered by `run`.
    pub fn open(dir: &Path, sinks: Vec<Arc<dyn Sink>>) -> Result<Outbox, OutboxError> {
        for sink in &sinks {
            let path = dir.join(sink.name());
            std::fs::create_dir_all(&path).map_err(|source| OutboxError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        let channel = sinks
            .iter()
            .map(|s| s.name().to_string())
            .collect::<Vec<_>>()
            .join("+");
        Ok(Outbox {
            dir: dir.to_path_buf(),
            sinks,
            channel,
            seq: AtomicU64::new(0),
            wake: Notify::new(),
        })
    }

    /// Writes `message` into every sink's queue, durably.
    pub fn enqueue(&self, message: &Message) -> Result<(), OutboxError> {
        let body = serde_json::to_vec(message).map_err(|source| OutboxError::Encode {
            path: self.dir.display().to_string(),
            source,
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        // Time first so a restart keeps the order; the counter breaks ties.
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{now:015}-{seq:08}.json");
        for sink in &self.sinks {
            let dir = self.dir.join(sink.name());
            write_atomically(&dir, &name, &body).map_err(|source| OutboxError::Io {
                path: dir.join(&name).display().to_string(),
                source,
            })?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Messages waiting in `sink`'s queue, oldest first.
    pub fn queued(&self, sink: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join(sink))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Tries each queue once, in order, stopping a queue at its first
    /// failure so messages never overtake each other. Returns how many
    /// messages are still queued.
    pub async fn deliver_pending(&self) -> usize {
        let mut left = 0;
        for sink in &self.sinks {
            let files = self.queued(sink.name());
            let mut done = 0;
            for file in &files {
                let message = match std::fs::read(file)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Message>(&b).map_err(|e| e.to_string()))
                {
                    Ok(m) => m,
                    Err(e) => {
                        // A file that cannot be read back would block the
                        // queue forever: set it aside for people to look at.
                        tracing::error!(file = %file.display(), error = %e, "unreadable outbox message set aside");
                        let _ = std::fs::rename(file, file.with_extension("bad"));
                        done += 1;
                        continue;
                    }
                };
                match sink.deliver(&message).await {
                    Ok(()) => {
                        if let Err(e) = std::fs::remove_file(file) {
                            tracing::warn!(file = %file.display(), error = %e, "delivered message not removed; it will be sent again");
                        }
                        done += 1;
                    }
                    Err(e @ EscalateError::Rejected { .. }) => {
                        tracing::error!(sink = sink.name(), id = message.id(), error = %e, "message rejected; set aside as .rejected");
                        let _ = std::fs::rename(file, file.with_extension("rejected"));
                        done += 1;
                    }
                    Err(e) => {
                        tracing::warn!(sink = sink.name(), id = message.id(), error = %e, "delivery failed; will retry");
                        break;
                    }
                }
            }
            left += files.len() - done;
        }
        left
    }

    /// Delivers until `shutdown`: at once when a message is queued, with
    /// doubling backoff (1 s to 60 s) while a sink fails.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_secs(1);
        loop {
            let left = self.deliver_pending().await;
            let wait = if left == 0 {
                backoff = Duration::from_secs(1);
                IDLE
            } else {
                let w = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                w
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified(), if left == 0 => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn queue(&self, message: Message) -> Result<(), EscalateError> {
        self.enqueue(&message)
            .map_err(|e| EscalateError::Unavailable {
                channel: "outbox".into(),
                reason: e.to_string(),
            })
    }
}

fn write_atomically(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(body)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    // The rename is durable only once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

#[async_trait]
impl Escalator for Outbox {
    fn channel(&self) -> &str {
        &self.channel
    }

    async fn escalate(&self, e: &Escalation) -> Result<(), EscalateError> {
        self.queue(Message::Escalation(e.clone()))
    }

    async fn notify(&self, n: &Notification) -> Result<(), EscalateError> {
        self.queue(Message::Event(n.clone()))
    }

    async fn warn(&self, w: &ServiceWarning) -> Result<(), EscalateError> {
        self.queue(Message::Warning(w.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    #[derive(Default)]
    struct Flaky {
        up: AtomicBool,
        got: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Sink for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        async fn deliver(&self, m: &Message) -> Result<(), EscalateError> {
            if !self.up.load(Ordering::SeqCst) {
                return Err(EscalateError::Unavailable {
                    channel: "flaky".into(),
                    reason: "down".into(),
                });
            }
            self.got.lock().unwrap().push(m.id().to_string());
            Ok(())
        }
    }

    fn event(id: &str) -> Notification {
        Notification {
            id: id.into(),
            incident: "inc-1".into(),
            at: 0,
            kind: "opened".into(),
            text: "t".into(),
        }
    }

    #[tokio::test]
    async fn queued_messages_survive_a_reopen_and_go_out_in_order_once_the_sink_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Flaky::default());
        let outbox = Outbox::open(dir.path(), vec![sink.clone()]).unwrap();
        for id in ["a", "b", "c"] {
            outbox.notify(&event(id)).await.unwrap();
        }
        assert_eq!(outbox.deliver_pending().await, 3, "sink down: all kept");
        drop(outbox);

        let reopened = Outbox::open(dir.path(), vec![sink.clone()]).unwrap();
        assert_eq!(reopened.queued("flaky").len(), 3);
        sink.up.store(true, Ordering::SeqCst);
        assert_eq!(reopened.deliver_pending().await, 0);
        assert_eq!(*sink.got.lock().unwrap(), vec!["a", "b", "c"]);
        assert!(reopened.queued("flaky").is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_file_is_set_aside_not_blocking_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Flaky::default());
        sink.up.store(true, Ordering::SeqCst);
        let outbox = Outbox::open(dir.path(), vec![sink.clone()]).unwrap();
        std::fs::write(dir.path().join("flaky/000000000000000-00000000.json"), "{").unwrap();
        outbox.notify(&event("a")).await.unwrap();
        assert_eq!(outbox.deliver_pending().await, 0);
        assert_eq!(*sink.got.lock().unwrap(), vec!["a"]);
        assert!(
            dir.path()
                .join("flaky/000000000000000-00000000.bad")
                .exists()
        );
    }
}
