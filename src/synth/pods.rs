//! Which pods live when and where: the scenario's events played out as a
//! controller, the scheduler and the kubelet would.

use super::noise::Noise;
use super::scenario::{Kind, Scenario, Workload};

/// One container's life in one pod, in steps `[start, end)`.
#[derive(Debug, Clone)]
pub struct PodLife {
    pub workload: usize,
    pub name: String,
    /// kube-state-metrics' `uid`: a StatefulSet's replacement pod keeps its
    /// name but not its uid, so its series are new.
    pub uid: String,
    pub node: String,
    /// The ReplicaSet (Deployment), StatefulSet or Job that owns it.
    pub owner: (String, String),
    pub start: usize,
    pub end: usize,
    /// Already warm at time 0 (it ran before the recording).
    pub warm_at_start: bool,
    /// Container restarts: (step, OOM-killed).
    pub restarts: Vec<(usize, bool)>,
    /// Steps not scraped.
    pub gaps: Vec<(usize, usize)>,
}

impl PodLife {
    /// The step its container last (re)started at, up to `step`; `None`
    /// for a pod that ran before the recording and has not restarted.
    pub fn container_started(&self, step: usize) -> Option<usize> {
        self.restarts
            .iter()
            .map(|&(r, _)| r)
            .filter(|&r| r <= step)
            .max()
            .or((!self.warm_at_start).then_some(self.start))
    }
}

/// A node's life, in steps.
#[derive(Debug, Clone)]
pub struct NodeLife {
    pub name: String,
    pub start: usize,
    pub end: usize,
    /// From this step no new pod lands on it.
    pub cordoned_at: Option<usize>,
}

/// A Deployment's versions: (ReplicaSet hash, version, step it rolled out).
#[derive(Debug, Clone, Default)]
pub struct Versions(pub Vec<(String, String, usize)>);

pub struct Cluster {
    pub pods: Vec<PodLife>,
    pub nodes: Vec<NodeLife>,
    pub versions: Vec<Versions>,
    /// Desired replicas per workload, per step.
    pub desired: Vec<Vec<usize>>,
    /// Change events for the fixture: (step, kind, object, message).
    pub changes: Vec<(usize, String, String, String)>,
}

struct Planner<'a> {
    scenario: &'a Scenario,
    steps: usize,
    noise: Noise,
    pods: Vec<PodLife>,
    nodes: Vec<NodeLife>,
    next_node: usize,
}

impl Planner<'_> {
    fn step(&self, secs: i64) -> usize {
        (secs.max(0) / self.scenario.interval.0.max(1)) as usize
    }

    /// A schedulable node at `step`, taking turns.
    fn place(&mut self, step: usize) -> String {
        let open: Vec<&NodeLife> = self
            .nodes
            .iter()
            .filter(|n| n.start <= step && step < n.end && n.cordoned_at.is_none_or(|c| step < c))
            .collect();
        if open.is_empty() {
            return self
                .nodes
                .first()
                .map(|n| n.name.clone())
                .unwrap_or_default();
        }
        self.next_node += 1;
        open[self.next_node % open.len()].name.clone()
    }

    fn alive(&self, workload: usize, step: usize) -> Vec<usize> {
        (0..self.pods.len())
            .filter(|&i| {
                let p = &self.pods[i];
                p.workload == workload && p.start <= step && step < p.end
            })
            .collect()
    }

    fn start_pod(
        &mut self,
        w: usize,
        name: String,
        owner: (String, String),
        step: usize,
        warm: bool,
    ) {
        let node = self.place(step);
        let uid = self.noise.token(8);
        self.pods.push(PodLife {
            workload: w,
            name,
            uid,
            node,
            owner,
            start: step,
            end: self.steps + 1,
            warm_at_start: warm,
            restarts: Vec::new(),
            gaps: Vec::new(),
        });
    }

    /// A replacement for pod `i` (same owner; a StatefulSet's keeps its name).
    fn replace(&mut self, i: usize, step: usize, kind: Kind, short: &str) {
        let p = self.pods[i].clone();
        let name = match kind {
            Kind::StatefulSet => p.name.clone(),
            _ => format!("{}-{}", p.owner.1, self.noise.token(5)),
        };
        let _ = short;
        self.start_pod(p.workload, name, p.owner, step, false);
    }
}

fn split(name: &str) -> (&str, &str) {
    name.split_once('/').unwrap_or(("default", name))
}

pub fn plan(scenario: &Scenario, steps: usize, noise: Noise) -> Cluster {
    let mut p = Planner {
        scenario,
        steps,
        noise,
        pods: Vec::new(),
        nodes: scenario
            .nodes
            .iter()
            .map(|n| NodeLife {
                name: n.clone(),
                start: 0,
                end: steps + 1,
                cordoned_at: None,
            })
            .collect(),
        next_node: 0,
    };
    let mut versions = vec![Versions::default(); scenario.workloads.len()];
    let mut desired = vec![vec![0; steps + 1]; scenario.workloads.len()];
    let mut changes = Vec::new();
    for e in &scenario.node_events {
        if let Some(n) = &e.add {
            let at = p.step(e.at.0);
            p.nodes.push(NodeLife {
                name: n.clone(),
                start: at,
                end: steps + 1,
                cordoned_at: None,
            });
        }
    }
    // Initial pods, already running and warm.
    for (w, wl) in scenario.workloads.iter().enumerate() {
        let (_, short) = split(&wl.name);
        match wl.kind {
            Kind::Deployment => {
                let hash = p.noise.token(5);
                versions[w].0.push((hash.clone(), "v1".into(), 0));
                for _ in 0..wl.replicas {
                    let name = format!("{short}-{hash}-{}", p.noise.token(5));
                    p.start_pod(
                        w,
                        name,
                        ("ReplicaSet".into(), format!("{short}-{hash}")),
                        0,
                        true,
                    );
                }
            }
            Kind::StatefulSet => {
                for k in 0..wl.replicas {
                    p.start_pod(
                        w,
                        format!("{short}-{k}"),
                        ("StatefulSet".into(), short.into()),
                        0,
                        true,
                    );
                }
            }
            Kind::CronJob => {
                if let Some(s) = &wl.schedule {
                    let mut at = 0;
                    while at < scenario.duration.0 {
                        let job = format!("{short}-{}", 28_000_000 + at / 60);
                        let name = format!("{job}-{}", p.noise.token(5));
                        let start = p.step(at);
                        p.start_pod(w, name, ("Job".into(), job), start, false);
                        if let Some(last) = p.pods.last_mut() {
                            last.end = (start + (s.runs.0 / scenario.interval.0.max(1)) as usize)
                                .min(steps + 1);
                        }
                        at += s.every.0.max(scenario.interval.0);
                    }
                }
            }
        }
        for d in desired[w].iter_mut() {
            *d = wl.replicas;
        }
    }
    // Workload events in time order.
    let mut events: Vec<(i64, usize, usize)> = Vec::new();
    for (w, wl) in scenario.workloads.iter().enumerate() {
        for (k, e) in wl.events.iter().enumerate() {
            events.push((e.at.0, w, k));
        }
    }
    for (k, e) in scenario.node_events.iter().enumerate() {
        if e.drain.is_some() || e.remove.is_some() {
            events.push((e.at.0, usize::MAX, k));
        }
    }
    events.sort();
    for (at, w, k) in events {
        let step = p.step(at);
        if w == usize::MAX {
            drain(&mut p, &scenario.node_events[k], step, &mut changes);
            continue;
        }
        let wl: &Workload = &scenario.workloads[w];
        let e = &wl.events[k];
        let (ns, short) = split(&wl.name);
        let per = (60 / scenario.interval.0.max(1)).max(1) as usize;
        if let Some(version) = &e.rollout {
            let hash = p.noise.token(5);
            let before = versions[w]
                .0
                .last()
                .map(|v| v.1.clone())
                .unwrap_or_default();
            versions[w].0.push((hash.clone(), version.clone(), step));
            changes.push((
                step,
                "deploy".into(),
                format!("Deployment/{ns}/{short}"),
                format!("{before} -> {version}"),
            ));
            let old = p.alive(w, step);
            for (j, i) in old.into_iter().enumerate() {
                let up = step + j * per;
                let name = format!("{short}-{hash}-{}", p.noise.token(5));
                p.start_pod(
                    w,
                    name,
                    ("ReplicaSet".into(), format!("{short}-{hash}")),
                    up,
                    false,
                );
                p.pods[i].end = p.pods[i].end.min(up + per.div_ceil(2) + 1);
            }
        }
        if e.restart {
            let mut old = p.alive(w, step);
            old.reverse();
            for (j, i) in old.into_iter().enumerate() {
                let down = step + j * per * 3 / 2;
                p.pods[i].end = p.pods[i].end.min(down);
                p.replace(i, down + 1, wl.kind, short);
            }
        }
        if let Some(n) = e.scale {
            let alive = p.alive(w, step);
            changes.push((
                step,
                "scale".into(),
                format!("Deployment/{ns}/{short}"),
                format!("{} -> {n} replicas", alive.len()),
            ));
            if n > alive.len() {
                // Scaling up from nothing: the workload's newest owner.
                let owner = match alive.first() {
                    Some(&i) => p.pods[i].owner.clone(),
                    None => match (wl.kind, versions[w].0.last()) {
                        (Kind::StatefulSet, _) => ("StatefulSet".into(), short.to_string()),
                        (_, Some((hash, ..))) => ("ReplicaSet".into(), format!("{short}-{hash}")),
                        _ => ("ReplicaSet".into(), format!("{short}-{}", p.noise.token(5))),
                    },
                };
                for _ in alive.len()..n {
                    let name = format!("{}-{}", owner.1, p.noise.token(5));
                    p.start_pod(w, name, owner.clone(), step, false);
                }
            } else {
                for &i in alive.iter().skip(n) {
                    p.pods[i].end = step;
                }
            }
            for d in desired[w].iter_mut().skip(step) {
                *d = n;
            }
        }
        let nth = |p: &Planner, idx: usize| p.alive(w, step).get(idx).copied();
        if let Some(i) = e.oom.and_then(|idx| nth(&p, idx)) {
            p.pods[i].restarts.push((step, true));
        }
        if let Some(i) = e.restart_one.and_then(|idx| nth(&p, idx)) {
            p.pods[i].restarts.push((step, false));
        }
        if let Some(i) = e.scrape_gap.and_then(|idx| nth(&p, idx)) {
            let len = e
                .lasting
                .map_or(1, |l| (l.0 / scenario.interval.0.max(1)) as usize);
            p.pods[i].gaps.push((step, step + len));
        }
    }
    Cluster {
        pods: p.pods,
        nodes: p.nodes,
        versions,
        desired,
        changes,
    }
}

/// Evicts every pod of the node, one every 10 seconds or so, each
/// recreated by its controller on another node.
fn drain(
    p: &mut Planner,
    e: &super::scenario::NodeEvent,
    step: usize,
    changes: &mut Vec<(usize, String, String, String)>,
) {
    let Some(node) = e.drain.as_ref().or(e.remove.as_ref()).cloned() else {
        return;
    };
    if let Some(n) = p.nodes.iter_mut().find(|n| n.name == node) {
        n.cordoned_at = Some(step);
    }
    changes.push((
        step,
        "drain".into(),
        format!("Node/{node}"),
        "cordoned and drained".into(),
    ));
    let on: Vec<usize> = (0..p.pods.len())
        .filter(|&i| {
            let x = &p.pods[i];
            x.node == node && x.start <= step && step < x.end && x.owner.0 != "Job"
        })
        .collect();
    let mut last = step;
    for (j, i) in on.into_iter().enumerate() {
        let down = step + j / 3;
        p.pods[i].end = p.pods[i].end.min(down + 1);
        let kind = p.scenario.workloads[p.pods[i].workload].kind;
        p.replace(i, down + 1, kind, "");
        last = last.max(down + 1);
    }
    if e.remove.is_some()
        && let Some(n) = p.nodes.iter_mut().find(|n| n.name == node)
    {
        n.end = last + (300 / p.scenario.interval.0.max(1)) as usize;
    }
}
