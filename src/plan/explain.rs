//! What a playbook would do for an incident, step by step, without acting.
//! Pure: the same selection, context and policy the executor uses.

use super::{Decision, Plan, PlannedStep, build_context, decide, select_playbook};
use crate::cluster::ClusterSnapshot;
use crate::config::{Config, Mode};
use crate::incident::Incident;
use crate::model::{Risk, Timestamp};
use crate::playbook::Playbook;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub playbook: String,
    pub incident: String,
    pub at: Timestamp,
    pub root_cause: Option<String>,
    /// The playbook medic itself would pick for this incident, if any.
    pub medic_would_choose: Option<String>,
    pub triggers: Vec<TriggerCheck>,
    /// Whether this playbook's trigger matches one of the incident's signals.
    pub triggered: bool,
    pub mode: Mode,
    pub paused: bool,
    pub global_bound: Risk,
    pub playbook_bound: Risk,
    pub steps: Vec<StepExplanation>,
    pub rollback: Vec<StepExplanation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TriggerCheck {
    pub signal: String,
    pub target: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepExplanation {
    pub index: usize,
    pub action: String,
    pub risk: Risk,
    pub target: Option<String>,
    /// The `when` condition and what it gives now.
    pub when: Option<String>,
    /// `run`, `skip`, `escalate`, or `not reached`.
    pub decision: String,
    pub reason: Option<String>,
    pub verify: Option<String>,
}

pub fn explain(
    incident: &Incident,
    playbook: &Playbook,
    playbooks: &[Playbook],
    snap: &ClusterSnapshot,
    config: &Config,
    now: Timestamp,
) -> Explanation {
    let mut triggers = Vec::new();
    let mut matched = None;
    for (i, rec) in incident.signals.iter().enumerate() {
        let s = &rec.signal;
        let outcome = if s.name != playbook.spec.trigger.signal {
            format!(
                "not this playbook's signal ({})",
                playbook.spec.trigger.signal
            )
        } else {
            match &playbook.trigger_when {
                None => "matches".to_string(),
                Some(c) => match c.eval(&build_context(incident, i, snap, now)) {
                    Ok(true) => format!("matches: `{}` is true", c.source()),
                    Ok(false) => format!("no match: `{}` is false", c.source()),
                    Err(e) => format!("no match: {e}"),
                },
            }
        };
        if matched.is_none() && outcome.starts_with("matches") {
            matched = Some(i);
        }
        triggers.push(TriggerCheck {
            signal: s.name.clone(),
            target: s.target.to_string(),
            outcome,
        });
    }
    // Without a match, show the steps as they would be for the root cause's first signal.
    let signal = matched.unwrap_or_else(|| {
        let root = incident.root_cause();
        incident
            .signals
            .iter()
            .position(|r| Some(&r.subject) == root)
            .unwrap_or(0)
    });
    let ctx = build_context(incident, signal, snap, now);
    let plan = Plan::build(playbook, signal, &ctx);
    let mut stopped: Option<usize> = None;
    let mut steps = Vec::new();
    for step in &plan.steps {
        let mut e = describe(step);
        if let Some(at) = stopped {
            e.decision = "not reached".into();
            e.reason = Some(format!("the plan stops at step {at}"));
            steps.push(e);
            continue;
        }
        if let Some(c) = &step.when {
            match c.eval(&ctx) {
                Ok(true) => e.when = Some(format!("`{}` is true", c.source())),
                Ok(false) => {
                    e.when = Some(format!("`{}` is false", c.source()));
                    e.decision = "skip".into();
                    steps.push(e);
                    continue;
                }
                Err(err) => {
                    e.when = Some(format!("`{}` cannot be evaluated: {err}", c.source()));
                    e.decision = "escalate".into();
                    e.reason = Some("medic cannot tell whether to run it".into());
                    stopped = Some(step.index);
                    steps.push(e);
                    continue;
                }
            }
        }
        // With no journal at hand, as on a fresh install: no record yet.
        let standing = crate::trust::Ledger::default().standing(
            &plan.key(step),
            config.autonomy.earn.as_ref(),
            now,
        );
        match decide(step, plan.playbook_bound, config, &standing) {
            Decision::Run => e.decision = "run".into(),
            Decision::Escalate(reason) => {
                e.decision = "escalate".into();
                e.reason = Some(reason);
                stopped = Some(step.index);
            }
        }
        steps.push(e);
    }
    let rollback = plan
        .rollback
        .iter()
        .map(|step| {
            let mut e = describe(step);
            match decide(
                step,
                plan.playbook_bound,
                config,
                &crate::trust::Standing::Bounded,
            ) {
                Decision::Run => e.decision = "run".into(),
                Decision::Escalate(reason) => {
                    e.decision = "escalate".into();
                    e.reason = Some(reason);
                }
            }
            e
        })
        .collect();
    Explanation {
        playbook: playbook.name.clone(),
        incident: incident.id.clone(),
        at: now,
        root_cause: incident.root_cause().map(ToString::to_string),
        medic_would_choose: select_playbook(incident, playbooks, snap, now, None)
            .ok()
            .map(|s| s.playbook.name.clone()),
        triggers,
        triggered: matched.is_some(),
        mode: config.mode,
        paused: config.paused,
        global_bound: config.autonomy.max_risk,
        playbook_bound: plan.playbook_bound,
        steps,
        rollback,
    }
}

fn describe(step: &PlannedStep) -> StepExplanation {
    StepExplanation {
        index: step.index,
        action: step.action.to_string(),
        risk: step.risk,
        target: step.target.as_ref().map(ToString::to_string),
        when: None,
        decision: String::new(),
        reason: step.problem.clone(),
        verify: step.verify.as_ref().map(|v| {
            format!(
                "then waits up to {} for `{}` to hold {}",
                v.timeout,
                v.query.split_whitespace().collect::<Vec<_>>().join(" "),
                v.for_
            )
        }),
    }
}

impl Explanation {
    /// A terminal rendering; times relative to `start`.
    pub fn render(&self, start: Timestamp) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "playbook {} for incident {} (as planned at T+{}), root cause {}",
            self.playbook,
            self.incident,
            crate::model::format_secs(self.at - start),
            self.root_cause.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(
            out,
            "medic would choose: {}",
            self.medic_would_choose
                .as_deref()
                .unwrap_or("no playbook (it would escalate)")
        );
        let _ = writeln!(out, "trigger:");
        for t in &self.triggers {
            let _ = writeln!(out, "  {} on {}: {}", t.signal, t.target, t.outcome);
        }
        if !self.triggered {
            let _ = writeln!(
                out,
                "  => not triggered; the steps below are what it would do if it were"
            );
        }
        let _ = writeln!(
            out,
            "bounds: mode {:?}{}, autonomy up to {} (medic.yaml {}, playbook {})",
            self.mode,
            if self.paused { ", paused" } else { "" },
            self.global_bound.min(self.playbook_bound),
            self.global_bound,
            self.playbook_bound
        );
        let mut section = |title: &str, steps: &[StepExplanation]| {
            let _ = writeln!(out, "{title}:");
            for s in steps {
                let target = s.target.as_deref().unwrap_or("-");
                let _ = write!(
                    out,
                    "  {}. {} {} [{}]: {}",
                    s.index,
                    s.action,
                    target,
                    s.risk,
                    s.decision.to_uppercase()
                );
                if let Some(r) = &s.reason {
                    let _ = write!(out, " ({r})");
                }
                let _ = writeln!(out);
                if let Some(w) = &s.when {
                    let _ = writeln!(out, "       when {w}");
                }
                if let Some(v) = &s.verify {
                    let _ = writeln!(out, "       {v}");
                }
            }
        };
        section("steps", &self.steps);
        if self.rollback.is_empty() {
            let _ = writeln!(out, "rollback: none");
        } else {
            section(
                "rollback (if a step fails or is not verified)",
                &self.rollback,
            );
        }
        out
    }
}
