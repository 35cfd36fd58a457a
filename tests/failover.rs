//! Two `medic run` replicas sharing what replicas share in a cluster: a real
//! nats-server (the journal in JetStream, approvals in KV), the leader Lease
//! (on the loopback fake of the Lease API), one cluster (simulated) and a
//! real Prometheus. The leader starts a two-step plan and is stopped between
//! the steps; the other replica takes over from what the journal in
//! JetStream holds and finishes the plan. Each step runs once.

use medic::cluster::{Cluster, ClusterObject, SimCluster};
use medic::config::Config;
use medic::ha::{FencedCluster, Leadership};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;
use common::lease_api::{NS, fake_apiserver, holder};
use common::live::{FAST_CRASH_LOOP, exporter_and_prometheus, free_port};
use common::nats::NatsServer;

/// Step 1 is verified for 4 s (a condition that always holds): the window
/// in which the leader stops.
const PLAYBOOKS: &str = r#"apiVersion: medic.dev/v1alpha1
kind: Playbook
metadata: {name: fence-and-scale}
spec:
  trigger: {signal: fast_crash_loop}
  maxAutonomousRisk: low
  steps:
    - action: cordon_node
      risk: low
      waitFor: {query: 'vector(1)', for: 4s, timeout: 1m}
    - action: scale
      risk: low
      params: {delta: 1}
      waitFor: {query: 'sum(increase(kube_pod_container_status_restarts_total[5s])) < 1', for: 2s, timeout: 2m}
  rollback: []
"#;

/// Three nodes, so that cordoning one passes the blast-radius guard.
const OBJECTS: [&str; 5] = [
    "{apiVersion: v1, kind: Node, metadata: {name: n1}}",
    "{apiVersion: v1, kind: Node, metadata: {name: n2}}",
    "{apiVersion: v1, kind: Node, metadata: {name: n3}}",
    "{apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: shop}, spec: {replicas: 1}}",
    "{apiVersion: v1, kind: Pod, metadata: {name: api-7c9-x, namespace: shop, ownerReferences: [{kind: ReplicaSet, name: api-7c9, controller: true}]}, spec: {nodeName: n1}}",
];

/// One replica's medic.yaml: its own port and state directory, the shared
/// Prometheus, NATS and leader election. Returns the config and its port.
fn replica_config(dir: &Path, name: &str, prom_port: u16, nats: &str) -> (Config, u16) {
    let port = free_port();
    let path = dir.join(format!("medic-{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "mode: enforce\ninterval: 1s\nlisten: 127.0.0.1:{port}\nplaybooksDir: {}\n\
             prometheus: {{url: 'http://127.0.0.1:{prom_port}'}}\n\
             correlation: {{settle: 1s, resolveAfter: 3s}}\nstateDir: {}\n\
             nats: {{url: '{nats}'}}\n\
             leaderElection: {{enabled: true, namespace: {NS}, leaseDuration: 3s, renewBefore: 1s, targetWait: 1s}}\n",
            dir.join("playbooks").display(),
            dir.join(format!("state-{name}")).display(),
        ),
    )
    .unwrap();
    (Config::load(&path).unwrap(), port)
}

/// (action, target) of every action the cluster was asked to carry out.
fn carried_out(sim: &SimCluster) -> Vec<(String, String)> {
    sim.performed()
        .iter()
        .filter(|r| !r.dry_run)
        .map(|r| (r.action.name().to_string(), r.target.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_taking_over_mid_plan_finishes_it_from_the_jetstream_journal() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (restarts, _prometheus, prom_port) = exporter_and_prometheus(dir.path()).await;
    std::fs::create_dir(dir.path().join("playbooks")).unwrap();
    std::fs::write(
        dir.path().join("playbooks/live.yaml"),
        format!("{FAST_CRASH_LOOP}---\n{PLAYBOOKS}"),
    )
    .unwrap();
    let objects = OBJECTS
        .iter()
        .map(|y| ClusterObject::from_value(serde_yaml::from_str(y).unwrap()).unwrap())
        .collect();
    let sim = Arc::new(SimCluster::new(objects, vec![]));
    let (fake, client) = fake_apiserver().await;
    let start = async |name: &str| {
        let (config, port) = replica_config(dir.path(), name, prom_port, &nats.url());
        let leader = Arc::new(
            Leadership::start(
                client.clone(),
                &config.leader_election,
                &format!("medic-{name}"),
            )
            .await
            .unwrap(),
        );
        let cluster: Arc<dyn Cluster> = Arc::new(FencedCluster::new(
            sim.clone(),
            leader.clone(),
            client.clone(),
            config.leader_election.clone(),
        ));
        let task = tokio::spawn(medic::run::run(
            config,
            cluster,
            Some(leader.clone()),
            std::future::pending(),
        ));
        (leader, task, port)
    };
    let (a, a_task, _) = start("a").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.is_leader() {
        assert!(Instant::now() < deadline, "a never led");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (b, _b_task, b_port) = start("b").await;
    drop(a);

    // The crash loop, a restart a second, until the leader has cordoned.
    let deadline = Instant::now() + Duration::from_secs(90);
    while carried_out(&sim).is_empty() {
        restarts.fetch_add(1, Ordering::SeqCst);
        assert!(Instant::now() < deadline, "the leader never acted");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        holder(&fake, "medic-leader").as_deref(),
        Some("medic-a"),
        "the first replica acted, as the leader"
    );
    // The leader stops between the steps, with no goodbye to the journal.
    a_task.abort();
    let _ = a_task.await;

    let base = format!("http://127.0.0.1:{b_port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let incident = loop {
        let list: Option<serde_json::Value> =
            match reqwest::get(format!("{base}/api/v1/incidents")).await {
                Ok(r) => r.json().await.ok(),
                Err(_) => None,
            };
        if let Some(inc) = list.as_ref().and_then(|l| l.get(0))
            && !inc["resolved_at_s"].is_null()
        {
            break inc.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the second replica never finished the plan"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(b.is_leader(), "the second replica leads");
    assert_eq!(
        carried_out(&sim),
        vec![
            ("cordon_node".to_string(), "Node/n1".to_string()),
            ("scale".to_string(), "Deployment/shop/api".to_string()),
        ],
        "each step once, across both replicas"
    );
    let actions: Vec<&str> = incident["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["cordon_node", "scale"],
        "the incident the journal carried over"
    );
}
