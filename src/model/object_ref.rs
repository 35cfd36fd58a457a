//! `Kind/namespace/name` or `Kind/name`: how every report and fixture names
//! a Kubernetes object.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object reference `{0}`: expected Kind/namespace/name or Kind/name")]
pub struct ObjectRefError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn namespaced(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_string(),
            namespace: Some(namespace.to_string()),
            name: name.to_string(),
        }
    }

    pub fn cluster(kind: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_string(),
            namespace: None,
            name: name.to_string(),
        }
    }

    pub fn node(name: &str) -> Self {
        Self::cluster("Node", name)
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl FromStr for ObjectRef {
    type Err = ObjectRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ObjectRefError(s.to_string());
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [kind, name] => Ok(ObjectRef::cluster(kind, name)),
            [kind, ns, name] => Ok(ObjectRef::namespaced(kind, ns, name)),
            _ => Err(bad()),
        }
    }
}

impl Serialize for ObjectRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for ObjectRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ObjectRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Kind/namespace/name, or Kind/name for a cluster-scoped object (Node/node-a)",
            "type": "string",
            "pattern": "^[A-Z][A-Za-z]*/[^/]+(/[^/]+)?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_forms() {
        let pod: ObjectRef = "Pod/production/api-1".parse().unwrap();
        assert_eq!(pod, ObjectRef::namespaced("Pod", "production", "api-1"));
        assert_eq!(pod.to_string(), "Pod/production/api-1");
        let node: ObjectRef = "Node/node-a".parse().unwrap();
        assert_eq!(node, ObjectRef::node("node-a"));
        assert!("Pod".parse::<ObjectRef>().is_err());
        assert!("Pod//x".parse::<ObjectRef>().is_err());
        assert!("a/b/c/d".parse::<ObjectRef>().is_err());
    }
}
