//! Turns one day of the Nezha fault-injection data (Online Boutique on
//! Kubernetes) into one medic fixture per injected fault
//! (`cargo run --release --example import_nezha -- DAY_DIR OUT_DIR`).
//!
//! DAY_DIR holds `<day>-fault_list.json` and `metric/` with one
//! `<pod>_metric.csv` per pod and `dependency.csv` (caller, callee). Each
//! fixture covers 20 minutes before to 10 minutes after the fault, with the
//! pod metrics as Prometheus-style series, the pods and their Deployments as
//! cluster objects, the call graph as topology, and the faulty service's
//! Deployment as the expected root cause. What cannot be imported is skipped
//! with the reason.

use crate::model::{ObjectRef, Secs};
use crate::replay::series::compress_values;
use crate::replay::{EarlierFault, Edge, Expect, Fixture, SeriesSpec};
use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::Value as Json;

/// Why an import failed, with the file it was reading.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ImportError(String);

type Result<T> = std::result::Result<T, ImportError>;

// Building YAML values from our own JSON literals; only a bug makes it fail.
impl From<serde_yaml::Error> for ImportError {
    fn from(e: serde_yaml::Error) -> Self {
        ImportError(format!("building a fixture: {e}"))
    }
}

/// Adds what was being done to any error.
trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> Ctx<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| ImportError(format!("{}: {e}", what())))
    }
}
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const NAMESPACE: &str = "boutique";
const BEFORE: i64 = 20 * 60;
const AFTER: i64 = 10 * 60;
const STEP: i64 = 60;

/// (column in the CSV, series name). Percentages stay percentages.
const COLUMNS: &[(&str, &str)] = &[
    ("CpuUsageRate(%)", "nezha_pod_cpu_usage_percent"),
    ("MemoryUsageRate(%)", "nezha_pod_memory_usage_percent"),
    (
        "PodServerLatencyP99(s)",
        "nezha_pod_server_latency_p99_seconds",
    ),
    (
        "PodClientLatencyP99(s)",
        "nezha_pod_client_latency_p99_seconds",
    ),
    ("PodSuccessRate(%)", "nezha_pod_success_rate_percent"),
    ("PodWorkload(Ops)", "nezha_pod_workload_ops"),
];

const DETECTORS: &str = include_str!("nezha_detectors.yaml");

/// The service of a pod: its name without the ReplicaSet hash and pod suffix.
fn service_of(pod: &str) -> Option<&str> {
    let (rs, _) = pod.rsplit_once('-')?;
    let (svc, _) = rs.rsplit_once('-')?;
    Some(svc)
}

/// `2022-08-22 03:51:19.799087274 +0000 UTC m=+0.30` -> unix seconds (UTC).
fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let stamp = format!("{} {}", parts.next()?, parts.next()?);
    let t = NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(t.and_utc().timestamp())
}

struct Pod {
    name: String,
    /// Time -> column -> value.
    rows: Vec<(i64, BTreeMap<String, f64>)>,
}

fn read_pod(path: &Path) -> Result<Pod> {
    let mut reader =
        csv::Reader::from_path(path).ctx(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .headers()
        .ctx(|| format!("{}: header row", path.display()))?
        .clone();
    let mut rows = Vec::new();
    let mut name = String::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.ctx(|| format!("{}: row {}", path.display(), line + 2))?;
        let mut values = BTreeMap::new();
        let mut time = None;
        for (h, v) in headers.iter().zip(record.iter()) {
            match h {
                "Time" => time = parse_time(v),
                "PodName" => name = v.to_string(),
                _ => {
                    if let Ok(x) = v.parse::<f64>() {
                        values.insert(h.to_string(), x);
                    }
                }
            }
        }
        if let Some(t) = time {
            rows.push((t, values));
        }
    }
    if name.is_empty() {
        return Err(ImportError(format!(
            "{}: no PodName column or no rows",
            path.display()
        )));
    }
    Ok(Pod { name, rows })
}

/// Per-edge call latency measured at the caller (source_50.csv, columns
/// `<caller>_<callee>`), in the fixture's sample slots.
fn edge_series(metric: &Path, start: i64, slots: usize) -> Vec<(String, String, Vec<Option<f64>>)> {
    let Ok(mut reader) = csv::Reader::from_path(metric.join("source_50.csv")) else {
        return Vec::new();
    };
    let Ok(headers) = reader.headers().cloned() else {
        return Vec::new();
    };
    let mut edges: Vec<(String, String, Vec<Option<f64>>)> = headers
        .iter()
        .skip(2)
        .filter_map(|h| {
            h.split_once('_')
                .map(|(a, b)| (a.to_string(), b.to_string(), vec![None; slots]))
        })
        .collect();
    for record in reader.records().flatten() {
        let Some(t) = record.get(0).and_then(parse_time) else {
            continue;
        };
        let slot = (t - start + STEP / 2).div_euclid(STEP);
        if !(0..slots as i64).contains(&slot) {
            continue;
        }
        for (i, edge) in edges.iter_mut().enumerate() {
            if let Some(v) = record.get(i + 2).and_then(|v| v.parse::<f64>().ok()) {
                edge.2[slot as usize] = Some(round(v));
            }
        }
    }
    edges
}

/// The entry point's success rate (front_service.csv): what users feel.
fn slo_series(metric: &Path, start: i64, slots: usize) -> Option<Vec<Option<f64>>> {
    let mut reader = csv::Reader::from_path(metric.join("front_service.csv")).ok()?;
    let headers = reader.headers().ok()?.clone();
    let column = headers.iter().position(|h| h == "SuccessRate(%)")?;
    let mut values = vec![None; slots];
    for record in reader.records().flatten() {
        let Some(t) = record.get(0).and_then(parse_time) else {
            continue;
        };
        let slot = (t - start + STEP / 2).div_euclid(STEP);
        if (0..slots as i64).contains(&slot) {
            values[slot as usize] = record.get(column).and_then(|v| v.parse().ok()).map(round);
        }
    }
    Some(values)
}

fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 4 - v.abs().log10().ceil() as i32;
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// How long after `inject` a window runs: `AFTER`, or less when the next
/// fault comes sooner, so that no sample near enough to be rounded onto the
/// last step was taken at or after the next injection.
fn window_after(inject: i64, next: Option<i64>) -> i64 {
    let Some(next) = next else { return AFTER };
    let room = next - inject - STEP / 2 - 1;
    (room.div_euclid(STEP) * STEP).clamp(0, AFTER)
}

/// What an import wrote and skipped (with the reasons).
#[derive(Debug, Default)]
pub struct Imported {
    pub written: Vec<PathBuf>,
    pub skipped: Vec<String>,
}

/// The Deployment of a service, where every fixture puts it.
fn deployment(service: &str) -> ObjectRef {
    ObjectRef::namespaced("Deployment", NAMESPACE, service)
}

/// Imports every fault of `day` into fixtures under `out`.
pub fn import_day(day: &Path, out: &Path) -> Result<Imported> {
    let mut result = Imported::default();
    std::fs::create_dir_all(out).ctx(|| format!("cannot create {}", out.display()))?;
    let fault_file = std::fs::read_dir(day)
        .ctx(|| format!("cannot read {}", day.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("fault_list.json"))
        .ok_or_else(|| ImportError(format!("no *fault_list.json in {}", day.display())))?;
    let faults: BTreeMap<String, Vec<Json>> = serde_json::from_str(
        &std::fs::read_to_string(&fault_file)
            .ctx(|| format!("cannot read {}", fault_file.display()))?,
    )
    .ctx(|| format!("{}: not a fault list grouped by hour", fault_file.display()))?;
    let metric = day.join("metric");
    let mut pods = Vec::new();
    for entry in std::fs::read_dir(&metric).ctx(|| format!("no metric/ in {}", day.display()))? {
        let path = entry
            .ctx(|| format!("cannot list {}", metric.display()))?
            .path();
        if path.to_string_lossy().ends_with("_metric.csv") {
            match read_pod(&path) {
                Ok(p) => pods.push(p),
                Err(e) => result.skipped.push(format!("{}: {e:#}", path.display())),
            }
        }
    }
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    // Only calls between services the recording has: Online Boutique's
    // file also lists pod IPs and the load generator, which are not
    // services medic could rank, and would link services that share an IP.
    let services: BTreeSet<&str> = pods.iter().filter_map(|p| service_of(&p.name)).collect();
    let mut edges = BTreeSet::new();
    if let Ok(mut deps) = csv::Reader::from_path(metric.join("dependency.csv")) {
        for r in deps.records().flatten() {
            if let (Some(from), Some(to)) = (r.get(0), r.get(1))
                && from != to
                && services.contains(from)
                && services.contains(to)
            {
                edges.insert((from.to_string(), to.to_string()));
            }
        }
    } else {
        result
            .skipped
            .push("metric/dependency.csv: missing, so fixtures have no topology".into());
    }
    let detectors: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(DETECTORS)
        .map(serde_yaml::Value::deserialize)
        .collect::<std::result::Result<_, _>>()
        .ctx(|| "the built-in Nezha detectors".to_string())?;
    // Faults follow each other every eight minutes or so: a window that ran
    // past the next injection would hold that fault's effects too.
    let mut injections: Vec<(i64, &str)> = faults
        .values()
        .flatten()
        .filter_map(|f| {
            let at = f["inject_time"].as_str().and_then(parse_time)?;
            Some((at, f["inject_pod"].as_str().and_then(service_of)?))
        })
        .collect();
    injections.sort_unstable();
    for fault in faults.values().flatten() {
        let (Some(time), Some(pod), Some(kind)) = (
            fault["inject_time"].as_str(),
            fault["inject_pod"].as_str(),
            fault["inject_type"].as_str(),
        ) else {
            result.skipped.push(format!(
                "a fault without inject_time, inject_pod or inject_type: {fault}"
            ));
            continue;
        };
        let Some(inject) = parse_time(time) else {
            result
                .skipped
                .push(format!("fault at `{time}`: cannot read the time"));
            continue;
        };
        let Some(service) = service_of(pod) else {
            result.skipped.push(format!(
                "fault at {time}: pod `{pod}` is not named <service>-<hash>-<suffix>"
            ));
            continue;
        };
        if !pods.iter().any(|p| p.name == pod) {
            result
                .skipped
                .push(format!("fault at {time} on {pod}: no metrics for that pod"));
            continue;
        }
        let start = inject - BEFORE;
        let next = injections.iter().map(|(t, _)| *t).find(|&t| t > inject);
        // Earlier faults whose effects the window may hold: those injected
        // in it before this one, or up to AFTER before it starts.
        let earlier_faults = injections
            .iter()
            .filter(|(t, _)| (start - AFTER..inject).contains(t))
            .map(|(t, svc)| EarlierFault {
                onset: Secs(t - start),
                root_cause: deployment(svc),
            })
            .collect();
        let after = window_after(inject, next);
        let slots = ((BEFORE + after) / STEP) as usize + 1;
        let mut series = Vec::new();
        let mut cluster = Vec::new();
        let mut services = BTreeSet::new();
        for p in &pods {
            let Some(svc) = service_of(&p.name) else {
                continue;
            };
            services.insert(svc.to_string());
            let mut present = false;
            for (column, name) in COLUMNS {
                let mut values = vec![None; slots];
                for (t, row) in &p.rows {
                    let slot = (t - start + STEP / 2).div_euclid(STEP);
                    if (0..slots as i64).contains(&slot)
                        && let Some(v) = row.get(*column)
                    {
                        values[slot as usize] = Some(round(*v));
                        present = true;
                    }
                }
                series.push(SeriesSpec {
                    series: format!(
                        "{name}{{namespace=\"{NAMESPACE}\",pod=\"{}\",service=\"{svc}\"}}",
                        p.name
                    ),
                    values: compress_values(&values),
                });
            }
            if !present {
                series.truncate(series.len() - COLUMNS.len());
                continue;
            }
            let rs = p
                .name
                .rsplit_once('-')
                .map_or(p.name.as_str(), |(rs, _)| rs);
            cluster.push(serde_yaml::to_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": p.name, "namespace": NAMESPACE, "labels": {"app": svc},
                             "ownerReferences": [{"kind": "ReplicaSet", "name": rs, "controller": true}]}
            }))?);
        }
        for (caller, callee, values) in edge_series(&metric, start, slots) {
            series.push(SeriesSpec {
                series: format!(
                    "nezha_call_latency_seconds{{namespace=\"{NAMESPACE}\",caller=\"{caller}\",callee=\"{callee}\"}}"
                ),
                values: compress_values(&values),
            });
        }
        if let Some(values) = slo_series(&metric, start, slots) {
            series.push(SeriesSpec {
                series: format!(
                    "nezha_entry_success_rate_percent{{namespace=\"{NAMESPACE}\",service=\"frontend\"}}"
                ),
                values: compress_values(&values),
            });
        }
        for svc in &services {
            cluster.push(serde_yaml::to_value(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": svc, "namespace": NAMESPACE}, "spec": {"replicas": 1}
            }))?);
        }
        let fixture = Fixture {
            approvals: Vec::new(),
            name: format!("nezha {kind} on {service} at {time}"),
            description: format!(
                "Imported from {}: {kind} injected into {pod} at {time} UTC; {} minutes before to {} after{}.",
                fault_file.display(),
                BEFORE / 60,
                after / 60,
                if after < AFTER {
                    ", where the next fault begins"
                } else {
                    ""
                }
            ),
            tags: BTreeMap::from([("fault_type".to_string(), kind.to_string())]),
            interval: Secs(STEP),
            duration: Secs(BEFORE + after),
            history: None,
            start: Some(start),
            series,
            cluster,
            events: vec![],
            llm: vec![],
            logs: BTreeMap::new(),
            topology: edges
                .iter()
                .map(|(f, t)| Edge {
                    from: deployment(f),
                    to: deployment(t),
                })
                .collect(),
            detectors: detectors.clone(),
            config: Some(serde_yaml::from_str(
                "{interval: 1m, correlation: {settle: 2m, resolveAfter: 2m}}",
            )?),
            expect: Expect {
                onset: Some(Secs(BEFORE)),
                root_cause: Some(deployment(service)),
                earlier_faults,
                ..Expect::default()
            },
        };
        let file = out.join(format!(
            "{}-{kind}-{service}.yaml",
            time.replace([' ', ':'], "-")
        ));
        std::fs::write(&file, serde_yaml::to_string(&fixture)?)
            .ctx(|| format!("cannot write {}", file.display()))?;
        result.written.push(file);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_ends_a_rounding_step_before_the_next_fault() {
        assert_eq!(window_after(0, None), AFTER);
        assert_eq!(window_after(0, Some(20 * 60)), AFTER);
        // 8m13s later: the 8m step takes samples up to 8m30s, too near.
        assert_eq!(window_after(0, Some(8 * 60 + 13)), 7 * 60);
        assert_eq!(window_after(0, Some(8 * 60 + 31)), 8 * 60);
        assert_eq!(window_after(0, Some(9 * 60)), 8 * 60);
        assert_eq!(window_after(0, Some(20)), 0);
    }
}
