//! Wraps a live `Llm` and keeps every exchange, so the answers can be
//! written into a fixture's `llm:` and replayed from then on.

use super::{Llm, LlmError, LlmReply, LlmRequest};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// One exchange as it happened: the answer text, or the error.
pub type Exchange = Result<String, LlmError>;

pub struct RecordingLlm {
    inner: Arc<dyn Llm>,
    exchanges: Mutex<Vec<Exchange>>,
}

impl RecordingLlm {
    pub fn new(inner: Arc<dyn Llm>) -> Self {
        RecordingLlm {
            inner,
            exchanges: Mutex::new(Vec::new()),
        }
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Llm for RecordingLlm {
    async fn complete(&self, request: &LlmRequest) -> Result<LlmReply, LlmError> {
        let reply = self.inner.complete(request).await;
        if let Ok(mut e) = self.exchanges.lock() {
            e.push(
                reply
                    .as_ref()
                    .map(|r| r.content.clone())
                    .map_err(Clone::clone),
            );
        }
        reply
    }
}

static NO_KEY_SAID: std::sync::Once = std::sync::Once::new();

/// The production LLM for `config`, or None: when the LLM is off, or on but
/// without an API key (then it says so, once per process, and medic runs on
/// the rule-based diagnosis).
pub fn live_llm(config: &super::LlmConfig) -> Result<Option<super::OpenAiLlm>, LlmError> {
    if !config.enabled {
        return Ok(None);
    }
    let llm = super::OpenAiLlm::from_config(config)?;
    if llm.is_none() {
        NO_KEY_SAID.call_once(|| {
            tracing::warn!(
                env = %config.api_key_env,
                file = ?config.api_key_file,
                "LLM diagnosis is enabled but no API key was found; diagnosis is rule-based"
            );
        });
    }
    Ok(llm)
}
