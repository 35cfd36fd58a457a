//! Replay: recorded incidents (fixtures) run through the real pipeline
//! against a real Prometheus, checked against their `expect` block.

mod fixture;
pub mod llm_server;
mod prometheus;
pub mod record;
pub mod record_objects;
pub mod render;
mod report;
pub mod rules;
mod run;
pub mod series;

pub use fixture::{
    DEFAULT_START, EarlierFault, Edge, EventSpec, Expect, ExpectNoSignal, ExpectSignal, Fixture,
    FixtureError, Loaded, SeriesSpec,
};
pub use prometheus::{PrometheusError, PrometheusServer, check_tools, free_port};
pub use report::{ActionReport, IncidentReport, Report, RuleRace, SignalReport};
pub use run::{ReplayError, ReplayOptions, explain_loaded, replay_file, replay_loaded};

use std::path::{Path, PathBuf};

/// The fixture files a path names: the file itself, or every `.yaml` file
/// under a directory (recursively), in name order.
pub fn fixture_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
