//! The prompt: a compact incident summary rendered into prompts/, fitted to
//! a token budget by dropping the least relevant evidence first.

use crate::template::{self, Escape};
use std::collections::BTreeMap;
use tiktoken_rs::o200k_base_singleton;

const SYSTEM: &str = include_str!("../../../prompts/system.md");
const USER: &str = include_str!("../../../prompts/user.md");

/// Tokens as the o200k tokenizer (GPT-4o family) counts them.
pub fn count_tokens(text: &str) -> usize {
    o200k_base_singleton()
        .encode_with_special_tokens(text)
        .len()
}

/// What the prompt is made of. Lists are in order of relevance, most
/// relevant first; the budget drops from their ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptInput {
    pub incident: String,
    pub severity: String,
    /// Signals on the suspected root cause.
    pub root_signals: Vec<String>,
    /// Signals elsewhere in the incident.
    pub other_signals: Vec<String>,
    /// Newest first.
    pub timeline: Vec<String>,
    pub changes: Vec<String>,
    pub neighbours: Vec<String>,
    pub hypothesis: String,
    pub objects: Vec<String>,
    pub categories: Vec<String>,
    /// `name: description`.
    pub playbooks: Vec<String>,
    /// Already fenced and redacted cluster text (see `fence`).
    pub untrusted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromptParts {
    pub system: String,
    pub user: String,
    pub tokens: usize,
    /// Evidence items dropped to fit the budget.
    pub dropped: usize,
    /// Still over budget with everything droppable dropped.
    pub over_budget: bool,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "- (none)".into()
    } else {
        items
            .iter()
            .map(|i| format!("- {i}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn render(input: &PromptInput) -> String {
    let mut signals = input.root_signals.clone();
    signals.extend(input.other_signals.iter().cloned());
    let vars = BTreeMap::from([
        ("incident".to_string(), input.incident.clone()),
        ("severity".to_string(), input.severity.clone()),
        ("signals".to_string(), list(&signals)),
        ("timeline".to_string(), list(&input.timeline)),
        ("changes".to_string(), list(&input.changes)),
        ("neighbours".to_string(), list(&input.neighbours)),
        ("hypothesis".to_string(), input.hypothesis.clone()),
        ("objects".to_string(), list(&input.objects)),
        ("categories".to_string(), list(&input.categories)),
        ("playbooks".to_string(), list(&input.playbooks)),
        (
            "untrusted".to_string(),
            if input.untrusted.is_empty() {
                "(none)".to_string()
            } else {
                input.untrusted.join("\n")
            },
        ),
    ]);
    // The templates are ours and name only these variables (tested).
    template::render(USER, &vars, Escape::None).unwrap_or_default()
}

/// Renders the prompt within `budget` tokens, dropping in this order:
/// untrusted cluster text, dependencies, the oldest timeline entries,
/// changes, then signals away from the root cause.
pub fn build_prompt(input: &PromptInput, budget: usize) -> PromptParts {
    let system = SYSTEM.to_string();
    let system_tokens = count_tokens(&system);
    let mut input = input.clone();
    let mut dropped = 0;
    loop {
        let user = render(&input);
        let tokens = system_tokens + count_tokens(&user);
        if tokens <= budget {
            return PromptParts {
                system,
                user,
                tokens,
                dropped,
                over_budget: false,
            };
        }
        let dropped_one = [
            &mut input.untrusted,
            &mut input.neighbours,
            &mut input.timeline,
            &mut input.changes,
            &mut input.other_signals,
        ]
        .into_iter()
        .find(|l| !l.is_empty())
        .and_then(|l| l.pop());
        if dropped_one.is_none() {
            return PromptParts {
                system,
                user,
                tokens,
                dropped,
                over_budget: true,
            };
        }
        dropped += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PromptInput {
        PromptInput {
            incident: "inc-1".into(),
            severity: "high".into(),
            root_signals: vec!["connection_pool_exhaustion on Pod/shop/orders-1: value 1".into()],
            other_signals: vec!["latency_anomaly on Pod/shop/frontend-1: value 0.9".into()],
            timeline: vec!["T+19m DETECT pool".into(), "T+15m DETECT latency".into()],
            changes: vec![],
            neighbours: vec!["Deployment/shop/checkout -> Deployment/shop/orders".into()],
            hypothesis: "orders' pool is exhausted".into(),
            objects: vec!["Deployment/shop/orders".into()],
            categories: vec!["connection_pool_exhaustion".into()],
            playbooks: vec!["connection-pool-exhaustion: restart".into()],
            untrusted: vec![super::super::fence(
                "logs Pod/shop/orders-1",
                "timeout acquiring connection\n".repeat(1000).as_str(),
            )],
        }
    }

    #[test]
    fn the_templates_name_only_known_variables() {
        let out = render(&input());
        assert!(!out.contains("{{"), "{out}");
        assert!(out.contains("- Deployment/shop/orders"));
    }

    #[test]
    fn fits_the_budget_by_dropping_the_least_relevant_first() {
        let full = build_prompt(&input(), 100_000);
        assert!(!full.over_budget && full.dropped == 0);
        assert!(
            full.tokens > 3000,
            "the logs make it large: {}",
            full.tokens
        );
        let fitted = build_prompt(&input(), 1000);
        assert!(fitted.tokens <= 1000, "{}", fitted.tokens);
        assert!(!fitted.over_budget);
        assert!(
            !fitted.user.contains("timeout acquiring connection"),
            "logs dropped first"
        );
        assert!(
            fitted
                .user
                .contains("connection_pool_exhaustion on Pod/shop/orders-1"),
            "root signal kept"
        );
        assert!(
            fitted
                .user
                .contains("latency_anomaly on Pod/shop/frontend-1"),
            "others kept while they fit"
        );
        assert_eq!(
            fitted.tokens,
            count_tokens(&fitted.system) + count_tokens(&fitted.user)
        );
        assert!(build_prompt(&input(), 50).over_budget);
    }
}
