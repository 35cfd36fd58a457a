//! Evaluating detectors against the `Metrics` port.
//!
//! The live loop asks for each detector's value now; replay asks once for the
//! whole window with a range query. Both produce the same observations per
//! evaluation time, so the tracker downstream cannot tell them apart.

use super::Detector;
use crate::metrics::{Metrics, MetricsError};
use crate::model::Timestamp;
use std::collections::BTreeMap;

/// One series a detector's query returned at one evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// What one detector gave at one evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorOutcome {
    Ok(Vec<Observation>),
    /// The query failed: the tracker holds this detector's signals as they
    /// are, neither firing new ones nor clearing old ones.
    Failed(String),
}

/// Evaluates every detector at `at` with instant queries.
pub async fn observe_at(
    metrics: &dyn Metrics,
    detectors: &[Detector],
    at: Timestamp,
) -> BTreeMap<String, DetectorOutcome> {
    let mut out = BTreeMap::new();
    for d in detectors {
        let outcome = match metrics.instant(&d.spec.query, at).await {
            Ok(series) => DetectorOutcome::Ok(
                series
                    .into_iter()
                    .filter(|s| s.value.is_finite())
                    .map(|s| Observation {
                        labels: s.labels,
                        value: s.value,
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(detector = %d.name, error = %e, "detector query failed");
                DetectorOutcome::Failed(e.to_string())
            }
        };
        out.insert(d.name.clone(), outcome);
    }
    out
}

/// Evaluates every detector over `[start, end]` at `step` with one range
/// query each; returns the outcomes per evaluation time.
pub async fn observe_range(
    metrics: &dyn Metrics,
    detectors: &[Detector],
    start: Timestamp,
    end: Timestamp,
    step: i64,
) -> Result<BTreeMap<Timestamp, BTreeMap<String, DetectorOutcome>>, MetricsError> {
    let mut by_time: BTreeMap<Timestamp, BTreeMap<String, DetectorOutcome>> = BTreeMap::new();
    let mut t = start;
    while t <= end {
        let slot = by_time.entry(t).or_default();
        for d in detectors {
            slot.insert(d.name.clone(), DetectorOutcome::Ok(Vec::new()));
        }
        t += step;
    }
    for d in detectors {
        let ranges = metrics.range(&d.spec.query, start, end, step).await?;
        for series in ranges {
            for (at, value) in series.samples {
                if !value.is_finite() {
                    continue;
                }
                if let Some(DetectorOutcome::Ok(list)) =
                    by_time.get_mut(&at).and_then(|m| m.get_mut(&d.name))
                {
                    list.push(Observation {
                        labels: series.labels.clone(),
                        value,
                    });
                }
            }
        }
    }
    Ok(by_time)
}
