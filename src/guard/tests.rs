use super::*;
use crate::cluster::{NodeInfo, PodInfo, WorkloadInfo};

fn record(at: Timestamp, playbook: &str, action: Action, target: &ObjectRef) -> ActionRecord {
    ActionRecord {
        at,
        playbook: playbook.into(),
        step: 1,
        action,
        target: Some(target.clone()),
        risk: crate::model::Risk::Low,
        result: ActionResult::Ok,
        message: String::new(),
        rollback: false,
    }
}

fn node(n: &str) -> ObjectRef {
    ObjectRef::node(n)
}

fn cluster(nodes: &[(&str, bool)]) -> ClusterSnapshot {
    let mut snap = ClusterSnapshot::default();
    for (name, control_plane) in nodes {
        snap.nodes.insert(
            name.to_string(),
            NodeInfo {
                unschedulable: false,
                control_plane: *control_plane,
                ready: true,
                addresses: Vec::new(),
            },
        );
    }
    snap
}

fn intent<'a>(incident: &'a str, action: Action, target: &'a ObjectRef) -> Intent<'a> {
    Intent {
        incident,
        playbook: "pb",
        action,
        target,
        wanted_replicas: None,
        rollback: false,
    }
}

fn check_at(
    i: &Intent<'_>,
    done: &[(&str, ActionRecord)],
    snap: &ClusterSnapshot,
    now: Timestamp,
    c: &GuardConfig,
) -> Result<(), Refusal> {
    let done: Vec<Done> = done
        .iter()
        .map(|(incident, record)| Done { incident, record })
        .collect();
    check(
        i,
        &Situation {
            done: &done,
            snapshot: snap,
            storm: false,
            now,
        },
        c,
    )
}

fn guard_of(r: Result<(), Refusal>) -> &'static str {
    r.err().map_or("none", |r| r.guard)
}

#[test]
fn control_plane_nodes_are_left_alone_unless_allowed() {
    let snap = cluster(&[
        ("cp-1", true),
        ("w-1", false),
        ("w-2", false),
        ("w-3", false),
        ("w-4", false),
    ]);
    let cp = node("cp-1");
    let i = intent("inc-1", Action::CordonNode, &cp);
    assert_eq!(
        guard_of(check_at(&i, &[], &snap, 0, &GuardConfig::default())),
        "control-plane"
    );
    let allow = GuardConfig {
        allow_control_plane: true,
        ..GuardConfig::default()
    };
    assert_eq!(guard_of(check_at(&i, &[], &snap, 0, &allow)), "none");
}

#[test]
fn one_node_at_a_time_with_a_gap() {
    let names: Vec<String> = (1..=10).map(|n| format!("w-{n}")).collect();
    let nodes: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), false)).collect();
    let mut snap = cluster(&nodes);
    let (w1, w2) = (node("w-1"), node("w-2"));
    let done = [("inc-1", record(0, "pb", Action::CordonNode, &w1))];
    let c = GuardConfig::default();
    let i = intent("inc-2", Action::CordonNode, &w2);
    assert_eq!(
        guard_of(check_at(&i, &done, &snap, 300, &c)),
        "node-gap",
        "too soon"
    );
    snap.nodes.get_mut("w-1").unwrap().unschedulable = true;
    let r = check_at(&i, &done, &snap, 900, &c).unwrap_err();
    assert_eq!(
        r.reason,
        "Node/w-1 is still cordoned by medic (incident inc-1): one node at a time"
    );
    let done = [
        ("inc-1", record(0, "pb", Action::CordonNode, &w1)),
        ("inc-1", record(600, "pb", Action::UncordonNode, &w1)),
    ];
    snap.nodes.get_mut("w-1").unwrap().unschedulable = false;
    assert_eq!(guard_of(check_at(&i, &done, &snap, 900, &c)), "none");
    // The same node again (drain after its own cordon) is not another node.
    let i = intent("inc-1", Action::DrainNode, &w1);
    assert_eq!(guard_of(check_at(&i, &done[..1], &snap, 60, &c)), "none");
}

#[test]
fn cooldown_stops_a_second_incident_replaying_the_same_fix() {
    let snap = ClusterSnapshot::default();
    let d = ObjectRef::namespaced("Deployment", "shop", "checkout");
    let done = [("inc-1", record(0, "pb", Action::RolloutUndo, &d))];
    let c = GuardConfig::default();
    let second = intent("inc-2", Action::RolloutUndo, &d);
    let r = check_at(&second, &done, &snap, 600, &c).unwrap_err();
    assert_eq!(r.guard, "cooldown");
    assert_eq!(
        r.reason,
        "playbook pb acted on Deployment/shop/checkout for incident inc-1 10m ago; cooldown is 30m"
    );
    assert_eq!(guard_of(check_at(&second, &done, &snap, 1800, &c)), "none");
    let same = intent("inc-1", Action::RolloutRestart, &d);
    assert_eq!(
        guard_of(check_at(&same, &done, &snap, 60, &c)),
        "none",
        "its own run"
    );
}

#[test]
fn budgets_count_the_last_hour_globally_and_per_target() {
    let snap = ClusterSnapshot::default();
    let c = GuardConfig {
        max_actions_per_hour: 3,
        max_actions_per_target_per_hour: 2,
        cooldown: Secs(0),
        ..GuardConfig::default()
    };
    let a = ObjectRef::namespaced("Deployment", "p", "a");
    let b = ObjectRef::namespaced("Deployment", "p", "b");
    let done = [
        ("i1", record(0, "x", Action::RolloutRestart, &a)),
        ("i2", record(100, "y", Action::RolloutRestart, &a)),
    ];
    let r = check_at(
        &intent("i3", Action::RolloutRestart, &a),
        &done,
        &snap,
        200,
        &c,
    )
    .unwrap_err();
    assert_eq!(
        r.reason,
        "2 actions on Deployment/p/a in the last hour reach its budget of 2"
    );
    assert_eq!(
        guard_of(check_at(
            &intent("i3", Action::RolloutRestart, &b),
            &done,
            &snap,
            200,
            &c
        )),
        "none"
    );
    let done = [
        done[0].clone(),
        done[1].clone(),
        ("i3", record(150, "z", Action::RolloutRestart, &b)),
    ];
    assert_eq!(
        guard_of(check_at(
            &intent("i4", Action::RolloutRestart, &b),
            &done,
            &snap,
            200,
            &c
        )),
        "budget"
    );
    assert_eq!(
        guard_of(check_at(
            &intent("i4", Action::RolloutRestart, &b),
            &done,
            &snap,
            3700,
            &c
        )),
        "none",
        "an hour later the first two no longer count"
    );
    let mut dry = record(190, "z", Action::RolloutRestart, &b);
    dry.result = ActionResult::DryRun;
    let only_dry = [("i9", dry)];
    assert_eq!(
        guard_of(check_at(
            &intent("i4", Action::RolloutRestart, &b),
            &only_dry,
            &snap,
            200,
            &c
        )),
        "none"
    );
}

#[test]
fn blast_radius_keeps_workloads_and_the_node_pool_above_their_floor() {
    let mut snap = cluster(&[("w-1", false), ("w-2", false), ("w-3", false)]);
    let api = ObjectRef::namespaced("Deployment", "p", "api");
    snap.workloads.insert(
        api.clone(),
        WorkloadInfo {
            replicas: Some(2),
            ..Default::default()
        },
    );
    for (pod, n) in [("api-1", "w-1"), ("api-2", "w-1")] {
        snap.pods.insert(
            ObjectRef::namespaced("Pod", "p", pod),
            PodInfo {
                node: Some(n.into()),
                owner: Some(api.clone()),
                labels: Default::default(),
            },
        );
    }
    let c = GuardConfig {
        min_schedulable_node_ratio: 0.5,
        ..GuardConfig::default()
    };
    let w1 = node("w-1");
    let r = check_at(&intent("i", Action::DrainNode, &w1), &[], &snap, 0, &c).unwrap_err();
    assert_eq!(
        r.reason,
        "drain_node would leave Deployment/p/api with 0 of 2 replicas available; its floor is 1"
    );
    let pod = ObjectRef::namespaced("Pod", "p", "api-1");
    assert_eq!(
        guard_of(check_at(
            &intent("i", Action::EvictPod, &pod),
            &[],
            &snap,
            0,
            &c
        )),
        "none"
    );
    snap.workloads.get_mut(&api).unwrap().available = Some(1);
    assert_eq!(
        guard_of(check_at(
            &intent("i", Action::EvictPod, &pod),
            &[],
            &snap,
            0,
            &c
        )),
        "blast-radius"
    );
    // Node pool: with w-2 already cordoned, cordoning w-3 leaves 1 of 3.
    snap.nodes.get_mut("w-2").unwrap().unschedulable = true;
    let r = check_at(
        &intent("i", Action::CordonNode, &node("w-3")),
        &[],
        &snap,
        0,
        &c,
    )
    .unwrap_err();
    assert_eq!(
        r.reason,
        "cordon_node would leave 1 of 3 worker nodes schedulable; at least 50% must stay"
    );
    let mut scale = intent("i", Action::Scale, &api);
    scale.wanted_replicas = Some(0);
    assert_eq!(
        guard_of(check_at(&scale, &[], &snap, 0, &c)),
        "blast-radius"
    );
}

#[test]
fn rollbacks_pass_every_guard_but_the_safety_ones() {
    let snap = ClusterSnapshot::default();
    let d = ObjectRef::namespaced("Deployment", "shop", "checkout");
    let done = [("inc-1", record(0, "pb", Action::RolloutUndo, &d))];
    let c = GuardConfig {
        max_actions_per_hour: 1,
        blackouts: vec![Blackout {
            from: 0,
            to: 10_000,
            reason: String::new(),
        }],
        ..GuardConfig::default()
    };
    let mut i = intent("inc-2", Action::RolloutUndo, &d);
    assert_eq!(guard_of(check_at(&i, &done, &snap, 60, &c)), "blackout");
    i.rollback = true;
    assert_eq!(guard_of(check_at(&i, &done, &snap, 60, &c)), "none");
}

#[test]
fn read_only_steps_are_never_refused() {
    let snap = ClusterSnapshot::default();
    let pod = ObjectRef::namespaced("Pod", "p", "x");
    let c = GuardConfig {
        max_actions_per_hour: 0,
        ..GuardConfig::default()
    };
    let i = intent("i", Action::CaptureLogs, &pod);
    assert_eq!(guard_of(check_at(&i, &[], &snap, 0, &c)), "none");
}
