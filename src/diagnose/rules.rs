//! Rule-based diagnosis. Pure: reads the ranked incident and the snapshot.

use super::Diagnosis;
use crate::cluster::ClusterSnapshot;
use crate::incident::{Incident, Topology, assess, fmt_value};
use crate::model::{ObjectRef, format_secs};
use crate::signal::Detector;
use std::collections::BTreeSet;

/// What a category means, and how much a signal of it alone says.
fn meaning(category: &str) -> Option<(&'static str, f64)> {
    Some(match category {
        "memory_leak" => ("its memory grows steadily towards the container limit", 0.6),
        "node_memory_pressure" => ("the node is running out of memory", 0.55),
        "crash_loop" => ("its containers keep crashing and restarting", 0.6),
        "connection_pool_exhaustion" => (
            "its database connection pool is exhausted and requests queue for a connection",
            0.7,
        ),
        "disk_pressure" => ("a filesystem on the node is filling up", 0.7),
        "cpu_throttling" => ("it is throttled by its CPU limit", 0.6),
        "latency_anomaly" => ("its latency is far above its own recent baseline", 0.45),
        "error_rate" => ("its error rate is far above its own recent baseline", 0.45),
        "certificate_expiry" => ("its certificate expires soon", 0.8),
        _ => return None,
    })
}

/// How many other candidates, or signals of one candidate, the summary names.
const NAMED: usize = 3;

/// How many silent callees it names: they come in no order of likelihood,
/// so a short list would hide some behind an arbitrary cut.
const SILENT_NAMED: usize = 8;

/// Diagnoses an incident whose candidates are ranked. None when it has none.
///
/// The summary says why the root cause ranks first, with its evidence, and
/// how each other candidate relates to it; when the root shows symptoms
/// only, it names the services it calls that show nothing, since a fault
/// on the way to one of them looks the same from the root's side.
pub fn diagnose(
    incident: &Incident,
    snap: &ClusterSnapshot,
    topo: &Topology,
    change_window: i64,
    detectors: &[Detector],
    resource: &BTreeSet<String>,
) -> Option<Diagnosis> {
    let root = incident.root_cause()?;
    let root_signals: Vec<_> = incident
        .signals
        .iter()
        .filter(|s| &s.subject == root)
        .collect();
    let first = root_signals.iter().min_by_key(|s| s.signal.onset)?;
    let category = first.signal.name.clone();
    let described = |name: &str| {
        detectors
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.spec.description.trim().to_string())
            .filter(|d| !d.is_empty())
    };
    // A category medic knows is said in words; one of the user's own
    // detectors is said by its description, beside each of its signals.
    let (what, base) = match meaning(&category) {
        Some((what, base)) => (
            format!("{what} ({})", signals_of(incident, root, &|_| None)),
            base,
        ),
        None => (signals_of(incident, root, &described), 0.4),
    };
    let facts = assess(incident, snap, topo, change_window, resource);
    let mut confidence = base;
    let mut evidence: Vec<String> = incident
        .signals
        .iter()
        .map(|s| {
            let d = s.signal.onset - incident.opened_at;
            let when = if d < 0 {
                format!("onset {} before the incident opened", format_secs(-d))
            } else {
                format!("onset {} after the incident opened", format_secs(d))
            };
            format!(
                "{} on {}: value {}, {when}",
                s.signal.name,
                s.signal.target,
                fmt_value(s.signal.value)
            )
        })
        .collect();
    let mut summary = format!("{root} is the most likely root cause: {what}.");
    let root_facts = facts.get(root);
    let mut first_because = Vec::new();
    if root_facts.is_some_and(|f| f.resource) {
        first_because.push("its own resources saturate".to_string());
    }
    let calls: Vec<&ObjectRef> = topo.callees(root).collect();
    let symptoms_only = root_facts.is_some_and(|f| !f.resource && f.changed.is_none());
    let silent: Vec<&ObjectRef> = calls
        .iter()
        .copied()
        .filter(|c| !facts.contains_key(*c))
        .collect();
    // Said here unless the lead below says more: which callees show nothing.
    let lead = symptoms_only && !silent.is_empty();
    if !root.is("Node")
        && !calls.is_empty()
        && !lead
        && root_facts.is_some_and(|f| f.explained_by.is_none())
    {
        first_because.push("nothing it calls explains it".to_string());
    }
    // Why first says something only when there is a second.
    if incident.candidates.len() > 1 && !first_because.is_empty() {
        summary.push_str(&format!(" Ranked first: {}.", first_because.join(", and ")));
    }
    if let Some(change) = root_facts.and_then(|f| f.changed) {
        let ago = first.signal.onset - change.at;
        confidence += 0.2;
        summary.push_str(&format!(
            " It began {} after a {} of {} ({}), the likeliest cause.",
            format_secs(ago),
            change.kind,
            root,
            change.message
        ));
        evidence.push(format!(
            "{} of {} {} before onset: {}",
            change.kind,
            root,
            format_secs(ago),
            change.message
        ));
    }
    let others: Vec<&ObjectRef> = incident.candidates.iter().skip(1).collect();
    if !others.is_empty() {
        confidence += 0.05 * others.len().min(2) as f64;
        let mut named: Vec<String> = others
            .iter()
            .take(NAMED)
            .map(|c| {
                let on_root = if c.is("Node") {
                    snap.workloads_on(&c.name).contains(root)
                } else {
                    topo.downstream(c).contains(root)
                };
                let fact = facts.get(*c);
                // The rule the ranking used: a callee showing symptoms only
                // does not explain a caller whose resources saturate.
                let root_explains = on_root
                    && (root_facts.is_some_and(|f| f.resource)
                        || fact.is_some_and(|f| !f.resource));
                let how = match fact.and_then(|f| f.explained_by.as_ref()) {
                    Some(_) if root_explains => "explained by it".to_string(),
                    Some(by) => format!("explained by {by}"),
                    None => "not explained by it".to_string(),
                };
                format!("{c} ({}), {how}", signals_of(incident, c, &|_| None))
            })
            .collect();
        if others.len() > NAMED {
            named.push(format!("and {} more", others.len() - NAMED));
        }
        summary.push_str(&format!(" Also in this incident: {}.", named.join("; ")));
    }
    if lead {
        // A guess among those, not evidence: say so, and trust it less.
        confidence -= 0.1;
        let mut named: Vec<String> = silent
            .iter()
            .take(SILENT_NAMED)
            .map(|c| c.to_string())
            .collect();
        if silent.len() > SILENT_NAMED {
            named.push(format!("and {} more", silent.len() - SILENT_NAMED));
        }
        summary.push_str(&format!(
            " It shows symptoms only, and what it calls shows nothing: {}. A fault on the way to one of them (a network delay, say) would look like this from its side.",
            named.join(", ")
        ));
    }
    if !incident.suspects.is_empty() {
        let past: Vec<String> = incident
            .suspects
            .iter()
            .map(|s| s.describe(incident.opened_at))
            .collect();
        summary.push_str(&format!(
            " Not ruled out, from recent incidents: {}.",
            past.join("; ")
        ));
    }
    Some(Diagnosis {
        source: "rules".into(),
        category,
        confidence: (confidence.clamp(0.05, 0.95) * 100.0).round() / 100.0,
        summary,
        evidence,
        llm: None,
    })
}

/// The signals on `subject`, strongest of each name, for a summary:
/// `memory_leak on Pod/p/a-1, 0.93; latency_anomaly on Pod/p/a-1, 2.1`,
/// each followed by what `describe` says of its detector, if anything.
fn signals_of(
    incident: &Incident,
    subject: &ObjectRef,
    describe: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut seen: Vec<(&str, &ObjectRef, f64)> = Vec::new();
    for s in incident.signals.iter().filter(|s| &s.subject == subject) {
        match seen
            .iter_mut()
            .find(|(n, t, _)| *n == s.signal.name && *t == &s.signal.target)
        {
            Some(e) => e.2 = e.2.max(s.signal.value),
            None => seen.push((&s.signal.name, &s.signal.target, s.signal.value)),
        }
    }
    let mut parts: Vec<String> = seen
        .iter()
        .take(NAMED)
        .map(|(n, t, v)| {
            let what = describe(n).map(|d| format!(" ({d})")).unwrap_or_default();
            format!("{n} on {t}, {}{what}", fmt_value(*v))
        })
        .collect();
    if seen.len() > NAMED {
        parts.push(format!("and {} more", seen.len() - NAMED));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{SignalRecord, test_record};
    use crate::model::Severity;
    use crate::signal::DetectorSpec;

    fn d(n: &str) -> ObjectRef {
        ObjectRef::namespaced("Deployment", "p", n)
    }

    fn signal(name: &str, workload: &str, onset: i64, value: f64) -> SignalRecord {
        let mut r = test_record(
            &format!("Deployment/p/{workload}"),
            &format!("Pod/p/{workload}-1"),
            onset,
        );
        r.signal.name = name.into();
        r.signal.value = value;
        r
    }

    fn detector(name: &str, resource: bool, description: &str) -> Detector {
        let spec: DetectorSpec = serde_yaml::from_str(&format!(
            "{{severity: high, query: q, resource: {resource}, description: '{description}', target: {{kind: Pod, name: '{{{{ pod }}}}'}}}}"
        ))
        .unwrap();
        Detector {
            name: name.into(),
            spec,
        }
    }

    /// Ranks as the engine does, then diagnoses.
    fn diagnosed(signals: Vec<SignalRecord>, topo: &Topology, detectors: &[Detector]) -> Diagnosis {
        let mut inc = Incident::new("i", 0, Severity::High);
        inc.signals = signals;
        let resource = crate::signal::resource_names(detectors);
        let snap = ClusterSnapshot::default();
        inc.candidates = crate::incident::rank_root_causes(&inc, &snap, topo, 3600, &resource);
        diagnose(&inc, &snap, topo, 3600, detectors, &resource).unwrap()
    }

    #[test]
    fn names_the_evidence_and_how_each_other_candidate_relates_to_the_root() {
        let topo = Topology::new([
            (d("gateway"), d("contacts")),
            (d("contacts"), d("db")),
            (d("gateway"), d("news")),
        ]);
        let detectors = [
            detector(
                "cpu_saturation",
                true,
                "CPU use as a multiple of its median",
            ),
            detector("server_latency", false, ""),
        ];
        let out = diagnosed(
            vec![
                signal("server_latency", "gateway", 60, 4.55),
                signal("cpu_saturation", "contacts", 120, 50.7),
                signal("server_latency", "contacts", 120, 0.99),
                signal("server_latency", "news", 180, 0.2),
            ],
            &topo,
            &detectors,
        );
        // In rank order: news, which nothing degraded explains, before
        // gateway, which calls the root.
        assert_eq!(
            out.summary,
            "Deployment/p/contacts is the most likely root cause: cpu_saturation on Pod/p/contacts-1, 50.7 \
             (CPU use as a multiple of its median); server_latency on Pod/p/contacts-1, 0.99. \
             Ranked first: its own resources saturate, and nothing it calls explains it. \
             Also in this incident: Deployment/p/news (server_latency on Pod/p/news-1, 0.2), not explained by it; \
             Deployment/p/gateway (server_latency on Pod/p/gateway-1, 4.55), explained by it."
        );
        assert_eq!(out.category, "cpu_saturation");
        assert_eq!(out.confidence, 0.5);
        assert_eq!(out.evidence.len(), 4);
    }

    #[test]
    fn a_root_with_symptoms_only_names_what_it_calls_that_shows_nothing() {
        let topo = Topology::new(
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
                .map(|callee| (d("frontend"), d(callee))),
        );
        let out = diagnosed(
            vec![signal("latency_anomaly", "frontend", 60, 0.944)],
            &topo,
            &[],
        );
        assert_eq!(
            out.summary,
            "Deployment/p/frontend is the most likely root cause: its latency is far above its own recent \
             baseline (latency_anomaly on Pod/p/frontend-1, 0.944). It shows symptoms only, and what it calls \
             shows nothing: Deployment/p/a, Deployment/p/b, Deployment/p/c, Deployment/p/d, Deployment/p/e, \
             Deployment/p/f, Deployment/p/g, Deployment/p/h, and 2 more. A fault on the way to \
             one of them (a network delay, say) would look like this from its side."
        );
        // A guess among ten: trusted less than the signal alone (0.45).
        assert_eq!(out.confidence, 0.35);
    }

    #[test]
    fn a_root_whose_resources_saturate_needs_no_guess_about_its_callees() {
        let topo = Topology::new([(d("worker"), d("queue"))]);
        let out = diagnosed(
            vec![signal("memory_leak", "worker", 60, 1857.0)],
            &topo,
            &[detector("memory_leak", true, "")],
        );
        assert_eq!(
            out.summary,
            "Deployment/p/worker is the most likely root cause: its memory grows steadily towards the \
             container limit (memory_leak on Pod/p/worker-1, 1857)."
        );
        assert_eq!(out.confidence, 0.6);
    }
}
