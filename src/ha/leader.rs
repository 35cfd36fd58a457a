//! The leader Lease: kube-lease-manager keeps it claimed and renewed in the
//! background; `confirm` reads it back from the API right before a write,
//! so a replica that lost the Lease (a partition, a long GC pause) cannot
//! act on a stale belief that it still leads.

use super::{HaError, LeaderElection};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use kube_lease_manager::{DurationSeconds, LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The pod label that marks the replica that leads.
pub const LEADER_LABEL: &str = "medic.dev/leader";

/// One uninterrupted hold of the leader Lease. Taking the Lease sets a new
/// `acquireTime` and counts a transition; renewing it changes neither. Two
/// confirmations with the same term mean nobody else led in between.
/// Without leader election there is one term, the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Term {
    pub acquired: Option<k8s_openapi::jiff::Timestamp>,
    pub transitions: i32,
}

/// Whether a replica that leads this cycle (in `now`) must rebuild its
/// engine from the journal: it did not lead last cycle, and the term it
/// last held is not this one, so someone else may have acted meanwhile. A
/// leader back from a failed confirmation in the same term kept the Lease
/// throughout, so its engine (signals, `for` timers) stands.
pub fn takes_over(led_last_cycle: Option<bool>, held: Option<&Term>, now: &Term) -> bool {
    led_last_cycle == Some(false) && held != Some(now)
}

pub struct Leadership {
    identity: String,
    lease_name: String,
    leases: Api<Lease>,
    /// This replica's own pod, labelled with its role so the webhook
    /// Service routes Alertmanager to the leader.
    pods: Api<Pod>,
    /// Least validity left for a write to go ahead.
    margin: Duration,
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

impl Leadership {
    /// Creates the Lease if needed and starts competing for it.
    pub async fn start(
        client: Client,
        config: &LeaderElection,
        identity: &str,
    ) -> Result<Leadership, HaError> {
        let namespace = config.namespace();
        let manager = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
            .with_namespace(&namespace)
            .with_identity(identity)
            .with_duration(secs(config.lease_duration.0))
            .with_grace(secs(config.renew_before.0))
            .build()
            .await
            .map_err(|source| HaError::Lease {
                lease: config.lease_name.clone(),
                source,
            })?;
        let (state, task) = manager.watch().await;
        tracing::info!(lease = %config.lease_name, %namespace, identity, "competing for leadership");
        Ok(Leadership {
            identity: identity.into(),
            lease_name: config.lease_name.clone(),
            leases: Api::namespaced(client.clone(), &namespace),
            pods: Api::namespaced(client, &namespace),
            margin: Duration::from_millis(secs(config.renew_before.0) * 500),
            state,
            task,
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// What the background renewal last saw; cheap, may be a few seconds old.
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Sets the `medic.dev/leader` label on this replica's pod (`$POD_NAME`),
    /// which the `medic-webhook` Service selects on.
    pub async fn label_pod(&self, leading: bool) {
        let Ok(pod) = std::env::var("POD_NAME") else {
            return;
        };
        let patch = serde_json::json!({
            "metadata": {"labels": {LEADER_LABEL: if leading { "true" } else { "false" }}}
        });
        let params = PatchParams {
            field_manager: Some("medic".into()),
            ..PatchParams::default()
        };
        if let Err(e) = self.pods.patch(&pod, &params, &Patch::Merge(&patch)).await {
            tracing::warn!(%pod, error = %e, "cannot label this pod with its leader role");
        }
    }

    /// Whether this replica may run the pipeline this cycle: it believes it
    /// leads and the API confirms it. The background renewal keeps its last
    /// belief while the API is unreachable, so a leader cut off from it
    /// would otherwise go on deciding, journaling and notifying beside the
    /// replica that took the Lease over.
    pub async fn leads_now(&self) -> Option<Term> {
        if !self.is_leader() {
            return None;
        }
        match self.confirm().await {
            Ok(term) => Some(term),
            Err(e) => {
                tracing::warn!(identity = %self.identity, error = %e, "leadership not confirmed: not acting this cycle");
                None
            }
        }
    }

    /// Reads the Lease from the API and succeeds only if this replica holds
    /// it with enough time left; says which term it holds.
    pub async fn confirm(&self) -> Result<Term, HaError> {
        // An answer later than the margin could not confirm the Lease anyway
        // (a silent API server would otherwise hold it to the read timeout).
        let lease = tokio::time::timeout(self.margin, self.leases.get(&self.lease_name))
            .await
            .map_err(|_| HaError::ReadTimeout {
                lease: self.lease_name.clone(),
                after_ms: self.margin.as_millis(),
            })?
            .map_err(|source| HaError::Read {
                lease: self.lease_name.clone(),
                source,
            })?;
        let spec = lease.spec.unwrap_or_default();
        if holds_lease(&spec, &self.identity, SystemTime::now(), self.margin) {
            Ok(Term {
                acquired: spec.acquire_time.map(|t| t.0),
                transitions: spec.lease_transitions.unwrap_or(0),
            })
        } else {
            Err(HaError::NotLeader(format!(
                "lease {} is held by {}",
                self.lease_name,
                spec.holder_identity.as_deref().unwrap_or("nobody")
            )))
        }
    }

    /// Gives the Lease up so another replica takes over at once rather
    /// than after it expires.
    pub async fn stop(self) {
        let Leadership { state, task, .. } = self;
        drop(state);
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader lease released"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "could not release the leader lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "lease task failed"),
            Err(_) => tracing::warn!("leader lease not released within 5s; it will expire"),
        }
    }
}

fn secs(s: i64) -> DurationSeconds {
    s.max(1).unsigned_abs()
}

/// Whether `identity` holds the Lease at `now` with at least `margin` left.
pub fn holds_lease(spec: &LeaseSpec, identity: &str, now: SystemTime, margin: Duration) -> bool {
    if spec.holder_identity.as_deref() != Some(identity) {
        return false;
    }
    let (Some(renewed), Some(duration)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return false;
    };
    let Ok(duration) = u64::try_from(duration) else {
        return false;
    };
    let renewed: SystemTime = renewed.0.into();
    renewed + Duration::from_secs(duration) >= now + margin
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn spec(holder: Option<&str>, renewed: SystemTime, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(Into::into),
            renew_time: Some(MicroTime(
                k8s_openapi::jiff::Timestamp::try_from(renewed).unwrap(),
            )),
            lease_duration_seconds: Some(duration),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_new_term_after_not_leading_is_a_takeover() {
        let term = |t: i64, n| Term {
            acquired: Some(k8s_openapi::jiff::Timestamp::from_second(t).unwrap()),
            transitions: n,
        };
        let mine = term(100, 1);
        assert!(!takes_over(None, None, &mine), "the engine was just built");
        assert!(!takes_over(Some(true), Some(&mine), &mine), "still leading");
        assert!(
            !takes_over(Some(false), Some(&mine), &mine),
            "a blip: the same term"
        );
        assert!(takes_over(Some(false), Some(&mine), &term(160, 3)));
        assert!(
            takes_over(Some(false), None, &mine),
            "a standby's first lead"
        );
    }

    #[test]
    fn holds_only_its_own_unexpired_lease_with_margin_left() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let margin = Duration::from_secs(2);
        let ago = |s| now - Duration::from_secs(s);
        assert!(holds_lease(&spec(Some("a"), ago(5), 15), "a", now, margin));
        assert!(!holds_lease(&spec(Some("b"), ago(5), 15), "a", now, margin));
        assert!(!holds_lease(&spec(None, ago(5), 15), "a", now, margin));
        assert!(
            !holds_lease(&spec(Some("a"), ago(14), 15), "a", now, margin),
            "1s left is less than the margin"
        );
        assert!(!holds_lease(
            &spec(Some("a"), ago(60), 15),
            "a",
            now,
            margin
        ));
        assert!(!holds_lease(&LeaseSpec::default(), "a", now, margin));
    }
}
