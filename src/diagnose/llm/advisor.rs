//! One LLM consultation per incident fingerprint, within an hourly budget,
//! its answer checked before anything uses it.

use super::answer::{answer_schema, validate_answer};
use super::prompt::{PromptInput, build_prompt};
use super::{Llm, LlmAnswer, LlmConfig, LlmRequest, LlmUsage};
use crate::model::Timestamp;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a consultation gave: an answer that passed every check, or none,
/// and always the usage and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub answer: Option<LlmAnswer>,
    pub usage: LlmUsage,
}

#[derive(Default)]
struct State {
    cache: BTreeMap<String, (Timestamp, Advice)>,
    calls: VecDeque<Timestamp>,
}

pub struct Advisor {
    llm: Arc<dyn Llm>,
    config: LlmConfig,
    state: Mutex<State>,
}

impl Advisor {
    pub fn new(llm: Arc<dyn Llm>, config: LlmConfig) -> Self {
        Advisor {
            llm,
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a cache and a counter: still sound after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Consults the model about the incident with this fingerprint, unless it
    /// already did while the incident was open or the hourly budget is spent.
    pub async fn advise(&self, fingerprint: &str, input: &PromptInput, now: Timestamp) -> Advice {
        let not_used = |reason: String| Advice {
            answer: None,
            usage: LlmUsage {
                used: false,
                reason,
                prompt_tokens: 0,
                completion_tokens: 0,
                latency_ms: 0,
            },
        };
        {
            let mut st = self.state();
            st.cache.retain(|_, (at, _)| now - *at < 86_400);
            if let Some((_, advice)) = st.cache.get(fingerprint) {
                return advice.clone();
            }
            while st.calls.front().is_some_and(|t| now - *t >= 3600) {
                st.calls.pop_front();
            }
            if st.calls.len() >= self.config.calls_per_hour {
                return not_used(format!(
                    "hourly budget of {} LLM calls spent; rules only",
                    self.config.calls_per_hour
                ));
            }
        }
        let prompt = build_prompt(input, self.config.prompt_token_budget);
        if prompt.over_budget {
            return not_used(format!(
                "prompt needs {} tokens, over the budget of {} even with all optional evidence dropped",
                prompt.tokens, self.config.prompt_token_budget
            ));
        }
        let playbooks: Vec<String> = input
            .playbooks
            .iter()
            .map(|p| p.split(':').next().unwrap_or_default().trim().to_string())
            .collect();
        let request = LlmRequest {
            system: prompt.system,
            user: prompt.user,
            schema: answer_schema(&input.objects, &input.categories, &playbooks),
        };
        self.state().calls.push_back(now);
        let started = Instant::now();
        let reply = self.llm.complete(&request).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let advice = match reply {
            Err(e) => Advice {
                answer: None,
                usage: LlmUsage {
                    used: false,
                    reason: format!("{e}; rules only"),
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    latency_ms,
                },
            },
            Ok(reply) => {
                let checked = validate_answer(
                    &reply.content,
                    &input.objects,
                    &input.categories,
                    &playbooks,
                );
                let (answer, used, reason) = match checked {
                    Ok(a) => (Some(a), true, "answer passed every check".to_string()),
                    Err(e) => (None, false, format!("answer discarded: {e}")),
                };
                Advice {
                    answer,
                    usage: LlmUsage {
                        used,
                        reason,
                        prompt_tokens: reply.prompt_tokens,
                        completion_tokens: reply.completion_tokens,
                        latency_ms,
                    },
                }
            }
        };
        crate::telemetry::record_llm(&advice.usage);
        self.state()
            .cache
            .insert(fingerprint.to_string(), (now, advice.clone()));
        advice
    }
}
