//! The replay report (the `--json` contract) and the expectation checks.
//! Times are seconds from replay time 0 (`*_s`).

use super::fixture::Expect;
use crate::act::ActionResult;
use crate::diagnose::Diagnosis;
use crate::incident::{Incident, SignalRecord, Stage};
use crate::model::{Timestamp, format_secs};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub fixture: String,
    pub file: String,
    pub passed: bool,
    pub failures: Vec<String>,
    /// First signal minus `expect.onset`; null without onset or signals.
    pub time_to_detect_s: Option<i64>,
    /// Incidents about nothing the fixture injected: all of them in a
    /// fixture that expects none, else those whose every signal began
    /// before `expect.onset`, less those of `earlier_fault_incidents`.
    pub false_incidents: usize,
    /// Incidents of a fault in `expect.earlier_faults`: every signal began
    /// before `expect.onset` but at or after that fault's injection, and
    /// its root cause is among the incident's candidates.
    pub earlier_fault_incidents: usize,
    /// Actions that changed (or tried to change) the cluster in a fixture
    /// that expects no incident: harm done to a healthy cluster.
    pub false_actions: usize,
    /// The fixture expects no incident (`expect.incidents: 0`).
    pub healthy: bool,
    /// Each kube-prometheus alert of `expect.beats`: when its rule would
    /// fire, and when medic saw the fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub beats: Vec<RuleRace>,
    /// `expect.onset`, from the fixture's start.
    #[serde(skip)]
    expected_onset_s: Option<i64>,
    /// The fixture's tags (e.g. fault_type).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    /// The incident under test: the first opened at or after `expect.onset`.
    pub evaluated_incident: Option<String>,
    pub expected_root_cause: Option<String>,
    /// 1-based rank of `expect.root_cause` among that incident's candidates.
    pub root_cause_rank: Option<usize>,
    pub signals: Vec<SignalReport>,
    pub incidents: Vec<IncidentReport>,
    /// Each playbook step's track record at the end (`medic trust`); left
    /// out when no step that changes the cluster came up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust: Vec<crate::trust::Row>,
}

/// medic against a kube-prometheus alert, times from the fixture's start.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRace {
    pub alert: String,
    /// None: the rule does not fire within the fixture.
    pub rule_fires_at_s: Option<i64>,
    /// medic's first signal of the fault (none before `expect.onset`).
    pub medic_at_s: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignalReport {
    pub at_s: i64,
    pub onset_s: i64,
    pub signal: String,
    pub target: String,
    pub severity: String,
    pub value: f64,
    pub onset_value: f64,
    pub peak: f64,
    pub slope_per_min: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentReport {
    pub id: String,
    pub opened_at_s: i64,
    pub severity: String,
    pub root_cause: Option<String>,
    /// Rank order: the incident's own candidates, then `suspects`.
    pub root_cause_candidates: Vec<String>,
    /// The candidates that come from recent history rather than from a
    /// signal in this incident (the last ones of `root_cause_candidates`).
    pub suspects: Vec<SuspectReport>,
    pub affected: Vec<String>,
    pub diagnosis: Option<Diagnosis>,
    pub actions: Vec<ActionReport>,
    pub escalations: Vec<EscalationReport>,
    pub timeline: Vec<TimelineReport>,
    pub resolved_at_s: Option<i64>,
    /// What `capture_logs` kept (redacted, bounded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogsReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogsReport {
    pub at_s: i64,
    pub pod: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuspectReport {
    pub object: String,
    /// The earlier incident it was the root cause of, and when that opened.
    pub incident: String,
    pub opened_at_s: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    pub at_s: i64,
    pub action: String,
    pub target: Option<String>,
    pub risk: String,
    pub result: ActionResult,
    pub playbook: String,
    pub step: usize,
    pub rollback: bool,
    pub message: String,
}

impl ActionReport {
    /// Carried out (or attempted) on the cluster: a mutating action that
    /// was not a dry run.
    pub fn changes_the_cluster(&self) -> bool {
        self.result != ActionResult::DryRun
            && crate::act::Action::from_name(&self.action).is_some_and(|a| a.spec().mutating)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationReport {
    pub at_s: i64,
    pub reason: String,
    pub channel: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineReport {
    pub at_s: i64,
    pub stage: Stage,
    pub text: String,
}

impl TimelineReport {
    pub fn stage_label(&self) -> &'static str {
        self.stage.label()
    }
}

impl Report {
    pub fn build(
        fixture: &str,
        file: &str,
        start: Timestamp,
        incidents: &[Incident],
        expect: &Expect,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Report {
        let rel = |t: Timestamp| t - start;
        let sources = incidents;
        let mut signals: Vec<SignalReport> = incidents
            .iter()
            .flat_map(|i| &i.signals)
            .map(|r| SignalReport {
                at_s: rel(r.signal.fired_at),
                onset_s: rel(r.signal.onset),
                signal: r.signal.name.clone(),
                target: r.signal.target.to_string(),
                severity: r.signal.severity.to_string(),
                value: r.signal.value,
                onset_value: r.signal.onset_value,
                peak: r.signal.peak,
                slope_per_min: r.signal.slope_per_min,
            })
            .collect();
        signals.sort_by(|a, b| (a.at_s, &a.signal, &a.target).cmp(&(b.at_s, &b.signal, &b.target)));
        let incidents: Vec<IncidentReport> = incidents
            .iter()
            .map(|i| IncidentReport {
                id: i.id.clone(),
                opened_at_s: rel(i.opened_at),
                severity: i.severity.to_string(),
                root_cause: i.root_cause().map(ToString::to_string),
                root_cause_candidates: i.ranking().map(ToString::to_string).collect(),
                suspects: i
                    .suspects
                    .iter()
                    .map(|s| SuspectReport {
                        object: s.object.to_string(),
                        incident: s.incident.clone(),
                        opened_at_s: rel(s.opened_at),
                    })
                    .collect(),
                affected: i.affected.iter().map(ToString::to_string).collect(),
                diagnosis: i.diagnosis.clone(),
                actions: i
                    .actions
                    .iter()
                    .map(|a| ActionReport {
                        at_s: rel(a.at),
                        action: a.action.to_string(),
                        target: a.target.as_ref().map(ToString::to_string),
                        risk: a.risk.to_string(),
                        result: a.result,
                        playbook: a.playbook.clone(),
                        step: a.step,
                        rollback: a.rollback,
                        message: a.message.clone(),
                    })
                    .collect(),
                escalations: i
                    .escalations
                    .iter()
                    .map(|e| EscalationReport {
                        at_s: rel(e.at),
                        reason: e.reason.clone(),
                        channel: e.channel.clone(),
                    })
                    .collect(),
                timeline: i
                    .timeline
                    .iter()
                    .map(|t| TimelineReport {
                        at_s: rel(t.at),
                        stage: t.stage,
                        text: t.text.clone(),
                    })
                    .collect(),
                resolved_at_s: i.resolved_at.map(rel),
                logs: i
                    .logs
                    .iter()
                    .map(|l| LogsReport {
                        at_s: rel(l.at),
                        pod: l.pod.to_string(),
                        text: l.text.clone(),
                    })
                    .collect(),
            })
            .collect();
        // A signal is of the fault under test when its condition began at or
        // after the expected onset: one that began earlier (an earlier
        // fault, or noise) cannot be its effect. The incident under test
        // holds the first of them to fire (it may have opened earlier).
        let onset = start + expect.onset.map_or(i64::MIN / 2, |o| o.0);
        let of_fault = |s: &SignalRecord| s.signal.onset >= onset;
        let first_of_fault = sources
            .iter()
            .filter_map(|i| {
                let first = i
                    .signals
                    .iter()
                    .filter(|s| of_fault(s))
                    .map(|s| s.signal.fired_at)
                    .min()?;
                Some((first, &i.id))
            })
            .min();
        let time_to_detect_s = match (&expect.onset, first_of_fault) {
            (Some(_), Some((fired, _))) => Some(fired - onset),
            _ => None,
        };
        let before_onset: Vec<&Incident> = if expect.onset.is_some() {
            sources
                .iter()
                .filter(|i| !i.signals.iter().any(of_fault))
                .collect()
        } else {
            Vec::new()
        };
        let earlier_fault_incidents = before_onset
            .iter()
            .filter(|i| of_earlier_fault(i, &expect.earlier_faults, start))
            .count();
        let false_incidents = if expect.incidents == Some(0) {
            incidents.len()
        } else {
            before_onset.len() - earlier_fault_incidents
        };
        let evaluated_id = first_of_fault.map(|(_, id)| id.clone());
        let evaluated = incidents
            .iter()
            .find(|i| Some(&i.id) == evaluated_id.as_ref());
        let expected_root_cause = expect.root_cause.as_ref().map(ToString::to_string);
        let root_cause_rank = match (evaluated, &expected_root_cause) {
            (Some(inc), Some(want)) => inc
                .root_cause_candidates
                .iter()
                .position(|c| c == want)
                .map(|p| p + 1),
            _ => None,
        };
        let mut report = Report {
            fixture: fixture.to_string(),
            file: file.to_string(),
            passed: true,
            failures: Vec::new(),
            time_to_detect_s,
            false_incidents,
            earlier_fault_incidents,
            false_actions: 0,
            healthy: expect.incidents == Some(0),
            beats: Vec::new(),
            expected_onset_s: expect.onset.map(|o| o.0),
            tags: tags.clone(),
            evaluated_incident: evaluated.map(|i| i.id.clone()),
            expected_root_cause,
            root_cause_rank,
            signals,
            incidents,
            trust: Vec::new(),
        };
        if expect.incidents == Some(0) {
            report.false_actions = report
                .incidents
                .iter()
                .flat_map(|i| &i.actions)
                .filter(|a| a.changes_the_cluster())
                .count();
        }
        report.failures = check(&report, expect);
        report.passed = report.failures.is_empty();
        report
    }

    /// Actions that were carried out (not dry runs, not failures), in time order.
    pub fn taken_actions(&self) -> Vec<&ActionReport> {
        let mut all: Vec<&ActionReport> = self
            .incidents
            .iter()
            .flat_map(|i| &i.actions)
            .filter(|a| a.result == ActionResult::Ok)
            .collect();
        all.sort_by_key(|a| a.at_s);
        all
    }

    /// Records the race against `alert`, failing the report if the rule
    /// fires first (or medic never sees the fault).
    /// Takes the steps' records at the end and checks `expect.trust`.
    pub fn trust(&mut self, rows: Vec<crate::trust::Row>, expect: &Expect) {
        for want in &expect.trust {
            let got = rows
                .iter()
                .find(|r| r.playbook == want.playbook && r.step == want.step);
            match got {
                Some(r) if r.standing.label() == want.standing.name() => {}
                Some(r) => self.failures.push(format!(
                    "expected {} step {} to be {}, it is {} ({})",
                    want.playbook,
                    want.step,
                    want.standing.name(),
                    r.standing.label(),
                    r.summary()
                )),
                None => self.failures.push(format!(
                    "expected {} step {} to be {}, but it never came up",
                    want.playbook,
                    want.step,
                    want.standing.name()
                )),
            }
        }
        self.trust = rows;
    }

    pub fn race(&mut self, alert: &str, rule_fires_at_s: Option<i64>) {
        let medic_at_s = self
            .signals
            .iter()
            .filter(|s| self.expected_onset_s.is_none_or(|o| s.onset_s >= o))
            .map(|s| s.at_s)
            .min();
        match (medic_at_s, rule_fires_at_s) {
            (None, _) => self
                .failures
                .push(format!("medic never saw what {alert} is about")),
            (Some(m), Some(r)) if r <= m => self.failures.push(format!(
                "{alert} would fire at {}, before medic saw it at {}",
                format_secs(r),
                format_secs(m)
            )),
            _ => {}
        }
        self.beats.push(RuleRace {
            alert: alert.to_string(),
            rule_fires_at_s,
            medic_at_s,
        });
    }

    pub fn escalation_count(&self) -> usize {
        self.incidents.iter().map(|i| i.escalations.len()).sum()
    }
}

fn check(r: &Report, expect: &Expect) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(n) = expect.incidents
        && r.incidents.len() != n
    {
        failures.push(format!(
            "expected {n} incident(s), got {}",
            r.incidents.len()
        ));
    }
    for want in &expect.signals {
        let target = want.target.to_string();
        match r
            .signals
            .iter()
            .find(|s| s.signal == want.signal && s.target == target)
        {
            None => failures.push(format!(
                "expected signal {} on {target}; it never fired",
                want.signal
            )),
            Some(s) => {
                if let Some(by) = want.by
                    && s.at_s > by.0
                {
                    failures.push(format!(
                        "expected signal {} on {target} by {by}, it fired at {}",
                        want.signal,
                        format_secs(s.at_s)
                    ));
                }
            }
        }
    }
    for not in &expect.not_signals {
        let target = not.target.as_ref().map(ToString::to_string);
        if let Some(s) = r
            .signals
            .iter()
            .find(|s| s.signal == not.signal && target.as_ref().is_none_or(|t| &s.target == t))
        {
            failures.push(format!(
                "signal {} must not fire, but fired on {} at {}",
                not.signal,
                s.target,
                format_secs(s.at_s)
            ));
        }
    }
    if let Some(want) = &expect.root_cause {
        let got = r
            .evaluated_incident
            .as_ref()
            .and_then(|id| r.incidents.iter().find(|i| &i.id == id))
            .and_then(|i| i.root_cause.clone());
        if got.as_deref() != Some(want.to_string().as_str()) {
            failures.push(format!(
                "expected root cause {want}, got {}",
                got.unwrap_or_else(|| "none".into())
            ));
        }
    }
    let taken: Vec<&str> = r
        .taken_actions()
        .iter()
        .map(|a| a.action.as_str())
        .collect();
    if let Some(want) = &expect.actions
        && taken != want.iter().map(String::as_str).collect::<Vec<_>>()
    {
        failures.push(format!(
            "expected actions [{}], got [{}]",
            want.join(", "),
            taken.join(", ")
        ));
    }
    for not in &expect.not_actions {
        if taken.contains(&not.as_str()) {
            failures.push(format!("action {not} must not be taken, but was"));
        }
    }
    if let Some(n) = expect.escalations {
        let got = r.escalation_count();
        if got != n {
            let reasons: Vec<&str> = r
                .incidents
                .iter()
                .flat_map(|i| &i.escalations)
                .map(|e| e.reason.as_str())
                .collect();
            failures.push(format!(
                "expected {n} escalation(s), got {got}: {reasons:?}"
            ));
        }
    }
    if let Some(by) = expect.resolved_by {
        for i in &r.incidents {
            match i.resolved_at_s {
                Some(t) if t <= by.0 => {}
                Some(t) => failures.push(format!(
                    "incident {} resolved at {}, expected by {by}",
                    i.id,
                    format_secs(t)
                )),
                None => failures.push(format!("incident {} not resolved, expected by {by}", i.id)),
            }
        }
    }
    if let Some(after) = expect.resolved_after {
        for i in &r.incidents {
            if let Some(t) = i.resolved_at_s
                && t < after.0
            {
                failures.push(format!(
                    "incident {} resolved at {}, before {after}: the fault was still there",
                    i.id,
                    format_secs(t)
                ));
            }
        }
    }
    failures
}

/// Whether an incident whose signals all began before the fault under test
/// is one of the earlier faults': it began at or after that fault's
/// injection and names that fault's root cause among its candidates
/// (ranked wrongly, perhaps, but about a real fault).
fn of_earlier_fault(
    inc: &Incident,
    earlier: &[super::fixture::EarlierFault],
    start: Timestamp,
) -> bool {
    let Some(began) = inc.signals.iter().map(|s| s.signal.onset).min() else {
        return false;
    };
    earlier
        .iter()
        .any(|f| began >= start + f.onset.0 && inc.candidates.contains(&f.root_cause))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectRef, Secs, Severity};
    use crate::signal::Signal;

    fn with_signal(id: &str, target: &str, onset: Timestamp, fired: Timestamp) -> Incident {
        let mut inc = Incident::new(id, fired, Severity::High);
        let target: ObjectRef = target.parse().unwrap();
        inc.candidates = vec![target.clone()];
        inc.signals.push(SignalRecord {
            signal: Signal {
                name: "latency".into(),
                target: target.clone(),
                severity: Severity::High,
                value: 1.0,
                labels: Default::default(),
                onset,
                fired_at: fired,
                onset_value: 1.0,
                peak: 1.0,
                slope_per_min: 0.0,
                from_alert: false,
            },
            subject: target,
            cleared_at: None,
        });
        inc
    }

    #[test]
    fn the_incident_under_test_holds_the_first_signal_that_began_after_the_onset() {
        let expect = Expect {
            onset: Some(Secs(1200)),
            root_cause: Some("Deployment/p/payment".parse().unwrap()),
            ..Expect::default()
        };
        let incidents = [
            // Began before the fault, fired just after it: not the fault's.
            with_signal("noise", "Deployment/p/recommend", 1140, 1200),
            with_signal("fault", "Deployment/p/payment", 1200, 1260),
        ];
        let r = Report::build("f", "f.yaml", 0, &incidents, &expect, &Default::default());
        assert_eq!(r.evaluated_incident.as_deref(), Some("fault"));
        assert_eq!(r.root_cause_rank, Some(1));
        assert_eq!(r.time_to_detect_s, Some(60));
        assert_eq!(r.false_incidents, 1, "the incident of the earlier signal");
    }

    #[test]
    fn an_incident_of_an_earlier_fault_is_not_a_false_one() {
        let expect = Expect {
            onset: Some(Secs(1200)),
            root_cause: Some("Deployment/p/payment".parse().unwrap()),
            earlier_faults: vec![super::super::fixture::EarlierFault {
                onset: Secs(720),
                root_cause: "Deployment/p/cart".parse().unwrap(),
            }],
            ..Expect::default()
        };
        let incidents = [
            // The earlier fault's, seen on its service after its injection.
            with_signal("cart", "Deployment/p/cart", 780, 840),
            // The same service before that injection: noise.
            with_signal("early", "Deployment/p/cart", 600, 660),
            // After the injection but about another service: noise.
            with_signal("other", "Deployment/p/ads", 900, 960),
            with_signal("fault", "Deployment/p/payment", 1200, 1260),
        ];
        let r = Report::build("f", "f.yaml", 0, &incidents, &expect, &Default::default());
        assert_eq!(r.evaluated_incident.as_deref(), Some("fault"));
        assert_eq!(r.earlier_fault_incidents, 1);
        assert_eq!(r.false_incidents, 2);
    }

    #[test]
    fn changes_to_a_healthy_cluster_are_false_actions_and_reads_are_not() {
        let mut inc = with_signal("inc", "Pod/p/web-1", 100, 160);
        let record = |action: crate::act::Action, result: ActionResult| crate::act::ActionRecord {
            at: 200,
            playbook: "pb".into(),
            step: 1,
            action,
            target: Some(ObjectRef::node("n1")),
            risk: crate::model::Risk::Low,
            result,
            message: String::new(),
            rollback: false,
        };
        inc.actions = vec![
            record(crate::act::Action::CaptureLogs, ActionResult::Ok),
            record(crate::act::Action::CordonNode, ActionResult::Ok),
            record(crate::act::Action::RolloutUndo, ActionResult::Failed),
            record(crate::act::Action::CordonNode, ActionResult::DryRun),
        ];
        let healthy = Expect {
            incidents: Some(0),
            ..Expect::default()
        };
        let r = Report::build(
            "f",
            "f.yaml",
            0,
            std::slice::from_ref(&inc),
            &healthy,
            &Default::default(),
        );
        assert!(r.healthy);
        assert_eq!(r.false_actions, 2, "the cordon and the attempted rollback");
        assert!(!r.passed);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["false_actions"], 2);
        // Where an incident is expected, its actions are not false.
        let r = Report::build(
            "f",
            "f.yaml",
            0,
            &[inc],
            &Expect::default(),
            &Default::default(),
        );
        assert_eq!((r.healthy, r.false_actions), (false, 0));
    }
}
