//! The memory figure: a real `medic run` process watching the synthetic
//! cluster through a real Prometheus and a loopback Kubernetes API (its
//! production adapters), its resident memory read from /proc after every
//! cycle. A child process, so nothing the benchmark itself builds is
//! counted.

use super::kube_api;
use super::synth::Shape;
use super::{BenchError, setup};
use std::fmt::Write;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Resident memory of a process, now and at its peak, in MiB (Linux).
pub fn rss_of(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Cycles `medic run` has completed, from its own /metrics.
async fn cycles_done(http: &reqwest::Client, url: &str) -> Option<u64> {
    let text = http.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find(|l| l.starts_with("medic_cycle_duration_seconds_count"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Runs `medic run` (this executable) for `cycles` cycles, 1 s apart,
/// against `prometheus` (holding `shape`'s series up to now), and reports
/// its memory cycle by cycle.
pub async fn watch(shape: &Shape, cycles: usize, prometheus: &str) -> Result<String, BenchError> {
    let dir = tempfile::Builder::new()
        .prefix("medic-bench-")
        .tempdir()
        .map_err(setup)?;
    let api = kube_api::serve(shape).await?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: bench, cluster: {{server: '{}'}}}}]\nusers: [{{name: bench, user: {{}}}}]\ncontexts: [{{name: bench, context: {{cluster: bench, user: bench}}}}]\ncurrent-context: bench\n",
            api.url
        ),
    )
    .map_err(setup)?;
    let port = crate::replay::free_port().map_err(setup)?;
    let config = dir.path().join("medic.yaml");
    std::fs::write(
        &config,
        format!(
            "mode: enforce\ninterval: 1s\nlisten: 127.0.0.1:{port}\nprometheus: {{url: '{}'}}\nstateDir: {}\nleaderElection: {{enabled: false}}\n# Only the watch is measured: no alerts come in.\napi: {{webhook: {{enabled: false}}}}\n",
            prometheus,
            dir.path().join("state").display()
        ),
    )
    .map_err(setup)?;
    let log = std::fs::File::create(dir.path().join("medic.log")).map_err(setup)?;
    let exe = std::env::current_exe().map_err(setup)?;
    let mut child = tokio::process::Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(setup)?;
    let pid = child.id().map(|p| p.to_string()).unwrap_or_default();
    let http = reqwest::Client::new();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60 + 10 * cycles as u64);
    let mut by_cycle: Vec<f64> = Vec::new();
    let mut peak = 0.0;
    while by_cycle.len() < cycles {
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "medic run did {} of {cycles} cycles in time; its log: {}",
                by_cycle.len(),
                dir.path().join("medic.log").display()
            )));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("medic.log")).unwrap_or_default();
            return Err(BenchError::Setup(format!(
                "medic run exited ({status}): {log}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = cycles_done(&http, &metrics).await.unwrap_or(0) as usize;
        let (now, hwm) = rss_of(&pid);
        peak = hwm;
        while by_cycle.len() < done.min(cycles) {
            by_cycle.push(now);
        }
    }
    let _ = child.kill().await;
    let took = started.elapsed();
    let first = by_cycle.first().copied().unwrap_or_default();
    let last = by_cycle.last().copied().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "resident after the first cycle: {first:.1} MiB; after the last: {last:.1} MiB; peak: {peak:.1} MiB ({cycles} cycles in {:.0} s)",
        took.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "requests to the API server over the run: {} list pages of {} objects, {} watches",
        api.requests.list_pages.load(Ordering::Relaxed),
        crate::cluster::LIST_PAGE,
        api.requests.watches.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "by cycle (MiB): {}",
        by_cycle
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(out)
}
