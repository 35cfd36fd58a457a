//! A real Prometheus for one replay: blocks built by promtool from the
//! fixture's series, served on a free loopback port, stopped on drop (also
//! when the replay fails or is interrupted).

use crate::metrics::{Metrics, PrometheusMetrics};
use crate::model::Timestamp;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

const INSTALL_HINT: &str = "install it with `sudo apt-get install -y prometheus` (Debian/Ubuntu: it ships promtool too) or from https://prometheus.io/download/; MEDIC_PROMETHEUS and MEDIC_PROMTOOL name other binaries";

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("`{0}` not found on PATH: {INSTALL_HINT}")]
    Missing(String),
    #[error("cannot prepare the replay directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("promtool could not build blocks from the fixture's series: {0}")]
    Backfill(String),
    #[error("prometheus did not become ready: {0}")]
    NotReady(String),
}

/// Finds a binary: `$env_var` if set, else on PATH.
fn locate(name: &str, env_var: &str) -> Result<PathBuf, PrometheusError> {
    if let Ok(p) = std::env::var(env_var) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| PrometheusError::Missing(name.to_string()))
}

/// Checks both binaries are there before any work is done.
pub fn check_tools() -> Result<(), PrometheusError> {
    locate("promtool", "MEDIC_PROMTOOL")?;
    locate("prometheus", "MEDIC_PROMETHEUS")?;
    Ok(())
}

/// One promtool per core for inputs past a few hundred thousand samples;
/// one for anything smaller, where starting a second costs more than it saves.
fn backfill_jobs(openmetrics: &str) -> usize {
    const PER_JOB: usize = 32 << 20; // bytes of input, about 400,000 samples
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (openmetrics.len() / PER_JOB + 1).min(cores).min(8)
}

/// Splits OpenMetrics text into `n` parts of about equal size, each ending
/// with `# EOF`. It cuts only between series, so each series' samples stay
/// in order in one part; a metric's series may land in several parts, each
/// valid on its own, and Prometheus merges the blocks.
fn split_by_series(openmetrics: &str, n: usize) -> Vec<String> {
    let body = openmetrics.strip_suffix("# EOF\n").unwrap_or(openmetrics);
    if n <= 1 || body.is_empty() {
        return vec![format!("{body}# EOF\n")];
    }
    let mut parts = Vec::with_capacity(n);
    let mut current = String::with_capacity(body.len() / n + 1024);
    let mut last_series = "";
    // Part k ends at the first series boundary at or past k/n of the input.
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        // `name{labels} value timestamp`: label values may hold spaces, the
        // value and the timestamp do not.
        let series = line.trim_end().rsplitn(3, ' ').nth(2).unwrap_or(line);
        let due = (parts.len() + 1) * body.len() / n;
        if offset >= due && series != last_series && parts.len() + 1 < n {
            current.push_str("# EOF\n");
            parts.push(std::mem::take(&mut current));
        }
        current.push_str(line);
        offset += line.len();
        last_series = series;
    }
    current.push_str("# EOF\n");
    parts.push(current);
    parts
}

pub struct PrometheusServer {
    // Dropped first: kills the server before its directory is removed.
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Loads `openmetrics` into a fresh TSDB and serves it.
    pub async fn start(openmetrics: &str, probe_at: Timestamp) -> Result<Self, PrometheusError> {
        Self::start_with(openmetrics, probe_at, backfill_jobs(openmetrics)).await
    }

    /// As `start`, with the input backfilled by `jobs` promtools.
    async fn start_with(
        openmetrics: &str,
        probe_at: Timestamp,
        jobs: usize,
    ) -> Result<Self, PrometheusError> {
        let promtool = locate("promtool", "MEDIC_PROMTOOL")?;
        let prometheus = locate("prometheus", "MEDIC_PROMETHEUS")?;
        let mut dir = tempfile::Builder::new().prefix("medic-replay-").tempdir()?;
        let data = dir.path().join("data");
        // A large input is split by series and backfilled by one promtool per
        // core: their blocks overlap in time, which Prometheus merges.
        let parts = split_by_series(openmetrics, jobs);
        let mut runs = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let input = dir.path().join(format!("series-{i}.om"));
            tokio::fs::write(&input, part).await?;
            runs.push(
                Command::new(&promtool)
                    .args(["tsdb", "create-blocks-from", "openmetrics"])
                    // Blocks of up to 54h rather than 2h: a day's fixture is
                    // one or two blocks, not twelve, which promtool writes
                    // three times faster (in the same memory) and Prometheus
                    // opens and queries faster.
                    .arg("--max-block-duration=54h")
                    .arg(&input)
                    .arg(&data)
                    .kill_on_drop(true)
                    .output(),
            );
        }
        for out in futures::future::join_all(runs).await {
            let out = out?;
            if !out.status.success() {
                let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if msg.is_empty() {
                    msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
                }
                return Err(PrometheusError::Backfill(msg));
            }
        }
        let config = dir.path().join("prometheus.yml");
        tokio::fs::write(&config, "global:\n  scrape_interval: 1m\n").await?;
        // The port is free when picked but another process (a parallel
        // test, say) may take it before Prometheus binds: pick again.
        let mut tries = 0;
        loop {
            tries += 1;
            let port = free_port()?;
            let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
            let child = Command::new(&prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                // Retention counts back from the newest block, and fixture
                // data is old: keep everything.
                .arg("--storage.tsdb.retention.time=100y")
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .kill_on_drop(true)
                .spawn()?;
            let mut server = PrometheusServer {
                child,
                url: format!("http://127.0.0.1:{port}"),
                _dir: dir,
            };
            match server.wait_ready(probe_at).await {
                Ok(()) => return Ok(server),
                Err(PrometheusError::NotReady(msg))
                    if tries < 5 && msg.contains("address already in use") =>
                {
                    dir = server.into_dir();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Stops the server and hands back its directory for another start.
    fn into_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.start_kill();
        self._dir
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn wait_ready(&mut self, probe_at: Timestamp) -> Result<(), PrometheusError> {
        let metrics = PrometheusMetrics::new(&self.url)
            .map_err(|e| PrometheusError::NotReady(e.to_string()))?;
        let mut last = String::new();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                return Err(PrometheusError::NotReady(format!(
                    "exited with {status}: {}",
                    self.log_tail()
                )));
            }
            match metrics.instant("vector(1)", probe_at).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(PrometheusError::NotReady(format!(
            "no answer after 30s ({last}): {}",
            self.log_tail()
        )))
    }

    fn log_tail(&self) -> String {
        let path: &Path = self._dir.path();
        let log = std::fs::read_to_string(path.join("prometheus.log")).unwrap_or_default();
        log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
    }
}

/// A loopback port free now, for a child server to listen on.
///
/// Picked below the kernel's ephemeral range (32768 and up on Linux), where
/// the outgoing connections of everything else on the machine take their
/// ports: a port picked there can be taken by a client before the child
/// binds it.
pub fn free_port() -> std::io::Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    const LOW: u64 = 20_000;
    const SPAN: u64 = 12_000;
    for attempt in 0..200u64 {
        // RandomState is seeded per process: two test binaries start their
        // searches at different places.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(attempt);
        h.write_u32(std::process::id());
        let port = u16::try_from(LOW + h.finish() % SPAN).unwrap_or(20_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    #[test]
    fn splits_between_series_only_and_keeps_every_line() {
        let text =
            "a{x=\"1 2\"} 1 0\na{x=\"1 2\"} 1 60\na{x=\"2\"} 1 0\nb 2 0\nb 3 60\nc{} 4 0\n# EOF\n";
        let parts = split_by_series(text, 2);
        assert_eq!(
            parts,
            [
                "a{x=\"1 2\"} 1 0\na{x=\"1 2\"} 1 60\na{x=\"2\"} 1 0\n# EOF\n",
                "b 2 0\nb 3 60\nc{} 4 0\n# EOF\n"
            ]
        );
        // A metric's series may be split; a series never is.
        let parts = split_by_series(text, 3);
        assert_eq!(
            parts,
            [
                "a{x=\"1 2\"} 1 0\na{x=\"1 2\"} 1 60\n# EOF\n",
                "a{x=\"2\"} 1 0\n# EOF\n",
                "b 2 0\nb 3 60\nc{} 4 0\n# EOF\n"
            ]
        );
        let joined: String = parts
            .iter()
            .map(|p| p.trim_end_matches("# EOF\n"))
            .collect();
        assert_eq!(format!("{joined}# EOF\n"), text);
        assert_eq!(split_by_series(text, 1), vec![text.to_string()]);
        assert_eq!(split_by_series("a 1 0\na 2 60\n# EOF\n", 4).len(), 1);
    }

    /// Three hours of four series of one metric, backfilled by three
    /// promtools (so the metric's series are split between them): Prometheus
    /// answers with every series and every sample.
    #[tokio::test]
    async fn a_metric_split_between_promtools_is_served_whole() {
        use crate::metrics::{Metrics, PrometheusMetrics};
        let start = 1_700_000_000;
        let mut text = String::new();
        for pod in 0..4 {
            for i in 0..180 {
                let _ = writeln!(text, "m{{pod=\"p{pod}\"}} {pod} {}", start + 60 * i);
            }
        }
        text.push_str("# EOF\n");
        assert_eq!(split_by_series(&text, 3).len(), 3);
        let end = start + 60 * 179;
        let server = PrometheusServer::start_with(&text, end, 3).await.unwrap();
        let prom = PrometheusMetrics::new(server.url()).unwrap();
        let value = |v: Vec<crate::metrics::SeriesValue>| v.first().map(|s| s.value);
        let at = |q: &'static str| {
            let prom = &prom;
            async move { prom.instant(q, end).await.unwrap() }
        };
        assert_eq!(value(at("count(m)").await), Some(4.0));
        assert_eq!(value(at("sum(count_over_time(m[3h]))").await), Some(720.0));
        assert_eq!(
            value(at("sum(sum_over_time(m[3h]))").await),
            Some(180.0 * 6.0)
        );
    }
}
