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

fn query_error(query: &str, reason: impl ToString) -> MetricsError {
    MetricsError::Query {
        query: query.to_string(),
        reason: reason.to_string(),
    }
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
            .map_err(|e| query_error(query, e))?;
        vector(query, result.data())
    }

    async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: i64,
    ) -> Result<Vec<SeriesRange>, MetricsError> {
        let result = self
            .client
            .query_range(query, start, end, step as f64)
            .get()
            .await
            .map_err(|e| query_error(query, e))?;
        matrix(query, result.data())
    }
}
