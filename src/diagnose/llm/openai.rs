//! The production `Llm` adapter: async-openai against any OpenAI-compatible
//! endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, LiteLLM).
//!
//! async-openai retries 429 and 5xx answers up to three times, waiting as
//! `Retry-After` says (or backing off); the whole call, retries included,
//! is bounded by `timeout`.

use super::{Llm, LlmConfig, LlmError, LlmReply, LlmRequest};
use async_openai::Client;
use async_openai::config::{AzureConfig, OpenAIConfig};
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequestArgs, ResponseFormat, ResponseFormatJsonSchema,
};
use async_trait::async_trait;
use std::time::Duration;

enum Backend {
    OpenAi(Client<OpenAIConfig>),
    Azure(Client<AzureConfig>),
}

pub struct OpenAiLlm {
    backend: Backend,
    model: String,
    timeout: Duration,
}

impl OpenAiLlm {
    /// None when no API key is configured: medic then runs on rules alone.
    pub fn from_config(config: &LlmConfig) -> Result<Option<Self>, LlmError> {
        match config.api_key() {
            Some(key) => Self::new(config, key).map(Some),
            None => Ok(None),
        }
    }

    pub fn new(config: &LlmConfig, key: String) -> Result<Self, LlmError> {
        let backend = match &config.azure_api_version {
            Some(version) => {
                let c = AzureConfig::new()
                    .with_api_base(&config.base_url)
                    .with_api_version(version)
                    .with_deployment_id(&config.model)
                    .with_api_key(key);
                Backend::Azure(Client::with_config(c))
            }
            None => {
                let mut c = OpenAIConfig::new()
                    .with_api_base(&config.base_url)
                    .with_api_key(key);
                if let Some(org) = &config.organization {
                    c = c.with_org_id(org);
                }
                for (k, v) in &config.headers {
                    let name = reqwest_header_name(k)?;
                    c = c
                        .with_header(name, v.as_str())
                        .map_err(|e| LlmError::Api(e.to_string()))?;
                }
                Backend::OpenAi(Client::with_config(c))
            }
        };
        Ok(OpenAiLlm {
            backend,
            model: config.model.clone(),
            timeout: Duration::from_secs(config.timeout.0.max(1).unsigned_abs()),
        })
    }
}

fn reqwest_header_name(name: &str) -> Result<http::HeaderName, LlmError> {
    name.parse()
        .map_err(|_| LlmError::Api(format!("invalid header name `{name}` in llm.headers")))
}

#[async_trait]
impl Llm for OpenAiLlm {
    async fn complete(&self, request: &LlmRequest) -> Result<LlmReply, LlmError> {
        let body = CreateChatCompletionRequestArgs::default()
            .model(&self.model)
            .temperature(0.0)
            .messages([
                ChatCompletionRequestSystemMessage::from(request.system.as_str()).into(),
                ChatCompletionRequestUserMessage::from(request.user.as_str()).into(),
            ])
            .response_format(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: Some("medic incident diagnosis".into()),
                    name: "medic_diagnosis".into(),
                    schema: request.schema.clone(),
                    strict: Some(true),
                },
            })
            .build()
            .map_err(|e| LlmError::Api(e.to_string()))?;
        let call = async {
            match &self.backend {
                Backend::OpenAi(c) => c.chat().create(body).await,
                Backend::Azure(c) => c.chat().create(body).await,
            }
        };
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| LlmError::Timeout(self.timeout.as_secs()))?
            .map_err(|e| LlmError::Api(e.to_string()))?;
        let content = response
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .filter(|c| !c.trim().is_empty())
            .ok_or(LlmError::Empty)?;
        let (prompt_tokens, completion_tokens) = response
            .usage
            .map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
        Ok(LlmReply {
            content,
            prompt_tokens,
            completion_tokens,
        })
    }
}
