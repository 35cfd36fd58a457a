//! Diagnosis: what is wrong and why, from the incident's evidence.

pub mod llm;
mod rules;

mod summary;

pub use rules::diagnose;
pub use summary::{fingerprint, prompt_input};

use llm::LlmUsage;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Diagnosis {
    /// `rules` (or, later, `llm`): who produced this diagnosis.
    pub source: String,
    /// The kind of fault, named after the detector that shows it.
    pub category: String,
    pub confidence: f64,
    pub summary: String,
    pub evidence: Vec<String>,
    /// The LLM consultation, when one was made: used or not, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmUsage>,
}
