//! LLM-assisted diagnosis through the real async-openai client against a
//! loopback OpenAI-compatible endpoint serving recorded answers.

use medic::diagnose::llm::{Advisor, LlmConfig, OpenAiLlm, PromptInput, count_tokens, fence};
use medic::model::Secs;
use medic::replay::llm_server::{LlmServer, RecordedAnswer};
use medic::replay::{ReplayOptions, replay_file};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn input(fingerprint_hint: &str) -> PromptInput {
    PromptInput {
        incident: format!("inc-{fingerprint_hint}"),
        severity: "high".into(),
        root_signals: vec!["connection_pool_exhaustion on Pod/shop/orders-1: value 1".into()],
        other_signals: vec!["latency_anomaly on Pod/shop/frontend-1: value 0.9".into()],
        timeline: vec!["1m ago DETECT: pool".into()],
        changes: vec![],
        neighbours: vec!["Deployment/shop/checkout -> Deployment/shop/orders".into()],
        hypothesis: "connection_pool_exhaustion (0.75): orders".into(),
        objects: vec![
            "Deployment/shop/orders".into(),
            "Deployment/shop/frontend".into(),
        ],
        categories: vec![
            "connection_pool_exhaustion".into(),
            "latency_anomaly".into(),
        ],
        playbooks: vec!["connection-pool-exhaustion: restart the pool owner".into()],
        untrusted: vec![fence(
            "logs of Pod/shop/orders-1",
            "timeout acquiring connection; DB_PASSWORD=hunter2",
        )],
    }
}

fn good() -> RecordedAnswer {
    RecordedAnswer {
        response: Some(json!({
            "root_cause": "Deployment/shop/orders", "category": "connection_pool_exhaustion",
            "playbook": "connection-pool-exhaustion", "confidence": 0.8,
            "explanation": "pool full", "evidence": ["pending 18"]
        })),
        ..Default::default()
    }
}

async fn advisor(
    answers: Vec<RecordedAnswer>,
    tweak: impl FnOnce(&mut LlmConfig),
) -> (Advisor, LlmServer) {
    let server = LlmServer::start(answers).await.unwrap();
    let mut config = LlmConfig {
        enabled: true,
        base_url: server.url().to_string(),
        model: "test-model".into(),
        timeout: Secs(10),
        ..LlmConfig::default()
    };
    tweak(&mut config);
    let llm = OpenAiLlm::new(&config, "test-key".into()).unwrap();
    (Advisor::new(Arc::new(llm), config), server)
}

#[tokio::test]
async fn a_valid_answer_is_used_and_the_request_is_exactly_what_we_send() {
    let (adv, server) = advisor(vec![good()], |_| {}).await;
    let advice = adv.advise("f1", &input("1"), 1000).await;
    assert!(advice.usage.used, "{}", advice.usage.reason);
    assert_eq!(advice.answer.unwrap().root_cause, "Deployment/shop/orders");
    assert!(advice.usage.prompt_tokens > 0 && advice.usage.completion_tokens > 0);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r["model"], "test-model");
    assert_eq!(r["temperature"], 0.0);
    assert_eq!(r["response_format"]["type"], "json_schema");
    assert_eq!(r["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        r["response_format"]["json_schema"]["schema"]["properties"]["root_cause"]["enum"],
        json!(["Deployment/shop/orders", "Deployment/shop/frontend"])
    );
    assert_eq!(r["messages"][0]["role"], "system");
    let user = r["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("<untrusted-data source=\"logs of Pod/shop/orders-1\">"),
        "{user}"
    );
    assert!(
        user.contains("DB_PASSWORD=[REDACTED]") && !user.contains("hunter2"),
        "{user}"
    );
}

#[tokio::test]
async fn invalid_answers_are_discarded_with_the_reason() {
    let bad_json = RecordedAnswer {
        content: Some("Sure! The root cause is orders.".into()),
        ..Default::default()
    };
    let mut unknown = good();
    unknown.response = Some(
        json!({"root_cause": "Namespace/production", "category": "connection_pool_exhaustion",
        "playbook": null, "confidence": 0.9, "explanation": "x", "evidence": []}),
    );
    let (adv, _server) = advisor(vec![bad_json, unknown], |_| {}).await;
    let a = adv.advise("f1", &input("1"), 1000).await;
    assert!(a.answer.is_none());
    assert!(
        a.usage
            .reason
            .starts_with("answer discarded: answer does not match the schema"),
        "{}",
        a.usage.reason
    );
    let b = adv.advise("f2", &input("2"), 1000).await;
    assert_eq!(
        b.usage.reason,
        "answer discarded: root cause `Namespace/production` is not one of the incident's objects"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_then_succeeds() {
    let limited = RecordedAnswer {
        status: Some(429),
        retry_after: Some(1),
        ..Default::default()
    };
    let (adv, server) = advisor(vec![limited, good()], |_| {}).await;
    let advice = adv.advise("f1", &input("1"), 1000).await;
    assert!(advice.usage.used, "{}", advice.usage.reason);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_persistent_500_gives_up_after_bounded_retries() {
    let err = RecordedAnswer {
        status: Some(500),
        ..Default::default()
    };
    let (adv, server) = advisor(
        vec![err.clone(), err.clone(), err.clone(), err, good()],
        |_| {},
    )
    .await;
    let advice = adv.advise("f1", &input("1"), 1000).await;
    assert!(advice.answer.is_none());
    assert!(
        advice.usage.reason.starts_with("LLM endpoint error"),
        "{}",
        advice.usage.reason
    );
    assert_eq!(server.requests().len(), 4, "one call and three retries");
}

#[tokio::test]
async fn a_slow_endpoint_times_out_and_rules_stand() {
    let slow = RecordedAnswer {
        delay: Some(Secs(5)),
        ..good()
    };
    let (adv, _server) = advisor(vec![slow], |c| c.timeout = Secs(1)).await;
    let advice = adv.advise("f1", &input("1"), 1000).await;
    assert!(advice.answer.is_none());
    assert_eq!(
        advice.usage.reason,
        "LLM request timed out after 1s; rules only"
    );
}

#[tokio::test]
async fn one_call_per_fingerprint_and_an_hourly_budget() {
    let (adv, server) = advisor(vec![good(), good(), good()], |c| c.calls_per_hour = 2).await;
    assert!(adv.advise("f1", &input("1"), 1000).await.usage.used);
    assert!(
        adv.advise("f1", &input("1"), 1100).await.usage.used,
        "re-used"
    );
    assert_eq!(server.requests().len(), 1);
    assert!(adv.advise("f2", &input("2"), 1200).await.usage.used);
    let third = adv.advise("f3", &input("3"), 1300).await;
    assert_eq!(
        third.usage.reason,
        "hourly budget of 2 LLM calls spent; rules only"
    );
    assert_eq!(server.requests().len(), 2);
    // An hour later the budget is back.
    assert!(adv.advise("f3", &input("3"), 1000 + 3600).await.usage.used);
}

#[tokio::test]
async fn a_large_incident_is_cut_to_the_token_budget() {
    let mut big = input("big");
    big.untrusted = (0..20)
        .map(|i| {
            fence(
                &format!("logs of Pod/shop/orders-{i}"),
                &"connection refused by db-0\n".repeat(200),
            )
        })
        .collect();
    big.other_signals = (0..200)
        .map(|i| format!("latency_anomaly on Pod/shop/web-{i}: value 0.9"))
        .collect();
    let (adv, server) = advisor(vec![good()], |c| c.prompt_token_budget = 3000).await;
    assert!(adv.advise("f1", &big, 1000).await.usage.used);
    let r = &server.requests()[0];
    let sent = format!(
        "{}{}",
        r["messages"][0]["content"].as_str().unwrap(),
        r["messages"][1]["content"].as_str().unwrap()
    );
    assert!(
        count_tokens(&sent) <= 3000,
        "{} tokens",
        count_tokens(&sent)
    );
    assert!(
        sent.contains("connection_pool_exhaustion on Pod/shop/orders-1"),
        "the root cause's signal stays"
    );
}

#[tokio::test]
async fn injected_instructions_do_not_change_the_plan() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents");
    let plain = replay_file(
        &dir.join("crash-loop-after-deploy.yaml"),
        &ReplayOptions::embedded(),
    )
    .await
    .unwrap();
    let injected = replay_file(
        &dir.join("llm-prompt-injection.yaml"),
        &ReplayOptions::embedded(),
    )
    .await
    .unwrap();
    assert!(injected.passed, "{:?}", injected.failures);
    let plan = |r: &medic::replay::Report| -> Vec<String> {
        r.incidents[0]
            .timeline
            .iter()
            .filter(|t| matches!(t.stage_label(), "PLAN" | "EXECUTE" | "ESCALATE"))
            .map(|t| {
                format!(
                    "{} {}",
                    t.at_s,
                    t.text
                        .replace("captured 5 log lines", "captured 0 log lines")
                )
            })
            .collect()
    };
    assert_eq!(plan(&plain), plan(&injected));
    let d = injected.incidents[0].diagnosis.as_ref().unwrap();
    assert_eq!(d.source, "rules");
    let usage = d.llm.as_ref().unwrap();
    assert!(
        !usage.used && usage.reason.starts_with("answer discarded"),
        "{}",
        usage.reason
    );
}

#[tokio::test]
async fn a_replay_whose_llm_request_has_no_recorded_answer_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents");
    let text = std::fs::read_to_string(dir.join("crash-loop-after-deploy.yaml"))
        .unwrap()
        .replace(
            "interval: 15s\n",
            "interval: 15s\nconfig: {llm: {enabled: true}}\n",
        );
    let loaded = medic::replay::Loaded::parse(&text, "no-answers.yaml").unwrap();
    let r = medic::replay::replay_loaded(&loaded, &ReplayOptions::embedded())
        .await
        .unwrap();
    assert!(!r.passed);
    assert!(
        r.failures
            .iter()
            .any(|f| f.contains("with no recorded answer left")),
        "{:?}",
        r.failures
    );
}

#[tokio::test]
async fn calls_tokens_and_latency_are_exported_as_metrics() {
    let (adv, _server) = advisor(vec![good()], |_| {}).await;
    let advice = adv.advise("metrics", &input("m"), 1000).await;
    assert!(advice.usage.used);
    let text = medic::telemetry::render();
    assert!(
        text.contains("medic_llm_calls_total{outcome=\"used\"}"),
        "{text}"
    );
    assert!(
        text.contains("medic_llm_tokens_total{kind=\"prompt\"}"),
        "{text}"
    );
    assert!(
        text.contains("medic_llm_call_duration_seconds_count"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_live_captures_answers_that_then_replay_the_same() {
    let answer = RecordedAnswer {
        response: Some(json!({
            "root_cause": "Deployment/shop/checkout", "category": "crash_loop", "playbook": "pod-crash-loop",
            "confidence": 0.9, "explanation": "v2.3.1 crashes on start", "evidence": ["restarts since the deploy"]
        })),
        ..Default::default()
    };
    let live = LlmServer::start(vec![answer]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "sk-live-test\n").unwrap();
    let config = dir.path().join("medic.yaml");
    std::fs::write(
        &config,
        format!(
            "mode: enforce\nllm: {{enabled: true, baseUrl: \"{}\", model: live-model, apiKeyFile: \"{}\"}}\n",
            live.url(),
            key.display()
        ),
    )
    .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incidents/crash-loop-after-deploy.yaml");
    let (f, c) = (fixture.clone(), config.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_medic"))
            .args([
                "replay",
                f.to_str().unwrap(),
                "--config",
                c.to_str().unwrap(),
                "--llm-live",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("crash_loop (llm, confidence 0.90)"),
        "{stdout}"
    );
    assert_eq!(live.requests()[0]["model"], "live-model");
    let block = stdout
        .split("# LLM answers captured; paste under the fixture's top level:\n")
        .nth(1)
        .unwrap();
    assert!(block.starts_with("llm:\n- response:\n"), "{block}");
    // The captured block makes the fixture replay the same diagnosis offline.
    let text = std::fs::read_to_string(&fixture).unwrap() + block;
    let loaded = medic::replay::Loaded::parse(&text, "captured.yaml").unwrap();
    let r = medic::replay::replay_loaded(&loaded, &ReplayOptions::embedded())
        .await
        .unwrap();
    assert!(r.passed, "{:?}", r.failures);
    assert_eq!(r.incidents[0].diagnosis.as_ref().unwrap().source, "llm");
}

#[test]
fn enabled_without_a_key_runs_on_rules() {
    let config = LlmConfig {
        enabled: true,
        api_key_env: "MEDIC_TEST_NO_SUCH_KEY".into(),
        ..LlmConfig::default()
    };
    assert!(medic::diagnose::llm::live_llm(&config).unwrap().is_none());
    assert!(
        medic::diagnose::llm::live_llm(&LlmConfig::default())
            .unwrap()
            .is_none(),
        "off by default"
    );
}

#[tokio::test]
async fn an_unreachable_https_endpoint_is_an_error_not_a_panic() {
    let config = LlmConfig {
        enabled: true,
        base_url: "https://127.0.0.1:9/v1".into(),
        timeout: Secs(5),
        ..LlmConfig::default()
    };
    let llm = OpenAiLlm::new(&config, "k".into()).unwrap();
    let adv = Advisor::new(Arc::new(llm), config);
    let advice = adv.advise("f", &input("1"), 1000).await;
    assert!(advice.answer.is_none());
    assert!(
        advice.usage.reason.starts_with("LLM endpoint error")
            || advice.usage.reason.starts_with("LLM request timed out"),
        "{}",
        advice.usage.reason
    );
}
