//! The only shape an LLM answer may take, and the checks that decide whether
//! it is used. An answer that fails any check is discarded whole.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Longest raw answer accepted, in bytes.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024;
const MAX_EXPLANATION: usize = 1500;
const MAX_EVIDENCE: usize = 10;
const MAX_EVIDENCE_ITEM: usize = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmAnswer {
    /// One of the incident's own objects.
    pub root_cause: String,
    /// One of the known categories (detector names).
    pub category: String,
    /// One of the candidate playbooks, or null for none.
    pub playbook: Option<String>,
    pub confidence: f64,
    pub explanation: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    #[error("answer is {0} bytes, over the {MAX_ANSWER_BYTES}-byte limit")]
    TooLong(usize),
    #[error("answer does not match the schema: {0}")]
    Schema(String),
    #[error("root cause `{0}` is not one of the incident's objects")]
    UnknownObject(String),
    #[error("category `{0}` is not a known category")]
    UnknownCategory(String),
    #[error("playbook `{0}` is not one of the candidate playbooks")]
    UnknownPlaybook(String),
    #[error("confidence {0} is not between 0 and 1")]
    Confidence(f64),
    #[error("explanation or evidence is longer than allowed")]
    Verbose,
}

/// The JSON Schema sent as `response_format`, with the allowed values listed.
pub fn answer_schema(objects: &[String], categories: &[String], playbooks: &[String]) -> Value {
    let mut playbook_values: Vec<Value> = playbooks.iter().map(|p| json!(p)).collect();
    playbook_values.push(Value::Null);
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["root_cause", "category", "playbook", "confidence", "explanation", "evidence"],
        "properties": {
            "root_cause": {"type": "string", "enum": objects},
            "category": {"type": "string", "enum": categories},
            "playbook": {"type": ["string", "null"], "enum": playbook_values},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "explanation": {"type": "string", "maxLength": MAX_EXPLANATION},
            "evidence": {"type": "array", "maxItems": MAX_EVIDENCE, "items": {"type": "string", "maxLength": MAX_EVIDENCE_ITEM}}
        }
    })
}

/// Parses and checks an answer; servers that ignore `response_format` get
/// the same checks (a surrounding ```json fence is tolerated).
pub fn validate_answer(
    content: &str,
    objects: &[String],
    categories: &[String],
    playbooks: &[String],
) -> Result<LlmAnswer, AnswerError> {
    if content.len() > MAX_ANSWER_BYTES {
        return Err(AnswerError::TooLong(content.len()));
    }
    let trimmed = content.trim();
    let body = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|b| b.strip_suffix("```"))
        .unwrap_or(trimmed);
    let answer: LlmAnswer =
        serde_json::from_str(body).map_err(|e| AnswerError::Schema(e.to_string()))?;
    if !objects.contains(&answer.root_cause) {
        return Err(AnswerError::UnknownObject(answer.root_cause));
    }
    if !categories.contains(&answer.category) {
        return Err(AnswerError::UnknownCategory(answer.category));
    }
    if let Some(p) = &answer.playbook
        && !playbooks.contains(p)
    {
        return Err(AnswerError::UnknownPlaybook(p.clone()));
    }
    if !(0.0..=1.0).contains(&answer.confidence) {
        return Err(AnswerError::Confidence(answer.confidence));
    }
    if answer.explanation.chars().count() > MAX_EXPLANATION
        || answer.evidence.len() > MAX_EVIDENCE
        || answer
            .evidence
            .iter()
            .any(|e| e.chars().count() > MAX_EVIDENCE_ITEM)
    {
        return Err(AnswerError::Verbose);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(content: &str) -> Result<LlmAnswer, AnswerError> {
        validate_answer(
            content,
            &[
                "Deployment/shop/orders".into(),
                "Deployment/shop/frontend".into(),
            ],
            &[
                "connection_pool_exhaustion".into(),
                "latency_anomaly".into(),
            ],
            &["connection-pool-exhaustion".into()],
        )
    }

    const GOOD: &str = r#"{"root_cause": "Deployment/shop/orders", "category": "connection_pool_exhaustion", "playbook": "connection-pool-exhaustion", "confidence": 0.9, "explanation": "pool full", "evidence": ["pending 18"]}"#;

    #[test]
    fn a_valid_answer_is_accepted_even_in_a_code_fence() {
        assert_eq!(v(GOOD).unwrap().root_cause, "Deployment/shop/orders");
        assert!(v(&format!("```json\n{GOOD}\n```")).is_ok());
    }

    #[test]
    fn each_kind_of_invalid_answer_is_rejected() {
        assert_eq!(
            v(&GOOD.replace("Deployment/shop/orders", "Namespace/production")),
            Err(AnswerError::UnknownObject("Namespace/production".into()))
        );
        assert_eq!(
            v(&GOOD.replace("\"connection-pool-exhaustion\"", "\"delete-namespace\"")),
            Err(AnswerError::UnknownPlaybook("delete-namespace".into()))
        );
        assert!(matches!(
            v(&GOOD.replace("\"connection_pool_exhaustion\"", "\"cosmic_rays\"")),
            Err(AnswerError::UnknownCategory(_))
        ));
        assert!(matches!(v("not json"), Err(AnswerError::Schema(_))));
        // It may not set anything else: a risk, a query, actions.
        assert!(matches!(
            v(&GOOD.replace("\"confidence\"", "\"risk\": \"none\", \"confidence\"")),
            Err(AnswerError::Schema(m)) if m.contains("unknown field `risk`")
        ));
        assert!(matches!(
            v(&GOOD.replace("0.9", "\"high\"")),
            Err(AnswerError::Schema(_))
        ));
        assert_eq!(
            v(&GOOD.replace("0.9", "1.5")),
            Err(AnswerError::Confidence(1.5))
        );
        let long = GOOD.replace("pool full", &"x".repeat(2000));
        assert_eq!(v(&long), Err(AnswerError::Verbose));
        let huge = GOOD.replace("pool full", &"x".repeat(9000));
        assert!(matches!(v(&huge), Err(AnswerError::TooLong(_))));
    }

    #[test]
    fn the_schema_lists_only_the_allowed_values() {
        let s = answer_schema(&["Node/n1".into()], &["disk_pressure".into()], &[]);
        assert_eq!(s["properties"]["root_cause"]["enum"], json!(["Node/n1"]));
        assert_eq!(s["properties"]["playbook"]["enum"], json!([null]));
        assert_eq!(s["additionalProperties"], json!(false));
    }
}
