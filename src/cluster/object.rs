//! A Kubernetes object as `kubectl get -o yaml` shows it, possibly trimmed.
//!
//! Fixtures trim fields a typed client would require (uids, apiVersions of
//! owner references), so objects are kept as YAML values and read by path.

use crate::model::ObjectRef;
use serde_yaml::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectError {
    #[error("object has no `{0}`")]
    Missing(&'static str),
    #[error("`{0}` is namespaced: metadata.namespace is required")]
    NoNamespace(String),
}

const CLUSTER_SCOPED: &[&str] = &[
    "Node",
    "Namespace",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterObject {
    pub reference: ObjectRef,
    pub value: Value,
}

impl ClusterObject {
    pub fn from_value(value: Value) -> Result<Self, ObjectError> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or(ObjectError::Missing("kind"))?
            .to_string();
        let name = str_at(&value, &["metadata", "name"])
            .ok_or(ObjectError::Missing("metadata.name"))?
            .to_string();
        let namespace = str_at(&value, &["metadata", "namespace"]).map(str::to_string);
        let reference = if CLUSTER_SCOPED.contains(&kind.as_str()) {
            ObjectRef::cluster(&kind, &name)
        } else {
            let ns = namespace.ok_or_else(|| ObjectError::NoNamespace(kind.clone()))?;
            ObjectRef::namespaced(&kind, &ns, &name)
        };
        Ok(ClusterObject { reference, value })
    }

    pub fn str(&self, path: &[&str]) -> Option<&str> {
        str_at(&self.value, path)
    }

    pub fn get(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.value, |v, k| v.get(*k))
    }

    /// The controller owner reference: (kind, name).
    pub fn controller(&self) -> Option<(String, String)> {
        let refs = self.get(&["metadata", "ownerReferences"])?.as_sequence()?;
        let pick = refs
            .iter()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            .or_else(|| refs.first())?;
        Some((
            pick.get("kind")?.as_str()?.to_string(),
            pick.get("name")?.as_str()?.to_string(),
        ))
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.get(&["metadata", "annotations", key])?.as_str()
    }

    /// Sets `path` to `value`, creating mappings on the way.
    pub fn set(&mut self, path: &[&str], value: Value) {
        let mut cur = &mut self.value;
        for key in path {
            if !cur.is_mapping() {
                *cur = Value::Mapping(Default::default());
            }
            let Value::Mapping(map) = cur else { return };
            cur = map.entry(Value::from(*key)).or_insert(Value::Null);
        }
        *cur = value;
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, k| v.get(*k))?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trimmed_objects() {
        let v: Value = serde_yaml::from_str(
            "{kind: Pod, metadata: {name: a-1, namespace: prod, ownerReferences: [{kind: ReplicaSet, name: a-5d, controller: true}]}}",
        )
        .unwrap();
        let o = ClusterObject::from_value(v).unwrap();
        assert_eq!(o.reference.to_string(), "Pod/prod/a-1");
        assert_eq!(o.controller(), Some(("ReplicaSet".into(), "a-5d".into())));
    }

    #[test]
    fn namespaced_kinds_need_a_namespace() {
        let v: Value = serde_yaml::from_str("{kind: Pod, metadata: {name: a}}").unwrap();
        assert_eq!(
            ClusterObject::from_value(v),
            Err(ObjectError::NoNamespace("Pod".into()))
        );
        let v: Value = serde_yaml::from_str("{kind: Node, metadata: {name: n}}").unwrap();
        assert!(ClusterObject::from_value(v).is_ok());
    }

    #[test]
    fn set_creates_the_path() {
        let v: Value = serde_yaml::from_str("{kind: Node, metadata: {name: n}}").unwrap();
        let mut o = ClusterObject::from_value(v).unwrap();
        o.set(&["spec", "unschedulable"], Value::Bool(true));
        assert_eq!(o.get(&["spec", "unschedulable"]), Some(&Value::Bool(true)));
    }
}
