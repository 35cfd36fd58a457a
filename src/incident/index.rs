//! Which incidents touch an object, so placing a signal looks up its few
//! candidate incidents instead of checking every open one. Pure.

use super::{Incident, Topology};
use crate::model::ObjectRef;
use std::collections::HashMap;

/// Incident positions by every object in their `affected` set. It mirrors
/// `affected` exactly: `correlate` is the only writer of both.
#[derive(Debug, Default)]
pub struct IncidentIndex {
    by_object: HashMap<ObjectRef, Vec<usize>>,
    /// How many incidents it covers; any other count means the list was
    /// changed behind its back (forgotten, restored) and it is rebuilt:
    /// the one way it catches up, so the engine never resets it.
    covers: usize,
}

impl IncidentIndex {
    pub fn build(incidents: &[Incident]) -> Self {
        let mut index = IncidentIndex::default();
        for (i, inc) in incidents.iter().enumerate() {
            for o in &inc.affected {
                index.add(o, i);
            }
        }
        index.covers = incidents.len();
        index
    }

    /// Rebuilds the index when it does not cover exactly these incidents.
    pub(super) fn sync(&mut self, incidents: &[Incident]) {
        if self.covers != incidents.len() {
            *self = IncidentIndex::build(incidents);
        }
    }

    pub(super) fn opened(&mut self) {
        self.covers += 1;
    }

    pub(super) fn add(&mut self, object: &ObjectRef, incident: usize) {
        let at = match self.by_object.get_mut(object) {
            Some(v) => v,
            None => self.by_object.entry(object.clone()).or_default(),
        };
        if !at.contains(&incident) {
            at.push(incident);
        }
    }

    /// The incidents that touch any of `objects` or anything within `hops`
    /// of `subject` in the call graph, in ascending position.
    pub(super) fn candidates(
        &self,
        objects: &[&ObjectRef],
        subject: &ObjectRef,
        topo: &Topology,
        hops: usize,
    ) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let mut take = |o: &ObjectRef| {
            if let Some(v) = self.by_object.get(o) {
                out.extend(v);
            }
        };
        for o in objects {
            take(o);
        }
        if !topo.is_empty() {
            for n in topo.around(subject, hops) {
                take(n);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
