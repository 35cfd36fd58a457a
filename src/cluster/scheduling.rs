//! `describe_scheduling`: why a pod cannot be scheduled, in the
//! scheduler's own words (its latest FailedScheduling event) and in
//! numbers (what the pod requests against the most any node has free), from
//! objects as the API server returns them. Pure, so the Kubernetes adapter
//! and the simulated cluster say the same.

use super::memory_limit::parse_bytes;
use serde_json::Value;

/// CPU in millicores and memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Amount {
    pub cpu_milli: u64,
    pub memory: u64,
}

/// Millicores in a CPU quantity (`500m`, `2`, `0.5`).
pub fn parse_cpu(q: &str) -> Option<u64> {
    let q = q.trim();
    let millis = match q.strip_suffix('m') {
        Some(n) => n.parse::<f64>().ok()?,
        None => q.parse::<f64>().ok()? * 1000.0,
    };
    (millis.is_finite() && millis >= 0.0).then_some(millis.round() as u64)
}

fn amount(map: Option<&Value>) -> Amount {
    let get = |k: &str| map.and_then(|m| m.get(k)).and_then(Value::as_str);
    Amount {
        cpu_milli: get("cpu").and_then(parse_cpu).unwrap_or(0),
        memory: get("memory").and_then(parse_bytes).unwrap_or(0),
    }
}

/// What the pod's containers request, together.
pub fn requests(pod: &Value) -> Amount {
    let mut total = Amount::default();
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let a = amount(c.pointer("/resources/requests"));
        total.cpu_milli += a.cpu_milli;
        total.memory += a.memory;
    }
    total
}

fn name(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn cpu(milli: u64) -> String {
    if milli.is_multiple_of(1000) {
        format!("{} CPU", milli / 1000)
    } else {
        format!("{:.2} CPU", milli as f64 / 1000.0)
    }
}

fn mem(bytes: u64) -> String {
    format!("{}Mi", bytes / (1024 * 1024))
}

/// The report: the scheduler's reason, what the pod asks for, the most
/// any schedulable node has free, and what is short.
pub fn report(pod: &Value, nodes: &[Value], running: &[Value], events: &[Value]) -> String {
    let reason = events
        .iter()
        .filter(|e| e.get("reason").and_then(Value::as_str) == Some("FailedScheduling"))
        .filter(|e| e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(name(pod)))
        .max_by_key(|e| {
            e.get("lastTimestamp")
                .or_else(|| e.get("eventTime"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .and_then(|e| e.get("message").and_then(Value::as_str))
        .map(|m| format!("the scheduler says: {}", m.trim()));
    let want = requests(pod);
    let mut free: Vec<(String, Amount)> = nodes
        .iter()
        .filter(|n| n.pointer("/spec/unschedulable").and_then(Value::as_bool) != Some(true))
        .map(|n| {
            let alloc = amount(n.pointer("/status/allocatable"));
            let used = running
                .iter()
                .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(name(n)))
                .map(requests)
                .fold(Amount::default(), |a, b| Amount {
                    cpu_milli: a.cpu_milli + b.cpu_milli,
                    memory: a.memory + b.memory,
                });
            (
                name(n).to_string(),
                Amount {
                    cpu_milli: alloc.cpu_milli.saturating_sub(used.cpu_milli),
                    memory: alloc.memory.saturating_sub(used.memory),
                },
            )
        })
        .collect();
    free.sort_by(|a, b| a.0.cmp(&b.0));
    let mut parts: Vec<String> = reason.into_iter().collect();
    parts.push(format!(
        "the pod requests {} and {}",
        cpu(want.cpu_milli),
        mem(want.memory)
    ));
    let most_cpu = free.iter().max_by_key(|(_, a)| a.cpu_milli);
    let most_mem = free.iter().max_by_key(|(_, a)| a.memory);
    match (most_cpu, most_mem) {
        (Some((cn, c)), Some((mn, m))) => {
            parts.push(format!(
                "the most free on a schedulable node is {} ({cn}) and {} ({mn})",
                cpu(c.cpu_milli),
                mem(m.memory)
            ));
            let mut short = Vec::new();
            if want.cpu_milli > c.cpu_milli {
                short.push(format!("{} short", cpu(want.cpu_milli - c.cpu_milli)));
            }
            if want.memory > m.memory {
                short.push(format!("{} of memory short", mem(want.memory - m.memory)));
            }
            if short.is_empty() {
                parts.push(
                    "no node is short of CPU or memory: look at taints, node selectors, affinity and volumes".into(),
                );
            } else {
                parts.push(short.join(", "));
            }
        }
        _ => parts.push("no schedulable node".into()),
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: Option<&str>, cpu: &str, memory: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})
    }

    fn node(name: &str, cpu: &str, memory: &str, unschedulable: bool) -> Value {
        json!({"metadata": {"name": name}, "spec": {"unschedulable": unschedulable},
               "status": {"allocatable": {"cpu": cpu, "memory": memory}}})
    }

    #[test]
    fn cpu_quantities_read_as_kubernetes_writes_them() {
        assert_eq!(parse_cpu("500m"), Some(500));
        assert_eq!(parse_cpu("2"), Some(2000));
        assert_eq!(parse_cpu("0.25"), Some(250));
        assert_eq!(parse_cpu("x"), None);
    }

    #[test]
    fn says_what_is_short_and_by_how_much_with_the_schedulers_words() {
        let pending = pod("orders-x", None, "2", "1Gi");
        let nodes = [
            node("node-a", "4", "8Gi", false),
            node("node-b", "4", "8Gi", false),
            node("node-c", "8", "16Gi", true),
        ];
        let running = [
            pod("a1", Some("node-a"), "3500m", "2Gi"),
            pod("b1", Some("node-b"), "3", "7Gi"),
        ];
        let events = [
            json!({"reason": "FailedScheduling", "involvedObject": {"name": "orders-x"},
            "lastTimestamp": "2024-01-01T00:10:00Z",
            "message": "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."}),
        ];
        assert_eq!(
            report(&pending, &nodes, &running, &events),
            "the scheduler says: 0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.; \
             the pod requests 2 CPU and 1024Mi; the most free on a schedulable node is 1 CPU (node-b) and 6144Mi (node-a); 1 CPU short"
        );
        // Room everywhere: the reason is not CPU or memory.
        let small = pod("orders-y", None, "100m", "64Mi");
        assert!(
            report(&small, &nodes, &running, &[])
                .ends_with("look at taints, node selectors, affinity and volumes")
        );
    }
}
