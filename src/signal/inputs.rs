//! Which metrics a detector reads, taken from its PromQL, and whether the
//! ones a Prometheus holds are enough for it to ever fire.
//!
//! A detector whose metrics are absent returns nothing and stays quiet, the
//! same as a healthy cluster: without this check a missing exporter looks
//! like good news. `or` joins alternatives (either side can fire), `unless`
//! needs only its left side, everything else needs all of its inputs.

use super::Detector;
use crate::metrics::{Metrics, MetricsError};
use crate::model::Timestamp;
use promql_parser::parser::Expr;
use std::collections::BTreeSet;
use std::fmt;

/// One detector's inputs, checked against what Prometheus holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub detector: String,
    pub needs: Needs,
    /// Metrics the query names that have no series now.
    pub missing: BTreeSet<String>,
    /// Whether the present metrics are enough for it ever to fire.
    pub can_fire: bool,
}

/// Checks every detector's metrics with one query: which of the names have
/// a series at `at`.
pub async fn readiness(
    metrics: &dyn Metrics,
    detectors: &[Detector],
    at: Timestamp,
) -> Result<Vec<Readiness>, MetricsError> {
    let needs: Vec<(String, Needs)> = detectors
        .iter()
        .map(|d| {
            let n = Needs::of_query(&d.spec.query).unwrap_or(Needs::All(vec![]));
            (d.name.clone(), n)
        })
        .collect();
    let names: BTreeSet<String> = needs.iter().flat_map(|(_, n)| n.metrics()).collect();
    let present: BTreeSet<String> = if names.is_empty() {
        BTreeSet::new()
    } else {
        // Metric names are [a-zA-Z_:][a-zA-Z0-9_:]*: nothing to escape.
        let list: Vec<&str> = names.iter().map(String::as_str).collect();
        let query = format!("group by (__name__) ({{__name__=~\"{}\"}})", list.join("|"));
        metrics
            .instant(&query, at)
            .await?
            .into_iter()
            .filter_map(|s| s.labels.get("__name__").cloned())
            .collect()
    };
    Ok(needs
        .into_iter()
        .map(|(detector, needs)| {
            let missing = needs.metrics().difference(&present).cloned().collect();
            let can_fire = needs.met_by(&present);
            Readiness {
                detector,
                needs,
                missing,
                can_fire,
            }
        })
        .collect())
}

/// What a query needs to return anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    Metric(String),
    All(Vec<Needs>),
    Any(Vec<Needs>),
}

impl Needs {
    /// From a PromQL query; None when it does not parse (lint reports that).
    pub fn of_query(query: &str) -> Option<Needs> {
        crate::limits::parse_promql(query)
            .ok()
            .map(|e| needs(&e).simplified())
    }

    /// Every metric name mentioned.
    pub fn metrics(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut BTreeSet<String>) {
        match self {
            Needs::Metric(m) => {
                out.insert(m.clone());
            }
            Needs::All(v) | Needs::Any(v) => v.iter().for_each(|n| n.collect(out)),
        }
    }

    /// Whether the metrics `present` are enough to return anything.
    pub fn met_by(&self, present: &BTreeSet<String>) -> bool {
        match self {
            Needs::Metric(m) => present.contains(m),
            Needs::All(v) => v.iter().all(|n| n.met_by(present)),
            Needs::Any(v) => v.is_empty() || v.iter().any(|n| n.met_by(present)),
        }
    }

    /// Nested lists of one kind flattened, single members unwrapped,
    /// repeats removed (a query often names a metric three times).
    fn simplified(self) -> Needs {
        match self {
            Needs::Metric(_) => self,
            Needs::All(v) => flatten(v, true),
            Needs::Any(v) => flatten(v, false),
        }
    }
}

fn flatten(v: Vec<Needs>, all: bool) -> Needs {
    let mut out: Vec<Needs> = Vec::new();
    for n in v.into_iter().map(Needs::simplified) {
        let members = match n {
            Needs::All(inner) if all => inner,
            Needs::Any(inner) if !all => inner,
            other => vec![other],
        };
        for m in members {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    // Absorption: `a or (a and b)` is `a`, and `a and (a or b)` is `a`.
    let snapshot = out.clone();
    out.retain(|m| match m {
        Needs::All(inner) if !all => !inner.iter().any(|x| snapshot.contains(x)),
        Needs::Any(inner) if all => !inner.iter().any(|x| snapshot.contains(x)),
        _ => true,
    });
    if out.len() == 1 {
        out.remove(0)
    } else if all {
        Needs::All(out)
    } else {
        Needs::Any(out)
    }
}

fn needs(e: &Expr) -> Needs {
    match e {
        Expr::VectorSelector(v) => v.name.clone().map_or(Needs::All(vec![]), Needs::Metric),
        Expr::MatrixSelector(m) => m.vs.name.clone().map_or(Needs::All(vec![]), Needs::Metric),
        Expr::Aggregate(a) => needs(&a.expr),
        Expr::Unary(u) => needs(&u.expr),
        Expr::Paren(p) => needs(&p.expr),
        Expr::Subquery(s) => needs(&s.expr),
        // absent() fires when its input is missing: it needs nothing.
        Expr::Call(c) if c.func.name.starts_with("absent") => Needs::All(vec![]),
        Expr::Call(c) => Needs::All(c.args.args.iter().map(|a| needs(a)).collect()),
        Expr::Binary(b) => match b.op.to_string().as_str() {
            "or" => Needs::Any(vec![needs(&b.lhs), needs(&b.rhs)]),
            "unless" => needs(&b.lhs),
            _ => Needs::All(vec![needs(&b.lhs), needs(&b.rhs)]),
        },
        _ => Needs::All(vec![]),
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, v: &[Needs], sep: &str| -> fmt::Result {
            for (i, n) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, "{sep}")?;
                }
                match n {
                    Needs::Metric(_) => write!(f, "{n}")?,
                    _ => write!(f, "({n})")?,
                }
            }
            Ok(())
        };
        match self {
            Needs::Metric(m) => write!(f, "`{m}`"),
            Needs::All(v) if v.is_empty() => write!(f, "nothing"),
            Needs::All(v) => list(f, v, " and "),
            Needs::Any(v) => list(f, v, " or "),
        }
    }
}

/// Where a metric usually comes from, by its prefix, for people setting up
/// the exporters.
pub fn source_of(metric: &str) -> &'static str {
    const SOURCES: &[(&str, &str)] = &[
        ("container_", "the kubelet's cAdvisor"),
        ("kube_", "kube-state-metrics"),
        ("kubelet_", "the kubelet"),
        ("node_", "node-exporter"),
        ("certmanager_", "cert-manager"),
        (
            "http_server_",
            "the service (OpenTelemetry HTTP server metrics)",
        ),
        (
            "db_client_",
            "the service (OpenTelemetry database client metrics)",
        ),
    ];
    SOURCES
        .iter()
        .find(|(p, _)| metric.starts_with(p))
        .map_or("the service or a custom exporter", |(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn or_is_a_choice_and_is_the_rest_needs_all() {
        let n = Needs::of_query(
            "(max by (node) (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 0.9) or (max by (node) (kube_node_status_condition{condition=\"MemoryPressure\"}) > 0)",
        )
        .unwrap();
        assert_eq!(
            n.to_string(),
            "(`node_memory_MemAvailable_bytes` and `node_memory_MemTotal_bytes`) or `kube_node_status_condition`"
        );
        assert!(n.met_by(&set(&["kube_node_status_condition"])));
        assert!(n.met_by(&set(&[
            "node_memory_MemAvailable_bytes",
            "node_memory_MemTotal_bytes"
        ])));
        assert!(!n.met_by(&set(&["node_memory_MemTotal_bytes"])));
    }

    #[test]
    fn repeats_fold_and_unless_and_absent_need_less() {
        let n = Needs::of_query(
            "rate(a_total[5m]) / rate(a_total[5m] offset 1h) > 2 and on (pod) max by (pod) (b) unless c",
        )
        .unwrap();
        assert_eq!(n.to_string(), "`a_total` and `b`");
        assert_eq!(n.metrics(), set(&["a_total", "b"]));
        let absorbed = Needs::of_query("(a < 1) or (a - time() and on (x) b > 2)").unwrap();
        assert_eq!(absorbed.to_string(), "`a`");
        let absent = Needs::of_query("absent(up{job=\"x\"})").unwrap();
        assert!(absent.met_by(&set(&[])));
        assert!(Needs::of_query("sum(").is_none());
    }

    #[test]
    fn sources_by_prefix() {
        assert_eq!(
            source_of("container_cpu_usage_seconds_total"),
            "the kubelet's cAdvisor"
        );
        assert_eq!(source_of("queue_depth"), "the service or a custom exporter");
    }
}
