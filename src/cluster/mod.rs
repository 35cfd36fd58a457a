//! The `Cluster` port: read the objects medic reasons about; perform typed
//! actions. `WatchedCluster` (`medic run`) reads through watches and writes
//! through `KubeCluster`; `SimCluster` holds a fixture's objects in memory.

mod client;
pub mod hpa_max;
mod kube;
pub mod memory_limit;
mod object;
pub mod scheduling;
mod sim;
mod snapshot;
mod watched;

pub use self::kube::{EvictionRetry, KubeCluster, PAGE as LIST_PAGE};
pub use client::kube_client;
pub use object::{ClusterObject, ObjectError};
pub use sim::{Relisted, SimCluster};
pub use snapshot::{ChangeEvent, ClusterSnapshot, NodeInfo, PodInfo, PodRecord, WorkloadInfo};
pub use watched::WatchedCluster;

use crate::act::Action;
use crate::model::{ObjectRef, Timestamp};
use async_trait::async_trait;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    #[error("{0} not found")]
    NotFound(ObjectRef),
    #[error("{action} refused on {target}: {reason}")]
    Refused {
        action: Action,
        target: ObjectRef,
        reason: String,
    },
    #[error("{action} on {target} is not supported: {reason}")]
    Unsupported {
        action: Action,
        target: ObjectRef,
        reason: String,
    },
    #[error("cluster API error: {0}")]
    Api(String),
    #[error("{what} not read within {}s", after.as_secs())]
    Timeout {
        what: String,
        after: std::time::Duration,
    },
}

/// One action for the cluster to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    pub action: Action,
    pub target: ObjectRef,
    pub params: BTreeMap<String, serde_yaml::Value>,
    /// Sent as a server-side dry run: validated, not persisted.
    pub dry_run: bool,
    /// The step's risk, recorded on the Kubernetes Event.
    pub risk: crate::model::Risk,
    pub at: Timestamp,
    pub incident: String,
    pub playbook: String,
    pub step: usize,
}

impl ActionRequest {
    /// The replica count a `scale` asks for, from the current one: exactly
    /// one of `delta` and `replicas`, never below zero.
    pub fn wanted_replicas(&self, current: i64) -> Result<i64, ClusterError> {
        let refused = |reason: String| ClusterError::Refused {
            action: self.action,
            target: self.target.clone(),
            reason,
        };
        let delta = self.params.get("delta").and_then(serde_yaml::Value::as_i64);
        let absolute = self
            .params
            .get("replicas")
            .and_then(serde_yaml::Value::as_i64);
        let wanted = match (delta, absolute) {
            (Some(d), None) => current.saturating_add(d),
            (None, Some(r)) => r,
            _ => {
                return Err(refused(
                    "scale needs exactly one of `delta` and `replicas`".into(),
                ));
            }
        };
        if wanted < 0 {
            return Err(refused(format!("would scale to {wanted} replicas")));
        }
        Ok(wanted)
    }
}

#[async_trait]
pub trait Cluster: Send + Sync {
    /// What the planner and correlator need to know, read now.
    /// Shared, so a cached view is handed out without copying it.
    async fn snapshot(&self) -> Result<std::sync::Arc<ClusterSnapshot>, ClusterError>;

    /// Performs one action and says what it did.
    async fn perform(&self, request: &ActionRequest) -> Result<String, ClusterError>;

    /// The last `tail` lines of a pod's logs (all containers).
    async fn logs(&self, pod: &ObjectRef, tail: usize) -> Result<String, ClusterError>;
}
