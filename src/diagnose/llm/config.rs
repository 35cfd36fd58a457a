//! The `llm:` section of medic.yaml. Off unless enabled and given a key.

use crate::model::Secs;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LlmConfig {
    /// Ask an LLM to refine the rules' diagnosis (docs/llm.md).
    pub enabled: bool,
    /// Any OpenAI-compatible endpoint: https://api.openai.com/v1, a vLLM,
    /// Ollama (http://localhost:11434/v1) or LiteLLM URL.
    pub base_url: String,
    /// The model (or Azure deployment) to ask.
    pub model: String,
    /// Azure OpenAI: set the API version and the deployment is `model`.
    pub azure_api_version: Option<String>,
    /// Environment variable holding the API key.
    pub api_key_env: String,
    /// A file holding the API key (e.g. a mounted Secret); wins over the env var.
    pub api_key_file: Option<String>,
    /// The OpenAI organization header, if the account needs one.
    pub organization: Option<String>,
    /// Extra headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// Whole-call deadline, retries included.
    pub timeout: Secs,
    /// Prompt size limit, counted with the o200k tokenizer.
    pub prompt_token_budget: usize,
    /// At most this many calls per hour; beyond it the rules decide alone.
    pub calls_per_hour: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            enabled: false,
            base_url: "https://api.openai.com/v1".into(),
            model: "gpt-4o-mini".into(),
            azure_api_version: None,
            api_key_env: "OPENAI_API_KEY".into(),
            api_key_file: None,
            organization: None,
            headers: BTreeMap::new(),
            timeout: Secs(30),
            prompt_token_budget: 3000,
            calls_per_hour: 20,
        }
    }
}

impl LlmConfig {
    /// The API key, from the file or the environment; None when neither has one.
    pub fn api_key(&self) -> Option<String> {
        if let Some(path) = &self.api_key_file {
            return std::fs::read_to_string(path)
                .ok()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty());
        }
        std::env::var(&self.api_key_env)
            .ok()
            .filter(|k| !k.is_empty())
    }
}
