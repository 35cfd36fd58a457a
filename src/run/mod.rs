//! `medic run`: the live loop. Every interval it evaluates the detectors
//! against Prometheus and hands the outcome to the same engine replay uses;
//! it reloads playbooks when their directory changes and serves health,
//! metrics and incidents over HTTP.

mod answers;
mod auth;
mod reload;
mod server;
mod slack;

pub use answers::{AnswerDesk, AnswerRequest};
pub use auth::{AuthError, Credential, Gate, Gates, SecretFile};
pub use reload::Reloader;
pub use server::{Shared, Status, router};
pub use slack::SlackDesk;

use crate::act::ActionResult;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::diagnose::llm::{Advisor, live_llm};
use crate::engine::Engine;
use crate::escalate::{
    ApprovalStore, Escalator, MemoryApprovals, MemoryEscalator, NatsApprovals, NatsSink, Outbox,
    Sink, SlackSink, connect_nats,
};
use crate::ha::Leadership;
use crate::incident::Incident;
use crate::incident::Topology;
use crate::journal::Journal;
use crate::metrics::{Metrics, MetricsError, PrometheusMetrics};
use crate::model::{Timestamp, unix_now};
use crate::playbook::{Library, LoadError};
use crate::replay::{Expect, Report};
use crate::signal::{DetectorOutcome, observe_at};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("playbooks")]
    Playbooks(#[from] LoadError),
    #[error(transparent)]
    Nats(#[from] crate::escalate::NatsError),
    #[error(transparent)]
    Outbox(#[from] crate::escalate::OutboxError),
    #[error(transparent)]
    Slack(#[from] crate::escalate::SlackError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error("cannot create the state directory {path}")]
    State {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// How long a resolved incident stays in memory and in the incidents API.
const RESOLVED_RETENTION: i64 = 24 * 3600;
/// How often to check again that the detectors' metrics exist (an exporter
/// can be removed, or installed, while medic runs).
const INPUTS_RECHECK: i64 = 3600;
const INPUTS_RECHECK_BLIND: i64 = 60;

/// Runs until `shutdown` completes. With `leader`, only the replica that
/// holds the leader Lease runs the pipeline; the others check Prometheus,
/// take alerts into their incidents and serve the endpoints, ready to take
/// over.
pub async fn run(
    config: Config,
    cluster: Arc<dyn Cluster>,
    leader: Option<Arc<Leadership>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    // Before anything else: an enforcing medic with an open webhook must
    // not start at all.
    let gates = Gates::from_config(&config.api, config.mode)?;
    let metrics = Arc::new(PrometheusMetrics::from_config(&config.prometheus)?);
    let mut reloader = config
        .playbooks_dir
        .as_ref()
        .map(|d| Reloader::new(PathBuf::from(d), config.builtin));
    let library = match reloader.as_mut() {
        Some(r) => r.poll()?.unwrap_or_default(),
        None => Library::embedded()?,
    };
    let shared: Shared = Arc::new(RwLock::new(Status {
        started_at: Some(unix_now()),
        interval: config.interval.0.max(1),
        ..Status::default()
    }));
    let people = People::open(&config).await?;
    let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let desk = AnswerDesk {
        approvals: people.approvals.clone(),
        gate: gates.api.clone(),
        paused: paused.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    tracing::info!(listen = %config.listen, mode = ?config.mode, "medic is running");
    let (alerts_tx, mut alerts_rx) = tokio::sync::mpsc::channel(1024);
    if gates.webhook.is_some()
        && config.api.webhook.token_file.is_none()
        && config.api.webhook.username.is_none()
    {
        tracing::warn!(
            "the Alertmanager webhook has no credentials and refuses every alert: set api.webhook.tokenFile"
        );
    }
    let app = router(
        shared.clone(),
        alerts_tx,
        desk,
        people.slack.clone(),
        gates.webhook.clone(),
    );
    let (stop_outbox, outbox_stopped) = tokio::sync::oneshot::channel::<()>();
    let outbox = people.outbox.clone().map(|o| {
        tokio::spawn(o.run(async {
            let _ = outbox_stopped.await;
        }))
    });
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    let interval = Duration::from_secs(config.interval.0.max(1).unsigned_abs());
    let step = config.interval.0.max(1);
    let parts = EngineParts {
        config,
        cluster,
        metrics: metrics.clone(),
        escalator: people.escalator.clone(),
        approvals: people.approvals.clone(),
        js: people.js.clone(),
    };
    let mut engine = parts.build(library).await?;
    tokio::pin!(shutdown);
    let mut next = tokio::time::Instant::now();
    let mut leading = None;
    // The term of the Lease this replica last confirmed.
    let mut held: Option<crate::ha::Term> = None;
    let mut inputs_checked_at: Option<Timestamp> = None;
    let mut blind: Option<BTreeSet<String>> = None;
    let mut seen = Lifecycle::default();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        next += interval;
        while let Ok(events) = alerts_rx.try_recv() {
            let new = engine.ingest_alerts(events);
            if new > 0 {
                tracing::info!(new, "alerts from Alertmanager");
            }
        }
        let term = match &leader {
            Some(l) => l.leads_now().await,
            None => Some(crate::ha::Term::default()),
        };
        let leads = term.is_some();
        if term
            .as_ref()
            .is_some_and(|t| crate::ha::takes_over(leading, held.as_ref(), t))
        {
            // Taking over: start from what the journal holds now (with
            // JetStream, what the previous leader intended and did), not
            // from what this replica read when it started.
            match parts.build(engine.library().clone()).await {
                Ok(fresh) => engine = fresh,
                Err(e) => {
                    // Fail closed: a leader that cannot read the journal
                    // does not act; it tries again next cycle.
                    tracing::error!(error = %e, "cannot read the journal on taking over; not acting this cycle");
                    continue;
                }
            }
        }
        if leads {
            held = term;
        }
        if leading != Some(leads) {
            if let Some(l) = &leader {
                tracing::info!(
                    identity = l.identity(),
                    leader = leads,
                    "leadership changed"
                );
                l.label_pod(leads).await;
            }
            leading = Some(leads);
        }
        let started = Instant::now();
        engine.set_paused(paused.load(std::sync::atomic::Ordering::SeqCst));
        let reloaded = reload(&mut engine, reloader.as_mut());
        let now = unix_now();
        // Soon again while a detector is blind (its exporter may just not have
        // been scraped yet), rarely once all can fire.
        let recheck = match &blind {
            Some(b) if b.is_empty() => INPUTS_RECHECK,
            _ => INPUTS_RECHECK_BLIND,
        };
        if (reloaded || inputs_checked_at.is_none_or(|t| now - t >= recheck))
            && let Some(now_blind) =
                check_inputs(metrics.as_ref(), &engine, now, blind.as_ref()).await
        {
            inputs_checked_at = Some(now);
            blind = Some(now_blind);
        }
        let outcomes = observe_at(metrics.as_ref(), &engine.library().detectors, now, step).await;
        let cluster_view = if leads {
            let timings = engine.tick(now, &outcomes).await;
            crate::telemetry::record_tick(&timings);
            engine.forget_resolved_before(now - RESOLVED_RETENTION);
            engine.forget_ledger_before(now - crate::trust::MAX_WINDOW);
            seen.record(engine.incidents());
            engine.has_fresh_view()
        } else {
            // A standby keeps its own view warm for a takeover: report it.
            matches!(
                tokio::time::timeout(interval, parts.cluster.snapshot()).await,
                Ok(Ok(_))
            )
        };
        crate::telemetry::record_cluster_view(cluster_view);
        publish(
            &engine,
            &outcomes,
            &shared,
            started,
            leader.as_ref().map(|_| leads),
        );
    }
    server.abort();
    drop(engine);
    let _ = stop_outbox.send(());
    if let Some(o) = outbox {
        let _ = o.await;
    }
    if let Some(l) = leader.and_then(Arc::into_inner) {
        l.stop().await;
    }
    tracing::info!("medic stopped");
    Ok(())
}

/// What an engine is built from, kept so a replica taking over leadership
/// can build a fresh one from the journal.
struct EngineParts {
    config: Config,
    cluster: Arc<dyn Cluster>,
    metrics: Arc<PrometheusMetrics>,
    escalator: Arc<dyn Escalator>,
    approvals: Arc<dyn ApprovalStore>,
    js: Option<async_nats::jetstream::Context>,
}

impl EngineParts {
    /// Opens the journal (the JetStream stream with NATS, else the file in
    /// stateDir), reads it back and builds the engine from it.
    async fn build(&self, library: Library) -> Result<Engine, RunError> {
        let config = &self.config;
        let (journal, restored) = Journal::open(
            &PathBuf::from(&config.state_dir).join("journal.log"),
            self.js.clone().map(|js| (js, &config.nats)),
        )
        .await?;
        tracing::info!(
            journal = %journal.describe(),
            incidents = restored.incidents.len(),
            unfinished = restored.unfinished.len(),
            ledger = restored.ledger.len(),
            "journal opened"
        );
        if let Some(earn) = &config.autonomy.earn
            && self.js.is_some()
            && config.nats.journal_max_age.0 < earn.window.0
        {
            // Records age out of the stream before the window ends: steps
            // ask again sooner than configured (safe, but not what was meant).
            tracing::warn!(
                "nats.journalMaxAge ({}) is shorter than autonomy.earn.window ({}): older track records age out of the stream",
                config.nats.journal_max_age,
                earn.window
            );
        }
        let mut engine = Engine::new(
            config.clone(),
            library,
            Topology::default(),
            self.cluster.clone(),
            self.metrics.clone(),
            self.escalator.clone(),
        )
        .with_approvals(self.approvals.clone())
        .with_journal(Arc::new(journal), restored, unix_now());
        match live_llm(&config.llm) {
            Ok(Some(llm)) => {
                engine = engine.with_advisor(Advisor::new(Arc::new(llm), config.llm.clone()))
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "LLM not usable; diagnosis is rule-based"),
        }
        Ok(engine)
    }
}

/// Where escalations go and approvals live: NATS when configured (through
/// the on-disk outbox), else the log and memory.
struct People {
    /// The JetStream context when NATS is configured; the journal uses it.
    js: Option<async_nats::jetstream::Context>,
    escalator: Arc<dyn Escalator>,
    approvals: Arc<dyn ApprovalStore>,
    outbox: Option<Arc<Outbox>>,
    slack: Option<SlackDesk>,
}

impl People {
    async fn open(config: &Config) -> Result<People, RunError> {
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        let mut approvals: Arc<dyn ApprovalStore> = Arc::new(MemoryApprovals::default());
        let mut nats = None;
        if config.nats.enabled() {
            let js = connect_nats(&config.nats).await?;
            sinks.push(Arc::new(NatsSink::new(js.clone(), config.nats.clone())));
            approvals = Arc::new(NatsApprovals::new(
                js.clone(),
                &config.nats.approvals_bucket,
            ));
            nats = Some(js);
        }
        let mut slack = None;
        if config.slack.enabled() {
            let state = PathBuf::from(&config.state_dir);
            std::fs::create_dir_all(&state).map_err(|source| RunError::State {
                path: config.state_dir.clone(),
                source,
            })?;
            sinks.push(Arc::new(SlackSink::new(&config.slack, &state)?));
            if let Some(path) = &config.slack.signing_secret_file {
                slack = Some(SlackDesk {
                    signing_secret: crate::escalate::slack::read_secret(path)?,
                    approvers: config.slack.approvers.clone(),
                    approver_groups: config.slack.approver_groups.clone(),
                    groups: crate::escalate::slack::GroupLookup::new(&config.slack)?,
                    approvals: approvals.clone(),
                });
            }
        }
        if sinks.is_empty() {
            return Ok(People {
                js: nats,
                escalator: Arc::new(MemoryEscalator::default()),
                approvals,
                outbox: None,
                slack,
            });
        }
        let dir = PathBuf::from(&config.state_dir).join("outbox");
        let outbox = Arc::new(Outbox::open(&dir, sinks)?);
        Ok(People {
            js: nats,
            escalator: outbox.clone(),
            approvals,
            outbox: Some(outbox),
            slack,
        })
    }
}

/// Whether a new library was loaded.
fn reload(engine: &mut Engine, reloader: Option<&mut Reloader>) -> bool {
    let Some(r) = reloader else { return false };
    match r.poll() {
        Ok(Some(library)) => {
            tracing::info!(
                detectors = library.detectors.len(),
                playbooks = library.playbooks.len(),
                "playbooks reloaded"
            );
            engine.replace_library(library);
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::error!("playbook change rejected, the previous set stays active: {e}");
            false
        }
    }
}

/// Warns about detectors whose metrics Prometheus does not hold: they would
/// stay quiet, which looks the same as a healthy cluster. Logs only what
/// changed since `before`; returns the detectors that cannot fire, or None
/// when Prometheus could not be asked.
async fn check_inputs(
    metrics: &dyn Metrics,
    engine: &Engine,
    now: Timestamp,
    before: Option<&BTreeSet<String>>,
) -> Option<BTreeSet<String>> {
    match crate::signal::inputs::readiness(metrics, &engine.library().detectors, now).await {
        Ok(rows) => {
            crate::telemetry::record_readiness(&rows);
            let was_blind = |d: &str| before.is_some_and(|b| b.contains(d));
            for r in &rows {
                if !r.can_fire && !was_blind(&r.detector) {
                    let missing: Vec<&str> = r.missing.iter().map(String::as_str).collect();
                    tracing::warn!(
                        detector = %r.detector,
                        missing = %missing.join(", "),
                        needs = %r.needs,
                        "detector cannot fire: the metrics it needs are absent from Prometheus"
                    );
                } else if r.can_fire && was_blind(&r.detector) {
                    tracing::info!(detector = %r.detector, "detector's metrics are present now");
                }
            }
            Some(
                rows.into_iter()
                    .filter(|r| !r.can_fire)
                    .map(|r| r.detector)
                    .collect(),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check which metrics the detectors need; will retry");
            None
        }
    }
}

/// Records the cycle's metrics and hands the endpoints what they serve.
fn publish(
    engine: &Engine,
    outcomes: &BTreeMap<String, DetectorOutcome>,
    shared: &Shared,
    started: Instant,
    leader: Option<bool>,
) {
    let error = outcomes.values().find_map(|o| match o {
        DetectorOutcome::Failed(e) => Some(e.clone()),
        DetectorOutcome::Ok(_) => None,
    });
    let report = Report::build(
        "live",
        "",
        0,
        engine.incidents(),
        &Expect::default(),
        &Default::default(),
    );
    let open = engine.incidents().iter().filter(|i| i.is_open()).count();
    crate::telemetry::record_cycle(started.elapsed().as_secs_f64(), open);
    crate::telemetry::record_firing(&engine.firing_signals());
    crate::telemetry::record_leader(leader);
    if let Ok(mut s) = shared.write() {
        s.prometheus_ok = error.is_none();
        s.prometheus_error = error;
        s.detectors = engine.library().detectors.len();
        s.playbooks = engine.library().playbooks.len();
        s.cycles += 1;
        s.last_cycle_at = Some(unix_now());
        s.leader = leader;
        s.incidents = report.incidents;
        s.trust = crate::trust::rows(
            engine.trust(),
            engine.config().autonomy.earn.as_ref(),
            unix_now(),
        );
    }
}

/// Which incidents were already counted as opened and as resolved, so
/// time to detect and time to remediate are observed once each.
#[derive(Default)]
struct Lifecycle {
    opened: BTreeSet<String>,
    resolved: BTreeSet<String>,
}

impl Lifecycle {
    fn record(&mut self, incidents: &[Incident]) {
        for inc in incidents {
            if self.opened.insert(inc.id.clone())
                && let Some(onset) = inc.signals.iter().map(|s| s.signal.onset).min()
            {
                crate::telemetry::record_detected((inc.opened_at - onset).max(0));
            }
            if let Some(at) = inc.resolved_at
                && self.resolved.insert(inc.id.clone())
                && inc.actions.iter().any(|a| {
                    a.action.spec().mutating && a.result == ActionResult::Ok && !a.rollback
                })
            {
                crate::telemetry::record_remediated((at - inc.opened_at).max(0));
            }
        }
        // Forget what the engine forgot, so these sets stay bounded.
        let live: BTreeSet<&str> = incidents.iter().map(|i| i.id.as_str()).collect();
        self.opened.retain(|id| live.contains(id.as_str()));
        self.resolved.retain(|id| live.contains(id.as_str()));
    }
}
