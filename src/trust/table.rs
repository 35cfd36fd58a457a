//! `medic trust`: each step's record and standing, as a table or JSON.

use super::{Earn, Event, Ledger, LedgerEntry, Standing, StepKey, standing_of};
use crate::model::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// One step's record within the window, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub playbook: String,
    pub step: usize,
    pub action: String,
    pub target_kind: String,
    pub planned: u32,
    pub proposed: u32,
    pub asked: u32,
    pub approved: u32,
    pub denied: u32,
    pub ran: u32,
    pub verified: u32,
    pub failed: u32,
    pub rolled_back: u32,
    #[serde(flatten)]
    pub standing: Standing,
}

/// A row for every step the ledger knows, in playbook and step order.
/// Without `earn` the counts cover the whole ledger.
pub fn rows(ledger: &Ledger, earn: Option<&Earn>, now: Timestamp) -> Vec<Row> {
    let mut by_step: BTreeMap<&StepKey, Vec<&LedgerEntry>> = BTreeMap::new();
    for e in ledger.entries() {
        by_step.entry(&e.key).or_default().push(e);
    }
    by_step
        .into_iter()
        .map(|(key, entries)| row_of(key, &entries, earn, now))
        .collect()
}

/// One step's row.
pub fn row(ledger: &Ledger, key: &StepKey, earn: Option<&Earn>, now: Timestamp) -> Row {
    row_of(key, &ledger.of(key), earn, now)
}

fn row_of(key: &StepKey, entries: &[&LedgerEntry], earn: Option<&Earn>, now: Timestamp) -> Row {
    let window = earn.map_or(i64::MAX, |e| e.window.0);
    let mut counts: BTreeMap<Event, u32> = BTreeMap::new();
    for e in entries {
        if e.at <= now && now - e.at <= window {
            *counts.entry(e.event).or_default() += 1;
        }
    }
    let n = |event| counts.get(&event).copied().unwrap_or(0);
    Row {
        playbook: key.playbook.clone(),
        step: key.step,
        action: key.action.name().to_string(),
        target_kind: key.target_kind.clone(),
        planned: n(Event::Planned),
        proposed: n(Event::Proposed),
        asked: n(Event::Asked),
        approved: n(Event::Approved),
        denied: n(Event::Denied),
        ran: n(Event::Ran),
        verified: n(Event::Verified),
        failed: n(Event::Failed),
        rolled_back: n(Event::RolledBack),
        standing: standing_of(entries, earn, now),
    }
}

impl Row {
    /// The record in one line, for the person asked to approve.
    pub fn summary(&self) -> String {
        let standing = match &self.standing {
            Standing::Bounded => "no earned autonomy configured".to_string(),
            Standing::Earned { .. } => "earned".to_string(),
            Standing::Asks { .. } => "asks until earned".to_string(),
            Standing::Demoted { reason, .. } => format!("demoted: {reason}"),
        };
        format!(
            "approved {}, denied {}, ran {}, verified {}, failed {}, rolled back {}; {standing}",
            self.approved, self.denied, self.ran, self.verified, self.failed, self.rolled_back
        )
    }
}

/// The rows as a fixed-width table.
pub fn text_table(rows: &[Row]) -> String {
    let header = [
        "PLAYBOOK",
        "STEP",
        "ACTION",
        "ON",
        "PROPOSED",
        "ASKED",
        "APPROVED",
        "DENIED",
        "RAN",
        "VERIFIED",
        "FAILED",
        "ROLLED BACK",
        "STANDING",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        let standing = match &r.standing {
            Standing::Demoted { reason, .. } => format!("demoted: {reason}"),
            s => s.label().to_string(),
        };
        lines.push(vec![
            r.playbook.clone(),
            r.step.to_string(),
            r.action.clone(),
            r.target_kind.clone(),
            r.proposed.to_string(),
            r.asked.to_string(),
            r.approved.to_string(),
            r.denied.to_string(),
            r.ran.to_string(),
            r.verified.to_string(),
            r.failed.to_string(),
            r.rolled_back.to_string(),
            standing,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
