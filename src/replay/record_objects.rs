//! `medic record --kubeconfig`: the cluster objects a recording's series
//! name, read from the API server, so the fixture's `cluster:` is what the
//! cluster held rather than what someone remembered.
//!
//! The series' labels name pods, nodes and workloads (cAdvisor and
//! kube-state-metrics label them `namespace`/`pod`, `node`, `deployment`,
//! ...). Each pod's controller chain is followed (ReplicaSet, then its
//! Deployment) so replay lifts the pod to its workload as it would live.

use crate::model::ObjectRef;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("cannot read {object} from the Kubernetes API: {source}")]
    Api {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot turn {object} into YAML: {reason}")]
    Convert { object: String, reason: String },
}

/// What was read, and what was not with the reason.
#[derive(Debug, Default)]
pub struct Fetched {
    pub objects: Vec<serde_yaml::Value>,
    pub skipped: Vec<String>,
}

/// The objects the series' labels name, in a stable order.
pub fn referenced<'a>(
    labels: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeSet<ObjectRef> {
    let mut out = BTreeSet::new();
    for l in labels {
        let get = |k: &str| l.get(k).filter(|v| !v.is_empty());
        if let Some(node) = get("node") {
            out.insert(ObjectRef::cluster("Node", node));
        }
        let Some(ns) = get("namespace") else {
            continue;
        };
        for (label, kind) in [
            ("pod", "Pod"),
            ("deployment", "Deployment"),
            ("statefulset", "StatefulSet"),
            ("daemonset", "DaemonSet"),
        ] {
            if let Some(name) = get(label) {
                out.insert(ObjectRef::namespaced(kind, ns, name));
            }
        }
    }
    out
}

fn resource(kind: &str) -> Option<ApiResource> {
    Some(match kind {
        "Pod" => ApiResource::erase::<Pod>(&()),
        "Node" => ApiResource::erase::<Node>(&()),
        "ReplicaSet" => ApiResource::erase::<ReplicaSet>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "DaemonSet" => ApiResource::erase::<DaemonSet>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        _ => return None,
    })
}

/// Reads `refs` and their controllers. A missing object (a pod deleted since
/// the incident) or one the API refuses is skipped with the reason; a
/// failure to reach the API at all is an error.
pub async fn fetch(client: Client, refs: &BTreeSet<ObjectRef>) -> Result<Fetched, ObjectsError> {
    let mut out = Fetched::default();
    let mut queue: VecDeque<ObjectRef> = refs.iter().cloned().collect();
    // Every node, not only those the series name: the guards judge a cordon
    // or drain by the share of the pool left schedulable.
    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.list(&ListParams::default()).await {
        Ok(list) => {
            for n in list.items {
                if let Some(name) = n.metadata.name {
                    queue.push_back(ObjectRef::cluster("Node", &name));
                }
            }
        }
        Err(kube::Error::Api(e)) => out
            .skipped
            .push(format!("the list of nodes: {} {}", e.code, e.message)),
        Err(source) => {
            return Err(ObjectsError::Api {
                object: "the list of nodes".into(),
                source,
            });
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(r) = queue.pop_front() {
        if !seen.insert(r.clone()) {
            continue;
        }
        let Some(ar) = resource(&r.kind) else {
            out.skipped
                .push(format!("{r}: medic does not record {} objects", r.kind));
            continue;
        };
        let api: Api<DynamicObject> = match &r.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let obj = match api.get_opt(&r.name).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                out.skipped.push(format!("{r}: not found (deleted since?)"));
                continue;
            }
            Err(kube::Error::Api(e)) => {
                out.skipped.push(format!("{r}: {} {}", e.code, e.message));
                continue;
            }
            Err(source) => {
                return Err(ObjectsError::Api {
                    object: r.to_string(),
                    source,
                });
            }
        };
        if let (Some(ns), Some(owners)) = (&r.namespace, &obj.metadata.owner_references) {
            for o in owners.iter().filter(|o| o.controller == Some(true)) {
                queue.push_back(ObjectRef::namespaced(&o.kind, ns, &o.name));
            }
        }
        out.objects.push(trimmed(&r, obj, &ar)?);
        // A rollback needs the Deployment's older ReplicaSets (its history).
        if let (true, Some(ns)) = (r.kind == "Deployment", &r.namespace) {
            let rs = ApiResource::erase::<ReplicaSet>(&());
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &rs);
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    for item in list.items {
                        let owned = item.metadata.owner_references.iter().flatten().any(|o| {
                            o.controller == Some(true) && o.kind == "Deployment" && o.name == r.name
                        });
                        if let (true, Some(name)) = (owned, item.metadata.name.as_deref()) {
                            queue.push_back(ObjectRef::namespaced("ReplicaSet", ns, name));
                        }
                    }
                }
                Err(kube::Error::Api(e)) => out
                    .skipped
                    .push(format!("the ReplicaSets of {r}: {} {}", e.code, e.message)),
                Err(source) => {
                    return Err(ObjectsError::Api {
                        object: format!("the ReplicaSets of {r}"),
                        source,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The object as `kubectl get -o yaml` shows it, less what only the API
/// server needs (managed fields, resource version, last-applied).
fn trimmed(
    r: &ObjectRef,
    mut obj: DynamicObject,
    ar: &ApiResource,
) -> Result<serde_yaml::Value, ObjectsError> {
    obj.metadata.managed_fields = None;
    obj.metadata.resource_version = None;
    if let Some(a) = obj.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        if a.is_empty() {
            obj.metadata.annotations = None;
        }
    }
    if ar.kind == "Node"
        && let Some(status) = obj.data.get_mut("status").and_then(|v| v.as_object_mut())
    {
        // Hundreds of image names per node, and nothing medic decides on.
        status.remove("images");
    }
    obj.types = Some(kube::api::TypeMeta {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
    });
    let convert = |reason: String| ObjectsError::Convert {
        object: r.to_string(),
        reason,
    };
    let json = serde_json::to_value(&obj).map_err(|e| convert(e.to_string()))?;
    serde_yaml::to_value(json).map_err(|e| convert(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_pods_nodes_and_workloads() {
        let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let series = [
            l(&[
                ("namespace", "shop"),
                ("pod", "web-1"),
                ("container", "web"),
            ]),
            l(&[("node", "node-a"), ("mountpoint", "/")]),
            l(&[("namespace", "shop"), ("deployment", "web")]),
            l(&[("namespace", "shop"), ("pod", "")]),
            l(&[("job", "node-exporter")]),
        ];
        let got: Vec<String> = referenced(&series)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            vec!["Deployment/shop/web", "Node/node-a", "Pod/shop/web-1"]
        );
    }
}
