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

pub struct PrometheusServer {
    // Dropped first: kills the server before its directory is removed.
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Loads `openmetrics` into a fresh TSDB and serves it.
    pub async fn start(openmetrics: &str, probe_at: Timestamp) -> Result<Self, PrometheusError> {
        let promtool = locate("promtool", "MEDIC_PROMTOOL")?;
        let prometheus = locate("prometheus", "MEDIC_PROMETHEUS")?;
        let dir = tempfile::Builder::new().prefix("medic-replay-").tempdir()?;
        let input = dir.path().join("series.om");
        let data = dir.path().join("data");
        tokio::fs::write(&input, openmetrics).await?;
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&data)
            .kill_on_drop(true)
            .output()
            .await?;
        if !out.status.success() {
            let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if msg.is_empty() {
                msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            return Err(PrometheusError::Backfill(msg));
        }
        let config = dir.path().join("prometheus.yml");
        tokio::fs::write(&config, "global:\n  scrape_interval: 1m\n").await?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Retention counts back from the newest block, and fixture data
            // is old: keep everything.
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
        server.wait_ready(probe_at).await?;
        Ok(server)
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

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
