//! Signals: what a detector saw, on which object, since when.

mod alerts;
pub mod anomaly;
pub mod coverage;
mod detector;
pub mod inputs;
mod observe;
pub mod reference;
mod tracker;

pub use alerts::{AlertEvent, WebhookAlert, WebhookPayload, from_webhook, raised_by_alerts};
pub use detector::{Detector, DetectorSpec, TargetTemplate, resource_names};
pub use observe::{DetectorOutcome, Observation, anomalies, observe_at, observe_range};
pub use tracker::{SignalEvent, SignalTracker, Unseen};

use crate::model::{ObjectRef, Severity, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// A detector firing for one target.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Signal {
    /// The detector's name, e.g. `memory_leak`.
    pub name: String,
    pub target: ObjectRef,
    pub severity: Severity,
    /// The query's value when the signal fired (its unit is the detector's).
    pub value: f64,
    /// Labels of the series that fired, for templates and evidence.
    pub labels: BTreeMap<String, String>,
    /// When the condition first held (start of `for`).
    pub onset: Timestamp,
    /// When it had held for `for` and became a signal.
    pub fired_at: Timestamp,
    /// The value when the condition first held.
    pub onset_value: f64,
    /// The largest value while it was pending.
    pub peak: f64,
    /// Change of the value per minute from onset to firing.
    pub slope_per_min: f64,
    /// Raised by an Alertmanager alert, not by a detector's query: the
    /// alert's resolution, not the query, says whether it still holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_alert: bool,
}
