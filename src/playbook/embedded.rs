//! The shipped detectors and playbooks, compiled into the binary so medic
//! runs on its defaults with no files beside it.

pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "detectors.yaml",
        include_str!("../../playbooks/detectors.yaml"),
    ),
    (
        "memory-pressure-node.yaml",
        include_str!("../../playbooks/memory-pressure-node.yaml"),
    ),
    (
        "memory-leak-after-deploy.yaml",
        include_str!("../../playbooks/memory-leak-after-deploy.yaml"),
    ),
    (
        "pod-crash-loop.yaml",
        include_str!("../../playbooks/pod-crash-loop.yaml"),
    ),
    (
        "oom-killed.yaml",
        include_str!("../../playbooks/oom-killed.yaml"),
    ),
    (
        "container-cannot-start.yaml",
        include_str!("../../playbooks/container-cannot-start.yaml"),
    ),
    (
        "rollout-stuck.yaml",
        include_str!("../../playbooks/rollout-stuck.yaml"),
    ),
    (
        "node-not-ready.yaml",
        include_str!("../../playbooks/node-not-ready.yaml"),
    ),
    (
        "unschedulable-pods.yaml",
        include_str!("../../playbooks/unschedulable-pods.yaml"),
    ),
    (
        "volume-filling.yaml",
        include_str!("../../playbooks/volume-filling.yaml"),
    ),
    (
        "job-failed.yaml",
        include_str!("../../playbooks/job-failed.yaml"),
    ),
    (
        "node-degraded.yaml",
        include_str!("../../playbooks/node-degraded.yaml"),
    ),
    (
        "pod-not-ready.yaml",
        include_str!("../../playbooks/pod-not-ready.yaml"),
    ),
    (
        "hpa-maxed-out.yaml",
        include_str!("../../playbooks/hpa-maxed-out.yaml"),
    ),
    (
        "connection-pool-exhaustion.yaml",
        include_str!("../../playbooks/connection-pool-exhaustion.yaml"),
    ),
    (
        "disk-pressure-node.yaml",
        include_str!("../../playbooks/disk-pressure-node.yaml"),
    ),
    (
        "cpu-throttling.yaml",
        include_str!("../../playbooks/cpu-throttling.yaml"),
    ),
    (
        "certificate-expiry.yaml",
        include_str!("../../playbooks/certificate-expiry.yaml"),
    ),
    (
        "error-rate-after-deploy.yaml",
        include_str!("../../playbooks/error-rate-after-deploy.yaml"),
    ),
    (
        "latency-after-deploy.yaml",
        include_str!("../../playbooks/latency-after-deploy.yaml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_playbooks_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
