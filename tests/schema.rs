//! The generated JSON Schemas accept what medic loads and reject what lint
//! rejects as malformed, checked with a real JSON Schema validator.

use medic::playbook::schema::{SchemaKind, schema};
use medic::yaml::split_documents;

fn validator(kind: SchemaKind) -> jsonschema::Validator {
    jsonschema::validator_for(&schema(kind)).unwrap()
}

fn as_json(yaml: &str) -> serde_json::Value {
    let v: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    serde_json::to_value(v).unwrap()
}

#[test]
fn every_shipped_document_validates() {
    let any = validator(SchemaKind::Document);
    for (name, text) in medic::playbook::EMBEDDED {
        for doc in split_documents(text) {
            let json = as_json(&doc.text);
            let errors: Vec<String> = any.iter_errors(&json).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "{name} document {}: {errors:?}",
                doc.index
            );
        }
    }
}

#[test]
fn mistakes_are_flagged() {
    let playbook = validator(SchemaKind::Playbook);
    let good = r#"{apiVersion: medic.dev/v1alpha1, kind: Playbook, metadata: {name: p},
        spec: {trigger: {signal: crash_loop}, maxAutonomousRisk: low, steps: [{action: capture_logs, risk: none}]}}"#;
    assert!(playbook.is_valid(&as_json(good)));
    for bad in [
        good.replace("capture_logs", "capture_log"),
        good.replace("risk: none", "risk: tiny"),
        good.replace("maxAutonomousRisk", "maxAutonomusRisk"),
        good.replace("kind: Playbook", "kind: Detector"),
    ] {
        assert!(!playbook.is_valid(&as_json(&bad)), "accepted: {bad}");
    }
    let config = validator(SchemaKind::Config);
    assert!(config.is_valid(&as_json(
        "{mode: enforce, interval: 15s, autonomy: {maxRisk: low}}"
    )));
    assert!(!config.is_valid(&as_json("{mode: yolo}")));
    assert!(!config.is_valid(&as_json("{interval: fast}")));
}

#[test]
fn every_bundled_fixture_validates_and_fixture_mistakes_are_flagged() {
    let fixture = validator(SchemaKind::Fixture);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/incidents");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let json = as_json(&std::fs::read_to_string(&path).unwrap());
        let errors: Vec<String> = fixture.iter_errors(&json).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        n += 1;
    }
    assert!(n > 50, "{n} fixtures");
    let good = "{name: x, interval: 30s, duration: 10m, series: [], expect: {root_cause: Deployment/shop/cart}}";
    assert!(fixture.is_valid(&as_json(good)));
    for bad in [
        good.replace("expect:", "expects:"),
        good.replace("Deployment/shop/cart", "deployment"),
        good.replace("10m", "ten minutes"),
    ] {
        assert!(!fixture.is_valid(&as_json(&bad)), "accepted: {bad}");
    }
}
