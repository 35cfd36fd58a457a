//! High availability: leader election on a coordination.k8s.io Lease, and a
//! Lease per target so two actors (two medics, or medic and another
//! controller using the same convention) never disrupt one object at once.
//!
//! Only the leader runs the loop; every write re-checks the leader Lease
//! first and holds the target's Lease while it runs. The Leases themselves
//! are driven by kube-lease-manager.

mod fenced;
mod leader;

pub use fenced::FencedCluster;
pub use leader::{LEADER_LABEL, Leadership, Term, holds_lease, takes_over};

use crate::model::{ObjectRef, Secs};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("lease {lease}")]
    Lease {
        lease: String,
        source: kube_lease_manager::LeaseManagerError,
    },
    #[error("cannot read lease {lease}")]
    Read { lease: String, source: kube::Error },
    #[error(
        "cannot read lease {lease} within {after_ms} ms (the API server is slow or unreachable)"
    )]
    ReadTimeout { lease: String, after_ms: u128 },
    #[error("not the leader: {0}")]
    NotLeader(String),
    #[error("lease {lease} is held by {holder} (waited {waited}s)")]
    Busy {
        lease: String,
        holder: String,
        waited: u64,
    },
}

/// `leaderElection` in medic.yaml. Used by `medic run` against a real
/// cluster; ignored with `--sim-cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LeaderElection {
    /// Off only for a single replica that is sure to be alone.
    pub enabled: bool,
    /// The leader Lease's name.
    pub lease_name: String,
    /// Where the Leases live; `$POD_NAMESPACE` when empty.
    pub namespace: String,
    /// How long a Lease is valid without renewal. The leader renews it
    /// `renewBefore` ahead of expiry, and a write needs at least that much left.
    pub lease_duration: Secs,
    /// How long before the Lease expires the leader renews it.
    pub renew_before: Secs,
    /// How long a write waits for a target's Lease held by someone else
    /// before it is refused and escalated.
    pub target_wait: Secs,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: true,
            lease_name: "medic-leader".into(),
            namespace: String::new(),
            lease_duration: Secs(15),
            renew_before: Secs(5),
            target_wait: Secs(10),
        }
    }
}

impl LeaderElection {
    /// The namespace, from the config or the pod's own.
    pub fn namespace(&self) -> String {
        if self.namespace.is_empty() {
            std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "medic-system".into())
        } else {
            self.namespace.clone()
        }
    }
}

/// `e` and its causes on one line, for a refusal's reason.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        // Some errors repeat their cause in their own message.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

/// This replica's identity: the pod name (downward API), else the host name.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("medic-{}", std::process::id()))
}

/// The Lease that guards writes to `target`: a valid object name, unique
/// per target, readable by people listing Leases.
pub fn target_lease_name(target: &ObjectRef) -> String {
    let mut name = format!("medic-target.{}", target.kind.to_ascii_lowercase());
    if let Some(ns) = &target.namespace {
        name.push('.');
        name.push_str(ns);
    }
    name.push('.');
    name.push_str(&target.name);
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if name.len() <= 253 {
        return name;
    }
    // Too long for an object name: keep a readable prefix and make it unique.
    format!("{}.{:016x}", &name[..200], fnv1a(name.as_bytes()))
}

/// FNV-1a: stable across builds, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_lease_names_are_valid_and_distinct() {
        let node = ObjectRef::cluster("Node", "worker-1");
        let dep = ObjectRef::namespaced("Deployment", "shop", "cart");
        assert_eq!(target_lease_name(&node), "medic-target.node.worker-1");
        assert_eq!(target_lease_name(&dep), "medic-target.deployment.shop.cart");
        let long = ObjectRef::namespaced("Pod", &"n".repeat(63), &"p".repeat(253));
        let long2 = ObjectRef::namespaced("Pod", &"n".repeat(63), &"q".repeat(253));
        let (a, b) = (target_lease_name(&long), target_lease_name(&long2));
        assert!(a.len() <= 253 && b.len() <= 253);
        assert_ne!(a, b);
    }
}
