//! Entry points for the fuzz targets (`fuzz/`) and for the test that
//! replays their corpus: each takes arbitrary bytes, as a hostile or broken
//! input would arrive, and must return an error, never panic.

/// Detector and playbook YAML, as `medic lint` and the reloader read it.
pub fn playbooks(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::playbook::lint_sources(&[("fuzz.yaml".to_string(), text.to_string())]);
    let _ = crate::playbook::Library::from_sources(&[("fuzz.yaml".to_string(), text.into_owned())]);
}

/// A fixture, as `medic replay` reads it.
pub fn fixture(data: &[u8]) {
    let _ = crate::replay::Loaded::parse(&String::from_utf8_lossy(data), "fuzz.yaml");
}

/// medic.yaml.
pub fn config(data: &[u8]) {
    let _ = crate::config::Config::parse(&String::from_utf8_lossy(data), "medic.yaml");
}

/// An Alertmanager webhook body, as POST /api/v1/alerts reads it.
pub fn webhook(data: &[u8]) {
    if let Ok(payload) = serde_json::from_slice::<crate::signal::WebhookPayload>(data) {
        let _ = crate::signal::from_webhook(&payload, 1_704_067_200);
    }
}

/// The `data` of a Prometheus query answer, converted as the adapter does
/// and, for a range answer, scored as an anomaly detector would.
pub fn prometheus_response(data: &[u8]) {
    let Ok(d) = serde_json::from_slice::<prometheus_http_query::response::Data>(data) else {
        return;
    };
    let _ = crate::metrics::prometheus::vector("q", &d);
    if let Ok(ranges) = crate::metrics::prometheus::matrix("q", &d) {
        let times: Vec<i64> = ranges
            .iter()
            .flat_map(|r| r.samples.iter().map(|s| s.0))
            .take(64)
            .collect();
        let spec = crate::signal::anomaly::AnomalySpec {
            baseline: crate::model::Secs(600),
            skip: crate::model::Secs(60),
            min_samples: 2,
            ..Default::default()
        };
        let _ = crate::signal::anomalies(&spec, &ranges, &times);
    }
}
