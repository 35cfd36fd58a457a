//! The recorded-incident file: series, cluster objects, change events,
//! topology, extra detectors, config overrides, and what must happen.

use super::llm_server::RecordedAnswer;
use super::series::{Series, expand_values, parse_selector};
use crate::cluster::{ChangeEvent, ClusterObject};
use crate::model::{ObjectRef, Secs, Timestamp};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Replay time 0, unless a fixture sets `start`: 2024-01-01T00:00:00Z. Fixed,
/// so absolute values (certificate expiry timestamps) can be written.
pub const DEFAULT_START: Timestamp = 1_704_067_200;

/// The most samples (evaluation steps x series) a fixture may hold: 30
/// days at 30 s for 230 series. Past it, loading and backfilling would take
/// gigabytes; the fixture is refused before anything is expanded.
pub const MAX_SAMPLES: u64 = 20_000_000;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}{location}: {field}{message}")]
    Invalid {
        path: String,
        location: String,
        field: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Free-form labels (e.g. `fault_type`) that reports group by.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Spacing of the samples in `series`.
    pub interval: Secs,
    /// The replay runs from 0 to this.
    pub duration: Secs,
    /// The first part of the recording that medic does not watch: it is in
    /// Prometheus when medic starts, as a cluster's history is (a container
    /// seen giving memory back an hour ago, a disk rotated before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Secs>,
    /// Unix time of replay time 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    pub series: Vec<SeriesSpec>,
    /// The cluster's objects at time 0, as the API server returns them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub cluster: Vec<serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventSpec>,
    /// Recorded answers for LLM-assisted diagnosis, served in order by a
    /// loopback OpenAI-compatible endpoint; their presence turns the LLM on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub llm: Vec<RecordedAnswer>,
    /// Recorded pod logs, `Pod/namespace/name: text`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub logs: std::collections::BTreeMap<ObjectRef, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology: Vec<Edge>,
    /// Detector documents used instead of the shipped ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<serde_json::Value>")]
    pub detectors: Vec<serde_yaml::Value>,
    /// A partial medic.yaml laid over the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub config: Option<serde_yaml::Value>,
    /// People's answers to approval requests, given at their time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<FixtureAnswer>,
    pub expect: Expect,
}

/// `approvals:` in a fixture: someone answers the request waiting at `step`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixtureAnswer {
    pub at: Secs,
    /// The playbook step index the request is for.
    pub step: usize,
    pub by: String,
    pub decision: FixtureDecision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FixtureDecision {
    Approve,
    Deny,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    pub series: String,
    pub values: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// Offset from time 0; negative is before the window.
    pub at: Secs,
    pub kind: String,
    pub object: ObjectRef,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    pub from: ObjectRef,
    pub to: ObjectRef,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// When the fault began: signals whose condition began earlier are not
    /// its own (time to detect, the incident under test, false incidents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<Secs>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<ExpectSignal>,
    /// Signals that must never fire: a detector by name, on one target or
    /// (without `target`) on any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_signals: Vec<ExpectNoSignal>,
    /// The root cause of the incident under test: the one holding the first
    /// signal to fire of those whose condition began at or after `onset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<ObjectRef>,
    /// Faults injected before `onset` whose effects the recording may hold
    /// (fault-injection data injects one every few minutes). An incident
    /// whose signals all began before `onset`, but after one of these, and
    /// that names its root cause among its candidates, is that fault's:
    /// counted apart from the false incidents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_faults: Vec<EarlierFault>,
    /// Actions taken, in this order (all incidents, by time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_actions: Vec<String>,
    /// kube-prometheus alerts medic must see the fault before: replay
    /// evaluates each rule over the fixture (`reference/kube-prometheus-rules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beats: Vec<String>,
    /// Where steps stand at the end (earned autonomy, `medic trust`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust: Vec<ExpectStanding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalations: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incidents: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Secs>,
    /// No incident may resolve before this: the fault lasts until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_after: Option<Secs>,
}

/// `expect.earlier_faults`: a fault injected before the one under test.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EarlierFault {
    /// When it was injected, from the fixture's start (negative: before it).
    pub onset: Secs,
    pub root_cause: ObjectRef,
}

/// `expect.trust`: a playbook step's standing when the replay ends.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectStanding {
    pub playbook: String,
    pub step: usize,
    /// `bounded`, `earned`, `asks` or `demoted`.
    pub standing: StandingLabel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StandingLabel {
    Bounded,
    Earned,
    Asks,
    Demoted,
}

impl StandingLabel {
    pub fn name(self) -> &'static str {
        match self {
            StandingLabel::Bounded => "bounded",
            StandingLabel::Earned => "earned",
            StandingLabel::Asks => "asks",
            StandingLabel::Demoted => "demoted",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSignal {
    pub signal: String,
    pub target: ObjectRef,
    #[serde(default)]
    pub by: Option<Secs>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectNoSignal {
    pub signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ObjectRef>,
}

/// The kinds of change a fixture's `events` may record.
pub const EVENT_KINDS: &[&str] = &["deploy", "rollback", "restart", "scale", "drain", "config"];

/// Mistakes that would otherwise pass silently and change what a replay
/// shows: a duration with no unit, an expectation past the end of the
/// recording, an action or event kind that does not exist, a lower-case
/// object kind.
fn check_strictly(
    text: &str,
    fixture: &Fixture,
    at: &dyn Fn(&str, String) -> FixtureError,
) -> Result<(), FixtureError> {
    if let Ok(raw) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        for field in ["interval", "duration", "history"] {
            if let Some(n) = raw.get(field).filter(|v| v.is_number()) {
                return Err(at(
                    field,
                    format!(
                        "`{}` has no unit: write {}s or {}m",
                        yaml_text(n),
                        yaml_text(n),
                        yaml_text(n)
                    ),
                ));
            }
        }
    }
    let duration = fixture.duration.0;
    let e = &fixture.expect;
    let past = |field: &str, value: i64| -> Result<(), FixtureError> {
        if value > duration {
            return Err(at(
                field,
                format!(
                    "{} is after the recording ends ({})",
                    crate::model::format_secs(value),
                    crate::model::format_secs(duration)
                ),
            ));
        }
        Ok(())
    };
    if let Some(onset) = e.onset {
        past("expect.onset", onset.0)?;
    }
    for (i, s) in e.signals.iter().enumerate() {
        if let Some(by) = s.by {
            past(&format!("expect.signals[{i}].by"), by.0)?;
        }
    }
    for (i, a) in fixture.approvals.iter().enumerate() {
        past(&format!("approvals[{i}].at"), a.at.0)?;
    }
    let lists = [
        ("expect.actions", e.actions.as_deref().unwrap_or_default()),
        ("expect.not_actions", &e.not_actions[..]),
    ];
    for (field, names) in lists {
        for (i, name) in names.iter().enumerate() {
            if crate::act::Action::from_name(name).is_none() {
                let hint = crate::act::catalog::nearest_action(name)
                    .map(|n| format!(" (did you mean {n}?)"))
                    .unwrap_or_default();
                return Err(at(
                    &format!("{field}[{i}]"),
                    format!("no action named `{name}`{hint}"),
                ));
            }
        }
    }
    for (i, ev) in fixture.events.iter().enumerate() {
        if !EVENT_KINDS.contains(&ev.kind.as_str()) {
            return Err(at(
                &format!("events[{i}].kind"),
                format!(
                    "`{}` is not a kind of change: one of {}",
                    ev.kind,
                    EVENT_KINDS.join(", ")
                ),
            ));
        }
    }
    let objects = fixture
        .events
        .iter()
        .enumerate()
        .map(|(i, ev)| (format!("events[{i}].object"), &ev.object))
        .chain(
            e.root_cause
                .iter()
                .map(|r| ("expect.root_cause".to_string(), r)),
        )
        .chain(
            e.signals
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("expect.signals[{i}].target"), &s.target)),
        );
    for (field, object) in objects {
        if !object.kind.starts_with(|c: char| c.is_ascii_uppercase()) {
            let mut fixed = object.kind.clone();
            if let Some(first) = fixed.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            return Err(at(
                &field,
                format!(
                    "`{}`: kinds are written as Kubernetes writes them (did you mean {fixed}?)",
                    object
                ),
            ));
        }
    }
    Ok(())
}

fn yaml_text(v: &serde_yaml::Value) -> String {
    serde_yaml::to_string(v)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A fixture with its series expanded and objects checked.
#[derive(Debug)]
pub struct Loaded {
    pub path: String,
    /// The document as written, except `cluster`, which is moved into
    /// `objects` once checked.
    pub fixture: Fixture,
    pub start: Timestamp,
    pub series: Vec<Series>,
    pub objects: Vec<ClusterObject>,
    pub changes: Vec<ChangeEvent>,
}

impl Loaded {
    pub fn load(path: &Path) -> Result<Loaded, FixtureError> {
        let display = path.display().to_string();
        let text = crate::yaml::read_limited(path).map_err(|source| FixtureError::Io {
            path: display.clone(),
            source,
        })?;
        Self::parse(&text, &display)
    }

    pub fn parse(text: &str, path: &str) -> Result<Loaded, FixtureError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let mut fixture: Fixture = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            FixtureError::Invalid {
                path: path.to_string(),
                location: inner
                    .location()
                    .map(|l| format!(":{}:{}", l.line(), l.column()))
                    .unwrap_or_default(),
                field: if field == "." {
                    String::new()
                } else {
                    format!("{field}: ")
                },
                message: crate::yaml::tidy_serde_message(&inner.to_string()),
            }
        })?;
        // Indexed only when there is an error to place: on a large recorded
        // cluster the index is several times the size of the file.
        let at = |field: &str, message: String| {
            let loc = crate::yaml::Positions::index(text)
                .locate(field)
                .map(|p| format!(":{}:{}", p.line, p.column))
                .unwrap_or_default();
            FixtureError::Invalid {
                path: path.to_string(),
                location: loc,
                field: format!("{field}: "),
                message,
            }
        };
        for (field, value) in [
            ("interval", fixture.interval.0),
            ("duration", fixture.duration.0),
        ] {
            if value <= 0 {
                return Err(at(field, "must be positive".into()));
            }
        }
        if fixture
            .history
            .is_some_and(|h| h.0 < 0 || h.0 >= fixture.duration.0)
        {
            return Err(at(
                "history",
                "must be at least 0 and shorter than duration".into(),
            ));
        }
        let steps = (fixture.duration.0 / fixture.interval.0) as u64 + 1;
        let samples = steps.saturating_mul(fixture.series.len().max(1) as u64);
        if samples > MAX_SAMPLES {
            return Err(at(
                "duration",
                format!(
                    "{steps} steps of {}s x {} series is {samples} samples; a fixture holds at most {MAX_SAMPLES} (shorten duration, lengthen interval, or split the recording)",
                    fixture.interval.0,
                    fixture.series.len().max(1),
                ),
            ));
        }
        check_strictly(text, &fixture, &at)?;
        let known = super::rules::all();
        for (i, alert) in fixture.expect.beats.iter().enumerate() {
            if !known.iter().any(|r| &r.alert == alert) {
                return Err(at(
                    &format!("expect.beats[{i}]"),
                    format!("no kube-prometheus alert named `{alert}`"),
                ));
            }
        }
        let start = fixture.start.unwrap_or(DEFAULT_START);
        let mut series = Vec::with_capacity(fixture.series.len());
        for (i, s) in fixture.series.iter().enumerate() {
            let (name, labels) = parse_selector(&s.series)
                .map_err(|e| at(&format!("series[{i}].series"), e.to_string()))?;
            let values = expand_values(&s.values, MAX_SAMPLES as usize)
                .map_err(|e| at(&format!("series[{i}].values"), e.to_string()))?;
            series.push(Series {
                name,
                labels,
                values,
            });
        }
        // Moved, not copied: a recorded cluster can hold thousands of objects,
        // and nothing reads them from the fixture again.
        let cluster = std::mem::take(&mut fixture.cluster);
        let mut objects = Vec::with_capacity(cluster.len());
        for (i, v) in cluster.into_iter().enumerate() {
            objects.push(
                ClusterObject::from_value(v)
                    .map_err(|e| at(&format!("cluster[{i}]"), e.to_string()))?,
            );
        }
        let changes = fixture
            .events
            .iter()
            .map(|e| ChangeEvent {
                at: start + e.at.0,
                kind: e.kind.clone(),
                object: e.object.clone(),
                message: e.message.clone(),
            })
            .collect();
        Ok(Loaded {
            path: path.to_string(),
            fixture,
            start,
            series,
            objects,
            changes,
        })
    }

    /// The fixture's extra detectors as lintable sources.
    pub fn detector_sources(&self) -> Vec<(String, String)> {
        self.fixture
            .detectors
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    format!("{}#detectors[{i}]", self.path),
                    serde_yaml::to_string(d).unwrap_or_default(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name: t
interval: 15s
duration: 10m
series:
  - {series: 'up{job="a"}', values: '1x40'}
events:
  - {at: -47m, kind: deploy, object: Deployment/p/a, message: "v1 -> v2"}
expect: {incidents: 0}
"#;

    #[test]
    fn loads_and_expands() {
        let l = Loaded::parse(MINIMAL, "t.yaml").unwrap();
        assert_eq!(l.series[0].values.len(), 41);
        assert_eq!(l.changes[0].at, DEFAULT_START - 47 * 60);
    }

    #[test]
    fn mistakes_that_would_pass_silently_are_errors_with_their_place() {
        let cases = [
            (
                "duration: 10m",
                "duration: 40",
                "duration: `40` has no unit: write 40s or 40m",
            ),
            (
                "expect: {incidents: 0}",
                "expect: {onset: 90m}",
                "expect.onset: 1h30m is after the recording ends (10m)",
            ),
            (
                "expect: {incidents: 0}",
                "expect: {not_actions: [delete_pods]}",
                "expect.not_actions[0]: no action named `delete_pods` (did you mean delete_pod?)",
            ),
            (
                "kind: deploy",
                "kind: deployment",
                "events[0].kind: `deployment` is not a kind of change: one of deploy, rollback",
            ),
            (
                "object: Deployment/p/a",
                "object: deployment/p/a",
                "events[0].object: `deployment/p/a`: kinds are written as Kubernetes writes them (did you mean Deployment?)",
            ),
        ];
        for (from, to, want) in cases {
            let text = MINIMAL.replace(from, to);
            let err = Loaded::parse(&text, "f.yaml").unwrap_err().to_string();
            assert!(err.starts_with("f.yaml:"), "{err}");
            assert!(err.contains(want), "{want}\n{err}");
        }
    }

    #[test]
    fn a_fixture_too_large_to_replay_is_refused_before_loading() {
        let huge = MINIMAL.replace("duration: 10m", "duration: 5000d");
        let err = Loaded::parse(&huge, "huge.yaml").unwrap_err().to_string();
        assert!(err.starts_with("huge.yaml:"), "{err}");
        assert!(
            err.contains("duration") && err.contains("at most 20000000"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = MINIMAL.replace("'1x40'", "'1x40 oops'");
        let e = Loaded::parse(&bad, "t.yaml").unwrap_err().to_string();
        assert_eq!(
            e,
            "t.yaml:6:29: series[0].values: values item `oops`: not a number"
        );
        let bad = MINIMAL.replace("duration", "duratoin");
        let e = Loaded::parse(&bad, "t.yaml").unwrap_err().to_string();
        assert!(
            e.starts_with("t.yaml:4:1: duratoin: unknown field `duratoin`"),
            "{e}"
        );
    }
}
