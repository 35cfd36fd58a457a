//! Evaluating detectors against the `Metrics` port.
//!
//! The live loop asks for each detector's value now; replay asks once for the
//! whole window with a range query. Both produce the same observations per
//! evaluation time, so the tracker downstream cannot tell them apart.

use super::Detector;
use super::anomaly::AnomalySpec;
use crate::metrics::{Metrics, MetricsError, SeriesRange};
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

/// Evaluates every detector at `at`: an instant query each, or for an
/// anomaly detector one range query over its baseline at `step`.
pub async fn observe_at(
    metrics: &dyn Metrics,
    detectors: &[Detector],
    at: Timestamp,
    step: i64,
) -> BTreeMap<String, DetectorOutcome> {
    let mut out = BTreeMap::new();
    for d in detectors {
        let result = match &d.spec.anomaly {
            None => metrics.instant(&d.spec.query, at).await.map(|series| {
                series
                    .into_iter()
                    .filter(|s| s.value.is_finite())
                    .map(|s| Observation {
                        labels: s.labels,
                        value: s.value,
                    })
                    .collect()
            }),
            Some(anomaly) => {
                let step = step.max(1);
                metrics
                    .range(&d.spec.query, at - anomaly.lookback(step), at, step)
                    .await
                    .map(|ranges| {
                        anomalies(anomaly, &ranges, &[at])
                            .remove(&at)
                            .unwrap_or_default()
                    })
            }
        };
        let outcome = match result {
            Ok(list) => DetectorOutcome::Ok(list),
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
    let step = step.max(1);
    let mut times = Vec::new();
    let mut t = start;
    while t <= end {
        times.push(t);
        t += step;
    }
    let mut by_time: BTreeMap<Timestamp, BTreeMap<String, DetectorOutcome>> = BTreeMap::new();
    for &t in &times {
        let slot = by_time.entry(t).or_default();
        for d in detectors {
            slot.insert(d.name.clone(), DetectorOutcome::Ok(Vec::new()));
        }
    }
    for d in detectors {
        let per_time = match &d.spec.anomaly {
            None => {
                let ranges = metrics.range(&d.spec.query, start, end, step).await?;
                let mut per_time: BTreeMap<Timestamp, Vec<Observation>> = BTreeMap::new();
                for series in ranges {
                    for (at, value) in series.samples {
                        if value.is_finite() {
                            per_time.entry(at).or_default().push(Observation {
                                labels: series.labels.clone(),
                                value,
                            });
                        }
                    }
                }
                per_time
            }
            Some(anomaly) => {
                let back = anomaly.lookback(step);
                let ranges = metrics
                    .range(&d.spec.query, start - back, end, step)
                    .await?;
                anomalies(anomaly, &ranges, &times)
            }
        };
        for (at, list) in per_time {
            if let Some(DetectorOutcome::Ok(slot)) =
                by_time.get_mut(&at).and_then(|m| m.get_mut(&d.name))
            {
                *slot = list;
            }
        }
    }
    Ok(by_time)
}

/// The series that are anomalous at each of `times`: pure, shared by the
/// live loop (one time) and replay (every time of the window).
pub fn anomalies(
    spec: &AnomalySpec,
    ranges: &[SeriesRange],
    times: &[Timestamp],
) -> BTreeMap<Timestamp, Vec<Observation>> {
    let mut out: BTreeMap<Timestamp, Vec<Observation>> = BTreeMap::new();
    let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else {
        return out;
    };
    for series in ranges {
        let flags = spec.plain_flags(&series.samples, first..=last);
        for &at in times {
            if let Some((value, score)) = spec.score_flagged(&series.samples, &flags, at)
                && spec.is_anomalous(value, &score)
            {
                out.entry(at).or_default().push(Observation {
                    labels: series.labels.clone(),
                    value,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SeriesValue;
    use crate::signal::DetectorSpec;
    use std::sync::Mutex;

    /// Answers range queries from fixed samples and records every request.
    struct Recorded {
        series: Vec<SeriesRange>,
        requests: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Metrics for Recorded {
        async fn instant(
            &self,
            query: &str,
            at: Timestamp,
        ) -> Result<Vec<SeriesValue>, MetricsError> {
            self.requests
                .lock()
                .unwrap()
                .push(format!("instant {query} @{at}"));
            Ok(Vec::new())
        }
        async fn range(
            &self,
            query: &str,
            start: Timestamp,
            end: Timestamp,
            step: i64,
        ) -> Result<Vec<SeriesRange>, MetricsError> {
            self.requests
                .lock()
                .unwrap()
                .push(format!("range {query} [{start}, {end}] step {step}"));
            Ok(self
                .series
                .iter()
                .map(|s| SeriesRange {
                    labels: s.labels.clone(),
                    samples: s
                        .samples
                        .iter()
                        .filter(|(t, _)| *t >= start && *t <= end && (t - start) % step == 0)
                        .copied()
                        .collect(),
                })
                .collect())
        }
    }

    fn detector() -> Detector {
        let spec: DetectorSpec = serde_yaml::from_str(
            "{severity: high, query: rps, target: {kind: Pod, namespace: ns, name: '{{ pod }}'}, anomaly: {baseline: 10m, skip: 2m, direction: down}}",
        )
        .unwrap();
        Detector {
            name: "rps_drop".into(),
            spec,
        }
    }

    fn series(pod: &str, values: impl Fn(i64) -> f64) -> SeriesRange {
        SeriesRange {
            labels: BTreeMap::from([("pod".to_string(), pod.to_string())]),
            samples: (0..=60).map(|i| (1000 + i * 30, values(i))).collect(),
        }
    }

    fn metrics() -> Recorded {
        Recorded {
            series: vec![
                // Steady with a small wobble, then a drop to a quarter at i = 40.
                series("a", |i| if i < 40 { 100.0 + (i % 3) as f64 } else { 25.0 }),
                series("b", |i| 50.0 + (i % 5) as f64),
            ],
            requests: Mutex::new(Vec::new()),
        }
    }

    #[tokio::test]
    async fn live_asks_one_range_query_over_the_baseline_and_scores_the_newest_sample() {
        let m = metrics();
        let at = 1000 + 45 * 30;
        let out = observe_at(&m, &[detector()], at, 30).await;
        assert_eq!(
            *m.requests.lock().unwrap(),
            // Twice the 10m baseline and 2m skip: the baseline's own
            // samples are judged against theirs.
            vec![format!("range rps [{}, {at}] step 30", at - 1440)]
        );
        let DetectorOutcome::Ok(list) = &out["rps_drop"] else {
            panic!("{out:?}")
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].labels["pod"], "a");
        assert_eq!(list[0].value, 25.0);
    }

    #[tokio::test]
    async fn replay_and_live_see_the_same_anomalies_at_every_step() {
        let m = metrics();
        let (start, end) = (1000 + 20 * 30, 1000 + 60 * 30);
        let replay = observe_range(&m, &[detector()], start, end, 30)
            .await
            .unwrap();
        assert_eq!(
            m.requests.lock().unwrap()[0],
            format!("range rps [{}, {end}] step 30", start - 1440)
        );
        let mut fired = Vec::new();
        for (at, outcomes) in &replay {
            let live = observe_at(&m, &[detector()], *at, 30).await;
            assert_eq!(live, *outcomes, "at {at}");
            if let DetectorOutcome::Ok(list) = &outcomes["rps_drop"]
                && !list.is_empty()
            {
                fired.push(*at);
            }
        }
        // From the drop until it is inside the baseline's later half.
        assert_eq!(fired.first(), Some(&(1000 + 40 * 30)));
        assert!(fired.len() >= 10, "{fired:?}");
    }
}
