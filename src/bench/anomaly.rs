//! Scoring cost of an anomaly detector's series: pure CPU, no Prometheus.

use crate::signal::anomaly::{AnomalySpec, Direction};
use std::fmt::Write;
use std::time::Instant;

/// A named series shape: the value at each step.
type Shape = (&'static str, fn(i64) -> f64);

/// Time to score `series` series of each shape over the default window
/// (1 h of baseline and 10 min skipped, and as much again before it for
/// the baseline's own baselines) at a 30 s step.
pub fn scoring(series: usize) -> String {
    let spec = AnomalySpec {
        direction: Direction::Both,
        ..AnomalySpec::default()
    };
    let step = 30;
    // As much as the range query fetches: the baseline's own samples are
    // judged against theirs.
    let points = spec.lookback(step) / step;
    let shapes: [Shape; 3] = [
        ("noisy", |i| 100.0 + ((i * 7919) % 13) as f64),
        // Every run at the window's end is past what came before it, so
        // each is checked as a possible change under way: the worst case.
        ("climbing steadily", |i| 100.0 + i as f64),
        ("shifted 20 min ago", |i| if i < 240 { 100.0 } else { 30.0 }),
    ];
    let mut out = String::new();
    for (name, shape) in shapes {
        let samples: Vec<(i64, f64)> = (0..=points).map(|i| (i * step, shape(i))).collect();
        let at = points * step;
        let started = Instant::now();
        let mut scored = 0;
        for _ in 0..series {
            scored += usize::from(spec.score_at(&samples, at).is_some());
        }
        let per = started.elapsed().as_secs_f64() / series.max(1) as f64;
        let _ = writeln!(
            out,
            "{name:<20} {:>7.1} µs a series, {:>6.1} ms for {series} ({scored} scored)",
            per * 1e6,
            per * 1e3 * series as f64
        );
    }
    out
}
