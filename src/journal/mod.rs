//! The journal: what medic is about to do and did, so a restart (a crash,
//! an OOM kill, a node drained under it) neither loses an incident nor
//! repeats a step blindly.
//!
//! An append-only file of lines `<crc32 hex> <json>`. Before each mutating
//! action medic writes and fsyncs its *intent*; after it, the *result*.
//! After each cycle it writes the incidents that changed and the cycle's
//! time. On start the file is read back: a torn last line (the crash came
//! mid-write) is cut off; a bad checksum before the end stops the read
//! there and is reported, and the file is cut so new records follow good
//! ones.

mod file;
mod jetstream;
mod reconcile;

pub use file::{FileJournal, JournalError};
pub use jetstream::JetStreamJournal;
pub use reconcile::{Reconciled, reconcile};

use crate::act::{Action, ActionRecord, ActionResult};
use crate::incident::Incident;
use crate::model::{ObjectRef, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the journal lives: a file per replica by default, or with NATS a
/// JetStream stream every replica shares.
pub enum Journal {
    File(FileJournal),
    JetStream(Box<JetStreamJournal>),
}

impl Journal {
    /// Opens the journal medic runs with: the JetStream stream named in
    /// `nats` when `js` is given, else the file at `file`; and what it holds.
    pub async fn open(
        file: &std::path::Path,
        js: Option<(async_nats::jetstream::Context, &crate::escalate::NatsConfig)>,
    ) -> Result<(Journal, Restored), JournalError> {
        match js {
            Some((js, nats)) => {
                let max_age =
                    std::time::Duration::from_secs(nats.journal_max_age.0.max(3600).unsigned_abs());
                let (j, r) = JetStreamJournal::open(js, &nats.journal_stream, max_age).await?;
                Ok((Journal::JetStream(Box::new(j)), r))
            }
            None => {
                let (j, r) = FileJournal::open(file)?;
                Ok((Journal::File(j), r))
            }
        }
    }

    /// Appends a record; `durable` waits until it is stored (fsync for the
    /// file; JetStream always waits for the stream's acknowledgement).
    pub async fn append(&self, entry: &Entry, durable: bool) -> Result<(), JournalError> {
        match self {
            Journal::File(f) => f.append(entry, durable),
            Journal::JetStream(j) => j.append(entry).await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Journal::File(f) => f.path().display().to_string(),
            Journal::JetStream(j) => j.describe(),
        }
    }
}

/// What medic is about to do, written before it does it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentEntry {
    pub incident: String,
    pub playbook: String,
    pub step: usize,
    pub action: Action,
    pub target: ObjectRef,
    pub at: Timestamp,
    pub rollback: bool,
    /// The workload's revision before a rollout undo.
    pub revision: Option<i64>,
    /// The replica count a scale asks for.
    pub wanted_replicas: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Intent(IntentEntry),
    Result {
        incident: String,
        record: ActionRecord,
    },
    Incident(Box<Incident>),
    /// A cycle at this time finished and its state is written.
    Tick {
        at: Timestamp,
    },
    /// What became of a playbook step: its track record, for earned autonomy.
    Ledger(crate::trust::LedgerEntry),
}

/// The state read back from a journal.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Restored {
    /// The last state of each incident, with results recorded after it.
    pub incidents: Vec<Incident>,
    /// Intents with no result: the action may or may not have happened.
    pub unfinished: Vec<IntentEntry>,
    pub last_tick: Option<Timestamp>,
    /// Why the read stopped early, when it did (a torn or corrupt record).
    pub cut: Option<String>,
    /// Every step's track record, oldest first.
    pub ledger: Vec<crate::trust::LedgerEntry>,
}

impl Restored {
    /// Drops incidents resolved before `t`.
    pub fn forget_resolved_before(&mut self, t: Timestamp) {
        self.incidents
            .retain(|i| i.resolved_at.is_none_or(|r| r >= t));
    }

    /// Drops ledger entries older than the longest `autonomy.earn.window`.
    pub fn forget_ledger_before(&mut self, t: Timestamp) {
        self.ledger.retain(|e| e.at >= t);
    }

    /// Folds entries, in order, into the state they describe.
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Restored {
        let mut incidents: BTreeMap<String, Incident> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut unfinished: Vec<IntentEntry> = Vec::new();
        let mut results: Vec<(String, ActionRecord)> = Vec::new();
        let mut last_tick = None;
        let mut ledger = Vec::new();
        for entry in entries {
            match entry {
                Entry::Intent(i) => unfinished.push(i),
                Entry::Result { incident, record } => {
                    unfinished.retain(|i| {
                        !(i.incident == incident
                            && i.step == record.step
                            && i.action == record.action
                            && i.rollback == record.rollback
                            && Some(&i.target) == record.target.as_ref())
                    });
                    results.push((incident, record));
                }
                Entry::Incident(inc) => {
                    let inc = *inc;
                    if !incidents.contains_key(&inc.id) {
                        order.push(inc.id.clone());
                    }
                    // A snapshot taken after a result already holds it.
                    incidents.insert(inc.id.clone(), inc);
                }
                Entry::Tick { at } => last_tick = Some(at),
                Entry::Ledger(e) => ledger.push(e),
            }
        }
        // After the fold, so a result counts whatever the order of the
        // records (a JetStream rollup moves an incident's state to the end).
        for (incident, record) in results {
            if let Some(inc) = incidents.get_mut(&incident)
                && !inc.actions.contains(&record)
            {
                // The cycle's own timeline entry was not written yet.
                inc.timeline.push(crate::incident::TimelineEntry {
                    at: record.at,
                    stage: crate::incident::Stage::Execute,
                    text: format!(
                        "{} {} [{} risk]: {:?}: {} (from the journal)",
                        record.action,
                        record
                            .target
                            .as_ref()
                            .map_or(String::new(), ToString::to_string),
                        record.risk,
                        record.result,
                        record.message
                    ),
                });
                inc.actions.push(record);
            }
        }
        Restored {
            incidents: order
                .into_iter()
                .filter_map(|id| incidents.remove(&id))
                .collect(),
            unfinished,
            last_tick,
            cut: None,
            ledger,
        }
    }
}

/// An action record for an unfinished intent found done in the cluster.
pub fn found_done(intent: &IntentEntry, risk: crate::model::Risk) -> ActionRecord {
    ActionRecord {
        at: intent.at,
        playbook: intent.playbook.clone(),
        step: intent.step,
        action: intent.action,
        target: Some(intent.target.clone()),
        risk,
        result: ActionResult::Ok,
        message: "found done in the cluster after a restart".into(),
        rollback: intent.rollback,
    }
}

/// A test hook: with `MEDIC_TEST_PAUSE_AT=intent:N` (or `result:N`) medic
/// stops for good right after writing its Nth intent (or right after its Nth
/// action, before the result is written), says so on stderr, and waits to
/// be killed. The crash tests kill it there with SIGKILL.
pub fn pause_point(kind: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static INTENTS: AtomicUsize = AtomicUsize::new(0);
    static RESULTS: AtomicUsize = AtomicUsize::new(0);
    let Ok(at) = std::env::var("MEDIC_TEST_PAUSE_AT") else {
        return;
    };
    let counter = if kind == "intent" { &INTENTS } else { &RESULTS };
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    if at == format!("{kind}:{n}") {
        eprintln!("medic: paused at {kind}:{n}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
