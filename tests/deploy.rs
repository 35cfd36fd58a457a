//! deploy/: both overlays render with `kubectl kustomize`, every object
//! parses into its k8s-openapi type, the enforce ClusterRole grants exactly
//! what the action catalog needs, the observe one can write nothing outside
//! its own Leases, and the Deployment runs two hardened replicas.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use medic::act::CATALOG;
use medic::config::{Config, Mode};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

struct Rendered {
    role: ClusterRole,
    /// The namespaced Role for Leases and the leader's pod label.
    leases: Role,
    deployment: Deployment,
    config: ConfigMap,
    kinds: Vec<String>,
}

fn render(overlay: &str) -> Option<Rendered> {
    let out = match Command::new("kubectl")
        .args(["kustomize", &format!("deploy/overlays/{overlay}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(o) => o,
        Err(_) => {
            eprintln!("skipped: kubectl is not installed (scripts/install-deps installs it)");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut role, mut deployment, mut config, mut kinds) = (None, None, None, Vec::new());
    let mut leases = None;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        let kind = value["kind"].as_str().unwrap().to_string();
        let what = format!("{overlay}: {kind}");
        match kind.as_str() {
            "Namespace" => drop(parse::<Namespace>(value, &what)),
            "ServiceAccount" => drop(parse::<ServiceAccount>(value, &what)),
            "Service" => drop(parse::<Service>(value, &what)),
            "PodDisruptionBudget" => drop(parse::<PodDisruptionBudget>(value, &what)),
            "NetworkPolicy" => drop(parse::<NetworkPolicy>(value, &what)),
            "ClusterRoleBinding" => drop(parse::<ClusterRoleBinding>(value, &what)),
            "RoleBinding" => drop(parse::<RoleBinding>(value, &what)),
            "Role" => leases = Some(parse::<Role>(value, &what)),
            "ClusterRole" => role = Some(parse::<ClusterRole>(value, &what)),
            "Deployment" => deployment = Some(parse::<Deployment>(value, &what)),
            "ConfigMap" => config = Some(parse::<ConfigMap>(value, &what)),
            other => panic!("{overlay}: unexpected kind {other}"),
        }
        kinds.push(kind);
    }
    Some(Rendered {
        role: role.unwrap(),
        leases: leases.unwrap(),
        deployment: deployment.unwrap(),
        config: config.unwrap(),
        kinds,
    })
}

fn parse<T: serde::de::DeserializeOwned>(value: serde_yaml::Value, what: &str) -> T {
    serde_yaml::from_value(value).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// (apiGroup, resource) -> verbs, as granted by a role.
fn grants(role: &ClusterRole) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role.rules.iter().flatten() {
        for g in rule.api_groups.iter().flatten() {
            for r in rule.resources.iter().flatten() {
                out.entry((g.clone(), r.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

/// What medic reads for its snapshot, on top of the catalog's needs.
fn reads() -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (g, r) in [
        ("", "nodes"),
        ("", "pods"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
    ] {
        out.entry((g.into(), r.into()))
            .or_default()
            .extend(["get", "list", "watch"].map(String::from));
    }
    out
}

#[test]
fn enforce_grants_exactly_what_the_catalog_needs() {
    let Some(r) = render("enforce") else { return };
    let mut want = reads();
    for action in CATALOG {
        for (group, resource, verbs) in action.rbac {
            want.entry((group.to_string(), resource.to_string()))
                .or_default()
                .extend(verbs.iter().map(|v| v.to_string()));
        }
    }
    want.entry(("".into(), "events".into()))
        .or_default()
        .insert("create".into());
    assert_eq!(grants(&r.role), want);
    let config = Config::parse(&r.config.data.unwrap()["medic.yaml"], "medic.yaml").unwrap();
    assert_eq!(config.mode, Mode::Enforce);
    assert_eq!(r.kinds.len(), 12, "{:?}", r.kinds);
}

#[test]
fn observe_can_write_nothing() {
    let Some(r) = render("observe") else { return };
    let writes = [
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
        "*",
    ];
    for ((g, res), verbs) in grants(&r.role) {
        assert!(
            verbs.iter().all(|v| !writes.contains(&v.as_str())),
            "{g}/{res}: {verbs:?}"
        );
    }
    let config = Config::parse(&r.config.data.unwrap()["medic.yaml"], "medic.yaml").unwrap();
    assert_eq!(config.mode, Mode::Observe);
}

#[test]
fn the_deployment_runs_hardened_with_two_replicas_and_a_leader() {
    let Some(r) = render("enforce") else { return };
    let spec = r.deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let env: BTreeMap<String, String> = pod.containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .filter_map(|e| Some((e.name, e.value_from?.field_ref?.field_path)))
        .collect();
    assert_eq!(env["POD_NAME"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"], "metadata.namespace");
    let lease_rule = r
        .leases
        .rules
        .unwrap()
        .into_iter()
        .find(|rule| {
            rule.resources
                .as_ref()
                .unwrap()
                .contains(&"leases".to_string())
        })
        .unwrap();
    assert_eq!(
        lease_rule.verbs,
        vec!["get", "create", "update", "patch"],
        "what kube-lease-manager needs"
    );
    assert!(
        pod.affinity.unwrap().pod_anti_affinity.is_some(),
        "replicas spread over nodes"
    );
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let c = &pod.containers[0];
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    assert!(
        c.resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()
            .contains_key("memory")
    );
    assert!(c.readiness_probe.is_some() && c.liveness_probe.is_some());
    // The generated ConfigMap's hashed name is what the Deployment mounts.
    let volume = &pod.volumes.unwrap()[0];
    assert_eq!(
        volume.config_map.as_ref().unwrap().name,
        r.config.metadata.name.unwrap()
    );
}
