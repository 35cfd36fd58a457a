//! The production adapter, also used by replay against a loaded Prometheus.

use super::{Metrics, MetricsError, SeriesRange, SeriesValue};
use crate::model::Timestamp;
use async_trait::async_trait;
use prometheus_http_query::Client;
use prometheus_http_query::response::Data;
use std::collections::BTreeMap;

pub struct PrometheusMetrics {
    client: Client,
}

impl PrometheusMetrics {
    /// With a prepared HTTP client (auth headers, TLS settings).
    pub fn with_client(http: reqwest::Client, url: &str) -> Result<Self, MetricsError> {
        let client = Client::from(http, url).map_err(|e| MetricsError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { client })
    }

    pub fn new(url: &str) -> Result<Self, MetricsError> {
        let client = Client::try_from(url).map_err(|e| MetricsError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { client })
    }
}

impl PrometheusMetrics {
    /// The raw samples of every series `selector` matches in `[start, end]`,
    /// as stored (no evaluation step): what `medic record` writes down.
    pub async fn raw_samples(
        &self,
        selector: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<SeriesRange>, MetricsError> {
        let query = format!("{selector}[{}s]", (end - start).max(1));
        let result = self
            .client
            .query(&query)
            .at(end)
            .get()
            .await
            .map_err(|e| query_error(&query, e))?;
        matrix(&query, result.data())
    }
}

/// A range-vector answer as series of (time, value).
pub fn matrix(query: &str, data: &Data) -> Result<Vec<SeriesRange>, MetricsError> {
    match data {
        Data::Matrix(m) => Ok(m
            .iter()
            .map(|r| SeriesRange {
                labels: labels(r.metric()),
                samples: r
                    .samples()
                    .iter()
                    .map(|s| (s.timestamp().round() as Timestamp, s.value()))
                    .collect(),
            })
            .collect()),
        _ => Err(query_error(query, "expected a range vector")),
    }
}

/// An instant answer (a vector, or a scalar as one unlabelled series).
pub fn vector(query: &str, data: &Data) -> Result<Vec<SeriesValue>, MetricsError> {
    match data {
        Data::Vector(v) => Ok(v
            .iter()
            .map(|s| SeriesValue {
                labels: labels(s.metric()),
                value: s.sample().value(),
            })
            .collect()),
        Data::Scalar(s) => Ok(vec![SeriesValue {
            labels: BTreeMap::new(),
            value: s.value(),
        }]),
        Data::Matrix(_) => Err(query_error(
            query,
            "returned a range vector; expected an instant vector",
        )),
    }
}

fn labels(map: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn query_error(query: &str, reason: impl std::fmt::Display) -> MetricsError {
    MetricsError::Query {
        query: query.to_string(),
        reason: reason.to_string(),
    }
}

/// An error with its causes, each said once: a client error alone says
/// "failed to send request", its causes say "connection refused".
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[async_trait]
impl Metrics for PrometheusMetrics {
    async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<SeriesValue>, MetricsError> {
        let result = self
            .client
            .query(query)
            .at(at)
            .get()
            .await
            .map_err(|e| query_error(query, with_causes(&e)))?;
        vector(query, result.data())
    }

    async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: i64,
    ) -> Result<Vec<SeriesRange>, MetricsError> {
        // Prometheus answers at most 11,000 points per series: a longer
        // range is asked for in windows and put back together.
        let mut parts = Vec::new();
        for (from, to) in range_windows(start, end, step) {
            let result = self
                .client
                .query_range(query, from, to, step as f64)
                .get()
                .await
                .map_err(|e| query_error(query, with_causes(&e)))?;
            parts.push(matrix(query, result.data())?);
        }
        Ok(join_windows(parts))
    }
}

/// Points per window, below Prometheus's limit of 11,000 per series.
const WINDOW_POINTS: i64 = 10_000;

/// `[start, end]` at `step` cut into windows of at most `WINDOW_POINTS`
/// evaluation points each, every point in exactly one window.
pub fn range_windows(start: Timestamp, end: Timestamp, step: i64) -> Vec<(Timestamp, Timestamp)> {
    let step = step.max(1);
    let span = (WINDOW_POINTS - 1) * step;
    let mut out = Vec::new();
    let mut from = start;
    loop {
        let to = (from + span).min(end);
        out.push((from, to));
        if to >= end {
            return out;
        }
        from = to + step;
    }
}

/// One answer from the windows' answers: each series' samples in order.
fn join_windows(parts: Vec<Vec<SeriesRange>>) -> Vec<SeriesRange> {
    if parts.len() == 1 {
        return parts.into_iter().flatten().collect();
    }
    let mut joined: BTreeMap<BTreeMap<String, String>, Vec<(Timestamp, f64)>> = BTreeMap::new();
    for part in parts {
        for series in part {
            joined
                .entry(series.labels)
                .or_default()
                .extend(series.samples);
        }
    }
    joined
        .into_iter()
        .map(|(labels, samples)| SeriesRange { labels, samples })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_range_is_cut_into_windows_that_cover_every_point_once() {
        assert_eq!(range_windows(0, 300, 30), vec![(0, 300)]);
        // 30 days at 30 s: 86,401 points.
        let end = 30 * 86_400;
        let windows = range_windows(0, end, 30);
        assert_eq!(windows.len(), 9);
        let mut points = 0;
        let mut next = 0;
        for (from, to) in &windows {
            assert_eq!(*from, next, "a gap or an overlap");
            let n = (to - from) / 30 + 1;
            assert!(n <= WINDOW_POINTS, "{n} points");
            points += n;
            next = to + 30;
        }
        assert_eq!(points, end / 30 + 1);
        assert_eq!(windows.last().unwrap().1, end);
    }

    #[test]
    fn windows_join_into_one_series_each() {
        let s = |pod: &str, samples: Vec<(Timestamp, f64)>| SeriesRange {
            labels: BTreeMap::from([("pod".to_string(), pod.to_string())]),
            samples,
        };
        let joined = join_windows(vec![
            vec![s("a", vec![(0, 1.0)]), s("b", vec![(0, 2.0)])],
            vec![s("b", vec![(30, 3.0)])],
        ]);
        assert_eq!(
            joined,
            vec![s("a", vec![(0, 1.0)]), s("b", vec![(0, 2.0), (30, 3.0)])]
        );
    }
}
