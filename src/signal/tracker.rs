//! Turns observations into signals: `for` before firing, `keepFiringFor`
//! before clearing, one signal per (detector, target). Pure: no I/O, the time
//! is an argument.

use super::{Detector, DetectorOutcome, Signal};
use crate::model::{ObjectRef, Timestamp};
use std::collections::BTreeMap;

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
    pending_since: Timestamp,
    last_seen: Timestamp,
    firing: bool,
    onset_value: f64,
    peak: f64,
}

#[derive(Debug, Default)]
pub struct SignalTracker {
    /// By detector, then target: a tick touches one detector's map at a
    /// time and finds a known target without building a key.
    states: BTreeMap<String, BTreeMap<ObjectRef, State>>,
}

impl SignalTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of signals currently firing.
    pub fn firing(&self) -> usize {
        self.states
            .values()
            .flat_map(BTreeMap::values)
            .filter(|s| s.firing)
            .count()
    }

    /// Marks a signal firing, as it was before a restart, so it clears
    /// when its detector stops returning it (and is not fired again).
    pub fn restore(&mut self, signal: &super::Signal, now: Timestamp) {
        self.states.entry(signal.name.clone()).or_default().insert(
            signal.target.clone(),
            State {
                pending_since: signal.onset,
                last_seen: now,
                firing: true,
                onset_value: signal.onset_value,
                peak: signal.peak,
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

    /// Advances to `now` with what each detector returned.
    pub fn update(
        &mut self,
        now: Timestamp,
        detectors: &[Detector],
        outcomes: &BTreeMap<String, DetectorOutcome>,
    ) -> Vec<SignalEvent> {
        let mut events = Vec::new();
        for d in detectors {
            let Some(DetectorOutcome::Ok(observations)) = outcomes.get(&d.name) else {
                continue; // failed or not evaluated: hold state as it is
            };
            // Several series may name one target (e.g. per container): keep the largest value.
            let mut seen: BTreeMap<ObjectRef, (f64, &BTreeMap<String, String>)> = BTreeMap::new();
            for o in observations {
                match d.spec.target.render(&o.labels) {
                    Ok(target) => {
                        let entry = seen.entry(target).or_insert((o.value, &o.labels));
                        if o.value > entry.0 {
                            *entry = (o.value, &o.labels);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(detector = %d.name, error = %e, "series does not name a target; skipped")
                    }
                }
            }
            let states = self.states.entry(d.name.clone()).or_default();
            for (target, (value, labels)) in &seen {
                let state = match states.get_mut(target) {
                    Some(s) => s,
                    None => states.entry(target.clone()).or_insert(State {
                        pending_since: now,
                        last_seen: now,
                        firing: false,
                        onset_value: *value,
                        peak: *value,
                    }),
                };
                state.last_seen = now;
                state.peak = state.peak.max(*value);
                if !state.firing && now - state.pending_since >= d.spec.for_.0 {
                    state.firing = true;
                    events.push(SignalEvent::Fired(Signal {
                        name: d.name.clone(),
                        target: target.clone(),
                        severity: d.spec.severity,
                        value: *value,
                        labels: (*labels).clone(),
                        onset: state.pending_since,
                        fired_at: now,
                        onset_value: state.onset_value,
                        peak: state.peak,
                        slope_per_min: if now > state.pending_since {
                            (*value - state.onset_value) * 60.0 / (now - state.pending_since) as f64
                        } else {
                            0.0
                        },
                    }));
                }
            }
            // Targets not seen this time: a pending one is dropped, a firing
            // one clears once it has been absent longer than keepFiringFor.
            if states.len() > seen.len() {
                let keep = d.spec.keep_firing_for.0;
                states.retain(|target, state| {
                    if seen.contains_key(target) {
                        return true;
                    }
                    if !state.firing {
                        return false;
                    }
                    if now - state.last_seen > keep {
                        events.push(SignalEvent::Cleared {
                            name: d.name.clone(),
                            target: target.clone(),
                            at: now,
                        });
                        return false;
                    }
                    true
                });
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
}
