//! LLM-assisted diagnosis: optional, advisory, bounded.
//!
//! The model sees a redacted summary of the incident in which everything
//! taken from the cluster is fenced as untrusted data. It answers in a JSON
//! schema that only lets it pick among the incident's own objects, the known
//! categories and the candidate playbooks. Any answer that breaks a rule is
//! discarded and the rule-based diagnosis stands. It never sets a risk, a
//! query, a target or a parameter.

mod advisor;
mod answer;
mod config;
mod openai;
mod prompt;
mod recording;
mod redact;

pub use advisor::{Advice, Advisor};
pub use answer::{AnswerError, LlmAnswer, answer_schema, validate_answer};
pub use config::LlmConfig;
pub use openai::OpenAiLlm;
pub use prompt::{PromptInput, PromptParts, build_prompt, count_tokens};
pub use recording::{Exchange, RecordingLlm, live_llm};
pub use redact::{fence, redact};

use async_trait::async_trait;
use serde::Serialize;

/// One structured diagnosis request.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub system: String,
    pub user: String,
    /// JSON Schema the answer must follow (sent as response_format).
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlmReply {
    pub content: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("LLM request timed out after {0}s")]
    Timeout(u64),
    #[error("LLM endpoint error: {0}")]
    Api(String),
    #[error("LLM answer is empty")]
    Empty,
}

/// What the report and metrics keep of an LLM consultation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LlmUsage {
    /// Whether the model's answer was used.
    pub used: bool,
    /// Why it was used or not.
    pub reason: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub latency_ms: u64,
}

/// The `Llm` port: one structured request, one answer.
#[async_trait]
pub trait Llm: Send + Sync {
    async fn complete(&self, request: &LlmRequest) -> Result<LlmReply, LlmError>;
}
