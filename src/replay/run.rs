//! Replaying one fixture through the real pipeline: a real Prometheus
//! loaded with its series, `SimCluster` with its objects, the same engine
//! the live loop runs.

use super::fixture::{FixtureError, Loaded};
use super::prometheus::{PrometheusError, PrometheusServer};
use super::report::Report;
use super::series::to_openmetrics;
use crate::cluster::SimCluster;
use crate::config::{Config, ConfigError, Mode};
use crate::engine::Engine;
use crate::escalate::MemoryEscalator;
use crate::incident::Topology;
use crate::metrics::{MetricsError, PrometheusMetrics};
use crate::playbook::{Library, LoadError};
use crate::signal::observe_range;
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
}

/// What every fixture of a replay shares.
pub struct ReplayOptions {
    /// Detector and playbook sources (name, YAML); fixtures may add detectors.
    pub sources: Vec<(String, String)>,
    /// The configuration fixtures' `config:` overrides are laid over.
    pub config: Config,
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
        }
    }
}

pub async fn replay_file(path: &Path, options: &ReplayOptions) -> Result<Report, ReplayError> {
    let loaded = Loaded::load(path)?;
    replay_loaded(&loaded, options).await
}

pub async fn replay_loaded(
    loaded: &Loaded,
    options: &ReplayOptions,
) -> Result<Report, ReplayError> {
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
    let metrics =
        Arc::new(
            PrometheusMetrics::new(server.url()).map_err(|source| ReplayError::Metrics {
                path: path.clone(),
                source,
            })?,
        );
    let outcomes = observe_range(metrics.as_ref(), &library.detectors, start, end, step)
        .await
        .map_err(|source| ReplayError::Metrics {
            path: path.clone(),
            source,
        })?;
    let topology = Topology::new(
        fixture
            .topology
            .iter()
            .map(|e| (e.from.clone(), e.to.clone())),
    );
    let cluster = Arc::new(SimCluster::new(
        loaded.objects.clone(),
        loaded.changes.clone(),
    ));
    let escalator = Arc::new(MemoryEscalator::default());
    let mut engine = Engine::new(config, library, topology, cluster, metrics, escalator);
    for (at, by_detector) in &outcomes {
        engine.tick(*at, by_detector).await;
    }
    drop(server);
    Ok(Report::build(
        &fixture.name,
        &path,
        start,
        engine.incidents(),
        &fixture.expect,
    ))
}
