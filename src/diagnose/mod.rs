//! Diagnosis: what is wrong and why, from the incident's evidence.

mod rules;

pub use rules::diagnose;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    /// `rules` (or, later, `llm`): who produced this diagnosis.
    pub source: String,
    /// The kind of fault, named after the detector that shows it.
    pub category: String,
    pub confidence: f64,
    pub summary: String,
    pub evidence: Vec<String>,
}
