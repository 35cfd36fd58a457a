//! The actions medic knows, each with the least risk a playbook may give it.
//!
//! A playbook may rate a step riskier than its action's floor, never safer.
//! The catalog is the only list of things medic can do: a playbook naming
//! anything else fails lint, and the LLM cannot add to it.

use crate::model::Risk;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of object an action works on; the planner resolves it from the
/// triggering signal (the pod, its node, or its owning workload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Pod,
    Node,
    Workload,
    /// The HorizontalPodAutoscaler the signal is about.
    Autoscaler,
    /// The incident itself (escalate).
    Incident,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Integer,
    String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamType,
    pub required: bool,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    CaptureLogs,
    CordonNode,
    UncordonNode,
    DrainNode,
    EvictPod,
    DeletePod,
    RolloutUndo,
    RolloutRestart,
    Scale,
    Escalate,
    SetMemoryLimit,
    RestoreMemoryLimit,
    SetHpaMax,
    RestoreHpaMax,
    DescribeScheduling,
}

/// Everything the rest of medic needs to know about an action.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ActionSpec {
    pub action: Action,
    pub name: &'static str,
    pub floor: Risk,
    pub target: TargetKind,
    /// Whether it changes the cluster (observe mode runs only read-only ones).
    pub mutating: bool,
    pub params: &'static [ParamSpec],
    pub description: &'static str,
    /// The API permissions it needs: (apiGroup, resource, verbs).
    pub rbac: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// How its effect is undone, for people reading a rollback section.
    pub undo: &'static str,
}

const DELTA: ParamSpec = ParamSpec {
    name: "delta",
    kind: ParamType::Integer,
    required: false,
    description: "replicas to add (negative to remove); exactly one of delta and replicas",
};
const REPLICAS: ParamSpec = ParamSpec {
    name: "replicas",
    kind: ParamType::Integer,
    required: false,
    description: "replica count to set; exactly one of delta and replicas",
};
const CONTAINER: ParamSpec = ParamSpec {
    name: "container",
    kind: ParamType::String,
    required: false,
    description: "the container (a template such as `{{ signal.labels.container }}`); may be left out when the pod has one",
};
const PERCENT: ParamSpec = ParamSpec {
    name: "percent",
    kind: ParamType::Integer,
    required: false,
    description: "how much to raise the limit, in percent of the current one: 1 to 100 (at most doubling it); 50 when left out",
};
const REASON: ParamSpec = ParamSpec {
    name: "reason",
    kind: ParamType::String,
    required: true,
    description: "why a person must look, shown in the escalation",
};

pub const CATALOG: &[ActionSpec] = &[
    ActionSpec {
        action: Action::CaptureLogs,
        name: "capture_logs",
        floor: Risk::None,
        target: TargetKind::Pod,
        mutating: false,
        params: &[],
        description: "Reads the last logs of the pod's containers (and the previous container's) into the incident.",
        rbac: &[("", "pods", &["get"]), ("", "pods/log", &["get"])],
        undo: "nothing to undo (read-only)",
    },
    ActionSpec {
        action: Action::CordonNode,
        name: "cordon_node",
        floor: Risk::Low,
        target: TargetKind::Node,
        mutating: true,
        params: &[],
        description: "Marks the node unschedulable (spec.unschedulable=true); running pods stay.",
        rbac: &[("", "nodes", &["get", "patch"])],
        undo: "`uncordon_node`",
    },
    ActionSpec {
        action: Action::UncordonNode,
        name: "uncordon_node",
        floor: Risk::Low,
        target: TargetKind::Node,
        mutating: true,
        params: &[],
        description: "Marks the node schedulable again.",
        rbac: &[("", "nodes", &["get", "patch"])],
        undo: "`cordon_node`",
    },
    ActionSpec {
        action: Action::DrainNode,
        name: "drain_node",
        floor: Risk::High,
        target: TargetKind::Node,
        mutating: true,
        params: &[],
        description: "Cordons the node and evicts its pods through the Eviction API, skipping DaemonSet and mirror pods.",
        rbac: &[
            ("", "nodes", &["get", "patch"]),
            ("", "pods", &["list"]),
            ("", "pods/eviction", &["create"]),
        ],
        undo: "`uncordon_node` lets pods schedule there again; evicted pods are recreated elsewhere by their controllers, not moved back",
    },
    ActionSpec {
        action: Action::EvictPod,
        name: "evict_pod",
        floor: Risk::Medium,
        target: TargetKind::Pod,
        mutating: true,
        params: &[],
        description: "Evicts the pod through the Eviction API, so PodDisruptionBudgets are respected.",
        rbac: &[("", "pods", &["get"]), ("", "pods/eviction", &["create"])],
        undo: "none: the pod's controller replaces it",
    },
    ActionSpec {
        action: Action::DeletePod,
        name: "delete_pod",
        floor: Risk::Medium,
        target: TargetKind::Pod,
        mutating: true,
        params: &[],
        description: "Deletes the pod; refused unless a controller owns it and will replace it.",
        rbac: &[("", "pods", &["get", "delete"])],
        undo: "none: the pod's controller replaces it",
    },
    ActionSpec {
        action: Action::RolloutUndo,
        name: "rollout_undo",
        floor: Risk::Medium,
        target: TargetKind::Workload,
        mutating: true,
        params: &[],
        description: "Rolls the workload back to its previous revision's pod template, as `kubectl rollout undo` does: a Deployment from its ReplicaSets, a StatefulSet or DaemonSet from its ControllerRevisions.",
        rbac: &[
            ("apps", "deployments", &["get", "patch"]),
            ("apps", "replicasets", &["list"]),
            ("apps", "statefulsets", &["get", "patch"]),
            ("apps", "daemonsets", &["get", "patch"]),
            ("apps", "controllerrevisions", &["list"]),
        ],
        undo: "`rollout_undo` again returns to the revision it replaced",
    },
    ActionSpec {
        action: Action::RolloutRestart,
        name: "rollout_restart",
        floor: Risk::Low,
        target: TargetKind::Workload,
        mutating: true,
        params: &[],
        description: "Restarts the workload's pods with a rolling update, as `kubectl rollout restart` does (Deployment, StatefulSet or DaemonSet).",
        rbac: &[
            ("apps", "deployments", &["get", "patch"]),
            ("apps", "statefulsets", &["get", "patch"]),
            ("apps", "daemonsets", &["get", "patch"]),
        ],
        undo: "none: a restart cannot be undone",
    },
    ActionSpec {
        action: Action::Scale,
        name: "scale",
        floor: Risk::Low,
        target: TargetKind::Workload,
        mutating: true,
        params: &[DELTA, REPLICAS],
        description: "Changes the workload's replicas through the scale subresource.",
        rbac: &[
            ("apps", "deployments", &["get"]),
            ("apps", "deployments/scale", &["get", "patch"]),
        ],
        undo: "`scale` with the opposite `delta`",
    },
    ActionSpec {
        action: Action::Escalate,
        name: "escalate",
        floor: Risk::None,
        target: TargetKind::Incident,
        mutating: false,
        params: &[REASON],
        description: "Stops the plan and hands the incident to people with the reason given.",
        rbac: &[],
        undo: "nothing to undo",
    },
    ActionSpec {
        action: Action::SetMemoryLimit,
        name: "set_memory_limit",
        floor: Risk::High,
        target: TargetKind::Workload,
        mutating: true,
        params: &[CONTAINER, PERCENT],
        description: "Raises one container's memory limit in the Deployment's pod template by `percent` (at most doubling it), never above the largest node's allocatable memory; refused when the limit is not set or already there. The old limit is kept in the annotation `medic.dev/memory-limit.<container>`. The pods are replaced by a rolling update.",
        rbac: &[
            ("apps", "deployments", &["get", "patch"]),
            ("", "nodes", &["list"]),
        ],
        undo: "`restore_memory_limit`",
    },
    ActionSpec {
        action: Action::RestoreMemoryLimit,
        name: "restore_memory_limit",
        floor: Risk::Medium,
        target: TargetKind::Workload,
        mutating: true,
        params: &[CONTAINER],
        description: "Puts back the memory limit `set_memory_limit` kept in its annotation, and removes the annotation; refused when there is none.",
        rbac: &[("apps", "deployments", &["get", "patch"])],
        undo: "`set_memory_limit`",
    },
    ActionSpec {
        action: Action::SetHpaMax,
        name: "set_hpa_max",
        floor: Risk::Medium,
        target: TargetKind::Autoscaler,
        mutating: true,
        params: &[PERCENT],
        description: "Raises the HorizontalPodAutoscaler's maxReplicas by `percent` (at most doubling it, at least by one); the old maximum is kept in the annotation `medic.dev/max-replicas`.",
        rbac: &[("autoscaling", "horizontalpodautoscalers", &["get", "patch"])],
        undo: "`restore_hpa_max`",
    },
    ActionSpec {
        action: Action::RestoreHpaMax,
        name: "restore_hpa_max",
        floor: Risk::Medium,
        target: TargetKind::Autoscaler,
        mutating: true,
        params: &[],
        description: "Puts back the maxReplicas `set_hpa_max` kept in its annotation, and removes the annotation; refused when there is none.",
        rbac: &[("autoscaling", "horizontalpodautoscalers", &["get", "patch"])],
        undo: "`set_hpa_max`",
    },
    ActionSpec {
        action: Action::DescribeScheduling,
        name: "describe_scheduling",
        floor: Risk::None,
        target: TargetKind::Pod,
        mutating: false,
        params: &[],
        description: "Says why a pending pod cannot be scheduled, into the incident and to people: the scheduler's latest FailedScheduling event, what the pod requests, the most CPU and memory free on any schedulable node, and what is short.",
        rbac: &[
            ("", "pods", &["get", "list"]),
            ("", "nodes", &["list"]),
            ("", "events", &["list"]),
        ],
        undo: "nothing to undo (read-only)",
    },
];

impl Action {
    pub fn spec(self) -> &'static ActionSpec {
        // Row order follows the enum; a test checks every row's action.
        let row = match self {
            Action::CaptureLogs => 0,
            Action::CordonNode => 1,
            Action::UncordonNode => 2,
            Action::DrainNode => 3,
            Action::EvictPod => 4,
            Action::DeletePod => 5,
            Action::RolloutUndo => 6,
            Action::RolloutRestart => 7,
            Action::Scale => 8,
            Action::Escalate => 9,
            Action::SetMemoryLimit => 10,
            Action::RestoreMemoryLimit => 11,
            Action::SetHpaMax => 12,
            Action::RestoreHpaMax => 13,
            Action::DescribeScheduling => 14,
        };
        &CATALOG[row]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn from_name(name: &str) -> Option<Action> {
        CATALOG.iter().find(|s| s.name == name).map(|s| s.action)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The known action name closest to `name`, for lint hints.
pub fn nearest_action(name: &str) -> Option<&'static str> {
    crate::model::nearest(name, CATALOG.iter().map(|s| s.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_row_and_names_round_trip() {
        for spec in CATALOG {
            assert_eq!(
                CATALOG.iter().filter(|s| s.action == spec.action).count(),
                1
            );
            assert_eq!(Action::from_name(spec.name), Some(spec.action));
            assert_eq!(spec.action.spec().action, spec.action);
            let yaml: Action = serde_yaml::from_str(spec.name).unwrap();
            assert_eq!(yaml, spec.action);
        }
    }

    #[test]
    fn suggests_the_nearest_name() {
        assert_eq!(nearest_action("cordon"), Some("cordon_node"));
        assert_eq!(nearest_action("rollback_undo"), Some("rollout_undo"));
        assert_eq!(nearest_action("format_disk"), None);
    }
}
