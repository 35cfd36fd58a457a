//! `medic bench`: the figures that matter for a healer that runs all the
//! time — one detection cycle over a large cluster against a real
//! Prometheus, memory while it watches, the decision latency with many open
//! signals, Alertmanager intake, and replay speed. Loopback only; it prints
//! figures and asserts nothing.

mod anomaly;
mod kube_api;
mod synth;
mod watch;

pub use synth::{Shape, objects, openmetrics};

use crate::cluster::{Cluster, Relisted, SimCluster};
use crate::config::{Config, Mode};
use crate::engine::{Engine, TickTimings};
use crate::escalate::MemoryEscalator;
use crate::incident::Topology;
use crate::metrics::{Metrics, MetricsError, PrometheusMetrics, SeriesRange, SeriesValue};
use crate::model::{ObjectRef, Timestamp};
use crate::playbook::Library;
use crate::replay::{Loaded, PrometheusServer, ReplayOptions, replay_loaded};
use crate::signal::{DetectorOutcome, Observation, observe_at};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
}

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub pods: usize,
    pub nodes: usize,
    /// Detection cycles for the memory figure (30 s apart: 20 is 10 minutes).
    pub cycles: usize,
    pub alerts: usize,
    /// Pods of the 24-hour replay fixture; 0 skips it.
    pub replay_pods: usize,
    /// Only the decision-latency figure: no Prometheus, for profiling.
    pub decision_only: bool,
}

const T0: Timestamp = 1_704_067_200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs every benchmark and returns the report.
pub async fn run(o: &BenchOptions) -> Result<String, BenchError> {
    let mut out = String::new();
    let shape = Shape {
        pods: o.pods,
        nodes: o.nodes,
        per_deployment: 10,
    };
    let library = Library::embedded().map_err(setup)?;
    let _ = writeln!(
        out,
        "medic bench: {} pods on {} nodes, {} detectors",
        o.pods,
        o.nodes,
        library.detectors.len()
    );
    if o.decision_only {
        let _ = writeln!(out, "\n## Decision latency ({} open signals)", o.pods);
        out.push_str(&decision(&shape, &library).await);
        return Ok(out);
    }

    // 1. Detection cycle against a real Prometheus. Its series end now, so
    // the `medic run` of the memory figure can watch the same server.
    let samples = 12;
    let started = Instant::now();
    let start = crate::model::unix_now() - (samples as i64 - 1) * 60;
    let text = openmetrics(&shape, start, samples, 60);
    let lines = text.lines().count().saturating_sub(1);
    let server = PrometheusServer::start(&text, start).await.map_err(setup)?;
    drop(text);
    let loaded_in = started.elapsed();
    let metrics = Arc::new(PrometheusMetrics::new(server.url()).map_err(setup)?);
    let at = start + (samples as i64 - 1) * 60;
    let _ = observe_at(metrics.as_ref(), &library.detectors, at, 60).await;
    let mut cycles = Vec::new();
    let mut prom = Vec::new();
    let mut firing = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let outcomes = observe_at(metrics.as_ref(), &library.detectors, at, 60).await;
        cycles.push(t.elapsed());
        firing = outcomes
            .values()
            .map(|o| match o {
                DetectorOutcome::Ok(obs) => obs.len(),
                DetectorOutcome::Failed(_) => 0,
            })
            .sum();
        prom.push(prometheus_time(server.url(), &library, at).await?);
    }
    cycles.sort();
    prom.sort();
    let (cycle, engine_side) = (percentile(&cycles, 0.5), percentile(&prom, 0.5));
    let overhead =
        (cycle.as_secs_f64() - engine_side.as_secs_f64()) / engine_side.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "\n## Detection cycle (real Prometheus, {lines} samples, loaded in {:.1} s)",
        loaded_in.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "queries per cycle:            {} (one per detector, whatever the number of pods)",
        library.detectors.len()
    );
    let _ = writeln!(out, "cycle wall time (median of 5): {}", ms(cycle));
    let _ = writeln!(
        out,
        "Prometheus execTotalTime:     {} (sum over the queries, from its query stats)",
        ms(engine_side)
    );
    let _ = writeln!(
        out,
        "medic overhead:               {:.0}% (HTTP, JSON decoding, turning series into observations)",
        overhead * 100.0
    );
    let _ = writeln!(out, "series firing:                {firing}");

    // 2. Memory of `medic run` watching the cluster.
    let _ = writeln!(
        out,
        "\n## Memory of `medic run` watching the cluster ({} cycles, 1 s apart, each a full detection and engine cycle)",
        o.cycles
    );
    out.push_str(&watch::watch(&shape, o.cycles, server.url()).await?);
    drop(server);

    // 3. Decision latency with many open signals.
    let _ = writeln!(out, "\n## Decision latency ({} open signals)", o.pods);
    out.push_str(&decision(&shape, &library).await);

    // 4. Alertmanager intake.
    let _ = writeln!(
        out,
        "\n## Alertmanager intake ({} alerts, a fifth of them distinct)",
        o.alerts
    );
    out.push_str(&intake(o.alerts, &library).await?);

    // 5. Anomaly scoring.
    let _ = writeln!(
        out,
        "\n## Anomaly scoring ({} series of each shape, default window, 30 s step)",
        o.pods
    );
    out.push_str(&anomaly::scoring(o.pods));

    // 6. Replay speed.
    if o.replay_pods > 0 {
        let _ = writeln!(
            out,
            "\n## Replay of 24 hours of a {}-pod cluster at a 30 s step",
            o.replay_pods
        );
        out.push_str(&replay_speed(o.replay_pods).await?);
    }
    Ok(out)
}

/// The sum of Prometheus's own execution time over one cycle's queries.
async fn prometheus_time(
    url: &str,
    library: &Library,
    at: Timestamp,
) -> Result<Duration, BenchError> {
    let http = reqwest::Client::new();
    let mut total = 0.0;
    for d in &library.detectors {
        let body: serde_json::Value = http
            .get(format!("{url}/api/v1/query"))
            .query(&[
                ("query", d.spec.query.as_str()),
                ("time", &at.to_string()),
                ("stats", "all"),
            ])
            .send()
            .await
            .map_err(setup)?
            .json()
            .await
            .map_err(setup)?;
        total += body["data"]["stats"]["timings"]["execTotalTime"]
            .as_f64()
            .unwrap_or(0.0);
    }
    Ok(Duration::from_secs_f64(total))
}

/// Answers nothing: the decision benchmark needs no verification data.
struct Silent;

#[async_trait]
impl Metrics for Silent {
    async fn instant(&self, _: &str, _: Timestamp) -> Result<Vec<SeriesValue>, MetricsError> {
        Ok(Vec::new())
    }
    async fn range(
        &self,
        _: &str,
        _: Timestamp,
        _: Timestamp,
        _: i64,
    ) -> Result<Vec<SeriesRange>, MetricsError> {
        Ok(Vec::new())
    }
}

/// New batches of signals measured against the open background.
const BATCHES: usize = 100;

/// The decision figures: with the simulated cluster's cached snapshot, and
/// (`new_snapshots`) with a new one every tick.
async fn decision(shape: &Shape, library: &Library) -> String {
    let mut out = decision_with(shape, library, false).await;
    let again = decision_with(shape, library, true).await;
    for line in again.lines().skip(1) {
        let _ = writeln!(
            out,
            "with a new (equal) cluster snapshot every tick, as an adapter that relists every cycle would hand out: {line}"
        );
    }
    out
}

async fn decision_with(shape: &Shape, library: &Library, new_snapshots: bool) -> String {
    // The background fills `shape`; each batch is one more Deployment's pods.
    let extra = BATCHES * shape.per_deployment;
    let all = Shape {
        pods: shape.pods + extra,
        ..*shape
    };
    let sim = Arc::new(SimCluster::new(objects(&all), vec![]));
    let cluster: Arc<dyn Cluster> = if new_snapshots {
        Arc::new(Relisted(sim))
    } else {
        sim
    };
    let config = Config {
        mode: Mode::Enforce,
        ..Config::default()
    };
    let mut engine = Engine::new(
        config,
        library.clone(),
        Topology::default(),
        cluster,
        Arc::new(Silent),
        Arc::new(MemoryEscalator::default()),
    );
    let seen = |p: usize| Observation {
        labels: BTreeMap::from([
            ("namespace".to_string(), all.namespace(p)),
            ("pod".to_string(), all.pod(p)),
        ]),
        value: 3.0,
    };
    let mut firing: Vec<Observation> = (0..shape.pods).map(seen).collect();
    let mut outcomes: BTreeMap<String, DetectorOutcome> = library
        .detectors
        .iter()
        .map(|d| (d.name.clone(), DetectorOutcome::Ok(Vec::new())))
        .collect();
    let mut now = T0;
    let mut tick = async |engine: &mut Engine, firing: &[Observation], now: &mut Timestamp| {
        outcomes.insert("crash_loop".into(), DetectorOutcome::Ok(firing.to_vec()));
        let t = engine.tick(*now, &outcomes).await;
        *now += 30;
        t
    };

    // The mass onset: every background signal fires, plans and (storm mode)
    // escalates within a few ticks. One-off ticks, reported as they are.
    let (mut fire, mut plan) = (None, None);
    let mut steady = Vec::new();
    for _ in 0..16 {
        let took = tick(&mut engine, &firing, &mut now).await;
        let incidents = engine.incidents();
        if incidents.is_empty() {
            continue; // `for` not yet elapsed: nothing is open
        }
        if fire.is_none() {
            fire = Some(took);
        } else if plan.is_none() && incidents.iter().all(|i| i.diagnosis.is_some()) {
            plan = Some(took);
        } else {
            steady.push(took);
        }
    }
    let incidents = engine.incidents().len();
    let background: usize = engine.firing_signals().values().sum();

    // Batches: a new Deployment's pods start failing while the background
    // stays open; time the tick that correlates them and the one that plans.
    let mut batch = Vec::new();
    for b in 0..BATCHES {
        let first = shape.pods + b * shape.per_deployment;
        firing.extend((first..first + shape.per_deployment).map(seen));
        let subject =
            ObjectRef::namespaced("Deployment", &all.namespace(first), &all.deployment(first));
        let mut correlated: Option<TickTimings> = None;
        for _ in 0..20 {
            let took = tick(&mut engine, &firing, &mut now).await;
            let inc = engine
                .incidents()
                .iter()
                .find(|i| i.signals.iter().any(|s| s.subject == subject));
            match (inc, correlated) {
                (None, _) => steady.push(took),
                (Some(_), None) => correlated = Some(took),
                (Some(i), Some(c)) if i.diagnosis.is_some() => {
                    batch.push((c.decision() + took.decision(), c.total() + took.total()));
                    break;
                }
                (Some(_), Some(_)) => steady.push(took),
            }
        }
    }
    let sorted = |f: &dyn Fn(&TickTimings) -> Duration| {
        let mut v: Vec<Duration> = steady.iter().map(f).collect();
        v.sort();
        v
    };
    let (steady_total, steady_signals, steady_decision) = (
        sorted(&TickTimings::total),
        sorted(&|t| t.signals),
        sorted(&TickTimings::decision),
    );
    let mut batch_decision: Vec<Duration> = batch.iter().map(|b| b.0).collect();
    let mut batch_total: Vec<Duration> = batch.iter().map(|b| b.1).collect();
    batch_decision.sort();
    batch_total.sort();
    let p = |v: &[Duration]| {
        format!(
            "p50 {}, p99 {}",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99))
        )
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mass onset, {} signals at once (one-off ticks): the tick they fire in, correlated into {incidents} incidents, storm mode entered: {}; the tick all {incidents} are ranked, diagnosed, planned and escalated: {}",
        shape.pods,
        ms(fire.unwrap_or_default().total()),
        ms(plan.unwrap_or_default().total()),
    );
    let _ = writeln!(
        out,
        "a tick with {background} or more open signals and nothing new ({} ticks): {}; of which taking in the observations {}, deciding {}",
        steady.len(),
        p(&steady_total),
        p(&steady_signals),
        p(&steady_decision),
    );
    let _ = writeln!(
        out,
        "a new batch of {} signals to its plan ({} batches), the decision (correlate; rank, diagnose, plan, guards) in the tick that correlates it and the one that plans it: {}; those two whole ticks: {}",
        shape.per_deployment,
        batch.len(),
        p(&batch_decision),
        p(&batch_total),
    );
    out
}

async fn intake(alerts: usize, library: &Library) -> Result<String, BenchError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 16);
    let desk = crate::run::AnswerDesk {
        approvals: Arc::new(crate::escalate::MemoryApprovals::default()),
        gate: Default::default(),
        paused: Default::default(),
    };
    // The webhook as deployed: every post carries Alertmanager's token.
    const TOKEN: &str = "bench-webhook-token";
    let secrets = tempfile::tempdir().map_err(setup)?;
    let token_path = secrets.path().join("webhook-token");
    std::fs::write(&token_path, TOKEN).map_err(setup)?;
    let webhook = crate::run::Gate::new(
        vec![crate::run::Credential::Bearer(
            crate::run::SecretFile::open(&token_path).map_err(setup)?,
        )],
        "",
    );
    let app = crate::run::router(Default::default(), tx, desk, None, Some(webhook));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(setup)?;
    let addr = listener.local_addr().map_err(setup)?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let distinct = (alerts / 5).max(1);
    let batch = 100;
    let bodies: Vec<String> = (0..alerts.div_ceil(batch))
        .map(|b| {
            let items: Vec<serde_json::Value> = (b * batch..((b + 1) * batch).min(alerts))
                .map(|i| {
                    let d = i % distinct;
                    serde_json::json!({"status": "firing", "fingerprint": format!("fp{d:06}"),
                        "labels": {"alertname": "KubePodCrashLooping", "namespace": "team-1", "pod": format!("svc-{d}-6d5f7c9b8-{d:05}"), "severity": "critical"},
                        "annotations": {}, "startsAt": "2024-01-01T00:00:00Z"})
                })
                .collect();
            serde_json::json!({"version": "4", "status": "firing", "receiver": "medic", "alerts": items}).to_string()
        })
        .collect();
    let (before, _) = watch::rss_of("self");
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/alerts");
    let t = Instant::now();
    let mut handles = Vec::new();
    for chunk in bodies.chunks(bodies.len().div_ceil(4)) {
        let (http, url, chunk) = (http.clone(), url.clone(), chunk.to_vec());
        handles.push(tokio::spawn(async move {
            for body in chunk {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .bearer_auth(TOKEN)
                    .body(body)
                    .send()
                    .await;
                if !r.is_ok_and(|r| r.status().is_success()) {
                    return Err("a webhook post failed".to_string());
                }
            }
            Ok(())
        }));
    }
    for h in handles {
        h.await.map_err(setup)?.map_err(setup)?;
    }
    let took = t.elapsed();
    server.abort();
    let mut engine = Engine::new(
        Config::default(),
        library.clone(),
        Topology::default(),
        Arc::new(SimCluster::default()),
        Arc::new(Silent),
        Arc::new(MemoryEscalator::default()),
    );
    let mut received = 0;
    let mut kept = 0;
    while let Ok(events) = rx.try_recv() {
        received += events.len();
        kept += engine.ingest_alerts(events);
    }
    let (after, _) = watch::rss_of("self");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{alerts} alerts in {:.2} s over 4 connections: {:.0} alerts/s",
        took.as_secs_f64(),
        alerts as f64 / took.as_secs_f64().max(1e-9)
    );
    let _ = writeln!(
        out,
        "received {received}, distinct alerts kept {kept} of {distinct} (repeats deduplicated by fingerprint)"
    );
    let _ = writeln!(
        out,
        "resident memory before {before:.1} MiB, after {after:.1} MiB"
    );
    Ok(out)
}

/// A day of a small cluster, every pod healthy but one that leaks.
pub fn day_fixture(pods: usize) -> String {
    let shape = Shape {
        pods,
        nodes: (pods / 20).max(1),
        per_deployment: 10,
    };
    let samples = 24 * 120;
    let mut series = String::new();
    for p in 0..pods {
        let (ns, pod) = (shape.namespace(p), shape.pod(p));
        let memory = if p == 0 {
            format!("200e6x{} 200e6+100e3x{}", samples / 2, samples / 2 - 1)
        } else {
            format!("{}e6x{}", 200 + p % 7, samples - 1)
        };
        let _ = writeln!(
            series,
            "  - series: 'container_memory_working_set_bytes{{namespace=\"{ns}\",pod=\"{pod}\",container=\"app\",node=\"node-{}\"}}'\n    values: '{memory}'",
            shape.node(p)
        );
        let _ = writeln!(
            series,
            "  - series: 'kube_pod_container_resource_limits{{namespace=\"{ns}\",pod=\"{pod}\",container=\"app\",resource=\"memory\",unit=\"byte\"}}'\n    values: '512e6x{}'",
            samples - 1
        );
        let _ = writeln!(
            series,
            "  - series: 'kube_pod_container_status_restarts_total{{namespace=\"{ns}\",pod=\"{pod}\",container=\"app\"}}'\n    values: '0x{}'",
            samples - 1
        );
    }
    format!(
        "name: a day of a {pods}-pod cluster\ninterval: 30s\nduration: 24h\nseries:\n{series}expect: {{}}\n"
    )
}

async fn replay_speed(pods: usize) -> Result<String, BenchError> {
    let text = day_fixture(pods);
    let loaded = Loaded::parse(&text, "bench-day.yaml").map_err(setup)?;
    let t = Instant::now();
    let report = replay_loaded(&loaded, &ReplayOptions::embedded())
        .await
        .map_err(setup)?;
    let took = t.elapsed();
    let mut out = String::new();
    let samples = pods * 3 * 24 * 120;
    let _ = writeln!(
        out,
        "{samples} samples, {} evaluations per detector in one range query each",
        24 * 120
    );
    let _ = writeln!(
        out,
        "wall time {:.1} s ({:.0}x real time), {} incident(s)",
        took.as_secs_f64(),
        86_400.0 / took.as_secs_f64().max(1e-9),
        report.incidents.len()
    );
    Ok(out)
}
