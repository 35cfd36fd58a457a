//! The human replay output: an on-call timeline per fixture, a verdict line,
//! and a summary table over a directory.

use super::report::Report;
use crate::model::format_secs;
use std::fmt::Write;

fn clock(at_s: i64) -> String {
    let sign = if at_s < 0 { "-" } else { "+" };
    let s = at_s.unsigned_abs();
    format!("T{sign}{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn timeline(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {} ({})", r.fixture, r.file);
    if r.incidents.is_empty() {
        let _ = writeln!(out, "   no incident: nothing fired long enough to act on");
    }
    for inc in &r.incidents {
        let _ = writeln!(out, "-- incident {} ({})", inc.id, inc.severity);
        for t in &inc.timeline {
            let _ = writeln!(
                out,
                "   {}  {:<9} {}",
                clock(t.at_s),
                t.stage_label(),
                t.text
            );
        }
    }
    // With earned autonomy on, where each step stands at the end.
    if r.trust
        .iter()
        .any(|row| row.standing != crate::trust::Standing::Bounded)
    {
        let _ = writeln!(out, "-- track record (earned autonomy)");
        for line in crate::trust::text_table(&r.trust).lines() {
            let _ = writeln!(out, "   {line}");
        }
    }
    let _ = writeln!(out, "{}", verdict(r));
    out
}

pub fn verdict(r: &Report) -> String {
    let actions = r.taken_actions().len();
    let detect = r
        .time_to_detect_s
        .map(|t| format!(", detected {} after onset", format_secs(t)))
        .unwrap_or_default();
    let head = format!(
        "{} {}: {} incident(s), {} action(s), {} escalation(s){detect}",
        if r.passed { "PASS" } else { "FAIL" },
        r.fixture,
        r.incidents.len(),
        actions,
        r.escalation_count()
    );
    if r.passed {
        head
    } else {
        format!(
            "{head}\n{}",
            r.failures
                .iter()
                .map(|f| format!("     - {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

/// Captured LLM exchanges as a fixture's `llm:` block.
pub fn llm_block(exchanges: &[crate::diagnose::llm::Exchange]) -> String {
    use super::llm_server::RecordedAnswer;
    let answers: Vec<RecordedAnswer> = exchanges
        .iter()
        .map(|e| match e {
            Ok(content) => match serde_json::from_str::<serde_json::Value>(content) {
                Ok(v) => RecordedAnswer {
                    response: Some(v),
                    ..Default::default()
                },
                Err(_) => RecordedAnswer {
                    content: Some(content.clone()),
                    ..Default::default()
                },
            },
            Err(_) => RecordedAnswer {
                status: Some(500),
                ..Default::default()
            },
        })
        .collect();
    #[derive(serde::Serialize)]
    struct Block {
        llm: Vec<RecordedAnswer>,
    }
    serde_yaml::to_string(&Block { llm: answers }).unwrap_or_default()
}

/// One row per fixture: detected, time to detect, false incidents,
/// actions, false actions (cluster changes where no incident was
/// expected), escalations.
pub fn summary(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<52} {:>6} {:>9} {:>9} {:>9} {:>7} {:>9} {:>11}",
        "fixture", "result", "detected", "ttd", "false inc", "actions", "false act", "escalations"
    );
    for r in reports {
        let detected = if r.signals.is_empty() { "no" } else { "yes" };
        let ttd = r
            .time_to_detect_s
            .map(format_secs)
            .unwrap_or_else(|| "-".into());
        let name: String = r.fixture.chars().take(52).collect();
        let _ = writeln!(
            out,
            "{:<52} {:>6} {:>9} {:>9} {:>9} {:>7} {:>9} {:>11}",
            name,
            if r.passed { "pass" } else { "FAIL" },
            detected,
            ttd,
            r.false_incidents,
            r.taken_actions().len(),
            r.false_actions,
            r.escalation_count()
        );
    }
    let passed = reports.iter().filter(|r| r.passed).count();
    let _ = writeln!(out, "{passed}/{} fixtures passed", reports.len());
    let healthy: Vec<&Report> = reports.iter().filter(|r| r.healthy).collect();
    if !healthy.is_empty() {
        let _ = writeln!(
            out,
            "on the {} fixtures expecting no incident: {} incidents, {} escalations, {} false actions",
            healthy.len(),
            healthy.iter().map(|r| r.incidents.len()).sum::<usize>(),
            healthy.iter().map(|r| r.escalation_count()).sum::<usize>(),
            healthy.iter().map(|r| r.false_actions).sum::<usize>(),
        );
    }
    let ttds: Vec<i64> = reports.iter().filter_map(|r| r.time_to_detect_s).collect();
    if !ttds.is_empty() {
        let mut sorted = ttds.clone();
        sorted.sort_unstable();
        let earlier: usize = reports.iter().map(|r| r.earlier_fault_incidents).sum();
        let _ = writeln!(
            out,
            "time to detect over {} fixtures with an onset: median {}, worst {}; false incidents: {}{}",
            sorted.len(),
            format_secs(sorted[sorted.len() / 2]),
            format_secs(sorted[sorted.len() - 1]),
            reports.iter().map(|r| r.false_incidents).sum::<usize>(),
            if earlier > 0 {
                format!(" (and {earlier} of faults injected earlier in the window)")
            } else {
                String::new()
            }
        );
    }
    out.push_str(&races(reports));
    out.push_str(&ranking_accuracy(reports));
    out
}

/// AS@1, AS@3, AS@5 over the fixtures that name a root cause: the share whose
/// expected root cause is ranked first, in the top 3, in the top 5, overall
/// and per `fault_type` tag; plus how many raised no incident to rank.
pub fn ranking_accuracy(reports: &[Report]) -> String {
    let mut groups: std::collections::BTreeMap<String, Vec<&Report>> = Default::default();
    for r in reports.iter().filter(|r| r.expected_root_cause.is_some()) {
        groups.entry("all".into()).or_default().push(r);
        if let Some(t) = r.tags.get("fault_type") {
            groups.entry(t.clone()).or_default().push(r);
        }
    }
    let Some(all) = groups.get("all") else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nroot-cause ranking over {} fixtures with an expected root cause",
        all.len()
    );
    let _ = writeln!(
        out,
        "{:<16} {:>5} {:>6} {:>6} {:>6} {:>11}",
        "fault type", "n", "AS@1", "AS@3", "AS@5", "undetected"
    );
    for (name, rs) in &groups {
        let n = rs.len() as f64;
        let at = |k: usize| {
            rs.iter()
                .filter(|r| r.root_cause_rank.is_some_and(|p| p <= k))
                .count() as f64
                / n
        };
        let undetected = rs.iter().filter(|r| r.evaluated_incident.is_none()).count();
        let _ = writeln!(
            out,
            "{name:<16} {:>5} {:>6.2} {:>6.2} {:>6.2} {:>11}",
            rs.len(),
            at(1),
            at(3),
            at(5),
            undetected
        );
    }
    out
}

/// medic against the kube-prometheus alert each fixture names in
/// `expect.beats`: when the rule, evaluated over the fixture's own series
/// at its interval, would fire, and when medic saw the fault.
fn races(reports: &[Report]) -> String {
    let rows: Vec<(&Report, &crate::replay::RuleRace)> = reports
        .iter()
        .flat_map(|r| r.beats.iter().map(move |b| (r, b)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nmedic against kube-prometheus (each rule's expression and `for:` evaluated over its fixture)"
    );
    let _ = writeln!(
        out,
        "{:<44} {:<30} {:>10} {:>8} {:>8}",
        "fixture", "alert", "rule fires", "medic", "earlier"
    );
    let at = |t: Option<i64>| t.map(format_secs).unwrap_or_else(|| "never".into());
    for (r, b) in rows {
        let lead = match (b.medic_at_s, b.rule_fires_at_s) {
            (Some(m), Some(f)) => format_secs(f - m),
            (Some(_), None) => "-".into(),
            _ => "no".into(),
        };
        let name: String = r.fixture.chars().take(44).collect();
        let _ = writeln!(
            out,
            "{name:<44} {:<30} {:>10} {:>8} {:>8}",
            b.alert,
            at(b.rule_fires_at_s),
            at(b.medic_at_s),
            lead
        );
    }
    out
}
