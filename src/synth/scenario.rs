//! A scenario: the cluster and what happens in it, in a few lines of YAML,
//! from which `medic synth` writes a fixture.

use crate::model::Secs;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_interval")]
    pub interval: Secs,
    pub duration: Secs,
    /// The leading part of `duration` that medic does not watch, only has
    /// in Prometheus (the fixture's `history`).
    #[serde(default)]
    pub history: Secs,
    /// Seeds the noise: the same scenario always gives the same fixture.
    #[serde(default)]
    pub seed: u64,
    /// Nodes at the start (more may join through `addNode`).
    pub nodes: Vec<String>,
    #[serde(default = "default_node_memory")]
    pub node_memory_gi: f64,
    pub workloads: Vec<Workload>,
    /// Times the whole cluster is not scraped: `{at, for}`.
    #[serde(default)]
    pub scrape_gaps: Vec<Gap>,
    /// Traffic over time, a factor on every workload's `rps`.
    #[serde(default)]
    pub traffic: Traffic,
    /// Nodes joining, leaving and drained.
    #[serde(default)]
    pub node_events: Vec<NodeEvent>,
    /// The root filesystem of each node: its log files grow and are rotated.
    #[serde(default)]
    pub disk: Option<Disk>,
    /// cert-manager Certificates, renewed on time.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
}

fn default_interval() -> Secs {
    Secs(30)
}

fn default_node_memory() -> f64 {
    16.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Kind {
    #[default]
    Deployment,
    StatefulSet,
    /// Runs a pod every `schedule.every` for `schedule.runs`.
    CronJob,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    /// `namespace/name`.
    pub name: String,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default = "one")]
    pub replicas: usize,
    pub memory: Memory,
    #[serde(default)]
    pub cpu: Cpu,
    #[serde(default)]
    pub http: Option<Http>,
    #[serde(default)]
    pub db: Option<Db>,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub events: Vec<WorkloadEvent>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Memory {
    pub limit_mi: f64,
    /// The working set once warm, as a fraction of the limit.
    pub steady: f64,
    /// How long a new container takes to fill its heap, caches and pools
    /// (most of the way: an exponential approach).
    #[serde(default)]
    pub warmup: Secs,
    /// A garbage collector's sawtooth: grows to `high` (of the limit) and
    /// drops back to `steady` every `period`.
    #[serde(default)]
    pub sawtooth: Option<Sawtooth>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sawtooth {
    pub high: f64,
    pub period: Secs,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cpu {
    pub limit: f64,
    /// Cores used at traffic factor 1 (a CronJob's pods use this throughout).
    pub usage: f64,
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu {
            limit: 1.0,
            usage: 0.2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http {
    /// Requests per second to the whole workload at traffic factor 1.
    pub rps: f64,
    /// Typical p99 latency, seconds.
    pub p99: f64,
    /// Fraction of requests answered 5xx.
    #[serde(default)]
    pub errors: f64,
    /// A new or restarted container answers slower at first (JIT, cold
    /// caches and connection pools).
    #[serde(default)]
    pub warmup: Option<HttpWarmup>,
}

/// Latency multiplied by `slow` in a container's first requests, back to
/// normal (95% of the way) by `for`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpWarmup {
    pub slow: f64,
    #[serde(rename = "for")]
    pub lasting: Secs,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Db {
    pub max: f64,
    /// Connections in use at traffic factor 1, as a fraction of `max`.
    pub used: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    pub every: Secs,
    pub runs: Secs,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEvent {
    pub at: Secs,
    /// New pods of a new version replace the old ones one by one.
    #[serde(default)]
    pub rollout: Option<String>,
    /// The rollout's version answers this many times slower than the one
    /// before, from its first request (a regression that ships).
    #[serde(default)]
    pub slower: Option<f64>,
    /// A StatefulSet's pods are restarted one by one, highest ordinal first.
    #[serde(default)]
    pub restart: bool,
    /// The replica count becomes this (an HPA or a person).
    #[serde(default)]
    pub scale: Option<usize>,
    /// Replica index whose container is OOM-killed once and comes back.
    #[serde(default)]
    pub oom: Option<usize>,
    /// Replica index whose container restarts once (a failed probe).
    #[serde(default)]
    pub restart_one: Option<usize>,
    /// Replica index not scraped for `for`.
    #[serde(default)]
    pub scrape_gap: Option<usize>,
    /// Latency multiplied by `slow` and errors by `errors` for `for`
    /// (connections moving over during a rollout).
    #[serde(default)]
    pub blip: Option<Blip>,
    /// Pool connections held (fraction of max) with requests queueing, for `for`.
    #[serde(default)]
    pub pool_busy: Option<f64>,
    #[serde(default, rename = "for")]
    pub lasting: Option<Secs>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Blip {
    #[serde(default = "unit")]
    pub slow: f64,
    #[serde(default = "unit")]
    pub errors: f64,
}

fn unit() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gap {
    pub at: Secs,
    #[serde(rename = "for")]
    pub lasting: Secs,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Traffic {
    /// A day's cycle: traffic swings by this fraction around its mean.
    #[serde(default)]
    pub daily_swing: f64,
    /// Replay time of the daily peak.
    #[serde(default)]
    pub peak_at: Secs,
    /// Ramps to a new factor: `{at, factor, over}`.
    #[serde(default)]
    pub changes: Vec<TrafficChange>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficChange {
    pub at: Secs,
    pub factor: f64,
    #[serde(default)]
    pub over: Secs,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeEvent {
    pub at: Secs,
    /// Cordoned and drained: its pods are recreated on the other nodes.
    #[serde(default)]
    pub drain: Option<String>,
    /// A node joins (the cluster autoscaler); new pods may land on it.
    #[serde(default)]
    pub add: Option<String>,
    /// A node leaves once empty (drained first, as the autoscaler does).
    #[serde(default)]
    pub remove: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Disk {
    pub size_gi: f64,
    /// Used at the start, as a fraction.
    pub used: f64,
    /// Logs written per hour (GiB) until rotated away every `rotateEvery`.
    pub logs_gi_per_hour: f64,
    pub rotate_every: Secs,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// `namespace/name`.
    pub name: String,
    /// Days left at time 0; cert-manager renews at two thirds of 90 days.
    pub days_left: f64,
    /// Replay time a renewal completes (the expiry moves 90 days on).
    #[serde(default)]
    pub renewed_at: Option<Secs>,
}
