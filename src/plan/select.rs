//! Choosing the playbook: the root cause's signals first, then the others,
//! each in onset order; the first playbook whose trigger matches wins.

use super::build_context;
use crate::cluster::ClusterSnapshot;
use crate::incident::Incident;
use crate::model::Timestamp;
use crate::playbook::{EvalContext, Playbook};

#[derive(Debug)]
pub struct Selection<'a> {
    pub playbook: &'a Playbook,
    /// Index of the triggering signal in the incident.
    pub signal: usize,
    pub context: EvalContext,
}

/// Returns the selection, or the reasons no playbook applies.
/// `prefer` (an LLM's pick) is tried first, and only wins if its trigger
/// matches like any other's would.
pub fn select_playbook<'a>(
    incident: &Incident,
    playbooks: &'a [Playbook],
    snap: &ClusterSnapshot,
    now: Timestamp,
    prefer: Option<&str>,
) -> Result<Selection<'a>, Vec<String>> {
    let root = incident.root_cause();
    let mut order: Vec<usize> = (0..incident.signals.len()).collect();
    order.sort_by_key(|&i| {
        let s = &incident.signals[i];
        (Some(&s.subject) != root, s.signal.onset, i)
    });
    let mut why_not = Vec::new();
    for i in order {
        let record = &incident.signals[i];
        let ctx = build_context(incident, i, snap, now);
        let mut any = false;
        let preferred = playbooks.iter().filter(|p| Some(p.name.as_str()) == prefer);
        let others = playbooks.iter().filter(|p| Some(p.name.as_str()) != prefer);
        for p in preferred
            .chain(others)
            .filter(|p| p.spec.trigger.signal == record.signal.name)
        {
            any = true;
            let matched = match &p.trigger_when {
                None => Ok(true),
                Some(c) => c.eval(&ctx),
            };
            match matched {
                Ok(true) => {
                    return Ok(Selection {
                        playbook: p,
                        signal: i,
                        context: ctx,
                    });
                }
                Ok(false) => why_not.push(format!(
                    "{}: trigger `{}` is false for {}",
                    p.name,
                    p.trigger_when.as_ref().map_or("", |c| c.source()),
                    record.signal.target
                )),
                Err(e) => why_not.push(format!("{}: trigger could not be evaluated: {e}", p.name)),
            }
        }
        if !any {
            why_not.push(format!("no playbook triggers on {}", record.signal.name));
        }
    }
    why_not.dedup();
    Err(why_not)
}

/// Every playbook whose trigger matches one of the incident's signals: the
/// candidates an LLM may choose among.
pub fn matching_playbooks<'a>(
    incident: &Incident,
    playbooks: &'a [Playbook],
    snap: &ClusterSnapshot,
    now: Timestamp,
) -> Vec<&'a Playbook> {
    playbooks
        .iter()
        .filter(|p| {
            incident.signals.iter().enumerate().any(|(i, r)| {
                r.signal.name == p.spec.trigger.signal
                    && p.trigger_when
                        .as_ref()
                        .is_none_or(|c| c.eval(&build_context(incident, i, snap, now)) == Ok(true))
            })
        })
        .collect()
}
