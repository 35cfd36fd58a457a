//! Planning: pick the playbook for an incident, resolve each step's target,
//! and decide per step whether medic may run it on its own. Pure.

mod context;
mod explain;
mod policy;
mod select;

pub use context::build_context;
pub use explain::{Explanation, StepExplanation, TriggerCheck, explain};
pub use policy::{Decision, approvable, decide};
pub use select::{Selection, matching_playbooks, select_playbook};

use crate::act::{Action, TargetKind};
use crate::escalate::PlanLine;
use crate::model::{ObjectRef, Risk, Secs};
use crate::playbook::{Condition, EvalContext, Playbook, Step};
use crate::template::{self, Escape};
use std::collections::BTreeMap;

/// A waitFor with its query rendered for this incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub query: String,
    pub for_: Secs,
    pub timeout: Secs,
    pub initial_delay: Secs,
    pub interval: Secs,
    pub failure_limit: u32,
    pub error_limit: u32,
    pub on_empty: crate::playbook::OnEmpty,
}

#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub index: usize,
    pub action: Action,
    pub risk: Risk,
    /// None for escalate, or when the incident has no object of the kind
    /// the action needs (see `problem`).
    pub target: Option<ObjectRef>,
    pub when: Option<Condition>,
    pub params: BTreeMap<String, serde_yaml::Value>,
    pub verify: Option<Verification>,
    /// Why this step cannot run as written; it escalates instead.
    pub problem: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub playbook: String,
    pub playbook_bound: Risk,
    /// Index of the incident signal that triggered the playbook.
    pub signal: usize,
    pub steps: Vec<PlannedStep>,
    pub rollback: Vec<PlannedStep>,
}

impl Plan {
    pub fn build(playbook: &Playbook, signal: usize, ctx: &EvalContext) -> Plan {
        let vars = ctx.template_vars();
        let plan_steps = |steps: &[Step]| -> Vec<PlannedStep> {
            steps
                .iter()
                .enumerate()
                .map(|(i, s)| plan_step(i + 1, s, ctx, &vars))
                .collect()
        };
        Plan {
            playbook: playbook.name.clone(),
            playbook_bound: playbook.spec.max_autonomous_risk,
            signal,
            steps: plan_steps(&playbook.steps),
            rollback: plan_steps(&playbook.rollback),
        }
    }

    pub fn lines(&self) -> Vec<PlanLine> {
        self.steps
            .iter()
            .map(|s| PlanLine {
                index: s.index,
                action: s.action.name().to_string(),
                target: s.target.clone(),
                risk: s.risk,
            })
            .collect()
    }

    /// What an approval of this plan is an approval of.
    pub fn digest(&self) -> String {
        crate::escalate::plan_digest(&self.playbook, &self.lines())
    }

    /// The ledger's name for `step` of this plan.
    pub fn key(&self, step: &PlannedStep) -> crate::trust::StepKey {
        crate::trust::StepKey {
            playbook: self.playbook.clone(),
            step: step.index,
            action: step.action,
            target_kind: step
                .target
                .as_ref()
                .map_or("-".to_string(), |t| t.kind.clone()),
        }
    }

    /// `1. cordon_node Node/n1 [low]; 2. ...`
    pub fn describe(&self) -> String {
        self.steps
            .iter()
            .map(|s| match &s.target {
                Some(t) => format!("{}. {} {} [{}]", s.index, s.action, t, s.risk),
                None => format!("{}. {} [{}]", s.index, s.action, s.risk),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn plan_step(
    index: usize,
    step: &Step,
    ctx: &EvalContext,
    vars: &BTreeMap<String, String>,
) -> PlannedStep {
    let t = &ctx.target;
    let (target, mut problem) = match step.action.spec().target {
        TargetKind::Incident => (None, None),
        TargetKind::Pod if t.kind == "Pod" => (
            ObjectRef::namespaced("Pod", &t.namespace, &t.name).into(),
            None,
        ),
        TargetKind::Pod => (
            None,
            Some(format!(
                "{} needs a pod; the signal is on {}",
                step.action, t.reference
            )),
        ),
        TargetKind::Node if t.kind == "Node" => (Some(ObjectRef::node(&t.name)), None),
        TargetKind::Node if !t.node.is_empty() => (Some(ObjectRef::node(&t.node)), None),
        TargetKind::Node => (
            None,
            Some(format!(
                "{} needs a node; {} runs on no known node",
                step.action, t.reference
            )),
        ),
        TargetKind::Workload if !t.owner.name.is_empty() => (
            Some(ObjectRef::namespaced(
                &t.owner.kind,
                &t.owner.namespace,
                &t.owner.name,
            )),
            None,
        ),
        TargetKind::Autoscaler if t.kind == "HorizontalPodAutoscaler" => (
            Some(ObjectRef::namespaced(
                "HorizontalPodAutoscaler",
                &t.namespace,
                &t.name,
            )),
            None,
        ),
        TargetKind::Autoscaler => (
            None,
            Some(format!(
                "{} needs a HorizontalPodAutoscaler; the signal is on {}",
                step.action, t.reference
            )),
        ),
        TargetKind::Workload => (
            None,
            Some(format!(
                "{} needs a workload; no controller owns {}",
                step.action, t.reference
            )),
        ),
    };
    let verify = step.wait_for.as_ref().and_then(|w| {
        match template::render(&w.query, vars, Escape::Promql) {
            Ok(query) => Some(Verification {
                query,
                for_: w.for_,
                timeout: w.timeout,
                initial_delay: w.initial_delay,
                interval: w.interval,
                failure_limit: w.failure_limit,
                error_limit: w.error_limit,
                on_empty: w.on_empty,
            }),
            Err(e) => {
                problem.get_or_insert(format!("waitFor cannot be rendered: {e}"));
                None
            }
        }
    });
    // String parameters may name the signal's labels, as queries do.
    let mut params = step.params.clone();
    for (name, value) in params.iter_mut() {
        if let Some(text) = value.as_str().filter(|t| t.contains("{{")) {
            match template::render(text, vars, Escape::None) {
                Ok(rendered) => *value = rendered.into(),
                Err(e) => {
                    problem.get_or_insert(format!("param `{name}` cannot be rendered: {e}"));
                }
            }
        }
    }
    PlannedStep {
        index,
        action: step.action,
        risk: step.risk,
        target,
        when: step.when.clone(),
        params,
        verify,
        problem,
    }
}
