//! The pipeline, one evaluation tick at a time: signals, correlation,
//! diagnosis, planning, acting, verification, resolution.
//!
//! The live loop and replay both call `tick` with the time and what the
//! detectors returned; only the ports behind the engine differ.

use crate::act::{GuardView, PlanRun, Ports, notify, send_escalation};
use crate::cluster::{Cluster, ClusterSnapshot};
use crate::config::Config;
use crate::diagnose::llm::Advisor;
use crate::diagnose::{Diagnosis, diagnose, fingerprint, prompt_input};
use crate::escalate::{ApprovalStore, Escalation, Escalator, MemoryApprovals, Notification};
use crate::guard::{Storm, StormChange};
use crate::incident::{
    Incident, IncidentIndex, Stage, Topology, correlate, rank_root_causes, recent_suspects,
};
use crate::journal::{Entry, IntentEntry, Journal, Restored};
use crate::metrics::Metrics;
use crate::model::{ObjectRef, Severity, Timestamp, format_secs};
use crate::plan::{Plan, matching_playbooks, select_playbook};
use crate::playbook::Library;
use crate::signal::{AlertEvent, DetectorOutcome, SignalEvent, SignalTracker};
use crate::template::Escape;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an unchanged open incident is written to the journal again.
const REJOURNAL_OPEN_AFTER: Timestamp = 24 * 3600;

/// Per-incident planning state.
#[derive(Debug, Default)]
struct Planning {
    /// The root cause the current plan (or the decision that none applies) was made for.
    planned_for: Option<ObjectRef>,
    run: Option<PlanRun>,
    /// A root cause named by a validated LLM answer, and the fingerprint of
    /// the incident it was given: it leads the ranking until new signals
    /// change the fingerprint.
    llm_root: Option<(String, ObjectRef)>,
    /// Whether people were told the incident opened.
    announced: bool,
    /// Restored from the journal: intents with no result, checked when the
    /// incident is planned again.
    restored: Option<Vec<IntentEntry>>,
    /// What the ranking was last computed from: the number of signals (they
    /// are only ever appended) and the engine's `view` generation.
    ranked_from: Option<(usize, u64)>,
}

/// Where one tick's time went. Measured for the operator and the benchmark;
/// nothing decides on it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TickTimings {
    /// Turning detector results into signals.
    pub signals: Duration,
    /// Reading the cluster (a cached snapshot costs nothing).
    pub cluster: Duration,
    /// Placing new signals into incidents.
    pub correlate: Duration,
    /// Storm mode, then each open incident: rank, diagnose, plan, guards, act.
    pub decide: Duration,
    /// Writing what changed to the journal.
    pub journal: Duration,
}

impl TickTimings {
    /// From signals to decisions: what the decision-latency figure counts.
    pub fn decision(&self) -> Duration {
        self.correlate + self.decide
    }

    pub fn total(&self) -> Duration {
        self.signals + self.cluster + self.correlate + self.decide + self.journal
    }
}

pub struct Engine {
    config: Config,
    library: Library,
    topology: Topology,
    cluster: Arc<dyn Cluster>,
    metrics: Arc<dyn Metrics>,
    escalator: Arc<dyn Escalator>,
    approvals: Arc<dyn ApprovalStore>,
    /// `paused` as medic.yaml says; the API may pause on top of it.
    paused_by_config: bool,
    journal: Option<Arc<Journal>>,
    /// A hash of each incident as last written to the journal, and when.
    written: BTreeMap<String, (u64, Timestamp)>,
    storm: Storm,
    tracker: SignalTracker,
    incidents: Vec<Incident>,
    /// Which incidents touch which objects, for correlation.
    index: IncidentIndex,
    /// By incident id.
    planning: BTreeMap<String, Planning>,
    last_snapshot: Arc<ClusterSnapshot>,
    /// Whether the last tick read the cluster; without it, it took no action.
    fresh_view: bool,
    /// Bumped when what ranking reads besides an incident's signals changes:
    /// the cluster snapshot, the detectors.
    view: u64,
    advisor: Option<Advisor>,
    /// Detectors that show a target's own resources saturating.
    resource_detectors: BTreeSet<String>,
    /// Alertmanager alerts firing now, by fingerprint: repeats are ignored.
    alerts: BTreeMap<String, (String, ObjectRef)>,
    /// Every step's track record, for earned autonomy.
    trust: crate::trust::Ledger,
}

impl Engine {
    /// Where approval requests are stored and answers read (memory by default).
    pub fn with_approvals(mut self, approvals: Arc<dyn ApprovalStore>) -> Self {
        self.approvals = approvals;
        self
    }

    pub fn approvals(&self) -> Arc<dyn ApprovalStore> {
        self.approvals.clone()
    }

    /// Consult an LLM when diagnosing (see `diagnose::llm`).
    pub fn with_advisor(mut self, advisor: Advisor) -> Self {
        self.advisor = Some(advisor);
        self
    }

    pub fn new(
        config: Config,
        library: Library,
        topology: Topology,
        cluster: Arc<dyn Cluster>,
        metrics: Arc<dyn Metrics>,
        escalator: Arc<dyn Escalator>,
    ) -> Self {
        let resource_detectors = crate::signal::resource_names(&library.detectors);
        let paused_by_config = config.paused;
        Engine {
            config,
            library,
            topology,
            cluster,
            metrics,
            escalator,
            approvals: Arc::new(MemoryApprovals::default()),
            paused_by_config,
            journal: None,
            written: BTreeMap::new(),
            storm: Storm::default(),
            tracker: SignalTracker::new(),
            incidents: Vec::new(),
            index: IncidentIndex::default(),
            planning: BTreeMap::new(),
            last_snapshot: Arc::default(),
            fresh_view: false,
            view: 0,
            advisor: None,
            resource_detectors,
            alerts: BTreeMap::new(),
            trust: crate::trust::Ledger::default(),
        }
    }

    /// Every step's track record (`medic trust`).
    pub fn trust(&self) -> &crate::trust::Ledger {
        &self.trust
    }

    /// Drops ledger entries older than any earning window can reach, as
    /// the journal does when it compacts.
    pub fn forget_ledger_before(&mut self, cutoff: Timestamp) {
        self.trust.forget_before(cutoff);
    }

    pub fn incidents(&self) -> &[Incident] {
        &self.incidents
    }

    pub fn library(&self) -> &Library {
        &self.library
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Takes alerts from Alertmanager: a new firing fingerprint becomes a
    /// signal, a repeat is ignored, a resolved one clears its signal.
    /// Returns how many were new.
    pub fn ingest_alerts(&mut self, events: Vec<AlertEvent>) -> usize {
        let snap = self.last_snapshot.clone();
        let mut new = 0;
        for mut e in events {
            // node-exporter names a node by its address (`instance`).
            if e.signal.target.is("Node")
                && let Some(node) = snap.node_named(&e.signal.target.name)
            {
                e.signal.target = crate::model::ObjectRef::node(&node);
            }
            if e.resolved {
                if let Some((name, target)) = self.alerts.remove(&e.fingerprint) {
                    self.clear(&name, &target, e.signal.fired_at);
                }
                continue;
            }
            if self.alerts.contains_key(&e.fingerprint) {
                continue;
            }
            self.alerts.insert(
                e.fingerprint,
                (e.signal.name.clone(), e.signal.target.clone()),
            );
            correlate(
                &mut self.incidents,
                &mut self.index,
                e.signal,
                &snap,
                &self.topology,
                &self.config.correlation,
            );
            new += 1;
        }
        new
    }

    /// Drops incidents resolved before `cutoff`, and their planning state,
    /// so a long-running `medic run` does not keep every incident forever.
    pub fn forget_resolved_before(&mut self, cutoff: Timestamp) {
        let old = |i: &Incident| i.resolved_at.is_some_and(|t| t < cutoff);
        for inc in self.incidents.iter().filter(|i| old(i)) {
            self.planning.remove(&inc.id);
        }
        self.incidents.retain(|i| !old(i));
    }

    /// Swaps in a new, already linted set of detectors and playbooks. Signals
    /// of detectors that no longer exist stop being tracked; open incidents
    /// and running plans carry on.
    pub fn replace_library(&mut self, library: Library) {
        self.view += 1;
        self.resource_detectors = crate::signal::resource_names(&library.detectors);
        self.library = library;
    }

    /// Writes intents, results and incidents to `journal`, and takes up
    /// what it held: incidents (with their actions, so cooldowns and
    /// budgets hold across the restart), firing signals, and intents whose
    /// result was never written.
    pub fn with_journal(
        mut self,
        journal: Arc<Journal>,
        restored: Restored,
        now: Timestamp,
    ) -> Self {
        if let Some(cut) = &restored.cut {
            tracing::warn!(journal = %journal.describe(), "journal read stopped early: {cut}");
        }
        for inc in &restored.incidents {
            if let Ok(text) = serde_json::to_string(inc) {
                // Dated a day back: an open one is written again at once.
                let at = now - REJOURNAL_OPEN_AFTER;
                self.written.insert(inc.id.clone(), (hash(&text), at));
            }
            if !inc.is_open() {
                continue;
            }
            for rec in inc.signals.iter().filter(|r| r.cleared_at.is_none()) {
                self.tracker.restore(&rec.signal, now);
            }
            let unfinished: Vec<IntentEntry> = restored
                .unfinished
                .iter()
                .filter(|i| i.incident == inc.id)
                .cloned()
                .collect();
            tracing::info!(incident = %inc.id, unfinished = unfinished.len(), "incident restored from the journal");
            self.planning.insert(
                inc.id.clone(),
                Planning {
                    announced: true,
                    restored: Some(unfinished),
                    ..Planning::default()
                },
            );
        }
        self.incidents = restored.incidents;
        self.trust = crate::trust::Ledger::from_entries(restored.ledger);
        self.journal = Some(journal);
        self
    }

    /// Writes the incidents that changed this cycle, then the cycle's time.
    async fn journal_tick(&mut self, now: Timestamp) {
        let Some(journal) = &self.journal else { return };
        for inc in &self.incidents {
            // A resolved incident no longer changes: once written, skip it
            // rather than serialize it again every cycle.
            if inc.resolved_at.is_some_and(|t| t < now) && self.written.contains_key(&inc.id) {
                continue;
            }
            let Ok(text) = serde_json::to_string(inc) else {
                continue;
            };
            let h = hash(&text);
            // An open incident is written again once a day even unchanged, so
            // a journal that ages records out (JetStream's maxAge) keeps it.
            if let Some(&(last, at)) = self.written.get(&inc.id)
                && last == h
                && (now - at < REJOURNAL_OPEN_AFTER || !inc.is_open())
            {
                continue;
            }
            match journal
                .append(&Entry::Incident(Box::new(inc.clone())), false)
                .await
            {
                Ok(()) => {
                    self.written.insert(inc.id.clone(), (h, now));
                }
                Err(e) => tracing::error!(incident = %inc.id, error = %e, "incident not journaled"),
            }
        }
        if let Err(e) = journal.append(&Entry::Tick { at: now }, true).await {
            tracing::error!(error = %e, "journal tick not written");
        }
    }

    /// The API's pause switch, on top of medic.yaml's `paused`.
    pub fn set_paused(&mut self, by_api: bool) {
        self.config.paused = self.paused_by_config || by_api;
    }

    /// Signals firing now, by detector.
    pub fn firing_signals(&self) -> BTreeMap<String, usize> {
        self.tracker.firing_by_detector()
    }

    /// Whether the last tick had a fresh view of the cluster (and so could act).
    pub fn has_fresh_view(&self) -> bool {
        self.fresh_view
    }

    /// The cluster as last read.
    pub fn snapshot(&self) -> &ClusterSnapshot {
        &self.last_snapshot
    }

    /// One evaluation at `now` with what each detector returned.
    pub async fn tick(
        &mut self,
        now: Timestamp,
        outcomes: &BTreeMap<String, DetectorOutcome>,
    ) -> TickTimings {
        let mut timings = TickTimings::default();
        let mut lap = Instant::now();
        let mut split = |into: &mut Duration| {
            let t = Instant::now();
            *into = t - lap;
            lap = t;
        };
        self.hold_unseen(now, outcomes).await;
        let events = self.tracker.update(now, &self.library.detectors, outcomes);
        split(&mut timings.signals);
        // Fail closed: with no fresh view of the cluster, correlate on the
        // last one but take no action this tick.
        // A snapshot not read within a cycle (a slow or silent API server)
        // is no fresh view.
        let wait = Duration::from_secs(self.config.interval.0.max(1).unsigned_abs());
        let read = match tokio::time::timeout(wait, self.cluster.snapshot()).await {
            Ok(read) => read,
            Err(_) => Err(crate::cluster::ClusterError::Timeout {
                what: "the cluster snapshot".into(),
                after: wait,
            }),
        };
        let fresh = match read {
            Ok(s) => {
                // A cluster hands out a new snapshot after any change it
                // sees (the watched one after a pod moved, say); one equal
                // to the last (about 1 ms to compare for 10,000 pods)
                // leaves every ranking standing.
                if !Arc::ptr_eq(&s, &self.last_snapshot) && *s != *self.last_snapshot {
                    self.view += 1;
                    self.last_snapshot = s;
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the cluster; no actions this cycle");
                false
            }
        };
        self.fresh_view = fresh;
        let snap = self.last_snapshot.clone();
        split(&mut timings.cluster);
        for event in events {
            match event {
                SignalEvent::Fired(signal) => {
                    correlate(
                        &mut self.incidents,
                        &mut self.index,
                        signal,
                        &snap,
                        &self.topology,
                        &self.config.correlation,
                    );
                }
                SignalEvent::Cleared { name, target, at } => self.clear(&name, &target, at),
            }
        }
        split(&mut timings.correlate);
        self.update_storm(now).await;
        let mut view = self.guard_view(now);
        // Read only when some run waits for an answer (a request with NATS).
        let waiting = self
            .planning
            .values()
            .any(|p| p.run.as_ref().is_some_and(PlanRun::awaits_answer));
        let approvals_generation = match waiting.then(|| self.approvals.generation()) {
            Some(read) => match read.await {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the approval store's generation");
                    None
                }
            },
            None => None,
        };
        for idx in 0..self.incidents.len() {
            if self.incidents[idx].is_open() {
                let before = self.incidents[idx].actions.len();
                self.step_incident(idx, &snap, fresh, now, &view, approvals_generation)
                    .await;
                // What this incident just did counts for the next ones.
                let inc = &self.incidents[idx];
                view.others.extend(
                    inc.actions[before.min(inc.actions.len())..]
                        .iter()
                        .filter(|a| counts_for_guards(a))
                        .map(|a| (inc.id.clone(), a.clone())),
                );
            }
        }
        split(&mut timings.decide);
        self.journal_tick(now).await;
        split(&mut timings.journal);
        timings
    }

    /// What medic's runs did recently: the guards' input, built once a
    /// tick (each incident's own actions are read fresh by the executor).
    fn guard_view(&self, now: Timestamp) -> GuardView {
        // No guard looks further back than a day.
        let since = now - 24 * 3600;
        let others = self
            .incidents
            .iter()
            .flat_map(|inc| {
                inc.actions
                    .iter()
                    .filter(move |a| a.at >= since && counts_for_guards(a))
                    .map(move |a| (inc.id.clone(), a.clone()))
            })
            .collect();
        GuardView {
            others,
            storm: self.storm.active(),
        }
    }

    /// Enters or leaves storm mode; people hear of both, once.
    async fn update_storm(&mut self, now: Timestamp) {
        let count = self.incidents.iter().filter(|i| i.is_open()).count();
        let limits = &self.config.guards.storm;
        let Some(change) = self.storm.update(count, now, limits) else {
            return;
        };
        let open = self
            .incidents
            .iter()
            .filter(|i| i.is_open())
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let text = match change {
            StormChange::Entered => format!(
                "storm mode: {count} incidents open (more than {}): no new actions until it is calm for {}",
                limits.open_incidents, limits.calm_for
            ),
            StormChange::Left => format!(
                "storm over: at most {} incidents open for {}; actions allowed again",
                limits.open_incidents, limits.calm_for
            ),
        };
        tracing::warn!(open = count, "{text}");
        for inc in self.incidents.iter_mut().filter(|i| i.is_open()) {
            inc.record(now, Stage::Escalate, text.clone());
        }
        let result = match change {
            StormChange::Entered => {
                crate::telemetry::record_escalation();
                self.escalator
                    .escalate(&Escalation {
                        id: format!("storm-{now}"),
                        incident: "storm".into(),
                        severity: Severity::Critical,
                        at: now,
                        reason: text.clone(),
                        root_cause: None,
                        summary: format!("open incidents: {open}"),
                        playbook: None,
                        plan: Vec::new(),
                        stopped_at_step: None,
                        diagnosis: None,
                        approval: None,
                    })
                    .await
            }
            StormChange::Left => {
                self.escalator
                    .notify(&Notification {
                        id: format!("storm-{now}-over"),
                        incident: "storm".into(),
                        at: now,
                        kind: "storm_over".into(),
                        text,
                    })
                    .await
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "storm message not delivered");
        }
    }

    /// Keeps firing the signals their query no longer returns while their
    /// detector's `holdWhile` still returns a series: one instant query
    /// for each such signal, so none while every query returns its
    /// signals. A query that cannot be rendered or fails holds nothing:
    /// the signal clears as it would have without one.
    async fn hold_unseen(&mut self, now: Timestamp, outcomes: &BTreeMap<String, DetectorOutcome>) {
        for unseen in self.tracker.unseen(&self.library.detectors, outcomes) {
            let Some(template) = self
                .library
                .detectors
                .iter()
                .find(|d| d.name == unseen.detector)
                .and_then(|d| d.spec.hold_while.as_ref())
            else {
                continue;
            };
            let mut vars = unseen.labels.clone();
            vars.insert("onset".into(), unseen.onset.to_string());
            let query = match crate::template::render(template, &vars, Escape::Promql) {
                Ok(q) => q,
                Err(e) => {
                    tracing::warn!(detector = %unseen.detector, target = %unseen.target, error = %e, "holdWhile cannot be rendered; the signal clears");
                    continue;
                }
            };
            let value = match self.metrics.instant(&query, now).await {
                Ok(series) => match series.first() {
                    Some(s) => s.value,
                    None => continue,
                },
                Err(e) => {
                    tracing::warn!(detector = %unseen.detector, target = %unseen.target, error = %e, "holdWhile query failed; the signal clears");
                    continue;
                }
            };
            if !self.tracker.hold(&unseen.detector, &unseen.target, now) {
                continue;
            }
            let said = format!(
                "{} on {} no longer crosses its moving baseline",
                unseen.detector, unseen.target
            );
            let text = format!(
                "{said}, but is still off its level before the onset (now {}): kept firing",
                crate::incident::fmt_value(value)
            );
            // Once an incident: a medic restarted since has said it already.
            for inc in self.incidents.iter_mut().filter(|i| {
                i.is_open()
                    && i.signals.iter().any(|r| {
                        r.cleared_at.is_none()
                            && r.signal.name == unseen.detector
                            && r.signal.target == unseen.target
                    })
                    && !i.timeline.iter().any(|t| t.text.starts_with(&said))
            }) {
                inc.record(now, Stage::Detect, text.clone());
            }
        }
    }

    fn clear(&mut self, name: &str, target: &ObjectRef, at: Timestamp) {
        for inc in self.incidents.iter_mut().filter(|i| i.is_open()) {
            let mut cleared = false;
            for rec in inc.signals.iter_mut().filter(|r| {
                r.cleared_at.is_none() && r.signal.name == name && &r.signal.target == target
            }) {
                rec.cleared_at = Some(at);
                cleared = true;
            }
            if cleared {
                inc.record(at, Stage::Clear, format!("{name} on {target} cleared"));
            }
        }
    }

    async fn step_incident(
        &mut self,
        idx: usize,
        snap: &ClusterSnapshot,
        fresh: bool,
        now: Timestamp,
        guards: &GuardView,
        approvals_generation: Option<u64>,
    ) {
        let corr = &self.config.correlation;
        let inc = &mut self.incidents[idx];
        if now - inc.opened_at < corr.settle.0 {
            return;
        }
        if !self.planning.contains_key(&inc.id) {
            self.planning.insert(inc.id.clone(), Planning::default());
        }
        let Some(planning) = self.planning.get_mut(&inc.id) else {
            return; // inserted just above
        };
        // Ranking reads only the signals and the view: with neither changed,
        // the last ranking stands (a steady tick with many open incidents).
        // Suspects from history are taken with it, so they are those the
        // earlier incidents had when this one was ranked.
        let from = (inc.signals.len(), self.view);
        if planning.ranked_from != Some(from) {
            inc.candidates = rank_root_causes(
                inc,
                snap,
                &self.topology,
                corr.change_window.0,
                &self.resource_detectors,
            );
            planning.ranked_from = Some(from);
            let suspects = recent_suspects(
                &self.incidents,
                idx,
                corr.suspect_window.0,
                &self.resource_detectors,
            );
            self.incidents[idx].suspects = suspects;
        }
        let inc = &mut self.incidents[idx];
        if let Some((print, root)) = &planning.llm_root
            && *print == fingerprint(inc)
        {
            lead_with(inc, root);
        }
        let root = inc.root_cause().cloned();
        let acted = inc.actions.iter().any(|a| a.action.spec().mutating);
        let ports = Ports {
            cluster: self.cluster.as_ref(),
            metrics: self.metrics.as_ref(),
            escalator: self.escalator.as_ref(),
            approvals: self.approvals.as_ref(),
            guards,
            journal: self.journal.as_deref(),
            config: &self.config,
            snapshot: snap,
            approvals_generation,
            detectors: &self.library.detectors,
            trust: &self.trust,
        };
        let first = planning.planned_for.is_none();
        if !planning.announced {
            planning.announced = true;
            let text = format!(
                "incident {} opened ({}): {}",
                inc.id,
                inc.severity,
                inc.signals
                    .iter()
                    .map(|s| format!("{} on {}", s.signal.name, s.signal.target))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            notify(inc, &ports, now, "opened", text).await;
        }
        if first || (planning.planned_for != root && !acted) {
            if !first {
                inc.record(
                    now,
                    Stage::Diagnose,
                    format!(
                        "root cause now {} (was {}): planning again",
                        root.as_ref().map_or("unknown".into(), ToString::to_string),
                        planning
                            .planned_for
                            .as_ref()
                            .map_or("unknown".into(), ToString::to_string)
                    ),
                );
            }
            let ctx = PlanCtx {
                library: &self.library,
                topology: &self.topology,
                resource_detectors: &self.resource_detectors,
                advisor: self.advisor.as_ref(),
                cluster: self.cluster.as_ref(),
            };
            planning.run =
                plan_incident(inc, &ctx, snap, &ports, now, &mut planning.llm_root).await;
            planning.planned_for = inc.root_cause().cloned();
            if let Some(unfinished) = planning.restored.take()
                && let Some(run) = planning.run.as_mut()
            {
                run.resume_after_restart(inc, &unfinished, &ports, now)
                    .await;
            }
        }
        if let Some(run) = planning.run.as_mut()
            && fresh
        {
            run.advance(inc, &ports, now).await;
        }
        let active = planning.run.as_ref().is_some_and(PlanRun::is_active);
        if let Some(cleared) = inc.all_cleared_at()
            && !active
            && now - cleared >= corr.resolve_after.0
        {
            inc.resolved_at = Some(now);
            let text = format!(
                "incident {} resolved: all signals clear for {}, open {}",
                inc.id,
                format_secs(now - cleared),
                format_secs(now - inc.opened_at)
            );
            inc.record(now, Stage::Resolve, text.clone());
            notify(inc, &ports, now, "resolved", text).await;
        }
        let entries = planning
            .run
            .as_mut()
            .map(PlanRun::take_ledger)
            .unwrap_or_default();
        self.keep_record(entries).await;
    }

    /// Adds what became of steps to the ledger, and writes what is new to
    /// the journal. A demotion is synced at once (losing it could let a
    /// step run alone that people said no to); the rest goes with the
    /// tick's sync, where a lost entry costs a step progress, not a check.
    async fn keep_record(&mut self, entries: Vec<crate::trust::LedgerEntry>) {
        for entry in entries {
            if !self.trust.add(entry.clone()) {
                continue;
            }
            tracing::debug!(incident = %entry.incident, step = %entry.key, event = ?entry.event, "ledger");
            let durable = entry.event.demotes();
            if let Some(journal) = &self.journal
                && let Err(e) = journal.append(&Entry::Ledger(entry), durable).await
            {
                tracing::error!(error = %e, "ledger entry not journaled");
            }
        }
    }
}

/// Moves `root` to the front of the ranking when it is one of the incident's objects.
fn lead_with(inc: &mut Incident, root: &ObjectRef) {
    if !inc.affected.contains(root) && !inc.candidates.contains(root) {
        return;
    }
    inc.candidates.retain(|c| c != root);
    inc.candidates.insert(0, root.clone());
    inc.suspects.retain(|s| &s.object != root);
}

/// What planning reads besides the incident.
struct PlanCtx<'a> {
    library: &'a Library,
    topology: &'a Topology,
    /// The library's `resource` detectors, as the ranking used them.
    resource_detectors: &'a BTreeSet<String>,
    advisor: Option<&'a Advisor>,
    cluster: &'a dyn Cluster,
}

/// Asks the LLM, if one is configured, and applies a validated answer: its
/// root cause leads the ranking, its diagnosis replaces the rules', and its
/// playbook is tried first. Returns the preferred playbook.
async fn consult(
    inc: &mut Incident,
    ctx: &PlanCtx<'_>,
    snap: &ClusterSnapshot,
    now: Timestamp,
    llm_root: &mut Option<(String, ObjectRef)>,
) -> Option<String> {
    let advisor = ctx.advisor?;
    let candidates = matching_playbooks(inc, &ctx.library.playbooks, snap, now);
    let mut logs = Vec::new();
    let pods: Vec<ObjectRef> = inc
        .signals
        .iter()
        .filter(|s| s.signal.target.is("Pod"))
        .map(|s| s.signal.target.clone())
        .collect();
    for pod in pods.iter().take(3) {
        if let Ok(text) = ctx.cluster.logs(pod, 50).await
            && !text.is_empty()
        {
            logs.push((pod.clone(), text));
        }
    }
    let input = prompt_input(
        inc,
        snap,
        ctx.topology,
        &ctx.library.detectors,
        &candidates,
        &logs,
        now,
    );
    let print = fingerprint(inc);
    let advice = advisor.advise(&print, &input, now).await;
    let Some(answer) = advice.answer else {
        if let Some(d) = inc.diagnosis.as_mut() {
            d.llm = Some(advice.usage);
        }
        return None;
    };
    // validate_answer checked the root cause is one of these objects' names.
    *llm_root = answer.root_cause.parse().ok().map(|r| (print, r));
    if let Some((_, root)) = llm_root.as_ref() {
        lead_with(inc, root);
    }
    let rules = inc.diagnosis.take();
    let mut evidence = answer.evidence;
    if let Some(r) = &rules {
        evidence.push(format!(
            "rule-based hypothesis: {} ({:.2})",
            r.category, r.confidence
        ));
    }
    inc.diagnosis = Some(Diagnosis {
        source: "llm".into(),
        category: answer.category,
        confidence: answer.confidence,
        summary: answer.explanation,
        evidence,
        llm: Some(advice.usage),
    });
    answer.playbook
}

/// Diagnoses the incident and picks its plan; escalates when none applies.
async fn plan_incident(
    inc: &mut Incident,
    ctx: &PlanCtx<'_>,
    snap: &ClusterSnapshot,
    ports: &Ports<'_>,
    now: Timestamp,
    llm_root: &mut Option<(String, ObjectRef)>,
) -> Option<PlanRun> {
    let library = ctx.library;
    let change_window = ports.config.correlation.change_window.0;
    inc.diagnosis = diagnose(
        inc,
        snap,
        ctx.topology,
        change_window,
        &ctx.library.detectors,
        ctx.resource_detectors,
    );
    let prefer = consult(inc, ctx, snap, now, llm_root).await;
    if let Some(d) = &inc.diagnosis {
        let llm = match &d.llm {
            Some(u) if u.used => format!(" [LLM answer used: {}]", u.reason),
            Some(u) => format!(" [LLM not used: {}]", u.reason),
            None => String::new(),
        };
        let mut ranked: Vec<String> = inc.candidates.iter().map(ToString::to_string).collect();
        ranked.extend(
            inc.suspects
                .iter()
                .map(|s| format!("{} (history)", s.object)),
        );
        let text = format!(
            "{} ({}, confidence {:.2}); candidates: {}. {}{llm}",
            d.category,
            d.source,
            d.confidence,
            ranked.join(", "),
            d.summary
        );
        inc.record(now, Stage::Diagnose, text);
    }
    match select_playbook(inc, &library.playbooks, snap, now, prefer.as_deref()) {
        Ok(sel) => {
            let plan = Plan::build(sel.playbook, sel.signal, &sel.context);
            let trigger = &inc.signals[sel.signal].signal;
            inc.record(
                now,
                Stage::Plan,
                format!(
                    "playbook {} for {} on {} (autonomy up to {}): {}",
                    plan.playbook,
                    trigger.name,
                    trigger.target,
                    ports.config.autonomy.max_risk.min(plan.playbook_bound),
                    plan.describe()
                ),
            );
            warn_callers(inc, ctx.topology, ports, now, Some(&plan)).await;
            Some(PlanRun::new(plan))
        }
        Err(reasons) => {
            let reason = format!("no playbook applies ({})", reasons.join("; "));
            inc.record(now, Stage::Plan, reason.clone());
            send_escalation(inc, ports, now, reason, None).await;
            warn_callers(inc, ctx.topology, ports, now, None).await;
            None
        }
    }
}

/// Tells the callers of the degraded root cause, from the topology, what
/// to expect: their own latency or errors may follow and are not theirs to
/// fix. Once per incident and caller (the id is stable).
async fn warn_callers(
    inc: &mut Incident,
    topology: &Topology,
    ports: &Ports<'_>,
    now: Timestamp,
    plan: Option<&Plan>,
) {
    let Some(root) = inc.root_cause().cloned() else {
        return;
    };
    let callers: Vec<ObjectRef> = topology.callers(&root).cloned().collect();
    if callers.is_empty() {
        return;
    }
    // Verification windows bound how long the plan takes to show recovery.
    let recovery = plan.map(|p| {
        p.steps
            .iter()
            .filter_map(|s| s.verify.as_ref().map(|v| v.timeout.0))
            .sum::<i64>()
    });
    let recommendation = match (plan, recovery) {
        (Some(p), Some(r)) if r > 0 => format!(
            "{root} is degraded (incident {}); medic runs playbook {} and expects it back within {}. Expect slower or failing calls to it meanwhile; do not remediate this service for them.",
            inc.id,
            p.playbook,
            format_secs(r)
        ),
        _ => format!(
            "{root} is degraded (incident {}) and waits for people. Expect slower or failing calls to it; do not remediate this service for them.",
            inc.id
        ),
    };
    for caller in &callers {
        let warning = crate::escalate::ServiceWarning {
            id: format!(
                "{}-warn-{}-{}",
                inc.id,
                root.to_string().replace('/', "-"),
                caller.to_string().replace('/', "-")
            ),
            at: now,
            service: caller.clone(),
            upstream: root.clone(),
            incident: inc.id.clone(),
            recommendation: recommendation.clone(),
            expected_recovery_s: recovery.filter(|r| *r > 0),
        };
        if let Err(e) = ports.escalator.warn(&warning).await {
            tracing::warn!(incident = %inc.id, error = %e, "service warning not delivered");
        }
    }
    let names: Vec<String> = callers.iter().map(ToString::to_string).collect();
    inc.record(
        now,
        Stage::Notify,
        format!("warned the callers of {root}: {}", names.join(", ")),
    );
}

/// Guards count only actions that may have changed something.
fn counts_for_guards(a: &crate::act::ActionRecord) -> bool {
    a.action.spec().mutating && a.result != crate::act::ActionResult::DryRun
}

/// Within one process only: tells whether an incident changed since it was
/// last written.
fn hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::SimCluster;
    use crate::escalate::MemoryEscalator;
    use crate::metrics::PrometheusMetrics;
    use crate::model::{ObjectRef, Severity};
    use crate::signal::Signal;

    fn engine() -> Engine {
        Engine::new(
            Config::default(),
            Library::default(),
            Topology::default(),
            Arc::new(SimCluster::default()),
            Arc::new(PrometheusMetrics::new("http://127.0.0.1:9").unwrap()),
            Arc::new(MemoryEscalator::default()),
        )
    }

    fn alert(fingerprint: &str, pod: &str, at: i64, resolved: bool) -> AlertEvent {
        AlertEvent {
            fingerprint: fingerprint.into(),
            resolved,
            signal: Signal {
                name: "KubePodCrashLooping".into(),
                target: ObjectRef::namespaced("Pod", "p", pod),
                severity: Severity::High,
                value: 1.0,
                labels: Default::default(),
                onset: at,
                fired_at: at,
                onset_value: 1.0,
                peak: 1.0,
                slope_per_min: 0.0,
                from_alert: false,
            },
        }
    }

    #[test]
    fn resolved_incidents_are_forgotten_after_the_cutoff_and_open_ones_kept() {
        let mut e = engine();
        assert_eq!(
            e.ingest_alerts(vec![
                alert("a", "a-1", 100, false),
                alert("b", "b-1", 100, false)
            ]),
            2
        );
        assert_eq!(
            e.ingest_alerts(vec![alert("a", "a-1", 110, false)]),
            0,
            "a repeat is ignored"
        );
        e.incidents[0].resolved_at = Some(200);
        e.planning
            .insert(e.incidents[0].id.clone(), Planning::default());
        e.forget_resolved_before(150);
        assert_eq!(e.incidents.len(), 2, "resolved after the cutoff: kept");
        e.forget_resolved_before(300);
        assert_eq!(e.incidents.len(), 1);
        assert!(e.incidents[0].is_open());
        assert!(e.planning.is_empty());
    }

    #[tokio::test]
    async fn an_earlier_root_is_a_suspect_that_no_llm_answer_can_lead_with() {
        let mut e = engine();
        let none = BTreeMap::new();
        e.ingest_alerts(vec![alert("a", "a-1", 100, false)]);
        e.tick(200, &none).await;
        e.ingest_alerts(vec![alert("b", "b-1", 300, false)]);
        e.tick(400, &none).await;
        assert_eq!(e.incidents.len(), 2);
        let (first, second) = (&e.incidents[0], &e.incidents[1]);
        let pod = |n: &str| ObjectRef::namespaced("Pod", "p", n);
        assert_eq!(second.candidates, [pod("b-1")]);
        assert_eq!(
            second.suspects,
            [crate::incident::Suspect {
                object: pod("a-1"),
                incident: first.id.clone(),
                opened_at: 100,
            }]
        );
        assert!(first.suspects.is_empty(), "nothing opened before it");
        assert!(
            second.timeline.iter().any(|t| t
                .text
                .contains("candidates: Pod/p/b-1, Pod/p/a-1 (history).")),
            "{:?}",
            second.timeline
        );
        let summary = &second.diagnosis.as_ref().unwrap().summary;
        assert!(
            summary.ends_with(&format!(
                "Not ruled out, from recent incidents: Pod/p/a-1, the root cause of {} 3m20s earlier.",
                first.id
            )),
            "{summary}"
        );
        // An LLM naming the suspect is not followed: it has no signal here.
        let mut inc = second.clone();
        lead_with(&mut inc, &pod("a-1"));
        assert_eq!(inc.root_cause(), Some(&pod("b-1")));
        assert_eq!(
            inc.ranking().collect::<Vec<_>>(),
            [&pod("b-1"), &pod("a-1")]
        );
    }

    /// Two workloads linked only through a third that is healthy: neither
    /// explains the other, so earliest onset leads until one of them changes.
    /// Answers each instant query with one series while `holding`, and
    /// remembers what it was asked.
    #[derive(Default)]
    struct HoldAnswers {
        holding: std::sync::atomic::AtomicBool,
        asked: std::sync::Mutex<Vec<(String, Timestamp)>>,
    }

    #[async_trait::async_trait]
    impl Metrics for HoldAnswers {
        async fn instant(
            &self,
            query: &str,
            at: Timestamp,
        ) -> Result<Vec<crate::metrics::SeriesValue>, crate::metrics::MetricsError> {
            self.asked.lock().unwrap().push((query.to_string(), at));
            Ok(self
                .holding
                .load(std::sync::atomic::Ordering::SeqCst)
                .then(|| crate::metrics::SeriesValue {
                    labels: BTreeMap::new(),
                    value: 0.9,
                })
                .into_iter()
                .collect())
        }

        async fn range(
            &self,
            _: &str,
            _: Timestamp,
            _: Timestamp,
            _: i64,
        ) -> Result<Vec<crate::metrics::SeriesRange>, crate::metrics::MetricsError> {
            Ok(vec![])
        }
    }

    #[tokio::test]
    async fn a_signal_its_query_drops_is_held_while_hold_while_answers_and_then_clears() {
        let detector = "apiVersion: medic.dev/v1alpha1\nkind: Detector\nmetadata: {name: slow}\nspec:\n  severity: high\n  query: max by (namespace, pod) (p99) > 1\n  target: {kind: Pod, namespace: \"{{ namespace }}\", name: \"{{ pod }}\"}\n  holdWhile: 'p99{namespace=\"{{ namespace }}\", pod=\"{{ pod }}\"} > 1.5 * p99 @ {{ onset }} offset 10m'\n";
        let library = Library::from_sources(&[("d.yaml".into(), detector.into())]).unwrap();
        let metrics = Arc::new(HoldAnswers::default());
        let mut e = Engine::new(
            Config::default(),
            library,
            Topology::default(),
            Arc::new(SimCluster::default()),
            metrics.clone(),
            Arc::new(MemoryEscalator::default()),
        );
        let outcome = |pods: &[&str]| {
            BTreeMap::from([(
                "slow".to_string(),
                DetectorOutcome::Ok(
                    pods.iter()
                        .map(|p| crate::signal::Observation {
                            labels: BTreeMap::from([
                                ("namespace".to_string(), "shop".to_string()),
                                ("pod".to_string(), p.to_string()),
                            ]),
                            value: 2.0,
                        })
                        .collect(),
                ),
            )])
        };
        e.tick(100, &outcome(&["api-1"])).await;
        assert_eq!(
            e.firing_signals(),
            BTreeMap::from([("slow".to_string(), 1)])
        );
        assert!(
            metrics.asked.lock().unwrap().is_empty(),
            "returned: nothing to check"
        );
        metrics
            .holding
            .store(true, std::sync::atomic::Ordering::SeqCst);
        e.tick(130, &outcome(&[])).await;
        // medic restarts: the signal is restored from the journal, not its hold.
        let restored = e.incidents()[0].signals[0].signal.clone();
        e.tracker = SignalTracker::new();
        e.tracker.restore(&restored, 140);
        e.tick(160, &outcome(&[])).await;
        assert_eq!(
            *metrics.asked.lock().unwrap(),
            vec![
                (
                    "p99{namespace=\"shop\", pod=\"api-1\"} > 1.5 * p99 @ 100 offset 10m"
                        .to_string(),
                    130
                ),
                (
                    "p99{namespace=\"shop\", pod=\"api-1\"} > 1.5 * p99 @ 100 offset 10m"
                        .to_string(),
                    160
                ),
            ]
        );
        assert_eq!(e.firing_signals().get("slow"), Some(&1), "held");
        let inc = &e.incidents()[0];
        let held: Vec<_> = inc
            .timeline
            .iter()
            .filter(|t| t.text.contains("kept firing"))
            .collect();
        assert_eq!(
            held.len(),
            1,
            "said once, restart or not: {:?}",
            inc.timeline
        );
        assert_eq!(held[0].at, 130);
        assert!(inc.signals[0].cleared_at.is_none());
        metrics
            .holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
        e.tick(190, &outcome(&[])).await;
        assert!(e.firing_signals().is_empty(), "no longer held: cleared");
        assert_eq!(e.incidents()[0].signals[0].cleared_at, Some(190));
    }

    fn two_workloads() -> (Engine, Arc<SimCluster>) {
        let objects = [
            "{apiVersion: apps/v1, kind: Deployment, metadata: {name: a, namespace: p}}",
            "{apiVersion: apps/v1, kind: Deployment, metadata: {name: b, namespace: p}}",
            "{apiVersion: v1, kind: Pod, metadata: {name: a-1, namespace: p, ownerReferences: [{kind: Deployment, name: a, controller: true}]}}",
            "{apiVersion: v1, kind: Pod, metadata: {name: b-1, namespace: p, ownerReferences: [{kind: Deployment, name: b, controller: true}]}}",
        ]
        .iter()
        .map(|y| crate::cluster::ClusterObject::from_value(serde_yaml::from_str(y).unwrap()).unwrap())
        .collect();
        let cluster = Arc::new(SimCluster::new(objects, vec![]));
        let d = |n: &str| ObjectRef::namespaced("Deployment", "p", n);
        let e = Engine::new(
            Config::default(),
            Library::default(),
            Topology::new([(d("a"), d("c")), (d("b"), d("c"))]),
            cluster.clone(),
            Arc::new(PrometheusMetrics::new("http://127.0.0.1:9").unwrap()),
            Arc::new(MemoryEscalator::default()),
        );
        (e, cluster)
    }

    /// Someone else restarts workload b at `at`.
    fn restart_b(at: Timestamp) -> crate::cluster::ActionRequest {
        crate::cluster::ActionRequest {
            action: crate::act::Action::RolloutRestart,
            target: ObjectRef::namespaced("Deployment", "p", "b"),
            params: BTreeMap::new(),
            dry_run: false,
            risk: crate::model::Risk::Low,
            at,
            incident: "elsewhere".into(),
            playbook: "manual".into(),
            step: 1,
        }
    }

    #[tokio::test]
    async fn ranking_is_redone_when_the_cluster_changes_and_kept_while_nothing_does() {
        let (mut e, cluster) = two_workloads();
        let none = BTreeMap::new();
        e.tick(90, &none).await; // reads the cluster
        e.ingest_alerts(vec![
            alert("a", "a-1", 100, false),
            alert("b", "b-1", 110, false),
        ]);
        assert_eq!(e.incidents.len(), 1);
        e.tick(200, &none).await;
        let lead = |e: &Engine| e.incidents[0].candidates[0].to_string();
        assert_eq!(lead(&e), "Deployment/p/a", "earliest onset leads");
        e.tick(230, &none).await;
        assert_eq!(lead(&e), "Deployment/p/a");
        // b was restarted just before its onset: the change now explains it.
        cluster.perform(&restart_b(105)).await.unwrap();
        e.tick(260, &none).await;
        assert_eq!(lead(&e), "Deployment/p/b", "re-ranked on the new snapshot");
    }

    #[tokio::test]
    async fn a_new_snapshot_equal_to_the_last_keeps_the_rankings() {
        let (e, sim) = two_workloads();
        let mut e = Engine {
            cluster: Arc::new(crate::cluster::Relisted(sim.clone())),
            ..e
        };
        let none = BTreeMap::new();
        e.tick(90, &none).await;
        let view = e.view;
        e.tick(120, &none).await;
        e.tick(150, &none).await;
        assert_eq!(e.view, view, "the same cluster, listed again");
        sim.perform(&restart_b(140)).await.unwrap();
        e.tick(180, &none).await;
        assert_eq!(e.view, view + 1, "a restart changed it");
    }

    /// A cluster whose API never answers.
    struct Unreachable;

    #[async_trait::async_trait]
    impl Cluster for Unreachable {
        async fn snapshot(&self) -> Result<Arc<ClusterSnapshot>, crate::cluster::ClusterError> {
            std::future::pending().await
        }
        async fn perform(
            &self,
            _: &crate::cluster::ActionRequest,
        ) -> Result<String, crate::cluster::ClusterError> {
            panic!("nothing may be written without a fresh view of the cluster")
        }
        async fn logs(
            &self,
            _: &ObjectRef,
            _: usize,
        ) -> Result<String, crate::cluster::ClusterError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_cluster_that_never_answers_costs_a_cycle_not_the_loop() {
        let mut e = Engine::new(
            Config {
                interval: crate::model::Secs(1),
                ..Config::default()
            },
            Library::default(),
            Topology::default(),
            Arc::new(Unreachable),
            Arc::new(PrometheusMetrics::new("http://127.0.0.1:9").unwrap()),
            Arc::new(MemoryEscalator::default()),
        );
        e.ingest_alerts(vec![alert("a", "a-1", 100, false)]);
        let none = BTreeMap::new();
        for at in [200, 230] {
            tokio::time::timeout(Duration::from_secs(30), e.tick(at, &none))
                .await
                .expect("the tick gives up on the snapshot after its interval");
        }
        assert_eq!(e.incidents.len(), 1, "correlated on the last view");
        assert!(e.incidents[0].actions.is_empty());
    }

    /// node-exporter's alert as Alertmanager sends it: the exporter's own
    /// pod and namespace, `instance` relabelled to the node's name.
    #[tokio::test]
    async fn a_failing_raid_is_escalated_on_its_node_and_cordoned_only_once_a_person_approves() {
        let objects = [
            "{apiVersion: v1, kind: Node, metadata: {name: n1}}",
            "{apiVersion: v1, kind: Node, metadata: {name: n2}}",
            "{apiVersion: v1, kind: Node, metadata: {name: n3}}",
            "{apiVersion: v1, kind: Pod, metadata: {name: node-exporter-x, namespace: monitoring, ownerReferences: [{kind: DaemonSet, name: node-exporter, controller: true}]}, spec: {nodeName: n1}}",
        ]
        .iter()
        .map(|y| crate::cluster::ClusterObject::from_value(serde_yaml::from_str(y).unwrap()).unwrap())
        .collect();
        let cluster = Arc::new(SimCluster::new(objects, vec![]));
        let config = Config {
            mode: crate::config::Mode::Enforce,
            approvals: crate::escalate::ApprovalConfig {
                approvers: vec!["alice".into()],
                ..Default::default()
            },
            ..Config::default()
        };
        let mut e = Engine::new(
            config,
            Library::embedded().unwrap(),
            Topology::default(),
            cluster.clone(),
            Arc::new(PrometheusMetrics::new("http://127.0.0.1:9").unwrap()),
            Arc::new(MemoryEscalator::default()),
        );
        let payload: crate::signal::WebhookPayload = serde_json::from_str(
            r#"{"version": "4", "alerts": [{"status": "firing", "fingerprint": "raid", "labels": {
                "alertname": "NodeRAIDDegraded", "device": "md0", "severity": "critical",
                "job": "node-exporter", "namespace": "monitoring", "pod": "node-exporter-x",
                "instance": "n1", "container": "kube-rbac-proxy"}}]}"#,
        )
        .unwrap();
        let (events, skipped) = crate::signal::from_webhook(&payload, 100).unwrap();
        assert!(skipped.is_empty());
        e.tick(90, &BTreeMap::new()).await;
        assert_eq!(e.ingest_alerts(events), 1);
        for at in [130, 160, 190] {
            e.tick(at, &BTreeMap::new()).await;
        }
        let inc = &e.incidents[0];
        assert_eq!(
            inc.root_cause().map(ToString::to_string),
            Some("Node/n1".into())
        );
        assert!(cluster.performed().is_empty(), "nothing before an approval");
        let pending = e.approvals().pending(190).await.unwrap();
        assert_eq!(pending.len(), 1, "the gate waits for a person");
        assert_eq!(pending[0].playbook, "node-degraded");
        let id = inc.id.clone();
        e.approvals()
            .answer(
                &id,
                pending[0].step,
                crate::escalate::Answer {
                    approved: true,
                    by: "alice".into(),
                    at: 200,
                    via: "cli".into(),
                },
                None,
            )
            .await
            .unwrap();
        for at in [220, 250] {
            e.tick(at, &BTreeMap::new()).await;
        }
        let done: Vec<(String, String)> = cluster
            .performed()
            .iter()
            .map(|r| (r.action.to_string(), r.target.to_string()))
            .collect();
        assert_eq!(
            done,
            [("cordon_node".to_string(), "Node/n1".to_string())],
            "{:#?}",
            e.incidents[0].timeline
        );
    }
}
