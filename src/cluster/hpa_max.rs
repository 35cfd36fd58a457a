//! `set_hpa_max` and `restore_hpa_max`, decided on a
//! HorizontalPodAutoscaler as the API server returns it, so the Kubernetes
//! adapter and the simulated cluster change it the same way.

use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where the old maximum is kept.
pub const ANNOTATION: &str = "medic.dev/max-replicas";

#[derive(Debug, Clone, PartialEq)]
pub struct MaxChange {
    pub from: i64,
    pub to: i64,
    pub restoring: bool,
}

impl MaxChange {
    /// The merge patch for the autoscaler.
    pub fn patch(&self) -> Value {
        let kept = if self.restoring {
            Value::Null
        } else {
            Value::String(self.from.to_string())
        };
        json!({"metadata": {"annotations": {ANNOTATION: kept}}, "spec": {"maxReplicas": self.to}})
    }

    pub fn describe(&self, target: &crate::model::ObjectRef) -> String {
        let verb = if self.restoring { "restored" } else { "raised" };
        format!(
            "{verb} the maximum of {target} from {} to {} replicas",
            self.from, self.to
        )
    }
}

fn current_max(hpa: &Value) -> Result<i64, String> {
    hpa.pointer("/spec/maxReplicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| "the autoscaler has no maxReplicas".to_string())
}

/// Raises maxReplicas by `percent` (1 to 100; 50 by default), by at least one.
pub fn raise(
    hpa: &Value,
    params: &BTreeMap<String, serde_yaml::Value>,
) -> Result<MaxChange, String> {
    let percent = params
        .get("percent")
        .map_or(Some(50), serde_yaml::Value::as_i64)
        .ok_or("`percent` must be a whole number")?;
    if !(1..=100).contains(&percent) {
        return Err(format!(
            "`percent` is {percent}; it must be 1 to 100 (at most doubling the maximum)"
        ));
    }
    let from = current_max(hpa)?;
    let to = (from + (from * percent + 99) / 100).max(from + 1);
    Ok(MaxChange {
        from,
        to,
        restoring: false,
    })
}

/// Puts back the maximum kept in the annotation.
pub fn restore(hpa: &Value) -> Result<MaxChange, String> {
    let kept = hpa
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no {ANNOTATION} annotation: nothing to restore"))?;
    let to: i64 = kept
        .parse()
        .map_err(|_| format!("{ANNOTATION} is `{kept}`, not a replica count"))?;
    Ok(MaxChange {
        from: current_max(hpa)?,
        to,
        restoring: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_is_raised_by_at_most_double_and_at_least_one() {
        let hpa = json!({"metadata": {}, "spec": {"maxReplicas": 10}});
        let p = |pct: i64| BTreeMap::from([("percent".to_string(), serde_yaml::Value::from(pct))]);
        assert_eq!(raise(&hpa, &BTreeMap::new()).unwrap().to, 15);
        assert_eq!(raise(&hpa, &p(100)).unwrap().to, 20);
        assert!(raise(&hpa, &p(101)).is_err());
        let one = json!({"spec": {"maxReplicas": 1}});
        assert_eq!(raise(&one, &p(1)).unwrap().to, 2, "at least one more");
        let change = raise(&hpa, &p(20)).unwrap();
        assert_eq!(
            change.patch(),
            json!({"metadata": {"annotations": {"medic.dev/max-replicas": "10"}}, "spec": {"maxReplicas": 12}})
        );
    }

    #[test]
    fn restoring_reads_the_annotation() {
        let hpa = json!({"metadata": {"annotations": {"medic.dev/max-replicas": "10"}}, "spec": {"maxReplicas": 15}});
        let c = restore(&hpa).unwrap();
        assert_eq!((c.from, c.to, c.restoring), (15, 10, true));
        assert_eq!(
            c.patch()["metadata"]["annotations"][ANNOTATION],
            Value::Null
        );
        assert!(restore(&json!({"spec": {"maxReplicas": 3}})).is_err());
    }
}
