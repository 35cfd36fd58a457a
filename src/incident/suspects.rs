//! Suspects from recent history: the root causes of incidents opened
//! shortly before this one. Pure.
//!
//! A symptom nothing else explains (an entry point's errors while no
//! service it calls moves) is often trouble just seen coming back: a fault
//! that recurs, a bad version half rolled back, a code path that fails
//! without costing CPU or time. Those roots are listed after the
//! incident's own candidates, never ahead of them: they carry no signal in
//! this incident, so medic neither plans nor acts on them, and an LLM may
//! not lead with them. They are for the people it escalates to.
//!
//! Only when the root cause shows symptoms alone: one whose own resources
//! saturate (a `resource` detector fired on it) is located by its evidence,
//! and a list of past roots beside it would be noise.

use super::Incident;
use crate::model::{ObjectRef, Timestamp, format_secs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspect {
    pub object: ObjectRef,
    /// The earlier incident it was the root cause of, and when that opened.
    pub incident: String,
    pub opened_at: Timestamp,
}

impl Suspect {
    /// For people: which incident it comes from, and how long before
    /// `opened_at` (the incident it is a suspect in) that one opened.
    pub fn describe(&self, opened_at: Timestamp) -> String {
        format!(
            "{}, the root cause of {} {} earlier",
            self.object,
            self.incident,
            format_secs(opened_at - self.opened_at)
        )
    }
}

/// At most this many: beyond two, a list of past roots stops being a lead.
const MAX_SUSPECTS: usize = 2;

/// How many earlier incidents are looked at: bounds the cost when a storm
/// opens thousands of incidents within the window.
const LOOK_BACK: usize = 64;

/// The distinct root causes of the incidents opened within `window` seconds
/// before `incidents[idx]`, most recent first, leaving out its own
/// candidates; none when its root cause has a signal named in `resource`.
/// Incidents are kept in the order they opened.
pub fn recent_suspects(
    incidents: &[Incident],
    idx: usize,
    window: i64,
    resource: &BTreeSet<String>,
) -> Vec<Suspect> {
    let Some(inc) = incidents.get(idx) else {
        return Vec::new();
    };
    let Some(root) = inc.root_cause() else {
        return Vec::new();
    };
    let located = inc
        .signals
        .iter()
        .any(|s| &s.subject == root && resource.contains(&s.signal.name));
    if located {
        return Vec::new();
    }
    let mut out: Vec<Suspect> = Vec::new();
    for earlier in incidents[..idx].iter().rev().take(LOOK_BACK) {
        if out.len() == MAX_SUSPECTS {
            break;
        }
        let age = inc.opened_at - earlier.opened_at;
        if age <= 0 || age > window {
            continue;
        }
        let Some(root) = earlier.root_cause() else {
            continue;
        };
        if inc.candidates.contains(root) || out.iter().any(|s| &s.object == root) {
            continue;
        }
        out.push(Suspect {
            object: root.clone(),
            incident: earlier.id.clone(),
            opened_at: earlier.opened_at,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::test_record;
    use crate::model::Severity;

    fn d(n: &str) -> ObjectRef {
        ObjectRef::namespaced("Deployment", "p", n)
    }

    fn inc(id: &str, opened_at: Timestamp, candidates: &[&str]) -> Incident {
        let mut i = Incident::new(id, opened_at, Severity::High);
        i.candidates = candidates.iter().map(|c| d(c)).collect();
        i
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    fn suspect(object: &str, incident: &str, opened_at: Timestamp) -> Suspect {
        Suspect {
            object: d(object),
            incident: incident.into(),
            opened_at,
        }
    }

    #[test]
    fn recent_roots_most_recent_first_without_the_incidents_own_candidates() {
        let incidents = vec![
            inc("old", 0, &["catalog"]),
            inc("a", 1000, &["catalog", "recommend"]),
            inc("b", 1500, &["frontend"]),
            inc("c", 1800, &["cart"]),
            inc("now", 2000, &["frontend"]),
        ];
        // "old" is outside the window; "b"'s root is the incident's own
        // candidate; a root counts once.
        assert_eq!(
            recent_suspects(&incidents, 4, 1800, &none()),
            vec![suspect("cart", "c", 1800), suspect("catalog", "a", 1000)]
        );
    }

    #[test]
    fn at_most_two_and_only_incidents_opened_before() {
        let incidents = vec![
            inc("a", 100, &["x"]),
            inc("b", 200, &["y"]),
            inc("c", 300, &["z"]),
            inc("now", 400, &["frontend"]),
            inc("same-tick", 400, &["w"]),
        ];
        assert_eq!(
            recent_suspects(&incidents, 3, 3600, &none()),
            vec![suspect("z", "c", 300), suspect("y", "b", 200)]
        );
        // Opened in the same tick: concurrent, not history.
        assert_eq!(
            recent_suspects(&incidents, 4, 3600, &none())
                .iter()
                .map(|s| s.incident.as_str())
                .collect::<Vec<_>>(),
            ["c", "b"]
        );
        // An incident not yet ranked has no root to lend, nor to be lent.
        let unranked = vec![inc("a", 100, &[]), inc("now", 400, &["frontend"])];
        assert!(recent_suspects(&unranked, 1, 3600, &none()).is_empty());
        assert!(recent_suspects(&unranked, 7, 3600, &none()).is_empty());
    }

    #[test]
    fn a_root_whose_own_resources_saturate_has_no_suspects() {
        let signal = |name: &str| {
            let mut r = test_record("Deployment/p/frontend", "Deployment/p/frontend", 1900);
            r.signal.name = name.into();
            r
        };
        let mut incidents = vec![
            inc("a", 1000, &["catalog"]),
            inc("now", 2000, &["frontend"]),
        ];
        incidents[1].signals = vec![signal("latency"), signal("cpu_saturation")];
        let resource = BTreeSet::from(["cpu_saturation".to_string()]);
        assert!(recent_suspects(&incidents, 1, 1800, &resource).is_empty());
        // Symptoms alone: the past root is listed.
        assert_eq!(recent_suspects(&incidents, 1, 1800, &none()).len(), 1);
    }
}
