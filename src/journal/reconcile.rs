//! After a restart, an intent with no result: did the action happen? The
//! cluster is asked, never assumed: done is recorded, not done is run
//! again, and what the snapshot cannot tell goes to people.

use super::IntentEntry;
use crate::act::Action;
use crate::cluster::ClusterSnapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    Done,
    NotDone,
    Unsure(String),
}

pub fn reconcile(intent: &IntentEntry, snap: &ClusterSnapshot) -> Reconciled {
    let target = &intent.target;
    let unsure = |why: &str| Reconciled::Unsure(format!("{} on {target}: {why}", intent.action));
    let done = |yes: bool| {
        if yes {
            Reconciled::Done
        } else {
            Reconciled::NotDone
        }
    };
    match intent.action {
        Action::CordonNode | Action::UncordonNode | Action::DrainNode => {
            let Some(node) = snap.nodes.get(&target.name) else {
                return unsure("the node is gone");
            };
            match intent.action {
                Action::UncordonNode => done(!node.unschedulable),
                Action::CordonNode => done(node.unschedulable),
                _ => {
                    let evictable_left = snap.pods.values().any(|p| {
                        p.node.as_deref() == Some(target.name.as_str())
                            && !p.owner.as_ref().is_some_and(|o| o.is("DaemonSet"))
                    });
                    done(node.unschedulable && !evictable_left)
                }
            }
        }
        Action::EvictPod | Action::DeletePod => done(!snap.pods.contains_key(target)),
        Action::RolloutUndo => {
            let now = snap.workloads.get(target).and_then(|w| w.revision);
            match (intent.revision, now) {
                (Some(before), Some(now)) => done(now != before),
                _ => unsure("the revision before or now is unknown"),
            }
        }
        Action::Scale => {
            let now = snap.workloads.get(target).and_then(|w| w.replicas);
            match (intent.wanted_replicas, now) {
                (Some(wanted), Some(now)) => done(now == wanted),
                _ => unsure("the replica count is unknown"),
            }
        }
        // A restart's trace (an annotation on the pod template) is not in
        // the snapshot, and restarting twice is not harmless: ask.
        Action::RolloutRestart => unsure("a restart leaves nothing the snapshot shows"),
        Action::SetMemoryLimit | Action::RestoreMemoryLimit => {
            unsure("a container's memory limit is not in the snapshot")
        }
        Action::SetHpaMax | Action::RestoreHpaMax => {
            unsure("an autoscaler's maximum is not in the snapshot")
        }
        Action::CaptureLogs | Action::DescribeScheduling | Action::Escalate => Reconciled::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{NodeInfo, PodInfo, WorkloadInfo};
    use crate::model::ObjectRef;

    fn intent(action: Action, target: ObjectRef) -> IntentEntry {
        IntentEntry {
            incident: "inc-1".into(),
            playbook: "pb".into(),
            step: 1,
            action,
            target,
            at: 0,
            rollback: false,
            revision: Some(2),
            wanted_replicas: Some(3),
        }
    }

    #[test]
    fn the_cluster_says_whether_each_kind_of_action_happened() {
        let mut snap = ClusterSnapshot::default();
        snap.nodes.insert(
            "n1".into(),
            NodeInfo {
                unschedulable: true,
                control_plane: false,
                ready: true,
                addresses: Vec::new(),
            },
        );
        let d = ObjectRef::namespaced("Deployment", "p", "api");
        snap.workloads.insert(
            d.clone(),
            WorkloadInfo {
                replicas: Some(2),
                revision: Some(2),
                ..Default::default()
            },
        );
        let pod = ObjectRef::namespaced("Pod", "p", "api-1");
        snap.pods.insert(
            pod.clone(),
            PodInfo {
                node: Some("n1".into()),
                owner: Some(d.clone()),
                labels: Default::default(),
            },
        );
        let n1 = ObjectRef::node("n1");
        assert_eq!(
            reconcile(&intent(Action::CordonNode, n1.clone()), &snap),
            Reconciled::Done
        );
        assert_eq!(
            reconcile(&intent(Action::UncordonNode, n1.clone()), &snap),
            Reconciled::NotDone
        );
        assert_eq!(
            reconcile(&intent(Action::DrainNode, n1.clone()), &snap),
            Reconciled::NotDone,
            "api-1 is still there"
        );
        assert_eq!(
            reconcile(&intent(Action::EvictPod, pod.clone()), &snap),
            Reconciled::NotDone
        );
        assert_eq!(
            reconcile(&intent(Action::RolloutUndo, d.clone()), &snap),
            Reconciled::NotDone
        );
        assert_eq!(
            reconcile(&intent(Action::Scale, d.clone()), &snap),
            Reconciled::NotDone
        );
        assert!(matches!(
            reconcile(&intent(Action::RolloutRestart, d.clone()), &snap),
            Reconciled::Unsure(_)
        ));
        assert!(matches!(
            reconcile(&intent(Action::CordonNode, ObjectRef::node("gone")), &snap),
            Reconciled::Unsure(_)
        ));
        snap.pods.clear();
        snap.workloads.get_mut(&d).unwrap().revision = Some(3);
        snap.workloads.get_mut(&d).unwrap().replicas = Some(3);
        assert_eq!(
            reconcile(&intent(Action::DrainNode, n1), &snap),
            Reconciled::Done
        );
        assert_eq!(
            reconcile(&intent(Action::EvictPod, pod), &snap),
            Reconciled::Done
        );
        assert_eq!(
            reconcile(&intent(Action::RolloutUndo, d.clone()), &snap),
            Reconciled::Done
        );
        assert_eq!(
            reconcile(&intent(Action::Scale, d), &snap),
            Reconciled::Done
        );
    }
}
