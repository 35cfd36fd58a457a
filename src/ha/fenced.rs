//! `FencedCluster`: the `Cluster` every write goes through when medic runs
//! with more than one replica. Before each write it confirms leadership
//! from the API, then holds the target's Lease for the length of the
//! action; if either fails, nothing is written and the step fails, so the
//! executor escalates.

use super::{HaError, LeaderElection, Leadership, target_lease_name};
use crate::cluster::{ActionRequest, Cluster, ClusterError, ClusterSnapshot};
use crate::model::ObjectRef;
use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use std::sync::Arc;
use std::time::Duration;

pub struct FencedCluster {
    inner: Arc<dyn Cluster>,
    leader: Arc<Leadership>,
    client: Client,
    config: LeaderElection,
}

impl FencedCluster {
    pub fn new(
        inner: Arc<dyn Cluster>,
        leader: Arc<Leadership>,
        client: Client,
        config: LeaderElection,
    ) -> Self {
        FencedCluster {
            inner,
            leader,
            client,
            config,
        }
    }

    fn refused(request: &ActionRequest, e: &HaError) -> ClusterError {
        ClusterError::Refused {
            action: request.action,
            target: request.target.clone(),
            reason: super::with_causes(e),
        }
    }

    /// Runs `request` while holding its target's Lease; the Lease is renewed
    /// in the background for as long as the action takes, then released.
    async fn perform_locked(&self, request: &ActionRequest) -> Result<String, ClusterError> {
        let name = target_lease_name(&request.target);
        let namespace = self.config.namespace();
        let manager = LeaseManagerBuilder::new(self.client.clone(), &name)
            .with_namespace(&namespace)
            .with_identity(self.leader.identity())
            .with_duration(self.config.lease_duration.0.max(1).unsigned_abs())
            .with_grace(self.config.renew_before.0.max(1).unsigned_abs())
            .build()
            .await
            .map_err(|source| {
                Self::refused(
                    request,
                    &HaError::Lease {
                        lease: name.clone(),
                        source,
                    },
                )
            })?;
        let (mut held, task) = manager.watch().await;
        let wait = self.config.target_wait.0.max(0).unsigned_abs();
        let acquired = tokio::time::timeout(Duration::from_secs(wait), held.wait_for(|h| *h))
            .await
            .is_ok_and(|r| r.is_ok());
        let result = if acquired {
            self.inner.perform(request).await
        } else {
            let holder = self.holder(&name, &namespace).await;
            Err(Self::refused(
                request,
                &HaError::Busy {
                    lease: name.clone(),
                    holder,
                    waited: wait,
                },
            ))
        };
        // Closing the channel makes the manager release the Lease and stop.
        drop(held);
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(lease = %name, error = %e, "target lease not released")
            }
            Ok(Err(e)) => tracing::warn!(lease = %name, error = %e, "target lease task failed"),
            Err(_) => {
                tracing::warn!(lease = %name, "target lease not released in 5s; it will expire")
            }
        }
        result
    }

    async fn holder(&self, name: &str, namespace: &str) -> String {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        match leases.get(name).await {
            Ok(l) => l
                .spec
                .and_then(|s| s.holder_identity)
                .unwrap_or_else(|| "nobody".into()),
            Err(e) => format!("unknown ({e})"),
        }
    }
}

#[async_trait]
impl Cluster for FencedCluster {
    async fn snapshot(&self) -> Result<std::sync::Arc<ClusterSnapshot>, ClusterError> {
        self.inner.snapshot().await
    }

    async fn perform(&self, request: &ActionRequest) -> Result<String, ClusterError> {
        self.leader
            .confirm()
            .await
            .map_err(|e| Self::refused(request, &e))?;
        if request.dry_run {
            // A dry run changes nothing, so there is nothing to keep exclusive.
            return self.inner.perform(request).await;
        }
        self.perform_locked(request).await
    }

    async fn logs(&self, pod: &ObjectRef, tail: usize) -> Result<String, ClusterError> {
        self.inner.logs(pod, tail).await
    }
}
