//! Running a plan: one step after another, each checked by policy, verified
//! with PromQL when it has a `waitFor`, rolled back when it fails.
//!
//! A run is a state machine advanced once per evaluation tick, so waiting
//! for a verification never blocks other incidents, and replay drives it
//! with simulated time exactly as the live loop does with the clock.

use super::Action;
use crate::cluster::{ActionRequest, Cluster, ClusterSnapshot};
use crate::config::{Config, Mode};
use crate::escalate::{
    ApprovalAsk, ApprovalRecord, ApprovalStore, DiagnosisLine, Escalation, EscalationRecord,
    Escalator, Notification, Verdict, approval_key, plan_digest,
};
use crate::guard::{self, Done, Intent, Refusal, Situation};
use crate::incident::{CapturedLogs, Incident, Stage};
use crate::journal::{Entry, IntentEntry, Journal, Reconciled, found_done, pause_point, reconcile};
use crate::metrics::Metrics;
use crate::model::{ObjectRef, Risk, Timestamp, format_secs};
use crate::plan::{Decision, Plan, PlannedStep, approvable, build_context, decide};
use crate::playbook::OnEmpty;
use crate::trust::{Event, Ledger, LedgerEntry, Standing};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionResult {
    Ok,
    Failed,
    /// Sent as a server-side dry run (observe mode): validated, not applied.
    DryRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ActionRecord {
    pub at: Timestamp,
    pub playbook: String,
    pub step: usize,
    pub action: Action,
    pub target: Option<ObjectRef>,
    pub risk: Risk,
    pub result: ActionResult,
    pub message: String,
    /// Whether it ran as part of the playbook's rollback.
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// The step at `next` is due.
    Ready,
    /// The step before `next` ran; its waitFor is being checked.
    Verifying {
        started: Timestamp,
        holding_since: Option<Timestamp>,
        last_error: Option<String>,
        last_check: Option<Timestamp>,
        /// Checks where the condition did not hold.
        failures: u32,
        /// Failed queries in a row.
        errors: u32,
    },
    /// A guard refused the step at `next`; it is tried again each tick.
    Held {
        reason: String,
        guard: String,
    },
    /// Stopped before the step at `next`, waiting for people. With
    /// `approval`, a person's yes runs that step and the plan goes on.
    AwaitingApproval {
        reason: String,
        approval: bool,
    },
    Done,
    Failed {
        reason: String,
    },
}

impl RunState {
    /// Verifying the step just run, from `now`.
    pub fn verifying(now: Timestamp) -> RunState {
        RunState::Verifying {
            started: now,
            holding_since: None,
            last_error: None,
            last_check: None,
            failures: 0,
            errors: 0,
        }
    }
}

/// What advancing a run did, for the caller's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Waiting,
    Stopped,
}

#[derive(Debug, Clone)]
pub struct PlanRun {
    pub plan: Plan,
    pub next: usize,
    pub state: RunState,
    /// The last read of this step's approval found it pending: the step, the
    /// store's generation before that read, and when the request expires.
    pending_read: Option<(usize, u64, Timestamp)>,
    /// What became of its steps since the engine last took them, for the
    /// ledger.
    ledger: Vec<LedgerEntry>,
}

/// The rest of medic's activity, for the guards.
#[derive(Debug, Clone, Default)]
pub struct GuardView {
    /// Action records of the other incidents, with their incident id.
    pub others: Vec<(String, ActionRecord)>,
    pub storm: bool,
}

/// The ports and settings a run needs.
pub struct Ports<'a> {
    pub cluster: &'a dyn Cluster,
    pub metrics: &'a dyn Metrics,
    pub escalator: &'a dyn Escalator,
    pub approvals: &'a dyn ApprovalStore,
    /// What other incidents' runs did, and whether a storm is on: what the
    /// guards need besides this incident.
    pub guards: &'a GuardView,
    /// Where intents and results are written before and after each action.
    pub journal: Option<&'a Journal>,
    pub config: &'a Config,
    pub snapshot: &'a ClusterSnapshot,
    /// The approval store's generation, read at the start of this tick;
    /// None when it could not be read (every waiting run reads its record).
    pub approvals_generation: Option<u64>,
    /// The detectors, to check a plan's signal again before acting on it.
    pub detectors: &'a [crate::signal::Detector],
    /// Each step's track record, for earned autonomy.
    pub trust: &'a Ledger,
}

impl PlanRun {
    pub fn new(plan: Plan) -> Self {
        PlanRun {
            plan,
            next: 0,
            state: RunState::Ready,
            pending_read: None,
            ledger: Vec::new(),
        }
    }

    /// The ledger entries written since the last call.
    pub fn take_ledger(&mut self) -> Vec<LedgerEntry> {
        std::mem::take(&mut self.ledger)
    }

    /// Writes down what became of `step`; only steps that change the
    /// cluster have a record to earn.
    fn note(
        &mut self,
        step: &PlannedStep,
        event: Event,
        inc: &Incident,
        now: Timestamp,
        by: Option<&str>,
    ) {
        if !step.action.spec().mutating {
            return;
        }
        self.ledger.push(LedgerEntry {
            at: now,
            key: self.plan.key(step),
            event,
            incident: inc.id.clone(),
            by: by.map(str::to_string),
            digest: Some(self.plan.digest()),
        });
    }

    /// `step`'s track record in one line, for people asked about it.
    fn record(&self, step: &PlannedStep, ports: &Ports<'_>, now: Timestamp) -> Option<String> {
        step.action.spec().mutating.then(|| {
            crate::trust::row(
                ports.trust,
                &self.plan.key(step),
                ports.config.autonomy.earn.as_ref(),
                now,
            )
            .summary()
        })
    }

    /// Where `step` stands, from the record the engine holds.
    fn standing(&self, step: &PlannedStep, ports: &Ports<'_>, now: Timestamp) -> Standing {
        ports.trust.standing(
            &self.plan.key(step),
            ports.config.autonomy.earn.as_ref(),
            now,
        )
    }

    /// Stopped at a step until a person answers its approval request.
    pub fn awaits_answer(&self) -> bool {
        matches!(
            self.state,
            RunState::AwaitingApproval { approval: true, .. }
        )
    }

    /// Still running or verifying: the incident may not resolve under it.
    pub fn is_active(&self) -> bool {
        matches!(self.state, RunState::Ready | RunState::Verifying { .. })
    }

    /// Advances as far as it can at `now`.
    pub async fn advance(
        &mut self,
        inc: &mut Incident,
        ports: &Ports<'_>,
        now: Timestamp,
    ) -> StepOutcome {
        loop {
            match &self.state {
                RunState::Verifying { .. } => {
                    if !self.verify(inc, ports, now).await {
                        return StepOutcome::Waiting;
                    }
                }
                RunState::Ready | RunState::Held { .. } => {
                    let Some(step) = self.plan.steps.get(self.next).cloned() else {
                        self.state = RunState::Done;
                        let text = format!(
                            "playbook {} completed: {}",
                            self.plan.playbook,
                            summary_of_actions(inc)
                        );
                        notify(inc, ports, now, "completed", text).await;
                        return StepOutcome::Stopped;
                    };
                    if !self.run_step(&step, inc, ports, now).await {
                        return StepOutcome::Stopped;
                    }
                }
                RunState::AwaitingApproval { approval: true, .. } => {
                    if !self.check_approval(inc, ports, now).await {
                        return StepOutcome::Stopped;
                    }
                }
                _ => return StepOutcome::Stopped,
            }
        }
    }

    /// Runs one step; true if the run may go on to the next state this tick.
    async fn run_step(
        &mut self,
        step: &PlannedStep,
        inc: &mut Incident,
        ports: &Ports<'_>,
        now: Timestamp,
    ) -> bool {
        if let Some(cond) = &step.when {
            let ctx = build_context(inc, self.plan.signal, ports.snapshot, now);
            match cond.eval(&ctx) {
                Ok(true) => {}
                Ok(false) => {
                    inc.record(
                        now,
                        Stage::Skip,
                        format!(
                            "step {} {}: `{}` is false",
                            step.index,
                            step.action,
                            cond.source()
                        ),
                    );
                    self.next += 1;
                    return true;
                }
                Err(e) => {
                    let reason = format!(
                        "step {} {}: cannot tell whether to run it: {e}",
                        step.index, step.action
                    );
                    self.stop_for_people(inc, ports, now, reason, false).await;
                    return false;
                }
            }
        }
        // A held step comes back every tick: it was planned the first time.
        if !matches!(self.state, RunState::Held { .. }) {
            self.note(step, Event::Planned, inc, now, None);
        }
        let standing = self.standing(step, ports, now);
        match decide(step, self.plan.playbook_bound, ports.config, &standing) {
            Decision::Escalate(mut reason) => {
                if ports.config.mode == Mode::Observe
                    && step.action.spec().mutating
                    && step.problem.is_none()
                {
                    // Show what would happen: the API server validates it, nothing changes.
                    if let Err(e) = self.perform(step, inc, ports, now, true, false).await {
                        reason.push_str(&format!("; its dry run failed: {e}"));
                    }
                    self.note(step, Event::Proposed, inc, now, None);
                }
                let approval = approvable(step, ports.config);
                if approval {
                    self.note(step, Event::Asked, inc, now, None);
                }
                self.stop_for_people(inc, ports, now, reason, approval)
                    .await;
                false
            }
            Decision::Run => {
                if let Standing::Earned {
                    approvals,
                    verified,
                } = standing
                    && step.action.spec().mutating
                {
                    inc.record(
                        now,
                        Stage::Plan,
                        format!(
                            "step {} {} runs on its own: it has earned it ({approvals} approvals, {verified} verified runs, nothing denied, failed or rolled back since)",
                            step.index, step.action
                        ),
                    );
                }
                self.execute(step, inc, ports, now).await
            }
        }
    }

    /// Performs a step that may run and moves on to its verification.
    async fn execute(
        &mut self,
        step: &PlannedStep,
        inc: &mut Incident,
        ports: &Ports<'_>,
        now: Timestamp,
    ) -> bool {
        if step.action == Action::Escalate {
            // A gate a person has opened: nothing to perform.
            self.next += 1;
            return true;
        }
        if let Err(refusal) = self.guard(step, inc, ports, now, false) {
            let reason = format!("step {} {} held: {refusal}", step.index, step.action);
            // Said once per guard: the details (how long ago, how many)
            // change every tick, the news does not.
            let news =
                !matches!(&self.state, RunState::Held { guard, .. } if guard == refusal.guard);
            self.state = RunState::Held {
                reason: reason.clone(),
                guard: refusal.guard.to_string(),
            };
            if news {
                inc.record(now, Stage::Skip, reason.clone());
                send_escalation(inc, ports, now, reason, Some(self)).await;
            }
            return false;
        }
        if step.action.spec().mutating
            && !evidence::restores(step.action, step.target.as_ref(), inc)
        {
            let looked = evidence::check(
                inc,
                self.plan.signal,
                ports.detectors,
                ports.metrics,
                now,
                ports.config.interval.0,
            )
            .await;
            match looked {
                evidence::Evidence::Holds => {}
                evidence::Evidence::Cleared(why) => {
                    // Not this step, nor any later one that is not putting
                    // back what an earlier one changed: each looks again.
                    inc.record(
                        now,
                        Stage::Skip,
                        format!(
                            "step {} {} not run: {why}; nothing is done about trouble that has gone",
                            step.index, step.action
                        ),
                    );
                    self.state = RunState::Ready;
                    self.next += 1;
                    return true;
                }
                evidence::Evidence::Unknown(why) => {
                    let reason = format!(
                        "step {} {} held: cannot confirm its signal still holds ({why})",
                        step.index, step.action
                    );
                    let news =
                        !matches!(&self.state, RunState::Held { guard, .. } if guard == "evidence");
                    self.state = RunState::Held {
                        reason: reason.clone(),
                        guard: "evidence".into(),
                    };
                    if news {
                        inc.record(now, Stage::Skip, reason.clone());
                        send_escalation(inc, ports, now, reason, Some(self)).await;
                    }
                    return false;
                }
            }
        }
        self.state = RunState::Ready;
        match self.perform(step, inc, ports, now, false, false).await {
            Ok(()) => {
                self.note(step, Event::Ran, inc, now, None);
                if let Some(v) = &step.verify {
                    inc.record(
                        now,
                        Stage::Verify,
                        format!(
                            "waiting up to {} for `{}` to hold {}",
                            v.timeout,
                            one_line(&v.query),
                            v.for_
                        ),
                    );
                    self.state = RunState::verifying(now);
                }
                self.next += 1;
                true
            }
            Err(reason) => {
                self.note(step, Event::Failed, inc, now, None);
                self.fail(Some(step), inc, ports, now, reason).await;
                false
            }
        }
    }

    /// Picks a re-planned run up where the one before a restart stopped:
    /// steps the incident's records show done are not run again, an
    /// unfinished intent is checked against the cluster, and a run that had
    /// already failed stays failed.
    pub async fn resume_after_restart(
        &mut self,
        inc: &mut Incident,
        unfinished: &[IntentEntry],
        ports: &Ports<'_>,
        now: Timestamp,
    ) {
        let mine = |a: &&ActionRecord| a.playbook == self.plan.playbook;
        if inc.actions.iter().filter(mine).any(|a| a.rollback) {
            let reason = "the plan had failed and rolled back before the restart".to_string();
            inc.record(now, Stage::Plan, reason.clone());
            self.state = RunState::Failed { reason };
            return;
        }
        let done: std::collections::BTreeSet<usize> = inc
            .actions
            .iter()
            .filter(mine)
            .filter(|a| a.result != ActionResult::Failed && a.result != ActionResult::DryRun)
            .map(|a| a.step)
            .collect();
        while self
            .plan
            .steps
            .get(self.next)
            .is_some_and(|s| done.contains(&s.index))
        {
            self.next += 1;
        }
        if self.next > 0 {
            inc.record(
                now,
                Stage::Plan,
                format!(
                    "after a restart: steps up to {} were done before it; not running them again",
                    self.plan.steps[self.next - 1].index
                ),
            );
            if self.plan.steps[self.next - 1].verify.is_some() {
                self.state = RunState::verifying(now);
            }
        }
        let Some(step) = self.plan.steps.get(self.next).cloned() else {
            return;
        };
        let Some(intent) = unfinished
            .iter()
            .find(|i| i.playbook == self.plan.playbook && i.step == step.index && !i.rollback)
        else {
            return;
        };
        match reconcile(intent, ports.snapshot) {
            Reconciled::Done => {
                let record = found_done(intent, step.risk);
                inc.record(
                    now,
                    Stage::Execute,
                    format!("{} {}: {}", step.action, intent.target, record.message),
                );
                inc.actions.push(record);
                self.next += 1;
                if step.verify.is_some() {
                    self.state = RunState::verifying(now);
                }
            }
            Reconciled::NotDone => inc.record(
                now,
                Stage::Plan,
                format!(
                    "step {} {} had not happened when medic restarted: running it",
                    step.index, step.action
                ),
            ),
            Reconciled::Unsure(why) => {
                let reason = format!(
                    "after a restart medic cannot tell whether step {} ran ({why}): not repeating it",
                    step.index
                );
                self.stop_for_people(inc, ports, now, reason, false).await;
            }
        }
    }

    /// The guards' verdict on running `step` now.
    fn guard(
        &self,
        step: &PlannedStep,
        inc: &Incident,
        ports: &Ports<'_>,
        now: Timestamp,
        rollback: bool,
    ) -> Result<(), Refusal> {
        let Some(target) = &step.target else {
            return Ok(());
        };
        let wanted_replicas = match ports.snapshot.workloads.get(target) {
            Some(w) if step.action == Action::Scale => {
                let request = ActionRequest {
                    action: step.action,
                    target: target.clone(),
                    params: step.params.clone(),
                    dry_run: false,
                    risk: step.risk,
                    at: now,
                    incident: inc.id.clone(),
                    playbook: self.plan.playbook.clone(),
                    step: step.index,
                };
                request.wanted_replicas(w.replicas.unwrap_or(0)).ok()
            }
            _ => None,
        };
        let done: Vec<Done> = ports
            .guards
            .others
            .iter()
            .filter(|(id, _)| *id != inc.id)
            .map(|(id, record)| Done {
                incident: id,
                record,
            })
            .chain(inc.actions.iter().map(|record| Done {
                incident: &inc.id,
                record,
            }))
            .collect();
        guard::check(
            &Intent {
                incident: &inc.id,
                playbook: &self.plan.playbook,
                action: step.action,
                target,
                wanted_replicas,
                rollback,
            },
            &Situation {
                done: &done,
                snapshot: ports.snapshot,
                storm: ports.guards.storm,
                now,
            },
            &ports.config.guards,
        )
    }

    /// Reads the answer to the pending approval; true once the approved
    /// step ran and the run may go on.
    async fn check_approval(
        &mut self,
        inc: &mut Incident,
        ports: &Ports<'_>,
        now: Timestamp,
    ) -> bool {
        let Some(index) = self.plan.steps.get(self.next).map(|s| s.index) else {
            return false;
        };
        // Nothing was written since the last read found it pending, and it
        // has not expired: the answer is still "pending".
        if let (Some((step, seen, expires)), Some(current)) =
            (self.pending_read, ports.approvals_generation)
            && step == index
            && seen == current
            && now < expires
        {
            return false;
        }
        let record = match ports.approvals.get(&inc.id, index).await {
            Ok(Some(r)) => r,
            Ok(None) => return false,
            Err(e) => {
                // Fail closed: no answer read is no answer.
                tracing::warn!(incident = %inc.id, error = %e, "cannot read the approval");
                return false;
            }
        };
        let verdict = record.verdict(now);
        if verdict == Verdict::Pending {
            // The common case until someone answers: no digest.
            self.pending_read = ports
                .approvals_generation
                .map(|g| (index, g, record.expires_at));
            return false;
        }
        self.pending_read = None;
        let Some(step) = self.plan.steps.get(self.next).cloned() else {
            return false;
        };
        let digest = self.plan.digest();
        match verdict {
            Verdict::Pending => false,
            Verdict::Approved(a) if record.plan_digest != digest => {
                let reason = format!(
                    "step {} approval by {} refused: it approved plan {}, the plan is now {digest}",
                    step.index, a.by, record.plan_digest
                );
                self.state = RunState::AwaitingApproval {
                    reason: reason.clone(),
                    approval: false,
                };
                send_escalation(inc, ports, now, reason, Some(self)).await;
                false
            }
            Verdict::Approved(a) => {
                self.note(&step, Event::Approved, inc, now, Some(&a.by));
                if ports.config.paused || ports.config.mode == Mode::Observe {
                    // An approval lets one step past the risk bound, not past
                    // a pause or observe mode: wait until those lift.
                    return false;
                }
                let text = format!(
                    "step {} {} approved by {} via {}",
                    step.index, step.action, a.by, a.via
                );
                self.state = RunState::Ready;
                inc.record(now, Stage::Answer, text.clone());
                notify(inc, ports, now, "approved", text).await;
                self.execute(&step, inc, ports, now).await
            }
            Verdict::Denied(a) => {
                self.note(&step, Event::Denied, inc, now, Some(&a.by));
                let reason = format!(
                    "step {} {} denied by {} via {}",
                    step.index, step.action, a.by, a.via
                );
                inc.record(now, Stage::Answer, reason.clone());
                notify(inc, ports, now, "denied", reason.clone()).await;
                self.state = RunState::Failed { reason };
                false
            }
            Verdict::Expired(at) => {
                let reason = format!(
                    "step {} {}: no answer within {}, which counts as denied",
                    step.index,
                    step.action,
                    format_secs(at - record.requested_at)
                );
                inc.record(now, Stage::Answer, reason.clone());
                notify(inc, ports, now, "denied", reason.clone()).await;
                self.state = RunState::Failed { reason };
                false
            }
        }
    }

    /// Checks the waitFor of the step just run; true once it has held long enough.
    async fn verify(&mut self, inc: &mut Incident, ports: &Ports<'_>, now: Timestamp) -> bool {
        let Some(step) = self
            .next
            .checked_sub(1)
            .and_then(|i| self.plan.steps.get(i))
            .cloned()
        else {
            self.state = RunState::Ready;
            return true;
        };
        let Some(v) = &step.verify else {
            self.state = RunState::Ready;
            return true;
        };
        let RunState::Verifying {
            started,
            holding_since,
            last_error,
            last_check,
            failures,
            errors,
        } = &mut self.state
        else {
            return true;
        };
        let elapsed = now - *started;
        let due =
            elapsed >= v.initial_delay.0 && last_check.is_none_or(|t| now - t >= v.interval.0);
        if due {
            *last_check = Some(now);
            let result = match ports.metrics.instant(&v.query, now).await {
                Ok(series) if series.is_empty() && v.on_empty == OnEmpty::Error => {
                    Err("an empty result, where the step needs data".to_string())
                }
                Ok(series) => Ok(!series.is_empty()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(true) => {
                    *errors = 0;
                    let since = *holding_since.get_or_insert(now);
                    if now - since >= v.for_.0 {
                        let text = format!(
                            "step {} {} verified: condition held {}",
                            step.index,
                            step.action,
                            format_secs(now - since)
                        );
                        inc.record(now, Stage::Verify, text.clone());
                        notify(inc, ports, now, "verified", text).await;
                        self.note(&step, Event::Verified, inc, now, None);
                        self.state = RunState::Ready;
                        return true;
                    }
                }
                Ok(false) => {
                    *errors = 0;
                    *holding_since = None;
                    *failures += 1;
                }
                Err(e) => {
                    *holding_since = None;
                    *errors += 1;
                    *last_error = Some(e);
                }
            }
        }
        let query = one_line(&v.query);
        let failed = if v.error_limit > 0 && *errors >= v.error_limit {
            Some(format!(
                "step {} {} not verified: {} failed checks of `{query}` in a row (last: {}); medic does not wait blind",
                step.index,
                step.action,
                errors,
                last_error.as_deref().unwrap_or("unknown")
            ))
        } else if v.failure_limit > 0 && *failures >= v.failure_limit {
            Some(format!(
                "step {} {} not verified: `{query}` did not hold in {} checks",
                step.index, step.action, failures
            ))
        } else if elapsed >= v.timeout.0 {
            let mut reason = format!(
                "step {} {} not verified within {}: `{query}` did not hold {}",
                step.index, step.action, v.timeout, v.for_
            );
            if let Some(e) = last_error {
                reason.push_str(&format!(" (last query error: {e})"));
            }
            Some(reason)
        } else {
            None
        };
        if let Some(reason) = failed {
            self.note(&step, Event::Failed, inc, now, None);
            self.fail(Some(&step), inc, ports, now, reason).await;
        }
        false
    }

    async fn perform(
        &self,
        step: &PlannedStep,
        inc: &mut Incident,
        ports: &Ports<'_>,
        now: Timestamp,
        dry_run: bool,
        rollback: bool,
    ) -> Result<(), String> {
        let Some(target) = step.target.clone() else {
            return Err(step
                .problem
                .clone()
                .unwrap_or_else(|| format!("{} has no target", step.action)));
        };
        let request = ActionRequest {
            action: step.action,
            target: target.clone(),
            params: step.params.clone(),
            dry_run,
            risk: step.risk,
            at: now,
            incident: inc.id.clone(),
            playbook: self.plan.playbook.clone(),
            step: step.index,
        };
        let journaled = ports
            .journal
            .filter(|_| !dry_run && step.action.spec().mutating);
        if let Some(journal) = journaled {
            let intent = IntentEntry {
                incident: inc.id.clone(),
                playbook: self.plan.playbook.clone(),
                step: step.index,
                action: step.action,
                target: target.clone(),
                at: now,
                rollback,
                revision: ports
                    .snapshot
                    .workloads
                    .get(&target)
                    .and_then(|w| w.revision),
                wanted_replicas: ports
                    .snapshot
                    .workloads
                    .get(&target)
                    .and_then(|w| request.wanted_replicas(w.replicas.unwrap_or(0)).ok()),
            };
            // Fail closed: an action medic could not write down is not taken.
            if let Err(e) = journal.append(&Entry::Intent(intent), true).await {
                let text = format!(
                    "{} {target} not run: cannot record the intent: {e}",
                    step.action
                );
                inc.record(now, Stage::Execute, text.clone());
                return Err(format!("step {} {text}", step.index));
            }
            pause_point("intent");
        }
        let outcome = if step.action == Action::CaptureLogs && !dry_run {
            self.capture_logs(inc, ports, &target, now).await
        } else {
            ports.cluster.perform(&request).await
        };
        if journaled.is_some() {
            pause_point("result");
        }
        let (result, message) = match &outcome {
            Ok(m) if dry_run => (ActionResult::DryRun, m.clone()),
            Ok(m) => (ActionResult::Ok, m.clone()),
            Err(e) => (ActionResult::Failed, e.to_string()),
        };
        let stage = if rollback {
            Stage::Rollback
        } else {
            Stage::Execute
        };
        let status = match result {
            ActionResult::Ok => "ok",
            ActionResult::Failed => "FAILED",
            ActionResult::DryRun => "dry run",
        };
        inc.record(
            now,
            stage,
            format!(
                "{} {} [{} risk]: {status}: {message}",
                step.action, target, step.risk
            ),
        );
        crate::telemetry::record_action(
            step.action.name(),
            match result {
                ActionResult::Ok => "ok",
                ActionResult::Failed => "failed",
                ActionResult::DryRun => "dry-run",
            },
        );
        inc.actions.push(ActionRecord {
            at: now,
            playbook: self.plan.playbook.clone(),
            step: step.index,
            action: step.action,
            target: Some(target.clone()),
            risk: step.risk,
            result,
            message: message.clone(),
            rollback,
        });
        if let Some(journal) = journaled
            && let Some(record) = inc.actions.last()
        {
            let entry = Entry::Result {
                incident: inc.id.clone(),
                record: record.clone(),
            };
            if let Err(e) = journal.append(&entry, true).await {
                // The action happened; the incident's state at the end of
                // the cycle records it too.
                tracing::error!(incident = %inc.id, error = %e, "action result not journaled");
            }
        }
        if step.action == Action::DescribeScheduling && result == ActionResult::Ok {
            notify(inc, ports, now, "scheduling", message.clone()).await;
        }
        if !dry_run && step.action.spec().mutating {
            let kind = if rollback { "rolled_back" } else { "action" };
            let text = format!(
                "{} {} [{} risk]: {status}: {message}",
                step.action, target, step.risk
            );
            notify(inc, ports, now, kind, text).await;
        }
        outcome
            .map(|_| ())
            .map_err(|e| format!("step {} {} failed: {e}", step.index, step.action))
    }

    /// Reads the pod's last logs into the incident (redacted, bounded) and
    /// sends them to people's channels; the timeline says how much.
    async fn capture_logs(
        &self,
        inc: &mut Incident,
        ports: &Ports<'_>,
        pod: &ObjectRef,
        now: Timestamp,
    ) -> Result<String, crate::cluster::ClusterError> {
        let raw = ports.cluster.logs(pod, 2 * CapturedLogs::MAX_LINES).await?;
        let kept = CapturedLogs::keep(now, pod.clone(), &raw);
        let lines = if kept.text.is_empty() {
            0
        } else {
            kept.text.lines().count()
        };
        let n = Notification {
            id: format!("{}-logs-{}", inc.id, inc.logs.len()),
            incident: inc.id.clone(),
            at: now,
            kind: "logs".into(),
            text: format!("last {lines} log lines of {pod}:\n{}", kept.text),
        };
        if let Err(e) = ports.escalator.notify(&n).await {
            tracing::warn!(incident = %inc.id, error = %e, "captured logs not delivered");
        }
        inc.logs.push(kept);
        Ok(format!("captured {lines} log lines of {pod}"))
    }

    /// Runs the rollback steps that policy allows, then escalates.
    /// `failed` is the step whose failure this is: its record shows the
    /// rollback when one ran.
    async fn fail(
        &mut self,
        failed: Option<&PlannedStep>,
        inc: &mut Incident,
        ports: &Ports<'_>,
        now: Timestamp,
        reason: String,
    ) {
        let mut reason = reason;
        let mut rolled_back = false;
        for step in self.plan.rollback.clone() {
            // Putting back what the plan changed needs no earned record.
            match decide(
                &step,
                self.plan.playbook_bound,
                ports.config,
                &Standing::Bounded,
            ) {
                Decision::Run => {
                    if let Err(refusal) = self.guard(&step, inc, ports, now, true) {
                        let why = format!(
                            "rollback step {} {} not run: {refusal}",
                            step.index, step.action
                        );
                        inc.record(now, Stage::Rollback, why.clone());
                        reason.push_str(&format!("; {why}"));
                        break;
                    }
                    if let Err(e) = self.perform(&step, inc, ports, now, false, true).await {
                        reason.push_str(&format!("; rollback {e}"));
                        break;
                    }
                    rolled_back = true;
                }
                Decision::Escalate(why) => {
                    inc.record(
                        now,
                        Stage::Rollback,
                        format!(
                            "rollback step {} {} not run: {why}",
                            step.index, step.action
                        ),
                    );
                    reason.push_str(&format!("; rollback step {} not run: {why}", step.index));
                }
            }
        }
        if rolled_back && let Some(step) = failed {
            self.note(step, Event::RolledBack, inc, now, None);
        }
        send_escalation(inc, ports, now, reason.clone(), Some(self)).await;
        self.state = RunState::Failed { reason };
    }

    async fn stop_for_people(
        &mut self,
        inc: &mut Incident,
        ports: &Ports<'_>,
        now: Timestamp,
        reason: String,
        approval: bool,
    ) {
        let mut approval = approval;
        if approval && let Some(step) = self.plan.steps.get(self.next) {
            let plan = self.plan.lines();
            let record = ApprovalRecord {
                incident: inc.id.clone(),
                step: step.index,
                playbook: self.plan.playbook.clone(),
                action: step.action.name().to_string(),
                target: step.target.as_ref().map(ToString::to_string),
                risk: step.risk,
                plan_digest: plan_digest(&self.plan.playbook, &plan),
                plan,
                approvers: ports.config.approvals.approvers.clone(),
                allow_anyone: ports.config.approvals.allow_anyone,
                requested_at: now,
                expires_at: now + ports.config.approvals.ttl.0,
                answer: None,
                record: self.record(step, ports, now),
            };
            let existing = ports
                .approvals
                .get(&inc.id, step.index)
                .await
                .ok()
                .flatten();
            let asked = existing.is_some_and(|r| r.plan_digest == record.plan_digest);
            // After a restart the same question may already be asked (or
            // answered): keep it rather than ask again.
            if !asked && let Err(e) = ports.approvals.request(&record).await {
                // Without a stored request nobody can answer: escalate only.
                tracing::error!(incident = %inc.id, error = %e, "approval request not stored");
                approval = false;
            }
        }
        self.state = RunState::AwaitingApproval {
            reason: reason.clone(),
            approval,
        };
        send_escalation(inc, ports, now, reason, Some(self)).await;
    }
}

fn one_line(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn summary_of_actions(inc: &Incident) -> String {
    let done: Vec<String> = inc
        .actions
        .iter()
        .filter(|a| a.result == ActionResult::Ok)
        .map(|a| match &a.target {
            Some(t) => format!("{} {}", a.action, t),
            None => a.action.to_string(),
        })
        .collect();
    if done.is_empty() {
        "no action needed".into()
    } else {
        done.join(", ")
    }
}

/// Sends an escalation once per distinct reason and records it.
pub async fn send_escalation(
    inc: &mut Incident,
    ports: &Ports<'_>,
    now: Timestamp,
    reason: String,
    run: Option<&PlanRun>,
) {
    let plan = run.map(|r| r.plan.lines()).unwrap_or_default();
    let playbook = run.map(|r| r.plan.playbook.clone());
    let digest = plan_digest(playbook.as_deref().unwrap_or(""), &plan);
    let id = escalation_id(&inc.id, inc.severity, &digest, &reason);
    // Once per incident, severity, plan and reason: a changed plan or a
    // higher severity is news, a repeat is noise.
    if inc.escalations.iter().any(|e| e.id == id) {
        return;
    }
    let stopped = run.and_then(|r| r.plan.steps.get(r.next)).map(|s| s.index);
    let approval = match (run.map(|r| &r.state), stopped) {
        (Some(RunState::AwaitingApproval { approval: true, .. }), Some(step)) => {
            Some(ApprovalAsk {
                key: approval_key(&inc.id, step),
                step,
                plan_digest: digest.clone(),
                expires_at: now + ports.config.approvals.ttl.0,
                approvers: ports.config.approvals.approvers.clone(),
                record: run
                    .and_then(|r| r.plan.steps.get(r.next).map(|s| (r, s)))
                    .and_then(|(r, s)| r.record(s, ports, now)),
            })
        }
        _ => None,
    };
    let escalation = Escalation {
        id: id.clone(),
        incident: inc.id.clone(),
        severity: inc.severity,
        at: now,
        reason: reason.clone(),
        root_cause: inc.root_cause().cloned(),
        summary: inc
            .diagnosis
            .as_ref()
            .map(|d| d.summary.clone())
            .unwrap_or_default(),
        playbook,
        plan,
        stopped_at_step: stopped,
        diagnosis: inc.diagnosis.as_ref().map(|d| DiagnosisLine {
            category: d.category.clone(),
            confidence: d.confidence,
            source: d.source.clone(),
            evidence: d.evidence.clone(),
        }),
        approval,
    };
    crate::telemetry::record_escalation();
    let channel = ports.escalator.channel().to_string();
    let delivered = match ports.escalator.escalate(&escalation).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(incident = %inc.id, error = %e, "escalation not delivered");
            false
        }
    };
    let plan = run
        .map(|r| format!("; plan: {}", r.plan.describe()))
        .unwrap_or_default();
    inc.record(
        now,
        Stage::Escalate,
        format!("to people via {channel}: {reason}{plan}"),
    );
    inc.escalations.push(EscalationRecord {
        id,
        at: now,
        reason,
        channel,
        delivered,
    });
}

/// The same incident, severity, plan and reason always give the same id.
fn escalation_id(
    incident: &str,
    severity: crate::model::Severity,
    plan: &str,
    reason: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(format!("{incident}|{severity}|{plan}|{reason}").as_bytes());
    let short: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{incident}-esc-{short}")
}

/// Tells people what happened (`kind`: opened, action, verified, ...).
pub async fn notify(
    inc: &mut Incident,
    ports: &Ports<'_>,
    now: Timestamp,
    kind: &str,
    text: String,
) {
    let n = Notification {
        // The timeline position makes it unique and stable across redeliveries.
        id: format!("{}-ev-{}", inc.id, inc.timeline.len()),
        incident: inc.id.clone(),
        at: now,
        kind: kind.to_string(),
        text: text.clone(),
    };
    let channel = ports.escalator.channel().to_string();
    if let Err(e) = ports.escalator.notify(&n).await {
        tracing::warn!(incident = %inc.id, error = %e, "notification not delivered");
    }
    inc.record(now, Stage::Notify, format!("via {channel}: {text}"));
}

mod evidence;
#[cfg(test)]
mod verify_tests;
