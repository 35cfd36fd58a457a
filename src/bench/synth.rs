//! A synthetic cluster: pods spread over nodes and namespaces, with the
//! series cAdvisor, kube-state-metrics, node-exporter and an instrumented
//! HTTP server expose for them, under their real names and labels.

use crate::cluster::ClusterObject;
use crate::model::Timestamp;
use std::fmt::Write;

pub struct Shape {
    pub pods: usize,
    pub nodes: usize,
    /// Pods per Deployment.
    pub per_deployment: usize,
}

impl Shape {
    pub fn node(&self, pod: usize) -> usize {
        pod % self.nodes.max(1)
    }
    pub fn namespace(&self, pod: usize) -> String {
        format!("team-{}", (pod / self.per_deployment.max(1)) % 50)
    }
    pub fn deployment(&self, pod: usize) -> String {
        format!("svc-{}", pod / self.per_deployment.max(1))
    }
    pub fn pod(&self, pod: usize) -> String {
        format!("{}-6d5f7c9b8-{:05}", self.deployment(pod), pod)
    }
}

/// OpenMetrics text with `samples` samples `interval` apart from `start`,
/// each metric's series together as promtool wants them. Pod 0's memory
/// grows towards its limit, so there is something to find.
pub fn openmetrics(shape: &Shape, start: Timestamp, samples: usize, interval: i64) -> String {
    let mut out = String::with_capacity(shape.pods * samples * 10 * 110);
    let times: Vec<Timestamp> = (0..samples as i64).map(|i| start + i * interval).collect();
    let pod_labels = |p: usize| {
        format!(
            "namespace=\"{}\",pod=\"{}\"",
            shape.namespace(p),
            shape.pod(p)
        )
    };
    let mut emit = |name: &str, labels: &str, value: &dyn Fn(usize) -> f64| {
        for (i, t) in times.iter().enumerate() {
            let _ = writeln!(out, "{name}{{{labels}}} {} {t}", value(i));
        }
    };
    for p in 0..shape.pods {
        let labels = format!(
            "{},container=\"app\",node=\"node-{}\"",
            pod_labels(p),
            shape.node(p)
        );
        let grow = p == 0;
        let base = 200e6 + (p % 7) as f64 * 1e6;
        emit("container_memory_working_set_bytes", &labels, &|i| {
            if grow { base + 15e6 * i as f64 } else { base }
        });
    }
    for p in 0..shape.pods {
        let labels = format!(
            "{},container=\"app\",resource=\"memory\",unit=\"byte\"",
            pod_labels(p)
        );
        emit("kube_pod_container_resource_limits", &labels, &|_| 512e6);
    }
    for (name, per) in [
        ("container_cpu_cfs_periods_total", 600.0),
        ("container_cpu_cfs_throttled_periods_total", 6.0),
        ("kube_pod_container_status_restarts_total", 0.0),
    ] {
        for p in 0..shape.pods {
            let labels = format!("{},container=\"app\"", pod_labels(p));
            emit(name, &labels, &|i| per * i as f64);
        }
    }
    for p in 0..shape.pods {
        for (le, share) in [("0.1", 0.9), ("0.25", 0.98), ("1.0", 1.0), ("+Inf", 1.0)] {
            let labels = format!(
                "{},http_response_status_code=\"200\",le=\"{le}\"",
                pod_labels(p)
            );
            emit(
                "http_server_request_duration_seconds_bucket",
                &labels,
                &|i| (100.0 * i as f64 * share).round(),
            );
        }
    }
    for p in 0..shape.pods {
        let labels = format!("{},http_response_status_code=\"200\"", pod_labels(p));
        emit(
            "http_server_request_duration_seconds_count",
            &labels,
            &|i| 100.0 * i as f64,
        );
    }
    for (name, v) in [
        ("node_memory_MemAvailable_bytes", 9e9),
        ("node_memory_MemTotal_bytes", 16e9),
    ] {
        for n in 0..shape.nodes {
            let labels = format!(
                "node=\"node-{n}\",instance=\"10.1.{}.{}:9100\",job=\"node-exporter\"",
                n / 250,
                n % 250
            );
            emit(name, &labels, &|_| v);
        }
    }
    for (name, v) in [
        ("node_filesystem_avail_bytes", 60e9),
        ("node_filesystem_size_bytes", 100e9),
    ] {
        for n in 0..shape.nodes {
            let labels =
                format!("node=\"node-{n}\",device=\"/dev/sda1\",fstype=\"ext4\",mountpoint=\"/\"");
            emit(name, &labels, &|_| v);
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The cluster objects: nodes, Deployments, their ReplicaSets and pods.
pub fn objects(shape: &Shape) -> Vec<ClusterObject> {
    let mut values: Vec<serde_yaml::Value> = Vec::new();
    for n in 0..shape.nodes {
        values.push(yaml(&format!(
            "{{apiVersion: v1, kind: Node, metadata: {{name: node-{n}}}}}"
        )));
    }
    let deployments = shape.pods.div_ceil(shape.per_deployment.max(1));
    for d in 0..deployments {
        let p = d * shape.per_deployment;
        let (ns, name) = (shape.namespace(p), shape.deployment(p));
        values.push(yaml(&format!(
            "{{apiVersion: apps/v1, kind: Deployment, metadata: {{name: {name}, namespace: {ns}, annotations: {{deployment.kubernetes.io/revision: '3'}}}}, spec: {{replicas: {}}}}}",
            shape.per_deployment
        )));
        values.push(yaml(&format!(
            "{{apiVersion: apps/v1, kind: ReplicaSet, metadata: {{name: {name}-6d5f7c9b8, namespace: {ns}, annotations: {{deployment.kubernetes.io/revision: '3'}}, ownerReferences: [{{kind: Deployment, name: {name}, controller: true}}]}}}}"
        )));
    }
    for p in 0..shape.pods {
        values.push(yaml(&format!(
            "{{apiVersion: v1, kind: Pod, metadata: {{name: {}, namespace: {}, ownerReferences: [{{kind: ReplicaSet, name: {}-6d5f7c9b8, controller: true}}]}}, spec: {{nodeName: node-{}}}}}",
            shape.pod(p),
            shape.namespace(p),
            shape.deployment(p),
            shape.node(p)
        )));
    }
    values
        .into_iter()
        .filter_map(|v| ClusterObject::from_value(v).ok())
        .collect()
}

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap_or(serde_yaml::Value::Null)
}
