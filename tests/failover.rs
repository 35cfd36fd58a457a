//! Two `medic run` replicas sharing what replicas share in a cluster: a real
//! nats-server (the journal in JetStream, approvals in KV), the leader Lease
//! (on the loopback fake of the Lease API), one cluster (simulated) and a
//! real Prometheus. The leader starts a two-step plan and, between the
//! steps, stops or is cut off from the API server; the other replica takes
//! over from what the journal in JetStream holds and finishes the plan.
//! Each step runs once.

use medic::cluster::{Cluster, ClusterObject, SimCluster};
use medic::config::Config;
use medic::ha::{FencedCluster, Leadership};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[allow(dead_code)]
mod common;
use common::lease_api::{Fake, NS, fake_apiserver, holder, partitionable_client};
use common::live::{FAST_CRASH_LOOP, exporter_and_prometheus, free_port, get_api};
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

/// What the replicas' answer API takes.
const TOKEN: &str = common::live::API_TOKEN;

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
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    std::fs::write(
        &path,
        format!(
            "mode: enforce\ninterval: 1s\nlisten: 127.0.0.1:{port}\nplaybooksDir: {}\nbuiltin: false\n\
             prometheus: {{url: 'http://127.0.0.1:{prom_port}'}}\n\
             correlation: {{settle: 1s, resolveAfter: 3s}}\nstateDir: {}\n\
             nats: {{url: '{nats}'}}\napi: {{tokenFile: {token}, webhook: {{tokenFile: {token}}}}}\n\
             leaderElection: {{enabled: true, namespace: {NS}, leaseDuration: 3s, renewBefore: 1s, targetWait: 1s}}\n",
            dir.join("playbooks").display(),
            dir.join(format!("state-{name}")).display(),
            token = dir.join("token").display(),
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

/// What both replicas share, and the crash loop the test drives.
struct World {
    nats: NatsServer,
    dir: tempfile::TempDir,
    _prometheus: common::live::Killed,
    prom_port: u16,
    restarts: Arc<std::sync::atomic::AtomicU64>,
    sim: Arc<SimCluster>,
    fake: Fake,
}

type Replica = (
    Arc<Leadership>,
    tokio::task::JoinHandle<Result<(), medic::run::RunError>>,
    u16,
);

impl World {
    async fn new() -> Option<(World, kube::Client)> {
        let nats = NatsServer::start()?;
        let dir = tempfile::tempdir().unwrap();
        let (restarts, prometheus, prom_port) = exporter_and_prometheus(dir.path()).await;
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
        let (fake, client) = fake_apiserver().await;
        let world = World {
            nats,
            dir,
            _prometheus: prometheus,
            prom_port,
            restarts,
            sim: Arc::new(SimCluster::new(objects, vec![])),
            fake,
        };
        Some((world, client))
    }

    /// Starts replica `medic-<name>`, reaching the API server through `client`.
    async fn start(&self, name: &str, client: &kube::Client) -> Replica {
        let (config, port) =
            replica_config(self.dir.path(), name, self.prom_port, &self.nats.url());
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
            self.sim.clone(),
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
    }

    /// Drives the crash loop, a restart a second, until the leader has
    /// carried out step 1.
    async fn until_step_one(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while carried_out(&self.sim).is_empty() {
            self.restarts.fetch_add(1, Ordering::SeqCst);
            assert!(Instant::now() < deadline, "the leader never acted");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            holder(&self.fake, "medic-leader").as_deref(),
            Some("medic-a"),
            "the first replica acted, as the leader"
        );
    }

    /// Waits for the replica serving `port` to resolve the incident, and
    /// checks that the cluster saw each step once and the incident shows
    /// both, neither failed. The pod goes on crashing until the scale is
    /// carried out: medic looks at its signal again before each step, and
    /// does nothing about trouble that has gone.
    async fn finished_by(&self, port: u16) {
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(90);
        let incident = loop {
            if carried_out(&self.sim).len() < 2 {
                self.restarts.fetch_add(1, Ordering::SeqCst);
            }
            let list: Option<serde_json::Value> =
                match get_api(&format!("{base}/api/v1/incidents")).await {
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
        assert_eq!(
            carried_out(&self.sim),
            vec![
                ("cordon_node".to_string(), "Node/n1".to_string()),
                ("scale".to_string(), "Deployment/shop/api".to_string()),
            ],
            "each step once, across both replicas"
        );
        let actions: Vec<(&str, &str)> = incident["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["action"].as_str().unwrap(), a["result"].as_str().unwrap()))
            .collect();
        assert_eq!(
            actions,
            [("cordon_node", "ok"), ("scale", "ok")],
            "the incident the journal carried over: {incident}"
        );
        assert_eq!(
            holder(&self.fake, "medic-leader").as_deref(),
            Some("medic-b")
        );
    }
}

async fn until_leads(replica: &Replica) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replica.0.is_leader() {
        assert!(
            Instant::now() < deadline,
            "{} never led",
            replica.0.identity()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_taking_over_mid_plan_finishes_it_from_the_jetstream_journal() {
    let Some((world, client)) = World::new().await else {
        return;
    };
    let a = world.start("a", &client).await;
    until_leads(&a).await;
    let b = world.start("b", &client).await;
    world.until_step_one().await;
    // The leader stops between the steps, with no goodbye to the journal.
    a.1.abort();
    let _ = a.1.await;
    drop(a.0);
    world.finished_by(b.2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_api_server_stands_down_and_the_other_finishes() {
    let Some((world, client)) = World::new().await else {
        return;
    };
    let (cut_client, cut) = partitionable_client(&world.fake).await;
    let a = world.start("a", &cut_client).await;
    until_leads(&a).await;
    let b = world.start("b", &client).await;
    world.until_step_one().await;
    // The leader keeps running, and reaching NATS, but not the API server:
    // it cannot renew its Lease, and still believes it holds it.
    cut.store(true, Ordering::SeqCst);
    world.finished_by(b.2).await;
    assert!(a.0.is_leader(), "the cut-off replica's belief is stale");
    assert!(!a.1.is_finished(), "and it is still running");
    // But it stood down: it says so to people answering through it, and
    // it did not go on to step 2 (to have the write refused, after the
    // client's retries, and record the plan as failed).
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let r = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/api/v1/incidents/any/approve",
                a.2
            ))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"by": "alice", "step": 2}))
            .send()
            .await
            .unwrap();
        let (code, text) = (r.status().as_u16(), r.text().await.unwrap());
        if code == 503 || Instant::now() > deadline {
            break (code, text);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert!(
        answer.1.contains("this replica does not lead"),
        "{}",
        answer.1
    );
    let theirs: serde_json::Value = get_api(&format!("http://127.0.0.1:{}/api/v1/incidents", a.2))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = theirs[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["result"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("cordon_node", "ok")], "{theirs}");
}
