//! Service dependencies, caller -> callee, between workloads.

use crate::model::ObjectRef;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    callees: BTreeMap<ObjectRef, BTreeSet<ObjectRef>>,
    callers: BTreeMap<ObjectRef, BTreeSet<ObjectRef>>,
}

impl Topology {
    pub fn new(edges: impl IntoIterator<Item = (ObjectRef, ObjectRef)>) -> Self {
        let mut t = Topology::default();
        for (from, to) in edges {
            t.callees
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
            t.callers.entry(to).or_default().insert(from);
        }
        t
    }

    pub fn callers(&self, of: &ObjectRef) -> impl Iterator<Item = &ObjectRef> {
        self.callers.get(of).into_iter().flatten()
    }

    pub fn callees(&self, of: &ObjectRef) -> impl Iterator<Item = &ObjectRef> {
        self.callees.get(of).into_iter().flatten()
    }

    /// Everything `of` calls, directly or through others.
    pub fn downstream(&self, of: &ObjectRef) -> BTreeSet<ObjectRef> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<&ObjectRef> = VecDeque::from([of]);
        while let Some(cur) = queue.pop_front() {
            for next in self.callees.get(cur).into_iter().flatten() {
                if next != of && seen.insert(next.clone()) {
                    queue.push_back(next);
                }
            }
        }
        seen
    }

    /// No edges: nothing is related through the call graph.
    pub fn is_empty(&self) -> bool {
        self.callees.is_empty()
    }

    /// Whether `a` and `b` are linked by at most `hops` edges, either way.
    pub fn within(&self, a: &ObjectRef, b: &ObjectRef, hops: usize) -> bool {
        a == b || self.around(a, hops).contains(&b)
    }

    /// Everything linked to `of` by at most `hops` edges, either way, `of`
    /// included: `b` is here exactly when `within(of, b, hops)`.
    pub fn around<'a>(&'a self, of: &'a ObjectRef, hops: usize) -> Vec<&'a ObjectRef> {
        let mut seen = BTreeSet::from([of]);
        let mut frontier = vec![of];
        for _ in 0..hops {
            let mut next = Vec::new();
            for cur in frontier {
                let around = self
                    .callees
                    .get(cur)
                    .into_iter()
                    .flatten()
                    .chain(self.callers.get(cur).into_iter().flatten());
                for n in around {
                    if seen.insert(n) {
                        next.push(n);
                    }
                }
            }
            frontier = next;
        }
        seen.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: &str) -> ObjectRef {
        ObjectRef::namespaced("Deployment", "p", n)
    }

    #[test]
    fn follows_edges_both_ways_within_hops() {
        let t = Topology::new([(d("fe"), d("checkout")), (d("checkout"), d("orders"))]);
        assert!(t.within(&d("fe"), &d("orders"), 2));
        assert!(!t.within(&d("fe"), &d("orders"), 1));
        assert!(t.within(&d("orders"), &d("fe"), 2));
        assert_eq!(
            t.downstream(&d("fe")),
            BTreeSet::from([d("checkout"), d("orders")])
        );
        assert_eq!(
            t.callers(&d("orders")).collect::<Vec<_>>(),
            vec![&d("checkout")]
        );
    }
}
