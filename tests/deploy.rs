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
    policies: BTreeMap<String, NetworkPolicy>,
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
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("deprecated"),
        "{overlay}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut role, mut deployment, mut config, mut kinds) = (None, None, None, Vec::new());
    let mut leases = None;
    let mut policies = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
        let kind = value["kind"].as_str().unwrap().to_string();
        let what = format!("{overlay}: {kind}");
        match kind.as_str() {
            "Namespace" => drop(parse::<Namespace>(value, &what)),
            "ServiceAccount" => drop(parse::<ServiceAccount>(value, &what)),
            "Service" => drop(parse::<Service>(value, &what)),
            "PodDisruptionBudget" => drop(parse::<PodDisruptionBudget>(value, &what)),
            "NetworkPolicy" => {
                let p = parse::<NetworkPolicy>(value, &what);
                policies.insert(p.metadata.name.clone().unwrap(), p);
            }
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
        policies,
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
    assert_eq!(r.kinds.len(), 13, "{:?}", r.kinds);
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

/// (namespace labels, pod labels) of each peer a rule names, and its ports.
type Peers = Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>;

fn peers(peers: Option<&Vec<k8s_openapi::api::networking::v1::NetworkPolicyPeer>>) -> Peers {
    peers
        .into_iter()
        .flatten()
        .map(|p| {
            let labels =
                |s: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
                    s.and_then(|s| s.match_labels.clone()).unwrap_or_default()
                };
            (
                labels(p.namespace_selector.as_ref()),
                labels(p.pod_selector.as_ref()),
            )
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn only_named_sources_reach_medic_and_medic_reaches_only_what_it_needs() {
    for overlay in ["enforce", "observe"] {
        let Some(r) = render(overlay) else { return };
        let ingress = r.policies["medic-ingress"].spec.clone().unwrap();
        assert_eq!(ingress.policy_types, Some(vec!["Ingress".to_string()]));
        let rules = ingress.ingress.unwrap();
        // Every rule names its sources: none admits the whole cluster.
        for rule in &rules {
            assert!(
                rule.from.as_ref().is_some_and(|f| !f.is_empty()),
                "{overlay}: an ingress rule without sources admits every pod"
            );
        }
        let sources: Peers = rules.iter().flat_map(|r| peers(r.from.as_ref())).collect();
        let monitoring = labels(&[("kubernetes.io/metadata.name", "monitoring")]);
        assert_eq!(
            sources,
            vec![
                (
                    monitoring.clone(),
                    labels(&[("app.kubernetes.io/name", "alertmanager")])
                ),
                (
                    monitoring.clone(),
                    labels(&[("app.kubernetes.io/name", "prometheus")])
                ),
                (labels(&[("medic.dev/api-access", "true")]), BTreeMap::new()),
            ],
            "{overlay}"
        );
        let egress = r.policies["medic-egress"].spec.clone().unwrap();
        assert_eq!(egress.policy_types, Some(vec!["Egress".to_string()]));
        let ports: BTreeSet<i32> = egress
            .egress
            .unwrap()
            .iter()
            .flat_map(|e| e.ports.clone().unwrap_or_default())
            .filter_map(|p| match p.port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => Some(n),
                _ => None,
            })
            .collect();
        let mut want = BTreeSet::from([53, 443, 6443, 9090]);
        if overlay == "enforce" {
            want.insert(4222);
        }
        assert_eq!(ports, want, "{overlay}");
    }
}

#[test]
fn enforce_reads_credentials_from_a_secret_and_keeps_its_journal_in_nats() {
    let Some(r) = render("enforce") else { return };
    let config = Config::parse(&r.config.data.unwrap()["medic.yaml"], "medic.yaml").unwrap();
    let pod = r.deployment.spec.unwrap().template.spec.unwrap();
    let volumes = pod.volumes.unwrap();
    let secret = volumes
        .iter()
        .find_map(|v| Some((v.name.clone(), v.secret.clone()?)))
        .expect("a Secret volume");
    assert_eq!(secret.1.secret_name.as_deref(), Some("medic-secrets"));
    let mounts = pod.containers[0].volume_mounts.clone().unwrap();
    let secret_mount = mounts.iter().find(|m| m.name == secret.0).unwrap();
    let config_mount = mounts.iter().find(|m| m.name == "config").unwrap();
    assert!(
        !secret_mount
            .mount_path
            .starts_with(&config_mount.mount_path),
        "secrets under the ConfigMap's mount"
    );
    let under_secret = |path: &Option<String>| {
        path.as_ref()
            .is_some_and(|p| p.starts_with(&format!("{}/", secret_mount.mount_path)))
    };
    assert!(under_secret(&config.api.token_file), "{:?}", config.api);
    assert!(
        under_secret(&config.api.webhook.token_file),
        "{:?}",
        config.api
    );
    // An enforcing medic with these settings starts: its webhook is guarded.
    assert!(config.api.webhook.enabled);
    assert!(
        !config.nats.url.is_empty(),
        "the journal would die with the pod"
    );
    assert!(!config.approvals.allow_anyone);
    assert_eq!(pod.security_context.unwrap().fs_group, Some(65532));
}
