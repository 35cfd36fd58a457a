//! The `Metrics` port: PromQL instant and range queries at a given time.

mod connection;
pub mod prometheus;

pub use connection::{BasicAuth, PrometheusConfig};
pub use prometheus::PrometheusMetrics;

use crate::model::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid Prometheus URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("query `{query}` failed: {reason}")]
    Query { query: String, reason: String },
}

/// One series of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesValue {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One series of a range query: samples at each evaluation step.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRange {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<(Timestamp, f64)>,
}

#[async_trait]
pub trait Metrics: Send + Sync {
    async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<SeriesValue>, MetricsError>;

    async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: i64,
    ) -> Result<Vec<SeriesRange>, MetricsError>;
}
