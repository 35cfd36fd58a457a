//! `set_memory_limit` and `restore_memory_limit`, decided on a Deployment
//! as the API server returns it, so the Kubernetes adapter and the
//! simulated cluster change it the same way.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where the old limit is kept, per container.
pub fn annotation(container: &str) -> String {
    format!("medic.dev/memory-limit.{container}")
}

/// A change to one container's memory limit.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitChange {
    pub container: String,
    pub from: String,
    pub to: String,
    /// Restoring: the annotation goes; raising: it keeps `from`.
    pub restoring: bool,
}

impl LimitChange {
    /// The strategic merge patch for the Deployment (containers merge by
    /// name, so the other containers and fields stay as they are).
    pub fn patch(&self) -> Value {
        let kept = if self.restoring {
            Value::Null
        } else {
            Value::String(self.from.clone())
        };
        json!({
            "metadata": {"annotations": {annotation(&self.container): kept}},
            "spec": {"template": {"spec": {"containers": [
                {"name": self.container, "resources": {"limits": {"memory": self.to}}}
            ]}}}
        })
    }

    pub fn describe(&self, target: &crate::model::ObjectRef) -> String {
        let verb = if self.restoring { "restored" } else { "raised" };
        format!(
            "{verb} the memory limit of container {} of {target} from {} to {}",
            self.container, self.from, self.to
        )
    }
}

/// Bytes in a Kubernetes quantity (`512Mi`, `1Gi`, `1G`, `1500M`, `1e9`).
pub fn parse_bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let n: f64 = number.parse().ok()?;
    let scale: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * scale;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes.round() as u64)
}

/// Whole mebibytes, rounded down (a limit is never raised past the ceiling).
fn format_mi(bytes: u64) -> String {
    format!("{}Mi", bytes / (1024 * 1024))
}

fn containers(deployment: &Value) -> Vec<&Value> {
    deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The container the request names, or the only one.
fn pick<'a>(
    deployment: &'a Value,
    params: &BTreeMap<String, serde_yaml::Value>,
) -> Result<&'a Value, String> {
    let all = containers(deployment);
    let wanted = params
        .get("container")
        .and_then(serde_yaml::Value::as_str)
        .filter(|c| !c.is_empty());
    let name_of = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match wanted {
        Some(name) => all
            .into_iter()
            .find(|c| name_of(c) == name)
            .ok_or_else(|| format!("no container named {name}")),
        None => match all.as_slice() {
            [one] => Ok(one),
            many => Err(format!(
                "{} containers ({}): say which with `container`",
                many.len(),
                many.iter()
                    .map(|c| name_of(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}

/// Raises the limit by `percent` (1 to 100; 50 by default), never above
/// `ceiling` (the largest node's allocatable memory, when known).
pub fn raise(
    deployment: &Value,
    params: &BTreeMap<String, serde_yaml::Value>,
    ceiling: Option<u64>,
) -> Result<LimitChange, String> {
    let percent = params
        .get("percent")
        .map_or(Some(50), serde_yaml::Value::as_i64)
        .ok_or("`percent` must be a whole number")?;
    if !(1..=100).contains(&percent) {
        return Err(format!(
            "`percent` is {percent}; it must be 1 to 100 (at most doubling the limit)"
        ));
    }
    let c = pick(deployment, params)?;
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let from = c
        .pointer("/resources/limits/memory")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("container {name} has no memory limit to raise"))?
        .to_string();
    let current =
        parse_bytes(&from).ok_or_else(|| format!("cannot read the memory limit {from}"))?;
    let mut wanted = current.saturating_mul(100 + percent.unsigned_abs()) / 100;
    if let Some(ceiling) = ceiling {
        wanted = wanted.min(ceiling);
    }
    let to = format_mi(wanted);
    if parse_bytes(&to).is_none_or(|t| t <= current) {
        return Err(format!(
            "container {name}'s limit {from} is already at the largest node's allocatable memory"
        ));
    }
    Ok(LimitChange {
        container: name,
        from,
        to,
        restoring: false,
    })
}

/// Puts back the limit kept in the annotation.
pub fn restore(
    deployment: &Value,
    params: &BTreeMap<String, serde_yaml::Value>,
) -> Result<LimitChange, String> {
    let c = pick(deployment, params)?;
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kept = deployment
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotation(&name)))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no {} annotation: nothing to restore", annotation(&name)))?;
    let from = c
        .pointer("/resources/limits/memory")
        .and_then(Value::as_str)
        .unwrap_or("unset")
        .to_string();
    Ok(LimitChange {
        container: name,
        from,
        to: kept.to_string(),
        restoring: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(containers: Value, annotations: Value) -> Value {
        json!({"metadata": {"name": "api", "annotations": annotations},
               "spec": {"template": {"spec": {"containers": containers}}}})
    }

    fn params(pairs: &[(&str, serde_yaml::Value)]) -> BTreeMap<String, serde_yaml::Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(parse_bytes("512Mi"), Some(512 * 1024 * 1024));
        assert_eq!(parse_bytes("1Gi"), Some(1 << 30));
        assert_eq!(parse_bytes("1G"), Some(1_000_000_000));
        assert_eq!(parse_bytes("1500M"), Some(1_500_000_000));
        assert_eq!(parse_bytes("1e9"), Some(1_000_000_000));
        assert_eq!(parse_bytes("134217728"), Some(134_217_728));
        assert_eq!(parse_bytes("12Qi"), None);
        assert_eq!(parse_bytes("-1Gi"), None);
    }

    #[test]
    fn a_limit_is_raised_by_at_most_double_and_never_past_the_largest_node() {
        let d = deployment(
            json!([{"name": "api", "resources": {"limits": {"memory": "512Mi"}}}]),
            json!({}),
        );
        let c = raise(&d, &params(&[]), None).unwrap();
        assert_eq!((c.from.as_str(), c.to.as_str()), ("512Mi", "768Mi"));
        let c = raise(&d, &params(&[("percent", 100.into())]), None).unwrap();
        assert_eq!(c.to, "1024Mi");
        assert!(
            raise(&d, &params(&[("percent", 150.into())]), None)
                .unwrap_err()
                .contains("1 to 100")
        );
        let c = raise(&d, &params(&[("percent", 100.into())]), Some(600 << 20)).unwrap();
        assert_eq!(c.to, "600Mi", "capped at the node");
        assert!(
            raise(&d, &params(&[]), Some(512 << 20))
                .unwrap_err()
                .contains("already at")
        );
        assert_eq!(
            c.patch(),
            json!({"metadata": {"annotations": {"medic.dev/memory-limit.api": "512Mi"}},
                   "spec": {"template": {"spec": {"containers": [
                       {"name": "api", "resources": {"limits": {"memory": "600Mi"}}}]}}}})
        );
    }

    #[test]
    fn the_container_is_named_or_the_only_one_and_must_have_a_limit() {
        let two = deployment(
            json!([{"name": "api", "resources": {"limits": {"memory": "1Gi"}}},
                   {"name": "sidecar"}]),
            json!({}),
        );
        assert!(
            raise(&two, &params(&[]), None)
                .unwrap_err()
                .contains("api, sidecar")
        );
        let c = raise(&two, &params(&[("container", "api".into())]), None).unwrap();
        assert_eq!(c.to, "1536Mi");
        assert!(
            raise(&two, &params(&[("container", "sidecar".into())]), None)
                .unwrap_err()
                .contains("no memory limit")
        );
        assert!(
            raise(&two, &params(&[("container", "web".into())]), None)
                .unwrap_err()
                .contains("no container named web")
        );
    }

    #[test]
    fn restoring_puts_back_the_kept_limit_and_drops_the_annotation() {
        let d = deployment(
            json!([{"name": "api", "resources": {"limits": {"memory": "768Mi"}}}]),
            json!({"medic.dev/memory-limit.api": "512Mi"}),
        );
        let c = restore(&d, &params(&[])).unwrap();
        assert_eq!(
            (c.from.as_str(), c.to.as_str(), c.restoring),
            ("768Mi", "512Mi", true)
        );
        assert_eq!(
            c.patch()["metadata"]["annotations"]["medic.dev/memory-limit.api"],
            Value::Null
        );
        let plain = deployment(json!([{"name": "api"}]), json!({}));
        assert!(
            restore(&plain, &params(&[]))
                .unwrap_err()
                .contains("nothing to restore")
        );
    }
}
