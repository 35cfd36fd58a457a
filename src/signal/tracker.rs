//! Turns observations into signals: `for` before firing, `keepFiringFor`
//! before clearing, one signal per (detector, target). Pure: no I/O, the time
//! is an argument.

use super::{Detector, DetectorOutcome, Signal, TargetTemplate};
use crate::model::{ObjectRef, Timestamp};
use crate::template::{self, Escape, TemplateError};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, PartialEq)]
pub enum SignalEvent {
    Fired(Signal),
    Cleared {
        name: String,
        target: ObjectRef,
        at: Timestamp,
    },
}

#[derive(Debug, Clone)]
struct State {
    target: ObjectRef,
    pending_since: Timestamp,
    last_seen: Timestamp,
    firing: bool,
    onset_value: f64,
    peak: f64,
    /// This evaluation's largest value, and the observation it came from.
    value: f64,
    from: usize,
    /// The labels it fired with (what `holdWhile` is rendered with).
    labels: BTreeMap<String, String>,
    /// Kept firing by the detector's `holdWhile` at least once since it fired.
    held: bool,
}

/// A firing signal its detector's query did not return this time, for the
/// caller to check against the detector's `holdWhile`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unseen {
    pub detector: String,
    pub target: ObjectRef,
    pub labels: BTreeMap<String, String>,
    pub onset: Timestamp,
}

#[derive(Debug, Default)]
pub struct SignalTracker {
    /// By detector, then target key (see `key_into`): an evaluation finds a
    /// known target by a key rendered into a reused buffer, so a steady
    /// cluster allocates nothing per series.
    states: BTreeMap<String, HashMap<String, State, foldhash::fast::RandomState>>,
}

/// A target's key within its detector (whose kind, and whether it has a
/// namespace, are fixed): the namespace, NUL, the name. No Kubernetes name
/// holds a NUL, so a series whose labels would put one in is refused.
fn key_into(
    buf: &mut String,
    target: &TargetTemplate,
    labels: &BTreeMap<String, String>,
) -> Result<(), KeyError> {
    buf.clear();
    if let Some(ns) = &target.namespace {
        template::render_into(buf, ns, labels, Escape::None)?;
    }
    if buf.contains('\0') {
        return Err(KeyError::Nul);
    }
    buf.push('\0');
    let name_at = buf.len();
    template::render_into(buf, &target.name, labels, Escape::None)?;
    if buf[name_at..].contains('\0') {
        return Err(KeyError::Nul);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum KeyError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("a label value holds a NUL character, which no object name can")]
    Nul,
}

/// The object a key names (the inverse of `key_into`).
fn target_of(key: &str, target: &TargetTemplate) -> ObjectRef {
    let (namespace, name) = key.split_once('\0').unwrap_or(("", key));
    ObjectRef {
        kind: target.kind.clone(),
        namespace: target.namespace.as_ref().map(|_| namespace.to_string()),
        name: name.to_string(),
    }
}

fn key_of(target: &ObjectRef) -> String {
    format!(
        "{}\0{}",
        target.namespace.as_deref().unwrap_or_default(),
        target.name
    )
}

impl SignalTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of signals currently firing.
    pub fn firing(&self) -> usize {
        self.states
            .values()
            .flat_map(HashMap::values)
            .filter(|s| s.firing)
            .count()
    }

    /// Marks a signal firing, as it was before a restart, so it clears
    /// when its detector stops returning it (and is not fired again).
    pub fn restore(&mut self, signal: &super::Signal, now: Timestamp) {
        self.states.entry(signal.name.clone()).or_default().insert(
            key_of(&signal.target),
            State {
                target: signal.target.clone(),
                pending_since: signal.onset,
                last_seen: now,
                firing: true,
                onset_value: signal.onset_value,
                peak: signal.peak,
                value: signal.value,
                from: 0,
                labels: signal.labels.clone(),
                held: false,
            },
        );
    }

    /// Signals firing now, by detector.
    pub fn firing_by_detector(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (name, targets) in &self.states {
            let n = targets.values().filter(|s| s.firing).count();
            if n > 0 {
                out.insert(name.clone(), n);
            }
        }
        out
    }

    /// The firing signals of detectors with a `holdWhile` that their query
    /// did not return this time (a failed query returns nothing to check).
    pub fn unseen(
        &self,
        detectors: &[Detector],
        outcomes: &BTreeMap<String, DetectorOutcome>,
    ) -> Vec<Unseen> {
        let mut out = Vec::new();
        let mut key = String::new();
        for d in detectors.iter().filter(|d| d.spec.hold_while.is_some()) {
            let (Some(DetectorOutcome::Ok(observations)), Some(states)) =
                (outcomes.get(&d.name), self.states.get(&d.name))
            else {
                continue;
            };
            if !states.values().any(|s| s.firing) {
                continue;
            }
            let mut returned = std::collections::HashSet::new();
            for o in observations {
                if key_into(&mut key, &d.spec.target, &o.labels).is_ok() {
                    returned.insert(key.clone());
                }
            }
            let mut unseen: Vec<Unseen> = states
                .iter()
                .filter(|(k, s)| s.firing && !returned.contains(k.as_str()))
                .map(|(_, s)| Unseen {
                    detector: d.name.clone(),
                    target: s.target.clone(),
                    labels: s.labels.clone(),
                    onset: s.pending_since,
                })
                .collect();
            unseen.sort_by(|a, b| a.target.cmp(&b.target));
            out.extend(unseen);
        }
        out
    }

    /// Counts a firing signal as seen at `now` although its query did not
    /// return it: its detector's `holdWhile` still holds. Call before
    /// `update` for the same `now`. Returns whether it is held for the
    /// first time since it fired (the moment to say so in the timeline).
    pub fn hold(&mut self, detector: &str, target: &ObjectRef, now: Timestamp) -> bool {
        let Some(state) = self
            .states
            .get_mut(detector)
            .and_then(|s| s.get_mut(key_of(target).as_str()))
            .filter(|s| s.firing)
        else {
            return false;
        };
        state.last_seen = now;
        !std::mem::replace(&mut state.held, true)
    }

    /// Advances to `now` with what each detector returned. Events come per
    /// detector, fired then cleared, each in target order.
    pub fn update(
        &mut self,
        now: Timestamp,
        detectors: &[Detector],
        outcomes: &BTreeMap<String, DetectorOutcome>,
    ) -> Vec<SignalEvent> {
        let mut events = Vec::new();
        let mut key = String::new();
        for d in detectors {
            let Some(DetectorOutcome::Ok(observations)) = outcomes.get(&d.name) else {
                continue; // failed or not evaluated: hold state as it is
            };
            let states = self.states.entry(d.name.clone()).or_default();
            let mut seen = 0;
            for (i, o) in observations.iter().enumerate() {
                if let Err(e) = key_into(&mut key, &d.spec.target, &o.labels) {
                    tracing::warn!(detector = %d.name, error = %e, "series does not name a target; skipped");
                    continue;
                }
                let state = match states.get_mut(key.as_str()) {
                    Some(s) => s,
                    None => states.entry(key.clone()).or_insert(State {
                        target: target_of(&key, &d.spec.target),
                        pending_since: now,
                        // Not yet counted as seen: the branch below does that.
                        last_seen: now - 1,
                        firing: false,
                        onset_value: o.value,
                        peak: o.value,
                        value: o.value,
                        from: i,
                        labels: BTreeMap::new(),
                        held: false,
                    }),
                };
                // Several series may name one target (e.g. per container):
                // the largest value stands for it.
                if state.last_seen != now {
                    state.last_seen = now;
                    state.value = o.value;
                    state.from = i;
                    seen += 1;
                } else if o.value > state.value {
                    state.value = o.value;
                    state.from = i;
                }
                if state.pending_since == now && !state.firing {
                    state.onset_value = state.value;
                }
                state.peak = state.peak.max(o.value);
            }
            let mut fired = Vec::new();
            for s in states.values_mut() {
                if s.last_seen != now || s.firing || now - s.pending_since < d.spec.for_.0 {
                    continue;
                }
                s.firing = true;
                s.labels = observations
                    .get(s.from)
                    .map(|o| o.labels.clone())
                    .unwrap_or_default();
                fired.push(Signal {
                    name: d.name.clone(),
                    target: s.target.clone(),
                    severity: d.spec.severity,
                    value: s.value,
                    labels: s.labels.clone(),
                    onset: s.pending_since,
                    fired_at: now,
                    onset_value: s.onset_value,
                    peak: s.peak,
                    slope_per_min: if now > s.pending_since {
                        (s.value - s.onset_value) * 60.0 / (now - s.pending_since) as f64
                    } else {
                        0.0
                    },
                    from_alert: false,
                });
            }
            fired.sort_by(|a, b| a.target.cmp(&b.target));
            events.extend(fired.into_iter().map(SignalEvent::Fired));
            // Targets not seen this time: a pending one is dropped, a firing
            // one clears once it has been absent longer than keepFiringFor.
            if states.len() > seen {
                let keep = d.spec.keep_firing_for.0;
                let mut cleared = Vec::new();
                states.retain(|_, state| {
                    if state.last_seen == now {
                        return true;
                    }
                    if !state.firing {
                        return false;
                    }
                    if now - state.last_seen > keep {
                        cleared.push(state.target.clone());
                        return false;
                    }
                    true
                });
                cleared.sort();
                events.extend(cleared.into_iter().map(|target| SignalEvent::Cleared {
                    name: d.name.clone(),
                    target,
                    at: now,
                }));
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Secs, Severity};
    use crate::signal::{DetectorSpec, Observation, TargetTemplate};

    fn detector(for_: i64, keep: i64) -> Detector {
        Detector {
            name: "crash_loop".into(),
            spec: DetectorSpec {
                severity: Severity::High,
                description: String::new(),
                query: "x".into(),
                target: TargetTemplate {
                    kind: "Pod".into(),
                    namespace: Some("{{ namespace }}".into()),
                    name: "{{ pod }}".into(),
                },
                for_: Secs(for_),
                resource: false,
                keep_firing_for: Secs(keep),
                anomaly: None,
                hold_while: None,
            },
        }
    }

    fn seen(pods: &[(&str, f64)]) -> BTreeMap<String, DetectorOutcome> {
        let obs = pods
            .iter()
            .map(|(pod, v)| Observation {
                labels: BTreeMap::from([
                    ("namespace".to_string(), "prod".to_string()),
                    ("pod".to_string(), pod.to_string()),
                ]),
                value: *v,
            })
            .collect();
        BTreeMap::from([("crash_loop".to_string(), DetectorOutcome::Ok(obs))])
    }

    #[test]
    fn fires_after_for_with_onset_at_first_sight() {
        let d = [detector(60, 0)];
        let mut t = SignalTracker::new();
        assert!(t.update(0, &d, &seen(&[("a", 1.0)])).is_empty());
        assert!(t.update(30, &d, &seen(&[("a", 2.0)])).is_empty());
        let ev = t.update(60, &d, &seen(&[("a", 3.0)]));
        let [SignalEvent::Fired(s)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!((s.onset, s.fired_at, s.value), (0, 60, 3.0));
        assert_eq!((s.onset_value, s.peak, s.slope_per_min), (1.0, 3.0, 2.0));
        assert_eq!(s.target.to_string(), "Pod/prod/a");
        assert!(
            t.update(90, &d, &seen(&[("a", 3.0)])).is_empty(),
            "fires once"
        );
    }

    #[test]
    fn a_gap_before_for_resets_pending() {
        let d = [detector(60, 0)];
        let mut t = SignalTracker::new();
        t.update(0, &d, &seen(&[("a", 1.0)]));
        t.update(30, &d, &seen(&[]));
        assert!(t.update(60, &d, &seen(&[("a", 1.0)])).is_empty());
        assert_eq!(t.firing(), 0);
    }

    #[test]
    fn clears_after_keep_firing_for() {
        let d = [detector(0, 60)];
        let mut t = SignalTracker::new();
        assert_eq!(t.update(0, &d, &seen(&[("a", 1.0)])).len(), 1);
        assert!(t.update(30, &d, &seen(&[])).is_empty());
        assert!(t.update(60, &d, &seen(&[])).is_empty());
        let ev = t.update(90, &d, &seen(&[]));
        assert!(matches!(
            ev.as_slice(),
            [SignalEvent::Cleared { at: 90, .. }]
        ));
    }

    #[test]
    fn a_failed_query_neither_fires_nor_clears() {
        let d = [detector(0, 0)];
        let mut t = SignalTracker::new();
        t.update(0, &d, &seen(&[("a", 1.0)]));
        let failed = BTreeMap::from([(
            "crash_loop".to_string(),
            DetectorOutcome::Failed("down".into()),
        )]);
        assert!(t.update(30, &d, &failed).is_empty());
        assert_eq!(t.firing(), 1);
    }

    #[test]
    fn several_series_for_one_target_make_one_signal_with_the_largest_value() {
        let d = [detector(0, 0)];
        let mut t = SignalTracker::new();
        let ev = t.update(0, &d, &seen(&[("a", 1.0), ("a", 7.0)]));
        let [SignalEvent::Fired(s)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        assert_eq!(s.value, 7.0);
    }

    #[test]
    fn a_key_names_its_object_and_a_nul_in_a_label_is_refused() {
        let d = detector(0, 0);
        let labels = |ns: &str, pod: &str| {
            BTreeMap::from([
                ("namespace".to_string(), ns.to_string()),
                ("pod".to_string(), pod.to_string()),
            ])
        };
        let mut buf = String::new();
        for (ns, pod) in [("prod", "api-1"), ("", "x"), ("é", "ü-1")] {
            key_into(&mut buf, &d.spec.target, &labels(ns, pod)).unwrap();
            let target = target_of(&buf, &d.spec.target);
            assert_eq!(target, ObjectRef::namespaced("Pod", ns, pod));
            assert_eq!(key_of(&target), buf);
        }
        assert!(key_into(&mut buf, &d.spec.target, &labels("a\0b", "c")).is_err());
        assert!(key_into(&mut buf, &d.spec.target, &labels("a", "b\0c")).is_err());
        let mut t = SignalTracker::new();
        assert!(t.update(0, &[d], &seen(&[("a\0b", 1.0)])).is_empty());
    }

    #[test]
    fn a_restored_signal_clears_when_its_series_is_gone_and_does_not_fire_again() {
        let d = [detector(0, 0)];
        let mut t = SignalTracker::new();
        let ev = t.update(0, &d, &seen(&[("a", 1.0)]));
        let [SignalEvent::Fired(s)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        let mut after = SignalTracker::new();
        after.restore(s, 30);
        assert!(after.update(60, &d, &seen(&[("a", 2.0)])).is_empty());
        let ev = after.update(90, &d, &seen(&[]));
        assert!(
            matches!(ev.as_slice(), [SignalEvent::Cleared { target, .. }] if target.to_string() == "Pod/prod/a"),
            "{ev:?}"
        );
    }

    #[test]
    fn a_held_signal_stays_firing_until_it_is_not_held_and_keep_firing_for_has_passed() {
        let mut d = [detector(0, 30)];
        d[0].spec.hold_while = Some("y".into());
        let mut t = SignalTracker::new();
        assert_eq!(t.update(0, &d, &seen(&[("a", 1.0), ("b", 1.0)])).len(), 2);
        let now = seen(&[("b", 1.0)]);
        let unseen = t.unseen(&d, &now);
        assert_eq!(
            unseen,
            vec![Unseen {
                detector: "crash_loop".into(),
                target: ObjectRef::namespaced("Pod", "prod", "a"),
                labels: BTreeMap::from([
                    ("namespace".to_string(), "prod".to_string()),
                    ("pod".to_string(), "a".to_string()),
                ]),
                onset: 0,
            }]
        );
        assert!(t.hold("crash_loop", &unseen[0].target, 60), "newly held");
        assert!(t.update(60, &d, &now).is_empty());
        assert!(!t.hold("crash_loop", &unseen[0].target, 120), "held before");
        assert!(t.update(120, &d, &now).is_empty());
        assert_eq!(t.firing(), 2);
        // No longer held: it clears once keepFiringFor has passed.
        assert!(t.update(150, &d, &now).is_empty());
        let ev = t.update(180, &d, &now);
        assert!(
            matches!(ev.as_slice(), [SignalEvent::Cleared { at: 180, target, .. }] if target.name == "a"),
            "{ev:?}"
        );
        // A detector with no holdWhile has nothing to check.
        d[0].spec.hold_while = None;
        assert!(t.unseen(&d, &seen(&[])).is_empty());
        assert!(
            !t.hold(
                "crash_loop",
                &ObjectRef::namespaced("Pod", "prod", "zz"),
                200
            ),
            "not firing"
        );
    }

    #[test]
    fn events_come_in_target_order() {
        let d = [detector(0, 0)];
        let mut t = SignalTracker::new();
        let names = |ev: &[SignalEvent]| -> Vec<String> {
            ev.iter()
                .map(|e| match e {
                    SignalEvent::Fired(s) => s.target.name.clone(),
                    SignalEvent::Cleared { target, .. } => target.name.clone(),
                })
                .collect()
        };
        let ev = t.update(0, &d, &seen(&[("c", 1.0), ("a", 1.0), ("b", 1.0)]));
        assert_eq!(names(&ev), ["a", "b", "c"]);
        let ev = t.update(30, &d, &seen(&[]));
        assert_eq!(names(&ev), ["a", "b", "c"]);
    }
}
