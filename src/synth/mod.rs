//! `medic synth`: writes a fixture from a scenario, the series cAdvisor,
//! kube-state-metrics, node-exporter, cert-manager and instrumented
//! services would have exposed, with the churn of a real cluster (pods
//! replaced, memory warming up, scaling, scrape gaps) and seeded noise.

mod noise;
mod pods;
pub mod scenario;

use crate::model::Secs;
use crate::replay::series::compress_values;
use crate::replay::{EventSpec, Expect, Fixture, SeriesSpec};
use noise::Noise;
use pods::{Cluster, PodLife};
pub use scenario::Scenario;
use scenario::{Kind, Workload};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}{location}: {message}")]
    Invalid {
        path: String,
        location: String,
        message: String,
    },
}

const MI: f64 = 1024.0 * 1024.0;
const GI: f64 = 1024.0 * MI;
/// The histogram's bucket bounds, seconds.
const BUCKETS: [f64; 7] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, f64::INFINITY];

impl Scenario {
    pub fn load(path: &std::path::Path) -> Result<Scenario, SynthError> {
        let display = path.display().to_string();
        let text = crate::yaml::read_limited(path).map_err(|source| SynthError::Io {
            path: display.clone(),
            source,
        })?;
        Self::parse(&text, &display)
    }

    pub fn parse(text: &str, path: &str) -> Result<Scenario, SynthError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            SynthError::Invalid {
                path: path.into(),
                location: inner
                    .location()
                    .map(|l| format!(":{}:{}", l.line(), l.column()))
                    .unwrap_or_default(),
                message: format!("{field}: {inner}"),
            }
        })?;
        let invalid = |message: String| SynthError::Invalid {
            path: path.into(),
            location: String::new(),
            message,
        };
        if scenario.interval.0 <= 0 || scenario.duration.0 < scenario.interval.0 {
            return Err(invalid(
                "interval must be positive and duration at least one interval".into(),
            ));
        }
        if scenario.nodes.is_empty() {
            return Err(invalid("nodes: at least one node".into()));
        }
        if scenario.duration.0 / scenario.interval.0 > 100_000 {
            return Err(invalid("more than 100000 steps".into()));
        }
        Ok(scenario)
    }
}

/// The fixture `scenario` describes: every series, the cluster's objects,
/// the change events, and `expect: {incidents: 0, escalations: 0}` (a
/// scenario is healthy; turn it into an incident by editing the fixture).
pub fn fixture(scenario: &Scenario) -> Fixture {
    let steps = (scenario.duration.0 / scenario.interval.0) as usize;
    let mut noise = Noise::new(scenario.seed);
    let cluster = pods::plan(scenario, steps, Noise::new(scenario.seed.wrapping_add(1)));
    let mut out = Out::new(steps, scenario);
    let gaps: Vec<(usize, usize)> = scenario
        .scrape_gaps
        .iter()
        .map(|g| {
            let at = out.step(g.at.0);
            (at, at + out.step(g.lasting.0))
        })
        .collect();
    out.cluster_gaps = gaps;
    let memory = pod_memory(scenario, &cluster, &mut noise, steps);
    for (i, pod) in cluster.pods.iter().enumerate() {
        pod_series(&mut out, scenario, &cluster, pod, &memory[i], &mut noise);
    }
    for (w, wl) in scenario.workloads.iter().enumerate() {
        if wl.kind == Kind::Deployment {
            deployment_series(&mut out, wl, w, &cluster);
        }
    }
    node_series(&mut out, scenario, &cluster, &memory, &mut noise);
    certificate_series(&mut out, scenario);
    Fixture {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        tags: BTreeMap::from([("synthesized".to_string(), "true".to_string())]),
        interval: scenario.interval,
        duration: Secs(steps as i64 * scenario.interval.0),
        history: (scenario.history.0 > 0).then_some(scenario.history),
        start: None,
        series: out.series,
        cluster: objects(scenario, &cluster),
        events: cluster
            .changes
            .iter()
            .filter_map(|(step, kind, object, message)| {
                Some(EventSpec {
                    at: Secs(*step as i64 * scenario.interval.0),
                    kind: kind.clone(),
                    object: object.parse().ok()?,
                    message: message.clone(),
                })
            })
            .collect(),
        llm: Vec::new(),
        logs: BTreeMap::new(),
        topology: Vec::new(),
        detectors: Vec::new(),
        config: None,
        approvals: Vec::new(),
        expect: Expect {
            incidents: Some(0),
            escalations: Some(0),
            ..Expect::default()
        },
    }
}

/// The fixture as YAML, headed by where it came from.
pub fn render(scenario: &Scenario, source: &str) -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(&fixture(scenario))?;
    Ok(format!(
        "# Written by `medic synth {source}`: edit the scenario and run it again.\n{body}"
    ))
}

struct Out {
    steps: usize,
    interval: f64,
    series: Vec<SeriesSpec>,
    cluster_gaps: Vec<(usize, usize)>,
}

impl Out {
    fn new(steps: usize, scenario: &Scenario) -> Out {
        Out {
            steps,
            interval: scenario.interval.0 as f64,
            series: Vec::new(),
            cluster_gaps: Vec::new(),
        }
    }

    fn step(&self, secs: i64) -> usize {
        (secs.max(0) as f64 / self.interval) as usize
    }

    /// Adds a series: `value(step)` over `[start, end)`, none outside it,
    /// in scrape gaps or where it gives None.
    fn push(
        &mut self,
        selector: String,
        start: usize,
        end: usize,
        gaps: &[(usize, usize)],
        mut value: impl FnMut(usize) -> Option<f64>,
    ) {
        let mut values = vec![None; self.steps + 1];
        for (s, slot) in values
            .iter_mut()
            .enumerate()
            .take(end.min(self.steps + 1))
            .skip(start)
        {
            let v = value(s);
            let gap = self
                .cluster_gaps
                .iter()
                .chain(gaps)
                .any(|&(a, b)| a <= s && s < b);
            if !gap {
                *slot = v;
            }
        }
        // A series that ends before the window does keeps its last slots
        // empty; drop trailing empties, as the notation allows.
        while values.last() == Some(&None) && values.len() > 1 {
            values.pop();
        }
        self.series.push(SeriesSpec {
            series: selector,
            values: compress_values(&values),
        });
    }
}

/// The traffic factor at `step`: the day's cycle times the ramps so far.
fn traffic(scenario: &Scenario, step: usize) -> f64 {
    let t = step as f64 * scenario.interval.0 as f64;
    let day = 86_400.0;
    let peak = scenario.traffic.peak_at.0 as f64;
    let mut f =
        1.0 + scenario.traffic.daily_swing * (2.0 * std::f64::consts::PI * (t - peak) / day).cos();
    let mut level = 1.0;
    for c in &scenario.traffic.changes {
        let (at, over) = (c.at.0 as f64, c.over.0.max(1) as f64);
        if t >= at {
            let done = ((t - at) / over).min(1.0);
            level += (c.factor - level) * done;
        }
    }
    f *= level;
    f.max(0.0)
}

fn split(name: &str) -> (&str, &str) {
    name.split_once('/').unwrap_or(("default", name))
}

/// Each pod's working set per step: warm-up after every (re)start, a
/// garbage collector's sawtooth if the workload has one, and 1% jitter.
fn pod_memory(
    scenario: &Scenario,
    cluster: &Cluster,
    noise: &mut Noise,
    steps: usize,
) -> Vec<Vec<f64>> {
    cluster
        .pods
        .iter()
        .map(|pod| {
            let m = &scenario.workloads[pod.workload].memory;
            let limit = m.limit_mi * MI;
            let tau = (m.warmup.0 as f64 / 3.0).max(1.0);
            let phase = noise.uniform();
            let mut out = vec![0.0; steps + 1];
            for (s, slot) in out
                .iter_mut()
                .enumerate()
                .take(pod.end.min(steps + 1))
                .skip(pod.start)
            {
                let mut level = m.steady;
                if let Some(st) = &m.sawtooth {
                    let period = st.period.0.max(1) as f64;
                    let t = s as f64 * scenario.interval.0 as f64;
                    let x = (t / period + phase).fract();
                    level = m.steady + (st.high - m.steady) * x;
                }
                let warm = match pod.container_started(s) {
                    Some(b) if m.warmup.0 > 0 => {
                        let age = (s - b) as f64 * scenario.interval.0 as f64;
                        1.0 - (-age / tau).exp()
                    }
                    _ => 1.0,
                };
                let floor = 0.05;
                let frac = floor + (level - floor) * warm;
                *slot = (limit * frac * (1.0 + 0.01 * noise.normal())).round();
            }
            out
        })
        .collect()
}

/// Pods of the workload alive at `step`.
fn alive(cluster: &Cluster, w: usize, step: usize) -> usize {
    cluster
        .pods
        .iter()
        .filter(|p| p.workload == w && p.start <= step && step < p.end)
        .count()
}

/// A standard normal's CDF (Abramowitz and Stegun 7.1.26).
fn phi(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + y)
    } else {
        0.5 * (1.0 - y)
    }
}

fn pod_series(
    out: &mut Out,
    scenario: &Scenario,
    cluster: &Cluster,
    pod: &PodLife,
    memory: &[f64],
    noise: &mut Noise,
) {
    let wl: &Workload = &scenario.workloads[pod.workload];
    let (ns, short) = split(&wl.name);
    let (start, end, gaps) = (pod.start, pod.end, pod.gaps.clone());
    let ids = format!(
        "namespace=\"{ns}\",pod=\"{}\",container=\"{short}\"",
        pod.name
    );
    let node = &pod.node;
    out.push(
        format!("container_memory_working_set_bytes{{{ids},node=\"{node}\"}}"),
        start,
        end,
        &gaps,
        |s| Some(memory[s]),
    );
    let (owner_kind, owner_name) = &pod.owner;
    out.push(
        format!("kube_pod_owner{{namespace=\"{ns}\",pod=\"{}\",owner_kind=\"{owner_kind}\",owner_name=\"{owner_name}\",owner_is_controller=\"true\",uid=\"{}\"}}", pod.name, pod.uid),
        start,
        end,
        &gaps,
        |_| Some(1.0),
    );
    // Pods that ran before the recording were made three days earlier.
    let created = crate::replay::DEFAULT_START as f64
        + if pod.warm_at_start {
            -3.0 * 86_400.0
        } else {
            pod.start as f64 * out.interval
        };
    out.push(
        format!(
            "kube_pod_created{{namespace=\"{ns}\",pod=\"{}\",uid=\"{}\"}}",
            pod.name, pod.uid
        ),
        start,
        end,
        &gaps,
        |_| Some(created),
    );
    let limit = wl.memory.limit_mi * MI;
    out.push(
        format!("kube_pod_container_resource_limits{{{ids},resource=\"memory\",unit=\"byte\",node=\"{node}\"}}"),
        start,
        end,
        &gaps,
        |_| Some(limit),
    );
    let restarts = pod.restarts.clone();
    out.push(
        format!(
            "kube_pod_container_status_restarts_total{{{ids},uid=\"{}\"}}",
            pod.uid
        ),
        start,
        end,
        &gaps,
        |s| Some(restarts.iter().filter(|&&(r, _)| r <= s).count() as f64),
    );
    if let Some(&(at, _)) = pod.restarts.iter().find(|&&(_, oom)| oom) {
        out.push(
            format!("kube_pod_container_status_last_terminated_reason{{{ids},reason=\"OOMKilled\",uid=\"{}\"}}", pod.uid),
            at,
            end,
            &gaps,
            |_| Some(1.0),
        );
    }
    // CFS: ten 100 ms periods a second; throttled in a share of them that
    // grows as usage nears the limit (a batch pod at its limit: about half).
    let base_replicas = wl.replicas.max(1) as f64;
    let cpu = wl.cpu.clone();
    let w = pod.workload;
    let (mut periods, mut throttled) = (0.0, 0.0);
    let mut jitter: Vec<f64> = (0..=out.steps).map(|_| noise.normal()).collect();
    out.push(
        format!("container_cpu_cfs_periods_total{{{ids},node=\"{node}\"}}"),
        start,
        end,
        &gaps,
        |_| {
            periods += 10.0 * scenario.interval.0 as f64;
            Some(periods)
        },
    );
    out.push(
        format!("container_cpu_cfs_throttled_periods_total{{{ids},node=\"{node}\"}}"),
        start,
        end,
        &gaps,
        |s| {
            let share = if wl.kind == Kind::CronJob {
                1.0
            } else {
                traffic(scenario, s) * base_replicas / alive(cluster, w, s).max(1) as f64
            };
            let used = (cpu.usage * share / cpu.limit.max(0.001)).min(1.2);
            let rate = if used >= 0.95 {
                0.45 + 0.05 * jitter[s]
            } else {
                (0.02 * used * (1.0 + 0.2 * jitter[s])).max(0.0)
            };
            throttled += (10.0 * scenario.interval.0 as f64 * rate).round();
            Some(throttled)
        },
    );
    jitter.clear();
    if let Some(http) = &wl.http {
        http_series(out, scenario, cluster, pod, http, noise);
    }
    if let Some(db) = &wl.db {
        let max = db.max;
        let used_frac = db.used;
        let busy: Vec<(usize, usize, f64)> = wl
            .events
            .iter()
            .filter_map(|e| {
                let b = e.pool_busy?;
                let at = out.step(e.at.0);
                Some((at, at + out.step(e.lasting.map_or(60, |l| l.0)), b))
            })
            .collect();
        let used: Vec<f64> = (0..=out.steps)
            .map(|s| {
                let f = busy.iter().find(|&&(a, b, _)| a <= s && s < b).map_or(
                    used_frac * traffic(scenario, s) * (1.0 + 0.05 * noise.normal()),
                    |b| b.2,
                );
                (max * f).round().clamp(0.0, max)
            })
            .collect();
        let pending: Vec<f64> = (0..=out.steps)
            .map(|s| {
                if busy.iter().any(|&(a, b, _)| a <= s && s < b) {
                    noise.count(2.0).max(1.0)
                } else {
                    0.0
                }
            })
            .collect();
        let dbids = format!("namespace=\"{ns}\",pod=\"{}\"", pod.name);
        out.push(
            format!("db_client_connection_count{{{dbids},state=\"used\"}}"),
            start,
            end,
            &gaps,
            |s| Some(used[s]),
        );
        out.push(
            format!("db_client_connection_max{{{dbids}}}"),
            start,
            end,
            &gaps,
            |_| Some(max),
        );
        out.push(
            format!("db_client_connection_pending_requests{{{dbids}}}"),
            start,
            end,
            &gaps,
            |s| Some(pending[s]),
        );
    }
}

/// Requests, errors and latency of one pod: its share of the workload's
/// traffic, Poisson counts (a quiet pod's error ratio is noisy), and a
/// log-normal latency whose p99 is the workload's, a little higher under load.
fn http_series(
    out: &mut Out,
    scenario: &Scenario,
    cluster: &Cluster,
    pod: &PodLife,
    http: &scenario::Http,
    noise: &mut Noise,
) {
    let wl = &scenario.workloads[pod.workload];
    let (ns, _) = split(&wl.name);
    let w = pod.workload;
    let base_share = http.rps / wl.replicas.max(1) as f64;
    let blips: Vec<(usize, usize, f64, f64)> = wl
        .events
        .iter()
        .filter_map(|e| {
            let b = e.blip.as_ref()?;
            let at = out.step(e.at.0);
            Some((
                at,
                at + out.step(e.lasting.map_or(60, |l| l.0)).max(1),
                b.slow,
                b.errors,
            ))
        })
        .collect();
    let version_slow = version_slowness(wl, &cluster.versions[w], &pod.owner.1);
    let warm_tau = http
        .warmup
        .as_ref()
        .map(|wu| (wu.slow, (wu.lasting.0 as f64 / 3.0).max(1.0)));
    let sigma: f64 = 0.6;
    let (mut ok, mut bad) = (0.0, 0.0);
    let mut buckets = [0.0; BUCKETS.len()];
    let mut rows: Vec<(f64, f64, [f64; BUCKETS.len()])> = Vec::with_capacity(out.steps + 1);
    for s in 0..=out.steps {
        if s < pod.start || s >= pod.end {
            rows.push((ok, bad, buckets));
            continue;
        }
        let cold = match (warm_tau, pod.container_started(s)) {
            (Some((k, tau)), Some(b)) => {
                let age = (s - b) as f64 * out.interval;
                1.0 + (k - 1.0) * (-age / tau).exp()
            }
            _ => 1.0,
        };
        let rate = http.rps * traffic(scenario, s) / alive(cluster, w, s).max(1) as f64;
        let load = rate / base_share.max(1e-9);
        let (slow, more_errors) = blips
            .iter()
            .find(|&&(a, b, _, _)| a <= s && s < b)
            .map_or((1.0, 1.0), |b| (b.2, b.3));
        let requests = noise.count(rate * out.interval);
        let errors = noise
            .count(requests * (http.errors * more_errors).min(1.0))
            .min(requests);
        ok += requests - errors;
        bad += errors;
        let p99 = http.p99 * (1.0 + 0.2 * (load - 1.0).max(0.0)) * slow * cold * version_slow;
        let median = p99 / (2.326 * sigma).exp();
        for (b, le) in BUCKETS.iter().enumerate() {
            let below = if le.is_infinite() {
                1.0
            } else {
                phi((le.ln() - median.ln()) / sigma)
            };
            buckets[b] += (requests * below).round();
        }
        // Cumulative buckets must not decrease across le.
        for b in 1..BUCKETS.len() {
            buckets[b] = buckets[b].max(buckets[b - 1]);
        }
        let total = ok + bad;
        if let Some(last) = buckets.last_mut() {
            *last = total;
        }
        rows.push((ok, bad, buckets));
    }
    let ids = format!("namespace=\"{ns}\",pod=\"{}\",http_route=\"/\"", pod.name);
    let (start, end, gaps) = (pod.start, pod.end, pod.gaps.clone());
    for (b, le) in BUCKETS.iter().enumerate() {
        let le = if le.is_infinite() {
            "+Inf".to_string()
        } else {
            le.to_string()
        };
        out.push(
            format!("http_server_request_duration_seconds_bucket{{{ids},le=\"{le}\"}}"),
            start,
            end,
            &gaps,
            |s| Some(rows[s].2[b]),
        );
    }
    out.push(
        format!(
            "http_server_request_duration_seconds_count{{{ids},http_response_status_code=\"200\"}}"
        ),
        start,
        end,
        &gaps,
        |s| Some(rows[s].0),
    );
    out.push(
        format!(
            "http_server_request_duration_seconds_count{{{ids},http_response_status_code=\"500\"}}"
        ),
        start,
        end,
        &gaps,
        |s| Some(rows[s].1),
    );
}

/// How many times slower than the first version the pod's version answers:
/// the product of the `slower` of every rollout up to and including the
/// one that made its ReplicaSet (`owner`). Versions after the first are
/// the workload's rollouts in time order.
fn version_slowness(wl: &Workload, versions: &pods::Versions, owner: &str) -> f64 {
    let (_, short) = split(&wl.name);
    let Some(k) = versions
        .0
        .iter()
        .position(|(hash, ..)| format!("{short}-{hash}") == owner)
    else {
        return 1.0;
    };
    let mut rollouts: Vec<_> = wl.events.iter().filter(|e| e.rollout.is_some()).collect();
    rollouts.sort_by_key(|e| e.at.0);
    rollouts.iter().take(k).filter_map(|e| e.slower).product()
}

fn deployment_series(out: &mut Out, wl: &Workload, w: usize, cluster: &Cluster) {
    let (ns, short) = split(&wl.name);
    let ids = format!("namespace=\"{ns}\",deployment=\"{short}\"");
    let desired = cluster.desired[w].clone();
    out.push(
        format!("kube_deployment_spec_replicas{{{ids}}}"),
        0,
        out.steps + 1,
        &[],
        |s| Some(desired[s] as f64),
    );
    // Available: pods up for a minute (readiness), at most the desired count.
    let ready = (60.0 / out.interval).ceil() as usize;
    out.push(
        format!("kube_deployment_status_replicas_available{{{ids}}}"),
        0,
        out.steps + 1,
        &[],
        |s| {
            let up = cluster
                .pods
                .iter()
                .filter(|p| p.workload == w && p.start + ready <= s && s < p.end)
                .count();
            Some(up.min(desired[s]) as f64)
        },
    );
}

fn node_series(
    out: &mut Out,
    scenario: &Scenario,
    cluster: &Cluster,
    memory: &[Vec<f64>],
    noise: &mut Noise,
) {
    let total = scenario.node_memory_gi * GI;
    for node in &cluster.nodes {
        let instance = format!("{}:9100", node.name);
        let ids = format!(
            "node=\"{}\",instance=\"{instance}\",job=\"node-exporter\"",
            node.name
        );
        out.push(
            format!("node_memory_MemTotal_bytes{{{ids}}}"),
            node.start,
            node.end,
            &[],
            |_| Some(total),
        );
        // The system's own share plus page cache, which the kernel gives back.
        let system = 0.12 * total;
        out.push(
            format!("node_memory_MemAvailable_bytes{{{ids}}}"),
            node.start,
            node.end,
            &[],
            |s| {
                let pods: f64 = cluster
                    .pods
                    .iter()
                    .zip(memory)
                    .filter(|(p, _)| p.node == node.name && p.start <= s && s < p.end)
                    .map(|(_, m)| m[s])
                    .sum();
                Some(
                    (total - system - pods - 0.03 * total * noise.uniform())
                        .max(0.0)
                        .round(),
                )
            },
        );
        if let Some(disk) = &scenario.disk {
            let size = disk.size_gi * GI;
            let per_step = disk.logs_gi_per_hour * GI / 3600.0 * scenario.interval.0 as f64;
            let rotate = (disk.rotate_every.0 / scenario.interval.0.max(1)).max(1) as usize;
            let phase = (noise.uniform() * rotate as f64) as usize;
            let fs = format!("{ids},mountpoint=\"/\",fstype=\"ext4\",device=\"/dev/nvme0n1p1\"");
            out.push(
                format!("node_filesystem_size_bytes{{{fs}}}"),
                node.start,
                node.end,
                &[],
                |_| Some(size),
            );
            out.push(
                format!("node_filesystem_avail_bytes{{{fs}}}"),
                node.start,
                node.end,
                &[],
                |s| {
                    let logs = ((s + phase) % rotate) as f64 * per_step;
                    Some((size * (1.0 - disk.used) - logs).max(0.0).round())
                },
            );
        }
    }
}

fn certificate_series(out: &mut Out, scenario: &Scenario) {
    let start = crate::replay::DEFAULT_START as f64;
    for c in &scenario.certificates {
        let (ns, name) = split(&c.name);
        let ids = format!("namespace=\"{ns}\",name=\"{name}\"");
        let first = start + c.days_left * 86_400.0;
        let renewed = c.renewed_at.map(|r| out.step(r.0));
        let interval = out.interval;
        let expiry = move |s: usize| match renewed {
            Some(r) if s >= r => start + r as f64 * interval + 90.0 * 86_400.0,
            _ => first,
        };
        out.push(
            format!("certmanager_certificate_expiration_timestamp_seconds{{{ids}}}"),
            0,
            out.steps + 1,
            &[],
            |s| Some(expiry(s)),
        );
        out.push(
            format!("certmanager_certificate_renewal_timestamp_seconds{{{ids}}}"),
            0,
            out.steps + 1,
            &[],
            |s| Some(expiry(s) - 30.0 * 86_400.0),
        );
    }
}

/// Nodes, workloads, ReplicaSets and every pod that lived, with their
/// owners, so ranking and planning see the cluster as it was.
fn objects(scenario: &Scenario, cluster: &Cluster) -> Vec<serde_yaml::Value> {
    let mut out = Vec::new();
    let v = |text: String| {
        serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap_or(serde_yaml::Value::Null)
    };
    for n in &cluster.nodes {
        out.push(v(format!(
            "{{apiVersion: v1, kind: Node, metadata: {{name: {}}}}}",
            n.name
        )));
    }
    for (w, wl) in scenario.workloads.iter().enumerate() {
        let (ns, short) = split(&wl.name);
        match wl.kind {
            Kind::Deployment => {
                let versions = &cluster.versions[w].0;
                let image = versions.last().map_or("v1", |x| x.1.as_str());
                out.push(v(format!(
                    "{{apiVersion: apps/v1, kind: Deployment, metadata: {{name: {short}, namespace: {ns}, annotations: {{deployment.kubernetes.io/revision: \"{}\"}}}}, spec: {{replicas: {}, template: {{spec: {{containers: [{{name: {short}, image: \"registry.example.com/{short}:{image}\"}}]}}}}}}}}",
                    versions.len(),
                    wl.replicas
                )));
                for (k, (hash, version, _)) in versions.iter().enumerate() {
                    out.push(v(format!(
                        "{{apiVersion: apps/v1, kind: ReplicaSet, metadata: {{name: {short}-{hash}, namespace: {ns}, annotations: {{deployment.kubernetes.io/revision: \"{}\"}}, ownerReferences: [{{apiVersion: apps/v1, kind: Deployment, name: {short}, controller: true}}]}}, spec: {{template: {{metadata: {{labels: {{app: {short}, pod-template-hash: {hash}}}}}, spec: {{containers: [{{name: {short}, image: \"registry.example.com/{short}:{version}\"}}]}}}}}}}}",
                        k + 1
                    )));
                }
            }
            Kind::StatefulSet => out.push(v(format!(
                "{{apiVersion: apps/v1, kind: StatefulSet, metadata: {{name: {short}, namespace: {ns}}}, spec: {{replicas: {}}}}}",
                wl.replicas
            ))),
            Kind::CronJob => {}
        }
    }
    // A StatefulSet's replacement has its predecessor's name: one object.
    let mut seen = std::collections::BTreeSet::new();
    for p in cluster.pods.iter().rev() {
        let (ns, _) = split(&scenario.workloads[p.workload].name);
        if !seen.insert((ns, p.name.as_str())) {
            continue;
        }
        let (kind, owner) = &p.owner;
        out.push(v(format!(
            "{{apiVersion: v1, kind: Pod, metadata: {{name: {}, namespace: {ns}, ownerReferences: [{{kind: {kind}, name: {owner}, controller: true}}]}}, spec: {{nodeName: {}}}}}",
            p.name, p.node
        )));
    }
    out
}
