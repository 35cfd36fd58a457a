//! A detector with no hand-set threshold: each series is compared with its
//! own recent history, in Rust, over range-query data.
//!
//! PromQL can take a median over time but not the spread around it (the
//! median absolute deviation needs the median first), so a "how unusual is
//! this for this series" test cannot be written as one query. The detector's
//! query returns the raw value (a p99, a rate, CPU seconds); medic asks for
//! it over `baseline + skip` with one range query and scores the newest
//! sample against the baseline's median and MAD (a robust z-score, which a
//! few earlier spikes do not move).
//!
//! The z-score trusts the MAD to describe the spread, and for heavy-tailed
//! or coarse series it does not: a p99 over a handful of requests is a
//! histogram bucket bound, so it sits on one value most minutes and jumps a
//! bucket or two now and then, and a MAD of (nearly) zero turns every jump
//! into a huge z. So a value must also lie beyond every value of its
//! baseline: a level the series reached minutes ago is not unusual for it,
//! whatever the MAD says. For a smooth series a z past the sensitivity is
//! beyond the baseline's range anyway, and the test costs nothing. Because a
//! lasting shift would then be "seen" as soon as it enters the baseline, a
//! run at the baseline's end that is itself the change is left out of it
//! (`history_len`), and so, because trouble recurs, is an earlier episode
//! (two or more samples in a row that were anomalies when they occurred):
//! a fault coming back is judged against the series' normal, not against
//! its first occurrence.

use crate::model::{Secs, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `spec.anomaly` of a Detector document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnomalySpec {
    /// How much of the series' own history it is compared with.
    #[serde(default = "default_baseline")]
    pub baseline: Secs,
    /// The most recent stretch left out of the baseline, so a slow onset
    /// does not become its own baseline.
    #[serde(default = "default_skip")]
    pub skip: Secs,
    /// Which deviations count: `up` (latency, errors, CPU), `down`
    /// (throughput, success rate) or `both`.
    #[serde(default)]
    pub direction: Direction,
    /// How many robust standard deviations (1.4826 x MAD) from the
    /// baseline's median a value must be.
    #[serde(default = "default_sensitivity")]
    pub sensitivity: f64,
    /// The smallest change, as a share of the baseline's median, that
    /// counts: a very steady series is not flagged for a 3% wobble.
    #[serde(default = "default_min_relative_change")]
    pub min_relative_change: f64,
    /// Fewer baseline samples than this and the series gets no verdict (a
    /// new pod has no history): it stays quiet.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Up,
    Down,
    Both,
}

fn default_baseline() -> Secs {
    Secs(3600)
}
fn default_skip() -> Secs {
    Secs(600)
}
fn default_sensitivity() -> f64 {
    4.0
}
fn default_min_relative_change() -> f64 {
    0.25
}
fn default_min_samples() -> usize {
    10
}

impl Default for AnomalySpec {
    fn default() -> Self {
        AnomalySpec {
            baseline: default_baseline(),
            skip: default_skip(),
            direction: Direction::default(),
            sensitivity: default_sensitivity(),
            min_relative_change: default_min_relative_change(),
            min_samples: default_min_samples(),
        }
    }
}

/// How a value compares with its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub median: f64,
    /// Robust z-score: signed distance from the median in units of
    /// 1.4826 x MAD (floored, so a flat baseline does not divide by zero).
    pub z: f64,
    /// The smallest and largest baseline values.
    pub lowest: f64,
    pub highest: f64,
}

impl AnomalySpec {
    /// How far back the range query must reach before the first
    /// evaluation, in whole `step`s so the evaluation time is a sample.
    pub fn lookback(&self, step: i64) -> i64 {
        let step = step.max(1);
        // Twice: the baseline's own samples are judged against theirs.
        (2 * (self.baseline.0.max(0) + self.skip.0.max(0)) + step - 1) / step * step
    }

    /// Whether `score` of `value` is an anomaly under this spec.
    pub fn is_anomalous(&self, value: f64, score: &Score) -> bool {
        let change = value - score.median;
        let relative = if score.median == 0.0 {
            f64::INFINITY
        } else {
            (change / score.median).abs()
        };
        let up = score.z >= self.sensitivity && value > score.highest;
        let down = score.z <= -self.sensitivity && value < score.lowest;
        let direction_ok = match self.direction {
            Direction::Up => up,
            Direction::Down => down,
            Direction::Both => up || down,
        };
        direction_ok && relative >= self.min_relative_change
    }

    /// Scores the sample at `at` of a series (samples sorted by time)
    /// against the samples in `[at - skip - baseline, at - skip)`. None when
    /// there is no finite sample at `at` or too few baseline samples.
    ///
    /// Past episodes are left out of the baseline: a run of two or more
    /// samples in a row that were anomalies when they occurred (by the plain
    /// test against their own baselines) is a fault the series went
    /// through, not its normal, and a fault coming back must not be judged
    /// against it. One-sample spikes stay: they are the noise the range test
    /// is there to remember. So the range query must reach back `lookback`.
    pub fn score_at(&self, samples: &[(Timestamp, f64)], at: Timestamp) -> Option<(f64, Score)> {
        self.score_flagged(samples, &self.plain_flags(samples, at..=at), at)
    }

    /// `score_at`, with the series' `plain_flags` for times including `at`
    /// already at hand: a replay scores every step against the same flags.
    pub fn score_flagged(
        &self,
        samples: &[(Timestamp, f64)],
        flags: &[bool],
        at: Timestamp,
    ) -> Option<(f64, Score)> {
        let idx = samples.binary_search_by_key(&at, |s| s.0).ok()?;
        let value = samples[idx].1;
        if !value.is_finite() {
            return None;
        }
        let window = self.finite_baseline(samples, at)?;
        let flagged: Vec<bool> = window
            .iter()
            .map(|&(j, _)| flags.get(j).copied().unwrap_or(false))
            .collect();
        let mut baseline: Vec<f64> = window
            .iter()
            .enumerate()
            .filter(|&(k, _)| !in_episode(&flagged, k))
            .map(|(_, &(_, v))| v)
            .collect();
        if baseline.len() < self.min_samples.max(1) {
            baseline = window.iter().map(|&(_, v)| v).collect();
        }
        baseline.truncate(self.history_len(&baseline));
        Some((value, robust_score(&mut baseline, value)))
    }

    /// The finite samples (index, value) of the baseline of `at`; None when
    /// there are fewer than `min_samples`.
    fn finite_baseline(
        &self,
        samples: &[(Timestamp, f64)],
        at: Timestamp,
    ) -> Option<Vec<(usize, f64)>> {
        let to = at - self.skip.0.max(0);
        let from = to - self.baseline.0.max(0);
        let lo = samples.partition_point(|s| s.0 < from);
        let hi = samples.partition_point(|s| s.0 < to);
        let window: Vec<(usize, f64)> = samples
            .get(lo..hi)?
            .iter()
            .enumerate()
            .map(|(k, s)| (lo + k, s.1))
            .filter(|(_, v)| v.is_finite())
            .collect();
        (window.len() >= self.min_samples.max(1)).then_some(window)
    }

    /// For each sample in the baseline of a score at one of the times
    /// `scored`, whether it was an anomaly when it occurred: against its own
    /// baseline, by the plain test (no episodes left out). False for the
    /// other samples, which no such score reads, and for a sample without
    /// enough history before it. A sample inside its own
    /// baseline's range cannot have been one; those ranges come from a
    /// sliding minimum and maximum (the baselines move forward together),
    /// so only the samples beyond them cost a median.
    pub fn plain_flags(
        &self,
        samples: &[(Timestamp, f64)],
        scored: std::ops::RangeInclusive<Timestamp>,
    ) -> Vec<bool> {
        let skip = self.skip.0.max(0);
        let needed = scored.start() - skip - self.baseline.0.max(0)..scored.end() - skip;
        use std::collections::VecDeque;
        let (mut lo, mut hi) = (0usize, 0usize);
        let (mut mins, mut maxs): (VecDeque<usize>, VecDeque<usize>) = Default::default();
        let mut count = 0usize;
        let mut out = vec![false; samples.len()];
        for (j, &(at, v)) in samples.iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let to = at - self.skip.0.max(0);
            let from = to - self.baseline.0.max(0);
            while hi < samples.len() && samples[hi].0 < to {
                let v = samples[hi].1;
                if v.is_finite() {
                    count += 1;
                    while mins.back().is_some_and(|&b| samples[b].1 >= v) {
                        mins.pop_back();
                    }
                    mins.push_back(hi);
                    while maxs.back().is_some_and(|&b| samples[b].1 <= v) {
                        maxs.pop_back();
                    }
                    maxs.push_back(hi);
                }
                hi += 1;
            }
            while lo < hi && samples[lo].0 < from {
                if samples[lo].1.is_finite() {
                    count -= 1;
                }
                lo += 1;
            }
            while mins.front().is_some_and(|&f| f < lo) {
                mins.pop_front();
            }
            while maxs.front().is_some_and(|&f| f < lo) {
                maxs.pop_front();
            }
            if let (Some(&a), Some(&b)) = (mins.front(), maxs.front())
                && needed.contains(&at)
                && count >= self.min_samples.max(1)
                && !(samples[a].1..=samples[b].1).contains(&v)
            {
                out[j] = self.was_anomalous(samples, j, v);
            }
        }
        out
    }

    /// Whether sample `j` (value `v`) was an anomaly against its own
    /// baseline by the plain test (no episodes left out): false without
    /// enough history before it.
    fn was_anomalous(&self, samples: &[(Timestamp, f64)], j: usize, v: f64) -> bool {
        let Some(window) = self.finite_baseline(samples, samples[j].0) else {
            return false;
        };
        let mut base: Vec<f64> = window.into_iter().map(|(_, w)| w).collect();
        let score = robust_score(&mut base, v);
        self.is_anomalous(v, &score)
    }

    /// How much of `baseline` (in time order) is history. A run of samples
    /// at its end that all lie beyond the range of everything before them,
    /// the least extreme of them an anomaly against it, is a change under
    /// way, not the series' normal: judged against what came before it, a
    /// lasting shift stays an anomaly for about as long as the baseline
    /// remembers the old level, not only for `skip`. A ramp is no such run
    /// (each sample is a little past the last, not far past the rest), nor
    /// are scattered spikes. The longest such run is left out, keeping at
    /// least `min_samples` of history.
    fn history_len(&self, baseline: &[f64]) -> usize {
        let n = baseline.len();
        let keep = self.min_samples.max(1);
        if n <= keep {
            return n;
        }
        // The lowest and highest value from each index to the end.
        let mut run_lo = vec![f64::INFINITY; n + 1];
        let mut run_hi = vec![f64::NEG_INFINITY; n + 1];
        for i in (0..n).rev() {
            run_lo[i] = run_lo[i + 1].min(baseline[i]);
            run_hi[i] = run_hi[i + 1].max(baseline[i]);
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut before = Vec::with_capacity(n);
        for (start, v) in baseline.iter().enumerate() {
            if start >= keep {
                let up = self.direction != Direction::Down && run_lo[start] > hi;
                let down = self.direction != Direction::Up && run_hi[start] < lo;
                let least_extreme = if up { run_lo[start] } else { run_hi[start] };
                if up || down {
                    before.clear();
                    before.extend_from_slice(&baseline[..start]);
                    let score = robust_score(&mut before, least_extreme);
                    if self.is_anomalous(least_extreme, &score) {
                        return start;
                    }
                }
            }
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        n
    }
}

/// Whether `flags[k]` is part of a run of two or more flags in a row.
fn in_episode(flags: &[bool], k: usize) -> bool {
    flags[k] && ((k > 0 && flags[k - 1]) || flags.get(k + 1).copied().unwrap_or(false))
}

/// Median, MAD and range of `baseline` (reordered in place), and the robust
/// z of `value`. The MAD is floored at 1% of the median's size, and above
/// zero, so a perfectly flat history still gives a finite, large score.
pub fn robust_score(baseline: &mut [f64], value: f64) -> Score {
    let (lowest, highest) = baseline
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let median = median_in_place(baseline);
    for v in baseline.iter_mut() {
        *v = (*v - median).abs();
    }
    let mad = median_in_place(baseline);
    let scale = (1.4826 * mad).max(0.01 * median.abs()).max(1e-9);
    Score {
        median,
        z: (value - median) / scale,
        lowest,
        highest,
    }
}

/// The median of a non-empty slice (0 for an empty one), reordering it.
fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    let mid = n / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(mid, cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower_max = lower.iter().copied().max_by(cmp).unwrap_or(upper);
        (lower_max + upper) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> Vec<(Timestamp, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * 60, *v))
            .collect()
    }

    fn spec() -> AnomalySpec {
        AnomalySpec {
            baseline: Secs(600),
            skip: Secs(120),
            min_samples: 5,
            ..AnomalySpec::default()
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median_in_place(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median_in_place(&mut []), 0.0);
    }

    #[test]
    fn a_noisy_series_is_judged_by_its_own_spread() {
        // Noisy around 1.0 (MAD 0.2): 1.5 is within its normal swing,
        // 2.5 is not.
        let history = [0.8, 1.2, 1.0, 0.8, 1.2, 1.0, 0.8, 1.2, 1.0, 0.8, 1.2];
        let mut base = history.to_vec();
        let score = robust_score(&mut base, 1.5);
        assert_eq!(score.median, 1.0);
        let s = AnomalySpec::default();
        assert!(!s.is_anomalous(1.5, &score), "{score:?}");
        let mut base = history.to_vec();
        let score = robust_score(&mut base, 2.5);
        assert!(s.is_anomalous(2.5, &score), "{score:?}");
    }

    #[test]
    fn a_flat_series_needs_the_minimum_relative_change() {
        let s = AnomalySpec::default();
        let mut base = vec![100.0; 20];
        let small = robust_score(&mut base, 110.0);
        assert!(small.z > 4.0);
        assert!(
            !s.is_anomalous(110.0, &small),
            "10% is below minRelativeChange"
        );
        let mut base = vec![100.0; 20];
        let big = robust_score(&mut base, 140.0);
        assert!(s.is_anomalous(140.0, &big));
    }

    #[test]
    fn a_coarse_series_is_not_flagged_for_a_level_it_reached_minutes_ago() {
        // A p99 over a few requests: a bucket bound most minutes, the next
        // bucket now and then. The MAD is zero, so the z of the next bucket
        // is huge, but the baseline has been there before.
        let mut history = vec![0.00995; 10];
        history[3] = 0.0245;
        let mut base = history.clone();
        let seen = robust_score(&mut base, 0.0245);
        assert!(seen.z > 4.0, "{seen:?}");
        let s = AnomalySpec::default();
        assert!(!s.is_anomalous(0.0245, &seen), "{seen:?}");
        // A bucket it has not reached is still an anomaly.
        let mut base = history.clone();
        let new = robust_score(&mut base, 0.247);
        assert!(s.is_anomalous(0.247, &new), "{new:?}");
        // And so, downwards, is a level below everything seen.
        let down = AnomalySpec {
            direction: Direction::Down,
            ..AnomalySpec::default()
        };
        let mut base = vec![100.0, 100.0, 60.0, 100.0, 100.0];
        let dip = robust_score(&mut base, 60.0);
        assert!(!down.is_anomalous(60.0, &dip), "{dip:?}");
    }

    #[test]
    fn a_lasting_shift_stays_an_anomaly_once_it_is_in_the_baseline() {
        // Steady at 100 (a wobble of 2) for 20 minutes, then 25 from then on.
        let v: Vec<f64> = (0..40)
            .map(|i| if i < 20 { 100.0 + (i % 3) as f64 } else { 25.0 })
            .collect();
        let s = series(&v);
        let down = AnomalySpec {
            direction: Direction::Down,
            min_samples: 3,
            ..spec()
        };
        // Minute 29: the baseline [17, 27) holds seven minutes of the drop,
        // which is the change under way, not history: judged against the
        // three minutes before it (its median would say 25 is normal).
        let (value, score) = down.score_at(&s, 29 * 60).unwrap();
        assert!(score.median > 99.0, "{score:?}");
        assert!(down.is_anomalous(value, &score));
        // Minute 37: history is the drop alone; the new level is normal.
        let (value, score) = down.score_at(&s, 37 * 60).unwrap();
        assert!(!down.is_anomalous(value, &score), "{score:?}");
    }

    #[test]
    fn a_fault_that_comes_back_is_not_judged_against_its_first_episode() {
        // A p99 near 0.1 s; a fault lifts it to 0.9 s for minutes 20-22 and
        // again from minute 28, while the first episode is still in the
        // baseline [16, 26) of minute 28.
        let v: Vec<f64> = (0..32)
            .map(|i| match i {
                20..=22 | 28.. => 0.9,
                _ => 0.1 + 0.01 * (i % 3) as f64,
            })
            .collect();
        let s = series(&v);
        let (value, score) = spec().score_at(&s, 20 * 60).unwrap();
        assert!(spec().is_anomalous(value, &score), "first: {score:?}");
        let (value, score) = spec().score_at(&s, 28 * 60).unwrap();
        assert!(score.highest < 0.2, "the episode is left out: {score:?}");
        assert!(spec().is_anomalous(value, &score), "again: {score:?}");
    }

    #[test]
    fn a_one_sample_spike_stays_in_the_baseline_and_masks_the_next() {
        // The coarse p99 again: one minute at the next bucket is noise, and
        // the next time it gets there is no news.
        let mut v = vec![0.00995; 30];
        v[20] = 0.0245;
        v[27] = 0.0245;
        let s = series(&v);
        let (value, score) = spec().score_at(&s, 20 * 60).unwrap();
        assert!(spec().is_anomalous(value, &score), "{score:?}");
        let (value, score) = spec().score_at(&s, 27 * 60).unwrap();
        assert_eq!(score.highest, 0.0245);
        assert!(!spec().is_anomalous(value, &score), "{score:?}");
    }

    #[test]
    fn a_ramp_is_judged_against_its_whole_baseline() {
        // A steady climb of 1 a minute (memory warming up): every stretch
        // at the end is above what came before, but not far above it.
        let v: Vec<f64> = (0..20).map(|i| 100.0 + i as f64).collect();
        let (value, score) = spec().score_at(&series(&v), 19 * 60).unwrap();
        assert_eq!(score.lowest, 107.0, "the whole window [7, 17): {score:?}");
        assert!(!spec().is_anomalous(value, &score));
    }

    #[test]
    fn direction_decides_which_side_counts() {
        let mut base = vec![100.0; 20];
        let drop = robust_score(&mut base, 20.0);
        let up = AnomalySpec::default();
        let down = AnomalySpec {
            direction: Direction::Down,
            ..AnomalySpec::default()
        };
        let both = AnomalySpec {
            direction: Direction::Both,
            ..AnomalySpec::default()
        };
        assert!(!up.is_anomalous(20.0, &drop));
        assert!(down.is_anomalous(20.0, &drop));
        assert!(both.is_anomalous(20.0, &drop));
    }

    #[test]
    fn score_at_uses_the_window_before_the_skip() {
        // Minutes 0..=9 steady at 10, then a climb from minute 10 on.
        let mut v = vec![10.0; 10];
        v.extend([30.0, 31.0, 32.0, 33.0, 34.0]);
        let s = series(&v);
        // At minute 12 the baseline is [0, 10min): all 10s.
        let (value, score) = spec().score_at(&s, 12 * 60).unwrap();
        assert_eq!(value, 32.0);
        assert_eq!(score.median, 10.0);
        assert!(spec().is_anomalous(value, &score));
        // No sample at that time: no verdict.
        assert!(spec().score_at(&s, 12 * 60 + 1).is_none());
    }

    #[test]
    fn too_little_history_gives_no_verdict() {
        let s = series(&[10.0, 10.0, 10.0, 50.0]);
        assert!(spec().score_at(&s, 180).is_none());
    }

    #[test]
    fn non_finite_values_are_ignored() {
        let mut v = vec![10.0; 12];
        v[3] = f64::NAN;
        v.push(f64::INFINITY);
        let s = series(&v);
        assert!(spec().score_at(&s, 12 * 60).is_none());
        let (_, score) = spec().score_at(&s, 11 * 60).unwrap();
        assert_eq!(score.median, 10.0);
    }
}
