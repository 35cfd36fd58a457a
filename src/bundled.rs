//! The recorded incidents shipped with medic, so `medic replay` with no
//! arguments shows what medic does on its defaults.

pub const FIXTURES: &[(&str, &str)] = &[
    (
        "anomaly-request-rate-drop.yaml",
        include_str!("../fixtures/incidents/anomaly-request-rate-drop.yaml"),
    ),
    (
        "approved-rollback-resumes-plan.yaml",
        include_str!("../fixtures/incidents/approved-rollback-resumes-plan.yaml"),
    ),
    (
        "cascading-slowdown-from-payments.yaml",
        include_str!("../fixtures/incidents/cascading-slowdown-from-payments.yaml"),
    ),
    (
        "certificate-renewal-failing.yaml",
        include_str!("../fixtures/incidents/certificate-renewal-failing.yaml"),
    ),
    (
        "connection-pool-cascade.yaml",
        include_str!("../fixtures/incidents/connection-pool-cascade.yaml"),
    ),
    (
        "cpu-throttling-scale-does-not-help.yaml",
        include_str!("../fixtures/incidents/cpu-throttling-scale-does-not-help.yaml"),
    ),
    (
        "cpu-throttling-scaled-out.yaml",
        include_str!("../fixtures/incidents/cpu-throttling-scaled-out.yaml"),
    ),
    (
        "crash-loop-after-deploy.yaml",
        include_str!("../fixtures/incidents/crash-loop-after-deploy.yaml"),
    ),
    (
        "crash-loop-no-recent-deploy.yaml",
        include_str!("../fixtures/incidents/crash-loop-no-recent-deploy.yaml"),
    ),
    (
        "denied-rollback-ends-plan.yaml",
        include_str!("../fixtures/incidents/denied-rollback-ends-plan.yaml"),
    ),
    (
        "disk-filling-node.yaml",
        include_str!("../fixtures/incidents/disk-filling-node.yaml"),
    ),
    (
        "error-rate-after-deploy.yaml",
        include_str!("../fixtures/incidents/error-rate-after-deploy.yaml"),
    ),
    (
        "guard-action-budget.yaml",
        include_str!("../fixtures/incidents/guard-action-budget.yaml"),
    ),
    (
        "guard-blackout-window.yaml",
        include_str!("../fixtures/incidents/guard-blackout-window.yaml"),
    ),
    (
        "guard-blast-radius-drain.yaml",
        include_str!("../fixtures/incidents/guard-blast-radius-drain.yaml"),
    ),
    (
        "guard-control-plane-node.yaml",
        include_str!("../fixtures/incidents/guard-control-plane-node.yaml"),
    ),
    (
        "guard-cooldown-no-ping-pong.yaml",
        include_str!("../fixtures/incidents/guard-cooldown-no-ping-pong.yaml"),
    ),
    (
        "guard-one-node-at-a-time.yaml",
        include_str!("../fixtures/incidents/guard-one-node-at-a-time.yaml"),
    ),
    (
        "guard-storm-mode.yaml",
        include_str!("../fixtures/incidents/guard-storm-mode.yaml"),
    ),
    (
        "healthy-batch-cpu-burst.yaml",
        include_str!("../fixtures/incidents/healthy-batch-cpu-burst.yaml"),
    ),
    (
        "healthy-daily-traffic-cycle.yaml",
        include_str!("../fixtures/incidents/healthy-daily-traffic-cycle.yaml"),
    ),
    (
        "healthy-noisy-hour.yaml",
        include_str!("../fixtures/incidents/healthy-noisy-hour.yaml"),
    ),
    (
        "healthy-one-restart.yaml",
        include_str!("../fixtures/incidents/healthy-one-restart.yaml"),
    ),
    (
        "healthy-rolling-deploy.yaml",
        include_str!("../fixtures/incidents/healthy-rolling-deploy.yaml"),
    ),
    (
        "healthy-scrape-gap.yaml",
        include_str!("../fixtures/incidents/healthy-scrape-gap.yaml"),
    ),
    (
        "llm-confirms-pool-owner.yaml",
        include_str!("../fixtures/incidents/llm-confirms-pool-owner.yaml"),
    ),
    (
        "llm-prompt-injection.yaml",
        include_str!("../fixtures/incidents/llm-prompt-injection.yaml"),
    ),
    (
        "memory-leak-after-deploy.yaml",
        include_str!("../fixtures/incidents/memory-leak-after-deploy.yaml"),
    ),
    (
        "memory-pressure-node-drained.yaml",
        include_str!("../fixtures/incidents/memory-pressure-node-drained.yaml"),
    ),
    (
        "observe-mode-memory-leak.yaml",
        include_str!("../fixtures/incidents/observe-mode-memory-leak.yaml"),
    ),
    (
        "paused-medic-acts-not.yaml",
        include_str!("../fixtures/incidents/paused-medic-acts-not.yaml"),
    ),
    (
        "rollback-when-verification-fails.yaml",
        include_str!("../fixtures/incidents/rollback-when-verification-fails.yaml"),
    ),
    (
        "step-above-autonomy-bound.yaml",
        include_str!("../fixtures/incidents/step-above-autonomy-bound.yaml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_in_the_directory_is_bundled() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/incidents");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let bundled: Vec<&str> = FIXTURES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, bundled);
    }
}
