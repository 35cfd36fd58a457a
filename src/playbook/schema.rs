//! JSON Schemas of medic's YAML, generated from the Rust types that read it,
//! so editors validate against exactly what medic accepts.

use super::API_VERSION;
use super::PlaybookSpec;
use super::model::Document;
use crate::config::Config;
use crate::signal::DetectorSpec;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

/// The documents a schema exists for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// A Detector document.
    Detector,
    /// A Playbook document.
    Playbook,
    /// Either: for files that mix detectors and playbooks.
    Document,
    /// medic.yaml.
    Config,
    /// A recorded incident replay reads.
    Fixture,
}

impl SchemaKind {
    pub const ALL: [SchemaKind; 5] = [
        SchemaKind::Detector,
        SchemaKind::Playbook,
        SchemaKind::Document,
        SchemaKind::Config,
        SchemaKind::Fixture,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::Detector => "detector.json",
            SchemaKind::Playbook => "playbook.json",
            SchemaKind::Document => "document.json",
            SchemaKind::Config => "config.json",
            SchemaKind::Fixture => "fixture.json",
        }
    }
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum AnyDocument {
    Detector(Document<DetectorSpec>),
    Playbook(Document<PlaybookSpec>),
}

pub fn schema(kind: SchemaKind) -> Value {
    let generator = SchemaGenerator::default();
    let (mut root, title) = match kind {
        SchemaKind::Detector => (
            generator.into_root_schema_for::<Document<DetectorSpec>>(),
            "medic Detector",
        ),
        SchemaKind::Playbook => (
            generator.into_root_schema_for::<Document<PlaybookSpec>>(),
            "medic Playbook",
        ),
        SchemaKind::Document => (
            generator.into_root_schema_for::<AnyDocument>(),
            "medic Detector or Playbook",
        ),
        SchemaKind::Config => (generator.into_root_schema_for::<Config>(), "medic.yaml"),
        SchemaKind::Fixture => (
            generator.into_root_schema_for::<crate::replay::Fixture>(),
            "medic fixture",
        ),
    };
    let value = root.as_object_mut().map(|o| {
        o.insert("title".into(), json!(title));
        Value::Object(o.clone())
    });
    let mut value = value.unwrap_or(Value::Null);
    pin_kinds(&mut value);
    value
}

/// Fixes `apiVersion` and `kind` of each document schema to their one
/// valid value, so an editor offers them and flags a typo.
fn pin_kinds(value: &mut Value) {
    let pin = |schema: &mut Value, kind: &str| {
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("apiVersion".into(), json!({"const": API_VERSION}));
            props.insert("kind".into(), json!({"const": kind}));
        }
    };
    let is_spec = |v: &Value, spec: &str| {
        v.pointer("/properties/spec/$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| r.ends_with(spec))
    };
    if is_spec(value, "/DetectorSpec") {
        pin(value, "Detector");
    } else if is_spec(value, "/PlaybookSpec") {
        pin(value, "Playbook");
    }
    if let Some(defs) = value.get_mut("$defs").and_then(Value::as_object_mut) {
        for def in defs.values_mut() {
            if is_spec(def, "/DetectorSpec") {
                pin(def, "Detector");
            } else if is_spec(def, "/PlaybookSpec") {
                pin(def, "Playbook");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schemas_are_up_to_date() {
        for kind in SchemaKind::ALL {
            let path = format!("{}/schema/{}", env!("CARGO_MANIFEST_DIR"), kind.file_name());
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            let fresh = serde_json::to_string_pretty(&schema(kind)).unwrap() + "\n";
            assert!(
                committed == fresh,
                "{path} is stale: run `cargo run -- schema --write schema`"
            );
        }
    }

    #[test]
    fn schemas_pin_kinds_and_list_actions() {
        let p = schema(SchemaKind::Playbook);
        assert_eq!(p["properties"]["kind"]["const"], "Playbook");
        assert_eq!(p["properties"]["apiVersion"]["const"], API_VERSION);
        let text = p.to_string();
        assert!(
            text.contains("\"rollout_undo\""),
            "action names are offered"
        );
        assert!(text.contains("\"maxAutonomousRisk\""));
        let d = schema(SchemaKind::Document).to_string();
        assert!(
            d.contains("\"const\":\"Detector\"") && d.contains("\"const\":\"Playbook\""),
            "{d}"
        );
    }
}
