//! Guards: the checks every mutating step passes right before it runs, in
//! one place, whatever its playbook and risk. They keep a healer from
//! turning an incident into an outage: no ping-pong on one target, no
//! runaway action rate, one disruptive node action at a time, no workload
//! taken below its minimum or node pool below its healthy share, no new
//! actions in a storm, in a blackout or on the control plane.
//!
//! Pure: what medic did (the incidents' action records), the cluster
//! snapshot, the time. A refused step is held, retried each cycle, and
//! escalated once with the guard that refused it.

mod storm;
mod window;

pub use storm::{Storm, StormChange, StormConfig};
pub use window::{Blackout, DailyWindow};

use crate::act::{Action, ActionRecord, ActionResult};
use crate::cluster::ClusterSnapshot;
use crate::model::{ObjectRef, Secs, Timestamp, format_secs};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `guards` in medic.yaml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GuardConfig {
    /// After a playbook acted on a target, another incident's run of the
    /// same playbook may not act on it for this long.
    pub cooldown: Secs,
    /// Mutating actions per rolling hour, all targets together.
    pub max_actions_per_hour: u32,
    /// Mutating actions per rolling hour on one target.
    pub max_actions_per_target_per_hour: u32,
    /// Between two disruptive node actions (cordon, drain); and only one
    /// node cordoned by medic at a time.
    pub node_action_gap: Secs,
    /// A workload keeps at least this share of its replicas available (and
    /// at least one) through an eviction, deletion, drain or scale-down.
    pub min_available_ratio: f64,
    /// Cordon and drain leave at least this share of the worker nodes
    /// ready and schedulable.
    pub min_schedulable_node_ratio: f64,
    pub storm: StormConfig,
    /// Absolute windows with no new actions (RFC 3339 or unix seconds).
    pub blackouts: Vec<Blackout>,
    /// Daily windows (UTC, `HH:MM`) with no new actions; may cross midnight.
    pub daily_blackouts: Vec<DailyWindow>,
    /// Control-plane nodes are never cordoned or drained unless this is set.
    pub allow_control_plane: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            cooldown: Secs(1800),
            max_actions_per_hour: 20,
            max_actions_per_target_per_hour: 3,
            node_action_gap: Secs(600),
            min_available_ratio: 0.5,
            min_schedulable_node_ratio: 0.5,
            storm: StormConfig::default(),
            blackouts: Vec::new(),
            daily_blackouts: Vec::new(),
            allow_control_plane: false,
        }
    }
}

/// Why a guard refused a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub guard: &'static str,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "guard {}: {}", self.guard, self.reason)
    }
}

/// What medic has done, as the guards see it.
#[derive(Debug, Clone, Copy)]
pub struct Done<'a> {
    pub incident: &'a str,
    pub record: &'a ActionRecord,
}

/// The step about to run.
#[derive(Debug, Clone)]
pub struct Intent<'a> {
    pub incident: &'a str,
    pub playbook: &'a str,
    pub action: Action,
    pub target: &'a ObjectRef,
    /// For scale: the replica count it asks for.
    pub wanted_replicas: Option<i64>,
    /// Rollback steps undo medic's own change: only the safety guards
    /// (control plane, blast radius) apply to them.
    pub rollback: bool,
}

pub struct Situation<'a> {
    pub done: &'a [Done<'a>],
    pub snapshot: &'a ClusterSnapshot,
    pub storm: bool,
    pub now: Timestamp,
}

/// Checks every guard; the first refusal wins.
pub fn check(intent: &Intent<'_>, s: &Situation<'_>, config: &GuardConfig) -> Result<(), Refusal> {
    if !intent.action.spec().mutating {
        return Ok(());
    }
    control_plane(intent, s, config)?;
    blast_radius(intent, s, config)?;
    if intent.rollback {
        return Ok(());
    }
    blackout(s, config)?;
    if s.storm {
        return Err(Refusal {
            guard: "storm",
            reason: format!(
                "more than {} incidents are open: no new actions until it is calm for {}",
                config.storm.open_incidents, config.storm.calm_for
            ),
        });
    }
    node_actions(intent, s, config)?;
    cooldown(intent, s, config)?;
    budget(intent, s, config)
}

/// Actions that changed something (dry runs excluded; failures count, as
/// they may have changed something too).
fn acted<'a>(s: &'a Situation<'a>) -> impl Iterator<Item = &'a Done<'a>> {
    s.done
        .iter()
        .filter(|d| d.record.action.spec().mutating && d.record.result != ActionResult::DryRun)
}

fn control_plane(i: &Intent<'_>, s: &Situation<'_>, c: &GuardConfig) -> Result<(), Refusal> {
    if c.allow_control_plane || !i.target.is("Node") {
        return Ok(());
    }
    if s.snapshot
        .nodes
        .get(&i.target.name)
        .is_some_and(|n| n.control_plane)
    {
        return Err(Refusal {
            guard: "control-plane",
            reason: format!(
                "{} is a control-plane node (set guards.allowControlPlane to allow)",
                i.target
            ),
        });
    }
    Ok(())
}

fn blackout(s: &Situation<'_>, c: &GuardConfig) -> Result<(), Refusal> {
    if let Some(b) = c.blackouts.iter().find(|b| b.contains(s.now)) {
        return Err(Refusal {
            guard: "blackout",
            reason: format!("in the blackout window {b}"),
        });
    }
    if let Some(w) = c.daily_blackouts.iter().find(|w| w.contains(s.now)) {
        return Err(Refusal {
            guard: "blackout",
            reason: format!("in the daily blackout window {w}"),
        });
    }
    Ok(())
}

fn disruptive_node_action(a: Action) -> bool {
    matches!(a, Action::CordonNode | Action::DrainNode)
}

fn node_actions(i: &Intent<'_>, s: &Situation<'_>, c: &GuardConfig) -> Result<(), Refusal> {
    if !disruptive_node_action(i.action) {
        return Ok(());
    }
    for d in acted(s) {
        let Some(target) = &d.record.target else {
            continue;
        };
        if !disruptive_node_action(d.record.action) || target == i.target {
            continue;
        }
        let uncordoned = acted(s).any(|u| {
            u.record.action == Action::UncordonNode
                && u.record.target.as_ref() == Some(target)
                && u.record.at >= d.record.at
        });
        let still_cordoned = s
            .snapshot
            .nodes
            .get(&target.name)
            .is_some_and(|n| n.unschedulable);
        if !uncordoned && still_cordoned {
            return Err(Refusal {
                guard: "node-gap",
                reason: format!(
                    "{target} is still cordoned by medic (incident {}): one node at a time",
                    d.incident
                ),
            });
        }
        let since = s.now - d.record.at;
        if since < c.node_action_gap.0 {
            return Err(Refusal {
                guard: "node-gap",
                reason: format!(
                    "{} on {target} was {} ago; disruptive node actions are {} apart",
                    d.record.action,
                    format_secs(since),
                    c.node_action_gap
                ),
            });
        }
    }
    Ok(())
}

fn cooldown(i: &Intent<'_>, s: &Situation<'_>, c: &GuardConfig) -> Result<(), Refusal> {
    let recent = acted(s).find(|d| {
        d.incident != i.incident
            && d.record.playbook == i.playbook
            && d.record.target.as_ref() == Some(i.target)
            && !d.record.rollback
            && s.now - d.record.at < c.cooldown.0
    });
    match recent {
        Some(d) => Err(Refusal {
            guard: "cooldown",
            reason: format!(
                "playbook {} acted on {} for incident {} {} ago; cooldown is {}",
                i.playbook,
                i.target,
                d.incident,
                format_secs(s.now - d.record.at),
                c.cooldown
            ),
        }),
        None => Ok(()),
    }
}

fn budget(i: &Intent<'_>, s: &Situation<'_>, c: &GuardConfig) -> Result<(), Refusal> {
    let hour: Vec<&Done> = acted(s).filter(|d| s.now - d.record.at < 3600).collect();
    if hour.len() >= c.max_actions_per_hour as usize {
        return Err(Refusal {
            guard: "budget",
            reason: format!(
                "{} actions in the last hour reach the budget of {}",
                hour.len(),
                c.max_actions_per_hour
            ),
        });
    }
    let on_target = hour
        .iter()
        .filter(|d| d.record.target.as_ref() == Some(i.target))
        .count();
    if on_target >= c.max_actions_per_target_per_hour as usize {
        return Err(Refusal {
            guard: "budget",
            reason: format!(
                "{on_target} actions on {} in the last hour reach its budget of {}",
                i.target, c.max_actions_per_target_per_hour
            ),
        });
    }
    Ok(())
}

/// The fewest available replicas `replicas` may drop to.
fn floor(replicas: i64, ratio: f64) -> i64 {
    let share = (replicas as f64 * ratio.clamp(0.0, 1.0)).ceil() as i64;
    share.max(1)
}

fn blast_radius(i: &Intent<'_>, s: &Situation<'_>, c: &GuardConfig) -> Result<(), Refusal> {
    let snap = s.snapshot;
    let refuse = |reason: String| {
        Err(Refusal {
            guard: "blast-radius",
            reason,
        })
    };
    // Pods each workload would lose.
    let mut losing: std::collections::BTreeMap<ObjectRef, i64> = Default::default();
    match i.action {
        Action::EvictPod | Action::DeletePod => {
            if let Some(owner) = snap.pods.get(i.target).and_then(|p| p.owner.clone()) {
                losing.insert(owner, 1);
            }
        }
        Action::DrainNode => {
            for p in snap.pods.values() {
                if p.node.as_deref() == Some(i.target.name.as_str())
                    && let Some(owner) = &p.owner
                    && !owner.is("DaemonSet")
                {
                    *losing.entry(owner.clone()).or_insert(0) += 1;
                }
            }
        }
        Action::Scale => {
            if let (Some(w), Some(wanted)) = (snap.workloads.get(i.target), i.wanted_replicas) {
                let replicas = w.replicas.unwrap_or(0);
                if wanted < replicas && wanted < floor(replicas, c.min_available_ratio) {
                    return refuse(format!(
                        "scaling {} from {replicas} to {wanted} replicas goes below its floor of {}",
                        i.target,
                        floor(replicas, c.min_available_ratio)
                    ));
                }
            }
        }
        _ => {}
    }
    for (workload, lost) in losing {
        let Some(info) = snap.workloads.get(&workload) else {
            continue;
        };
        let replicas = info.replicas.unwrap_or(0);
        let available = snap.available(&workload);
        let min = floor(replicas, c.min_available_ratio);
        if available - lost < min {
            return refuse(format!(
                "{} would leave {workload} with {} of {replicas} replicas available; its floor is {min}",
                i.action,
                available - lost
            ));
        }
    }
    if disruptive_node_action(i.action) {
        let workers: Vec<(&String, &crate::cluster::NodeInfo)> = snap
            .nodes
            .iter()
            .filter(|(_, n)| !n.control_plane)
            .collect();
        let total = workers.len();
        let after = workers
            .iter()
            .filter(|(name, n)| {
                n.ready && !n.unschedulable && name.as_str() != i.target.name.as_str()
            })
            .count();
        if total > 0 && (after as f64) < c.min_schedulable_node_ratio * total as f64 {
            return refuse(format!(
                "{} would leave {after} of {total} worker nodes schedulable; at least {:.0}% must stay",
                i.action,
                c.min_schedulable_node_ratio * 100.0
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
