//! Properties that must hold for any input, checked with proptest: the
//! series notation round-trips, and the guards' arithmetic never lets a
//! workload drop to nothing or a budget be exceeded.

use medic::act::{Action, ActionRecord, ActionResult};
use medic::cluster::{ClusterSnapshot, PodInfo, WorkloadInfo};
use medic::guard::{Done, GuardConfig, Intent, Situation, check};
use medic::model::{ObjectRef, Risk};
use medic::replay::series::{compress_values, expand_values};
use proptest::prelude::*;

fn values() -> impl Strategy<Value = Vec<Option<f64>>> {
    // Whole numbers and halves, as metrics usually are; gaps included.
    let sample = prop_oneof![
        4 => (-1000i64..100_000).prop_map(|v| Some(v as f64)),
        1 => (0i64..1000).prop_map(|v| Some(v as f64 + 0.5)),
        1 => Just(None),
    ];
    proptest::collection::vec(sample, 0..200)
}

proptest! {
    #[test]
    fn compressed_series_expand_to_the_same_samples(v in values()) {
        let text = compress_values(&v);
        let back = expand_values(&text, usize::MAX).unwrap_or_default();
        prop_assert_eq!(back, v, "notation: {}", text);
    }

    #[test]
    fn an_eviction_never_takes_a_workload_below_one_available_replica(
        replicas in 0i64..50,
        available in 0i64..50,
        ratio in 0.0f64..1.5,
    ) {
        let api = ObjectRef::namespaced("Deployment", "p", "api");
        let pod = ObjectRef::namespaced("Pod", "p", "api-1");
        let mut snap = ClusterSnapshot::default();
        snap.workloads.insert(api.clone(), WorkloadInfo {
            replicas: Some(replicas),
            available: Some(available),
            ..Default::default()
        });
        snap.pods.insert(pod.clone(), PodInfo { node: None, owner: Some(api), labels: Default::default() });
        let config = GuardConfig { min_available_ratio: ratio, ..GuardConfig::default() };
        let intent = Intent {
            incident: "i", playbook: "pb", action: Action::EvictPod, target: &pod,
            wanted_replicas: None, rollback: false,
        };
        let allowed = check(&intent, &Situation { done: &[], snapshot: &snap, storm: false, now: 0 }, &config).is_ok();
        if allowed {
            prop_assert!(available > 1, "left {} available", available - 1);
            prop_assert!((available - 1) as f64 >= (replicas as f64 * ratio.min(1.0)).ceil() - 1e-9);
        }
    }

    #[test]
    fn the_hourly_budget_is_never_exceeded(done_count in 0usize..40, max in 0u32..30, spread in 1i64..7200) {
        let d = ObjectRef::namespaced("Deployment", "p", "api");
        let records: Vec<ActionRecord> = (0..done_count).map(|i| ActionRecord {
            at: 7200 - (i as i64 * spread) % 7200,
            playbook: format!("pb-{i}"),
            step: 1,
            action: Action::RolloutRestart,
            target: Some(ObjectRef::namespaced("Deployment", "p", &format!("w-{i}"))),
            risk: Risk::Low,
            result: ActionResult::Ok,
            message: String::new(),
            rollback: false,
        }).collect();
        let done: Vec<Done> = records.iter().map(|record| Done { incident: "other", record }).collect();
        let config = GuardConfig { max_actions_per_hour: max, max_actions_per_target_per_hour: 100, ..GuardConfig::default() };
        let intent = Intent {
            incident: "i", playbook: "pb", action: Action::RolloutRestart, target: &d,
            wanted_replicas: None, rollback: false,
        };
        let now = 7200;
        let in_hour = records.iter().filter(|r| now - r.at < 3600).count();
        let allowed = check(&intent, &Situation { done: &done, snapshot: &ClusterSnapshot::default(), storm: false, now }, &config).is_ok();
        prop_assert_eq!(allowed, in_hour < max as usize);
    }
}
