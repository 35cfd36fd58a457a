//! Earned autonomy: a step's track record, and whether it may run alone.
//!
//! Every time a playbook step comes up in a plan, medic writes what became
//! of it to a ledger kept in the journal: proposed (observe mode), asked
//! for approval, approved or denied, run, verified, failed or rolled back.
//! With `autonomy.earn` set, a step within its risk ceilings still asks
//! people until, within the window and since its last demotion, it has
//! been approved and verified often enough. A denial, a failed run or
//! verification, or a rollback demotes it at once. The ceilings stay
//! ceilings: nothing here lets a step past `maxRisk`.
//!
//! Pure: the standing is computed from the entries and the time given.

mod table;

pub use table::{Row, row, rows, text_table};

use crate::act::Action;
use crate::model::{Secs, Timestamp, format_secs};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which step a record is about: the same step of the same playbook, doing
/// the same action on the same kind of object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepKey {
    pub playbook: String,
    pub step: usize,
    pub action: Action,
    /// `Deployment`, `Node`, ...; `-` for a step with no target.
    pub target_kind: String,
}

impl std::fmt::Display for StepKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} step {} ({} on {})",
            self.playbook, self.step, self.action, self.target_kind
        )
    }
}

/// What became of a step in one incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// It came up in a plan.
    Planned,
    /// Observe mode: medic would have run it.
    Proposed,
    /// Sent to people for approval.
    Asked,
    Approved,
    Denied,
    /// Carried out (not a dry run).
    Ran,
    /// Its `waitFor` held.
    Verified,
    /// It failed, or its verification did.
    Failed,
    /// The playbook's rollback ran after it.
    RolledBack,
}

impl Event {
    /// Takes a step's earned autonomy away.
    pub fn demotes(self) -> bool {
        matches!(self, Event::Denied | Event::Failed | Event::RolledBack)
    }
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub at: Timestamp,
    pub key: StepKey,
    pub event: Event,
    pub incident: String,
    /// Who answered, for approvals and denials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The plan people were shown (or, observe mode, would have been).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// `autonomy.earn` in medic.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Earn {
    /// Approvals a step needs, with no denial since, before it runs alone.
    pub approvals: u32,
    /// Runs whose `waitFor` held that it needs too. A step without a
    /// `waitFor` can never be verified: with this above 0 it always asks.
    pub verified: u32,
    /// How far back the record counts (at most 90 days, what the file
    /// journal keeps).
    pub window: Secs,
}

/// The longest window the journal keeps entries for.
pub const MAX_WINDOW: i64 = 90 * 24 * 3600;

impl Default for Earn {
    fn default() -> Self {
        Earn {
            approvals: 3,
            verified: 2,
            window: Secs(30 * 24 * 3600),
        }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// No `earn` configured: the ceilings alone decide.
    Bounded,
    /// It has proved itself: it runs on its own within the ceilings.
    Earned { approvals: u32, verified: u32 },
    /// It asks people until it has earned its autonomy.
    Asks { approvals: u32, verified: u32 },
    /// A denial, failure or rollback took its autonomy away; it asks again
    /// and counts afresh from then.
    Demoted {
        approvals: u32,
        verified: u32,
        reason: String,
        at: Timestamp,
    },
}

impl Standing {
    /// May the step run without asking (the ceilings permitting)?
    pub fn may_run_alone(&self) -> bool {
        matches!(self, Standing::Bounded | Standing::Earned { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            Standing::Bounded => "bounded",
            Standing::Earned { .. } => "earned",
            Standing::Asks { .. } => "asks",
            Standing::Demoted { .. } => "demoted",
        }
    }

    /// Why the step asks, for the escalation people read.
    pub fn why_it_asks(&self, step: usize, action: Action, earn: &Earn) -> Option<String> {
        let progress = |a: u32, v: u32| {
            format!(
                "{a} of {} approvals and {v} of {} verified runs in the last {}",
                earn.approvals,
                earn.verified,
                format_secs(earn.window.0)
            )
        };
        match self {
            Standing::Bounded | Standing::Earned { .. } => None,
            Standing::Asks {
                approvals,
                verified,
            } => Some(format!(
                "step {step} ({action}) has not earned autonomy yet: {}",
                progress(*approvals, *verified)
            )),
            Standing::Demoted {
                approvals,
                verified,
                reason,
                ..
            } => Some(format!(
                "step {step} ({action}) lost its autonomy ({reason}); since then {}",
                progress(*approvals, *verified)
            )),
        }
    }
}

/// The ledger: every entry medic wrote, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    entries: Vec<LedgerEntry>,
    /// (incident, key, event) already written: a step's fate in one
    /// incident counts once, however often a tick or a restart sees it.
    seen: BTreeSet<(String, StepKey, Event)>,
}

impl Ledger {
    pub fn from_entries(entries: impl IntoIterator<Item = LedgerEntry>) -> Ledger {
        let mut ledger = Ledger::default();
        for e in entries {
            ledger.add(e);
        }
        ledger
    }

    /// Adds an entry; false (and nothing added) when it is already there.
    pub fn add(&mut self, entry: LedgerEntry) -> bool {
        let id = (entry.incident.clone(), entry.key.clone(), entry.event);
        if !self.seen.insert(id) {
            return false;
        }
        self.entries.push(entry);
        true
    }

    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// Drops entries before `t`: no window reaches back that far.
    pub fn forget_before(&mut self, t: Timestamp) {
        if self.entries.first().is_none_or(|e| e.at >= t) {
            return;
        }
        self.entries.retain(|e| e.at >= t);
        self.seen = self
            .entries
            .iter()
            .map(|e| (e.incident.clone(), e.key.clone(), e.event))
            .collect();
    }

    /// Where `key` stands at `now`.
    pub fn standing(&self, key: &StepKey, earn: Option<&Earn>, now: Timestamp) -> Standing {
        standing_of(&self.of(key), earn, now)
    }

    /// One step's entries, oldest first.
    pub(super) fn of(&self, key: &StepKey) -> Vec<&LedgerEntry> {
        self.entries.iter().filter(|e| &e.key == key).collect()
    }
}

/// Where a step stands at `now`, from its entries (oldest first).
fn standing_of(entries: &[&LedgerEntry], earn: Option<&Earn>, now: Timestamp) -> Standing {
    let Some(earn) = earn else {
        return Standing::Bounded;
    };
    let mine: Vec<&LedgerEntry> = entries
        .iter()
        .filter(|e| e.at <= now && now - e.at <= earn.window.0)
        .copied()
        .collect();
    // Entries are in the order they happened: what counts is what came
    // after the last demotion.
    let last = mine.iter().rposition(|e| e.event.demotes());
    let demotion = last.map(|i| mine[i]);
    let since = &mine[last.map_or(0, |i| i + 1)..];
    let approvals = count_approvals(since);
    let verified = count(since, Event::Verified);
    if approvals >= earn.approvals && verified >= earn.verified {
        return Standing::Earned {
            approvals,
            verified,
        };
    }
    match demotion {
        Some(d) => Standing::Demoted {
            approvals,
            verified,
            reason: demotion_reason(d),
            at: d.at,
        },
        None => Standing::Asks {
            approvals,
            verified,
        },
    }
}

fn count(entries: &[&LedgerEntry], event: Event) -> u32 {
    let n = entries.iter().filter(|e| e.event == event).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// People's approvals, and the observe-mode proposals that people later
/// approved as the same plan (the same digest): shadow evidence.
fn count_approvals(entries: &[&LedgerEntry]) -> u32 {
    let approved = entries.iter().filter(|e| e.event == Event::Approved);
    let shadow = entries.iter().filter(|p| {
        p.event == Event::Proposed
            && p.digest.is_some()
            && entries
                .iter()
                .any(|a| a.event == Event::Approved && a.digest == p.digest && a.at >= p.at)
    });
    u32::try_from(approved.count() + shadow.count()).unwrap_or(u32::MAX)
}

fn demotion_reason(e: &LedgerEntry) -> String {
    let what = match e.event {
        Event::Denied => match &e.by {
            Some(by) => format!("denied by {by}"),
            None => "denied".to_string(),
        },
        Event::Failed => "failed".to_string(),
        _ => "rolled back".to_string(),
    };
    format!("{what} in {}", e.incident)
}

#[cfg(test)]
mod tests;
