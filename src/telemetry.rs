//! medic's own metrics (prometheus-client), served on /metrics once the
//! HTTP server exists. Kept in one registry so every part records into it.

use crate::diagnose::llm::LlmUsage;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::{Mutex, OnceLock};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `prompt` or `completion`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
    /// `ok`, `failed` or `dry-run`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `used`, `discarded` (answer failed a check) or `failed` (no answer).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DetectorLabels {
    pub detector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `alerts`, `answer`, `pause` or `incidents`.
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: &'static str,
}

type PhaseHistograms = Family<PhaseLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Mutex<Registry>,
    pub tick_phase: PhaseHistograms,
    pub signals_firing: Family<DetectorLabels, Gauge>,
    pub detector_blind: Family<DetectorLabels, Gauge>,
    pub leader: Gauge,
    pub cluster_view: Gauge,
    pub http_refused: Family<EndpointLabels, Counter>,
    pub time_to_detect: Histogram,
    pub time_to_remediate: Histogram,
    pub open_incidents: prometheus_client::metrics::gauge::Gauge,
    pub cycle_duration: Histogram,
    pub actions: Family<ActionLabels, Counter>,
    pub escalations: Counter,
    pub llm_tokens: Family<TokenLabels, Counter>,
    pub llm_calls: Family<CallLabels, Counter>,
    pub llm_latency: Histogram,
}

pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut registry = Registry::with_prefix("medic");
        let llm_tokens = Family::<TokenLabels, Counter>::default();
        let llm_calls = Family::<CallLabels, Counter>::default();
        let llm_latency = Histogram::new([0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]);
        registry.register(
            "llm_tokens",
            "Tokens sent to and received from the LLM",
            llm_tokens.clone(),
        );
        registry.register(
            "llm_calls",
            "LLM diagnosis calls by outcome",
            llm_calls.clone(),
        );
        registry.register(
            "llm_call_duration_seconds",
            "LLM call latency, retries included",
            llm_latency.clone(),
        );
        // Sub-millisecond to a second: a tick's pure work, not its queries.
        let tick_phase: PhaseHistograms = Family::new_with_constructor(|| {
            Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0])
        });
        registry.register(
            "tick_phase_seconds",
            "Where each engine tick's time goes: signals, cluster, correlate, decide, journal",
            tick_phase.clone(),
        );
        let open_incidents = prometheus_client::metrics::gauge::Gauge::default();
        let cycle_duration = Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let actions = Family::<ActionLabels, Counter>::default();
        let escalations = Counter::default();
        registry.register(
            "open_incidents",
            "Incidents open now",
            open_incidents.clone(),
        );
        registry.register(
            "cycle_duration_seconds",
            "One detection cycle, end to end",
            cycle_duration.clone(),
        );
        registry.register("actions", "Actions by action and result", actions.clone());
        registry.register(
            "escalations",
            "Escalations sent to people",
            escalations.clone(),
        );
        let signals_firing = Family::<DetectorLabels, Gauge>::default();
        registry.register(
            "signals_firing",
            "Signals firing now, by detector",
            signals_firing.clone(),
        );
        let detector_blind = Family::<DetectorLabels, Gauge>::default();
        registry.register(
            "detector_blind",
            "1 when the metrics a detector needs are absent from Prometheus, so it cannot fire",
            detector_blind.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 when this replica holds the leader Lease (always 1 without leader election)",
            leader.clone(),
        );
        let cluster_view = Gauge::default();
        registry.register(
            "cluster_view",
            "1 when the last cycle read the cluster; 0 when it had no fresh view and took no action",
            cluster_view.clone(),
        );
        let http_refused = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "http_refused",
            "API requests refused for missing or wrong credentials, or to an endpoint that is off",
            http_refused.clone(),
        );
        // Minutes matter here: buckets from 15 s to 2 h.
        let time_to_detect = Histogram::new([
            15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
        ]);
        registry.register(
            "time_to_detect_seconds",
            "From the earliest signal's onset to the incident opening",
            time_to_detect.clone(),
        );
        let time_to_remediate =
            Histogram::new([60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0]);
        registry.register(
            "time_to_remediate_seconds",
            "From an incident opening to its resolution, for incidents medic acted on",
            time_to_remediate.clone(),
        );
        Metrics {
            tick_phase,
            registry: Mutex::new(registry),
            signals_firing,
            detector_blind,
            leader,
            cluster_view,
            http_refused,
            time_to_detect,
            time_to_remediate,
            open_incidents,
            cycle_duration,
            actions,
            escalations,
            llm_tokens,
            llm_calls,
            llm_latency,
        }
    })
}

/// The OpenMetrics text of every metric.
pub fn render() -> String {
    let mut out = String::new();
    let registry = metrics().registry.lock().unwrap_or_else(|p| p.into_inner());
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

pub fn record_llm(usage: &LlmUsage) {
    let m = metrics();
    let outcome = if usage.used {
        "used"
    } else if usage.prompt_tokens > 0 || usage.completion_tokens > 0 {
        "discarded"
    } else {
        "failed"
    };
    m.llm_calls
        .get_or_create(&CallLabels {
            outcome: outcome.into(),
        })
        .inc();
    m.llm_tokens
        .get_or_create(&TokenLabels {
            kind: "prompt".into(),
        })
        .inc_by(u64::from(usage.prompt_tokens));
    m.llm_tokens
        .get_or_create(&TokenLabels {
            kind: "completion".into(),
        })
        .inc_by(u64::from(usage.completion_tokens));
    m.llm_latency.observe(usage.latency_ms as f64 / 1000.0);
}

pub fn record_cycle(seconds: f64, open_incidents: usize) {
    let m = metrics();
    m.cycle_duration.observe(seconds);
    m.open_incidents
        .set(i64::try_from(open_incidents).unwrap_or(i64::MAX));
}

pub fn record_tick(t: &crate::engine::TickTimings) {
    let m = metrics();
    for (phase, d) in [
        ("signals", t.signals),
        ("cluster", t.cluster),
        ("correlate", t.correlate),
        ("decide", t.decide),
        ("journal", t.journal),
    ] {
        m.tick_phase
            .get_or_create(&PhaseLabels { phase })
            .observe(d.as_secs_f64());
    }
}

pub fn record_action(action: &str, result: &str) {
    metrics()
        .actions
        .get_or_create(&ActionLabels {
            action: action.into(),
            result: result.into(),
        })
        .inc();
}

pub fn record_escalation() {
    metrics().escalations.inc();
}

/// Replaces the firing counts; detectors with none firing read 0.
pub fn record_firing(by_detector: &std::collections::BTreeMap<String, usize>) {
    let m = metrics();
    m.signals_firing.clear();
    for (detector, n) in by_detector {
        m.signals_firing
            .get_or_create(&DetectorLabels {
                detector: detector.clone(),
            })
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
}

/// Replaces the blind flags from a readiness check.
pub fn record_readiness(rows: &[crate::signal::inputs::Readiness]) {
    let m = metrics();
    m.detector_blind.clear();
    for r in rows {
        m.detector_blind
            .get_or_create(&DetectorLabels {
                detector: r.detector.clone(),
            })
            .set(i64::from(!r.can_fire));
    }
}

pub fn record_leader(leader: Option<bool>) {
    metrics().leader.set(i64::from(leader.unwrap_or(true)));
}

pub fn record_cluster_view(fresh: bool) {
    metrics().cluster_view.set(i64::from(fresh));
}

pub fn record_detected(seconds: i64) {
    metrics().time_to_detect.observe(seconds as f64);
}

pub fn record_remediated(seconds: i64) {
    metrics().time_to_remediate.observe(seconds as f64);
}
