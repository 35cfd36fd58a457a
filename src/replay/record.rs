//! `medic record`: a fixture from a live Prometheus, so a real incident
//! becomes a test. Raw samples are laid on the fixture's sample grid and
//! written in the input_series notation (runs of equal values folded).

use super::fixture::{Expect, Fixture, SeriesSpec};
use super::series::compress_values;
use crate::metrics::{MetricsError, PrometheusMetrics, SeriesRange};
use crate::model::{Secs, Timestamp};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("`--to` must be after `--from`")]
    Window,
    #[error("no series matched {0:?} between the two times")]
    Empty(Vec<String>),
}

pub struct RecordRequest {
    pub name: String,
    pub selectors: Vec<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Sample spacing; inferred from the data when None.
    pub interval: Option<i64>,
}

/// The most common spacing between consecutive samples, at least 1s.
fn infer_interval(series: &[SeriesRange]) -> i64 {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for s in series {
        for w in s.samples.windows(2) {
            *counts.entry((w[1].0 - w[0].0).max(1)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(gap, n)| (*n, -gap))
        .map_or(15, |(gap, _)| gap)
}

fn selector_text(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// Reads the selected series and lays them out as a fixture (no cluster
/// objects, no expectations: the recorder fills those in). Also returns
/// each series' labels, which name the objects to record with them.
pub async fn record(
    metrics: &PrometheusMetrics,
    req: &RecordRequest,
) -> Result<(Fixture, Vec<BTreeMap<String, String>>), RecordError> {
    if req.to <= req.from {
        return Err(RecordError::Window);
    }
    let mut all = Vec::new();
    for sel in &req.selectors {
        all.extend(metrics.raw_samples(sel, req.from, req.to).await?);
    }
    all.sort_by_cached_key(|s| selector_text(&s.labels));
    all.dedup_by(|a, b| a.labels == b.labels);
    if all.is_empty() {
        return Err(RecordError::Empty(req.selectors.clone()));
    }
    let interval = req.interval.unwrap_or_else(|| infer_interval(&all)).max(1);
    let slots = ((req.to - req.from) / interval) as usize + 1;
    let series = all
        .iter()
        .map(|s| {
            let mut values = vec![None; slots];
            for (t, v) in &s.samples {
                let slot = (t - req.from + interval / 2).div_euclid(interval);
                if let Some(cell) = usize::try_from(slot).ok().and_then(|i| values.get_mut(i)) {
                    *cell = Some(*v);
                }
            }
            SeriesSpec {
                series: selector_text(&s.labels),
                values: compress_values(&values),
            }
        })
        .collect();
    let labels = all.into_iter().map(|s| s.labels).collect();
    let fixture = Fixture {
        approvals: Vec::new(),
        name: req.name.clone(),
        description: format!(
            "Recorded from Prometheus: {} from {} to {} (unix seconds).",
            req.selectors.join(", "),
            req.from,
            req.to
        ),
        tags: BTreeMap::new(),
        interval: Secs(interval),
        duration: Secs(req.to - req.from),
        history: None,
        start: Some(req.from),
        series,
        cluster: Vec::new(),
        events: Vec::new(),
        llm: Vec::new(),
        logs: BTreeMap::new(),
        topology: Vec::new(),
        detectors: Vec::new(),
        config: None,
        expect: Expect::default(),
    };
    Ok((fixture, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_the_common_spacing_and_writes_selectors() {
        let s = SeriesRange {
            labels: BTreeMap::from([
                ("__name__".to_string(), "up".to_string()),
                ("job".to_string(), "a\"b".to_string()),
            ]),
            samples: vec![(0, 1.0), (15, 1.0), (30, 1.0), (60, 1.0)],
        };
        assert_eq!(infer_interval(std::slice::from_ref(&s)), 15);
        assert_eq!(selector_text(&s.labels), r#"up{job="a\"b"}"#);
    }
}
