//! May medic run this step on its own? Mode, pause, the autonomy bounds,
//! then (with `autonomy.earn`) the step's track record.

use super::PlannedStep;
use crate::act::Action;
use crate::config::{Config, Mode};
use crate::model::Risk;
use crate::trust::Standing;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run,
    /// Stop the plan here and hand it to people, for this reason.
    Escalate(String),
}

/// `standing` is the step's record (`Standing::Bounded` where none applies,
/// as for rollback steps, which put back what the plan changed).
pub fn decide(
    step: &PlannedStep,
    playbook_bound: Risk,
    config: &Config,
    standing: &Standing,
) -> Decision {
    if step.action == Action::Escalate {
        let reason = step
            .params
            .get("reason")
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or("the playbook escalates here");
        return Decision::Escalate(reason.to_string());
    }
    if let Some(problem) = &step.problem {
        return Decision::Escalate(problem.clone());
    }
    if !step.action.spec().mutating {
        return Decision::Run;
    }
    if config.mode == Mode::Observe {
        return Decision::Escalate(format!(
            "observe mode: medic writes nothing; step {} ({}) needs a person",
            step.index, step.action
        ));
    }
    if config.paused {
        return Decision::Escalate("medic is paused: no new actions".into());
    }
    let bound = config.autonomy.max_risk.min(playbook_bound);
    if step.risk > bound {
        return Decision::Escalate(format!(
            "risk above bound: step {} ({}) is {} risk, autonomy allows up to {}",
            step.index, step.action, step.risk, bound
        ));
    }
    if let Some(earn) = &config.autonomy.earn
        && let Some(why) = standing.why_it_asks(step.index, step.action, earn)
    {
        return Decision::Escalate(why);
    }
    Decision::Run
}

/// Whether a person's approval may let this escalated step run: only when
/// the sole obstacle is its risk (or it is a playbook's `escalate` gate).
/// Observe mode, a pause and an unresolved target are not approvable.
pub fn approvable(step: &PlannedStep, config: &Config) -> bool {
    if config.mode == Mode::Observe || config.paused || step.problem.is_some() {
        return false;
    }
    step.action == Action::Escalate || step.action.spec().mutating
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: Action, risk: Risk) -> PlannedStep {
        PlannedStep {
            index: 2,
            action,
            risk,
            target: Some("Deployment/p/api".parse().unwrap()),
            when: None,
            params: Default::default(),
            verify: None,
            problem: None,
        }
    }

    fn enforce(max: Risk) -> Config {
        let mut c = Config {
            mode: Mode::Enforce,
            ..Config::default()
        };
        c.autonomy.max_risk = max;
        c
    }

    #[test]
    fn runs_only_within_both_bounds() {
        let s = step(Action::RolloutUndo, Risk::Medium);
        assert_eq!(
            decide(&s, Risk::Medium, &enforce(Risk::Medium), &Standing::Bounded),
            Decision::Run
        );
        assert_eq!(
            decide(&s, Risk::Medium, &enforce(Risk::Low), &Standing::Bounded),
            Decision::Escalate(
                "risk above bound: step 2 (rollout_undo) is medium risk, autonomy allows up to low"
                    .into()
            )
        );
        assert!(matches!(
            decide(&s, Risk::Low, &enforce(Risk::High), &Standing::Bounded),
            Decision::Escalate(_)
        ));
    }

    #[test]
    fn observe_mode_and_pause_stop_writes_but_not_reads() {
        let observe = Config::default();
        assert_eq!(observe.mode, Mode::Observe, "a new install observes");
        assert!(
            matches!(decide(&step(Action::CordonNode, Risk::Low), Risk::High, &observe, &Standing::Bounded), Decision::Escalate(r) if r.starts_with("observe mode"))
        );
        assert_eq!(
            decide(
                &step(Action::CaptureLogs, Risk::None),
                Risk::None,
                &observe,
                &Standing::Bounded
            ),
            Decision::Run
        );
        let mut paused = enforce(Risk::High);
        paused.paused = true;
        assert!(matches!(
            decide(
                &step(Action::CordonNode, Risk::Low),
                Risk::High,
                &paused,
                &Standing::Bounded
            ),
            Decision::Escalate(_)
        ));
    }

    #[test]
    fn an_unearned_step_asks_and_an_earned_one_stays_under_the_ceilings() {
        let mut config = enforce(Risk::Medium);
        config.autonomy.earn = Some(crate::trust::Earn::default());
        let s = step(Action::RolloutUndo, Risk::Medium);
        let asks = Standing::Asks {
            approvals: 1,
            verified: 0,
        };
        assert_eq!(
            decide(&s, Risk::Medium, &config, &asks),
            Decision::Escalate(
                "step 2 (rollout_undo) has not earned autonomy yet: 1 of 3 approvals and 0 of 2 verified runs in the last 30d".into()
            )
        );
        assert!(approvable(&s, &config), "a person can let it run");
        let earned = Standing::Earned {
            approvals: 3,
            verified: 2,
        };
        assert_eq!(decide(&s, Risk::Medium, &config, &earned), Decision::Run);
        // A record never lifts a step past maxRisk or its playbook's bound.
        config.autonomy.max_risk = Risk::Low;
        assert!(matches!(
            decide(&s, Risk::Medium, &config, &earned),
            Decision::Escalate(r) if r.starts_with("risk above bound")
        ));
        config.autonomy.max_risk = Risk::High;
        assert!(matches!(
            decide(&s, Risk::Low, &config, &earned),
            Decision::Escalate(r) if r.starts_with("risk above bound")
        ));
        // Read-only steps need no record.
        assert_eq!(
            decide(
                &step(Action::CaptureLogs, Risk::None),
                Risk::Low,
                &config,
                &asks
            ),
            Decision::Run
        );
    }

    #[test]
    fn a_step_with_no_target_escalates() {
        let mut s = step(Action::CordonNode, Risk::Low);
        s.problem = Some("cordon_node needs a node".into());
        assert_eq!(
            decide(&s, Risk::High, &enforce(Risk::High), &Standing::Bounded),
            Decision::Escalate("cordon_node needs a node".into())
        );
    }
}
