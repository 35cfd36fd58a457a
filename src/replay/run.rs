//! Replaying one fixture through the real pipeline: a real Prometheus
//! loaded with its series, `SimCluster` with its objects, the same engine
//! the live loop runs.

use super::fixture::{FixtureAnswer, FixtureDecision, FixtureError, Loaded};
use super::llm_server::LlmServer;
use super::prometheus::{PrometheusError, PrometheusServer};
use super::report::Report;
use super::series::to_openmetrics;
use crate::cluster::{ClusterSnapshot, SimCluster};
use crate::config::{Config, ConfigError, Mode};
use crate::diagnose::llm::{Advisor, LlmConfig, OpenAiLlm, RecordingLlm};
use crate::engine::Engine;
use crate::escalate::{Answer, ApprovalStore, MemoryEscalator};
use crate::incident::{Incident, Topology};
use crate::metrics::{MetricsError, PrometheusMetrics};
use crate::model::Timestamp;
use crate::plan::{Explanation, explain};
use crate::playbook::{Library, LoadError};
use crate::signal::{DetectorOutcome, observe_range};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error("{path}: config: {source}")]
    Config { path: String, source: ConfigError },
    #[error("{path}: {source}")]
    Library { path: String, source: LoadError },
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    #[error("{path}: {source}")]
    Metrics { path: String, source: MetricsError },
    #[error("{0}")]
    Llm(String),
    #[error("no playbook named `{name}` (known: {known})")]
    UnknownPlaybook { name: String, known: String },
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error("{path}: simulated cluster: {source}")]
    Cluster {
        path: String,
        source: crate::cluster::ClusterError,
    },
}

/// What every fixture of a replay shares.
pub struct ReplayOptions {
    /// Detector and playbook sources (name, YAML); fixtures may add detectors.
    pub sources: Vec<(String, String)>,
    /// The configuration fixtures' `config:` overrides are laid over.
    pub config: Config,
    /// Ask the LLM of `config.llm` for real instead of serving recorded
    /// answers, recording what it says here.
    pub live_llm: Option<Arc<RecordingLlm>>,
    /// Where approval requests go and answers (the fixture's `approvals:`)
    /// are read from; a fresh in-memory store per fixture when None.
    pub approvals: Option<Arc<dyn ApprovalStore>>,
    /// A directory for the journal and the simulated cluster's objects: a
    /// replay killed midway and started again resumes from it.
    pub journal: Option<std::path::PathBuf>,
    /// With `journal`: keep the journal in this NATS server's JetStream
    /// (as `medic run` does with NATS) instead of the directory.
    pub journal_nats: Option<crate::escalate::NatsConfig>,
}

impl ReplayOptions {
    /// The embedded playbooks, with `mode: enforce`: a replay acts on
    /// `SimCluster` only, and its point is to see what medic would do.
    pub fn embedded() -> Self {
        ReplayOptions {
            sources: crate::playbook::embedded_sources(),
            config: Config {
                mode: Mode::Enforce,
                ..Config::default()
            },
            live_llm: None,
            approvals: None,
            journal: None,
            journal_nats: None,
        }
    }
}

pub async fn replay_file(path: &Path, options: &ReplayOptions) -> Result<Report, ReplayError> {
    let loaded = Loaded::load(path)?;
    replay_loaded(&loaded, options).await
}

/// A fixture loaded into Prometheus, detectors evaluated, engine ready.
struct Prepared {
    engine: Engine,
    /// Ticks up to this one ran before a restart (from the journal).
    resume_after: Option<Timestamp>,
    outcomes: BTreeMap<Timestamp, BTreeMap<String, DetectorOutcome>>,
    config: Config,
    llm_server: Option<LlmServer>,
    metrics: Arc<PrometheusMetrics>,
    // Kept alive until the replay is done; dropping it stops Prometheus.
    _server: PrometheusServer,
}

async fn prepare(
    loaded: &Loaded,
    options: &ReplayOptions,
    paused: bool,
) -> Result<Prepared, ReplayError> {
    let path = loaded.path.clone();
    let fixture = &loaded.fixture;
    let config = match &fixture.config {
        Some(over) => options
            .config
            .overlay(over, &format!("{path}: config"))
            .map_err(|source| ReplayError::Config {
                path: path.clone(),
                source,
            })?,
        None => options.config.clone(),
    };
    let mut sources = options.sources.clone();
    sources.extend(loaded.detector_sources());
    let library = Library::from_sources(&sources).map_err(|source| ReplayError::Library {
        path: path.clone(),
        source,
    })?;
    let start = loaded.start;
    let end = start + fixture.duration.0;
    let step = config.interval.0.max(1);
    let server = PrometheusServer::start(
        &to_openmetrics(&loaded.series, start, fixture.interval.0),
        start,
    )
    .await?;
    let metrics_err = |source| ReplayError::Metrics {
        path: path.clone(),
        source,
    };
    let metrics = Arc::new(PrometheusMetrics::new(server.url()).map_err(metrics_err)?);
    let watch_from = start + fixture.history.map_or(0, |h| h.0);
    let outcomes = observe_range(metrics.as_ref(), &library.detectors, watch_from, end, step)
        .await
        .map_err(metrics_err)?;
    let topology = Topology::new(
        fixture
            .topology
            .iter()
            .map(|e| (e.from.clone(), e.to.clone())),
    );
    let mut cluster = SimCluster::new(loaded.objects.clone(), loaded.changes.clone())
        .with_logs(fixture.logs.clone());
    if let Some(dir) = &options.journal {
        // With the journal in JetStream nothing else makes the directory.
        std::fs::create_dir_all(dir).map_err(|source| {
            ReplayError::Journal(crate::journal::JournalError::Io {
                path: dir.display().to_string(),
                source,
            })
        })?;
        cluster = cluster
            .persisted(&dir.join("cluster.json"))
            .map_err(|source| ReplayError::Cluster {
                path: path.clone(),
                source,
            })?;
    }
    let cluster = Arc::new(cluster);
    let escalator = Arc::new(MemoryEscalator::default());
    let engine_config = Config {
        paused: paused || config.paused,
        ..config.clone()
    };
    let metrics_port = metrics.clone();
    let mut engine = Engine::new(
        engine_config,
        library,
        topology,
        cluster,
        metrics,
        escalator,
    );
    if let Some(approvals) = &options.approvals {
        engine = engine.with_approvals(approvals.clone());
    }
    let mut resume_after = None;
    if let Some(dir) = &options.journal {
        let js = match &options.journal_nats {
            Some(nats) => {
                let js = crate::escalate::connect_nats(nats).await.map_err(|e| {
                    crate::journal::JournalError::Nats {
                        stream: nats.journal_stream.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Some((js, nats))
            }
            None => None,
        };
        let (journal, restored) =
            crate::journal::Journal::open(&dir.join("journal.log"), js).await?;
        resume_after = restored.last_tick;
        let now = resume_after.unwrap_or(start);
        engine = engine.with_journal(Arc::new(journal), restored, now);
    }
    // Recorded answers (or llm.enabled) turn the LLM on, served from loopback.
    let llm_server = if let Some(live) = &options.live_llm {
        engine = engine.with_advisor(Advisor::new(live.clone(), config.llm.clone()));
        None
    } else if !fixture.llm.is_empty() || config.llm.enabled {
        let server = LlmServer::start(fixture.llm.clone()).await.map_err(|e| {
            ReplayError::Llm(format!(
                "{path}: cannot start the recorded LLM endpoint: {e}"
            ))
        })?;
        let llm_config = LlmConfig {
            enabled: true,
            base_url: server.url().to_string(),
            model: "recorded".into(),
            azure_api_version: None,
            ..config.llm.clone()
        };
        let llm = OpenAiLlm::new(&llm_config, "replay".into())
            .map_err(|e| ReplayError::Llm(format!("{path}: {e}")))?;
        engine = engine.with_advisor(Advisor::new(Arc::new(llm), llm_config));
        Some(server)
    } else {
        None
    };
    Ok(Prepared {
        engine,
        resume_after,
        outcomes,
        config,
        llm_server,
        metrics: metrics_port,
        _server: server,
    })
}

pub async fn replay_loaded(
    loaded: &Loaded,
    options: &ReplayOptions,
) -> Result<Report, ReplayError> {
    let mut p = prepare(loaded, options, false).await?;
    let mut answers = FixtureAnswers::new(&loaded.fixture.approvals, loaded.start);
    for (at, by_detector) in &p.outcomes {
        if p.resume_after.is_some_and(|r| *at <= r) {
            continue;
        }
        answers.give(p.engine.approvals().as_ref(), *at).await;
        p.engine.tick(*at, by_detector).await;
    }
    let mut report = Report::build(
        &loaded.fixture.name,
        &loaded.path,
        loaded.start,
        p.engine.incidents(),
        &loaded.fixture.expect,
        &loaded.fixture.tags,
    );
    report.failures.extend(answers.failures);
    let end_at = loaded.start + loaded.fixture.duration.0;
    let earn = p.engine.config().autonomy.earn.clone();
    report.trust(
        crate::trust::rows(p.engine.trust(), earn.as_ref(), end_at),
        &loaded.fixture.expect,
    );
    let start = loaded.start;
    let end = start + loaded.fixture.duration.0;
    for alert in &loaded.fixture.expect.beats {
        let fires = super::rules::fires_at(
            p.metrics.as_ref(),
            alert,
            start,
            end,
            loaded.fixture.interval.0,
        )
        .await
        .map_err(|source| ReplayError::Metrics {
            path: loaded.path.clone(),
            source,
        })?;
        report.race(alert, fires.map(|t| t - start));
    }
    report.passed &= report.failures.is_empty();
    if let Some(server) = &p.llm_server {
        let missing = server.unanswered();
        if missing > 0 {
            report.failures.push(format!(
                "the LLM was asked {missing} time(s) with no recorded answer left: record one under `llm:`"
            ));
            report.passed = false;
        }
    }
    Ok(report)
}

/// Explains what `playbook` would do for the fixture's incident, as medic
/// saw it when it planned (the first incident with the playbook's trigger
/// signal, else the first incident). Nothing is acted on: the engine runs
/// paused. None when the fixture raises no incident.
pub async fn explain_loaded(
    loaded: &Loaded,
    options: &ReplayOptions,
    playbook: &str,
) -> Result<Option<Explanation>, ReplayError> {
    let mut p = prepare(loaded, options, true).await?;
    let Some(chosen) = p
        .engine
        .library()
        .playbooks
        .iter()
        .find(|x| x.name == playbook)
        .cloned()
    else {
        let known: Vec<String> = p
            .engine
            .library()
            .playbooks
            .iter()
            .map(|x| x.name.clone())
            .collect();
        return Err(ReplayError::UnknownPlaybook {
            name: playbook.to_string(),
            known: known.join(", "),
        });
    };
    // Each incident as it stood when first ranked, with the cluster then.
    let mut planned: Vec<(Incident, ClusterSnapshot, Timestamp)> = Vec::new();
    for (at, by_detector) in &p.outcomes {
        p.engine.tick(*at, by_detector).await;
        for inc in p.engine.incidents() {
            if !inc.candidates.is_empty() && !planned.iter().any(|(i, ..)| i.id == inc.id) {
                planned.push((inc.clone(), p.engine.snapshot().clone(), *at));
            }
        }
    }
    let signal = &chosen.spec.trigger.signal;
    let pick = planned
        .iter()
        .find(|(i, ..)| i.signals.iter().any(|s| &s.signal.name == signal))
        .or(planned.first());
    Ok(pick.map(|(inc, snap, at)| {
        explain(
            inc,
            &chosen,
            &p.engine.library().playbooks,
            snap,
            &p.config,
            *at,
        )
    }))
}

/// A fixture's `approvals:`, given to the approval store as replay time
/// reaches them, exactly as a person answering through the API would.
struct FixtureAnswers<'a> {
    due: std::collections::VecDeque<&'a FixtureAnswer>,
    start: Timestamp,
    failures: Vec<String>,
}

impl<'a> FixtureAnswers<'a> {
    fn new(answers: &'a [FixtureAnswer], start: Timestamp) -> Self {
        let mut due: Vec<&FixtureAnswer> = answers.iter().collect();
        due.sort_by_key(|a| a.at.0);
        FixtureAnswers {
            due: due.into(),
            start,
            failures: Vec::new(),
        }
    }

    async fn give(&mut self, store: &dyn ApprovalStore, now: Timestamp) {
        while let Some(a) = self.due.front().copied() {
            if self.start + a.at.0 > now {
                return;
            }
            self.due.pop_front();
            let pending = store.pending(now).await.unwrap_or_default();
            let Some(record) = pending.iter().find(|r| r.step == a.step) else {
                self.failures.push(format!(
                    "approvals: at {} {} answers step {}, but nothing waits for approval there",
                    a.at, a.by, a.step
                ));
                continue;
            };
            let answer = Answer {
                approved: a.decision == FixtureDecision::Approve,
                by: a.by.clone(),
                at: now,
                via: "fixture".into(),
            };
            if let Err(e) = store
                .answer(&record.incident, a.step, answer, Some(&record.plan_digest))
                .await
            {
                self.failures
                    .push(format!("approvals: at {} {}: {e}", a.at, a.by));
            }
        }
    }
}
