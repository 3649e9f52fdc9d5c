//! Control and economy with the fake agent: model and effort per call (valid
//! values from the agent), results that fit Claude's budget, usage that is
//! visible, and readable quota, rate-limit and authentication failures.

use codex_fusion_testkit::client::result_text;
use codex_fusion_testkit::{Client, TestEnv};
use serde_json::{Value, json};

fn consult(question: &str) -> Value {
    json!({ "question": question })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_and_effort_come_from_the_agent_and_stick_until_reset() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let text = client.text("consult", json!({"question": "q", "effort": "low"})).await;
    assert!(text.contains("model=fake-large[low]"), "{text}");
    let status = client.text("status", json!({})).await;
    assert!(status.contains("model: fake-large, effort low\n"), "{status}");
    assert!(status.contains("efforts offered: low, high\n"), "{status}");
    // No arguments: the choice sticks.
    let text = client.text("reply", json!({"message": "and?"})).await;
    assert!(text.contains("model=fake-large[low]"), "{text}");
    let text = client
        .text("reply", json!({"message": "smaller", "model": "fake-small"}))
        .await;
    assert!(text.contains("model=fake-small"), "{text}");
    let status = client.text("status", json!({})).await;
    assert!(status.contains("model: fake-small"), "{status}");
    assert!(status.contains("models offered: fake-large, fake-small"), "{status}");
    let json_status = env.workspace_status().await;
    assert_eq!(json_status.model.as_deref(), Some("fake-small"));
    assert_eq!(json_status.available_models, ["fake-large", "fake-small"]);
    client.text("reset", json!({})).await;
    let text = client.text("consult", consult("fresh")).await;
    assert!(text.contains("model=fake-large\n"), "reset drops the choice: {text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_or_effort_is_an_mcp_error_listing_the_valid_ones() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let error = client
        .call("consult", json!({"question": "q", "model": "gpt-9"}))
        .await
        .expect_err("unknown model");
    let message = error.to_string();
    assert!(
        message.contains(r#"model: expected one of fake-large, fake-small (what Codex offers), got "gpt-9""#),
        "{message}"
    );
    let error = client
        .call("consult", json!({"question": "q", "effort": "extreme"}))
        .await
        .expect_err("unknown effort");
    let message = error.to_string();
    assert!(
        message.contains(r#"effort: expected one of low, high (what Codex offers for `fake-large`), got "extreme""#),
        "{message}"
    );
    // Nothing was sent to Codex, and the session works on.
    let text = client.text("consult", consult("fine")).await;
    assert!(text.contains("prompts_seen=1"), "{text}");
    client.close().await;
}

/// A refused call in the queue does not stall the calls queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_in_the_queue_lets_the_next_one_run() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let running = client.start_call("consult", consult("first fake:slow:800")).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let refused = client
        .start_call("consult", json!({"question": "q", "model": "gpt-9"}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let behind = client.start_call("consult", consult("behind it")).await;
    let within = std::time::Duration::from_secs(10);
    let first = tokio::time::timeout(within, running.await_response()).await;
    assert!(first.expect("the first call ends").is_ok());
    let refusal = tokio::time::timeout(within, refused.await_response())
        .await
        .expect("the refused call is answered");
    assert!(
        refusal
            .expect_err("an MCP error")
            .to_string()
            .contains(r#"got "gpt-9""#),
        "the refusal names the model"
    );
    let answer = tokio::time::timeout(within, behind.await_response())
        .await
        .expect("the call queued behind the refused one runs")
        .expect("answered");
    let text = codex_fusion_testkit::client::response_text(&answer);
    assert!(text.contains("prompts_seen=2"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_answer_is_cut_at_a_paragraph_and_saved_whole() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[("CODEX_FUSION_MAX_RESULT_CHARS", "5000")]).await;
    let text = client.text("consult", consult("fake:big:30000")).await;
    assert!(text.chars().count() <= 5000, "{} chars", text.chars().count());
    let (kept, rest) = text.split_once("\n\n[… answer cut at ").expect("a cut notice");
    // The saved file is checked below: the kept text is its prefix, cut
    // exactly at a paragraph break.
    assert!(
        rest.contains("VERDICT: CONSENSUS — fake agrees"),
        "the verdict is kept: {rest}"
    );
    let footer = text.lines().last().expect("footer");
    assert!(footer.contains("full answer: "), "{footer}");
    let path = footer.split("full answer: ").nth(1).expect("a path").trim();
    assert!(path.starts_with(env.state_dir.to_str().expect("utf8")), "{path}");
    let full = std::fs::read_to_string(path).expect("the full answer");
    assert!(full.chars().count() > 30_000);
    assert!(
        full.starts_with(kept) && full[kept.len()..].starts_with("\n\n"),
        "cut exactly at a paragraph break"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_quoting_a_huge_command_fits_the_budget_and_still_says_how_to_resume() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[("CODEX_FUSION_MAX_RESULT_CHARS", "3000")]).await;
    let target = "x".repeat(20_000);
    let text = client
        .text("consult", consult(&format!("fake:permission:execute:{target}")))
        .await;
    assert!(text.chars().count() <= 3000, "{} chars", text.chars().count());
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    // The command is never shown cut: it is left out, and saved whole.
    assert!(!text.contains("xxxxxxxxxx"), "{text}");
    assert!(text.contains("too long to show whole"), "{text}");
    assert!(text.contains("/pauses/"), "names the file: {text}");
    assert!(text.ends_with("The turn waits for your decision."), "{text}");
    // The pause is real and resumable.
    let text = client.text("permit", json!({"decision": "deny"})).await;
    assert!(text.contains("fake answer"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_result_budget_is_refused_by_name() {
    let env = TestEnv::new();
    let mut shim = tokio::process::Command::new(codex_fusion_testkit::binary("codex-fusion-mcp"));
    env.apply(&mut shim);
    let output = shim
        .env("CODEX_FUSION_MAX_RESULT_CHARS", "tiny")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("the shim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CODEX_FUSION_MAX_RESULT_CHARS: expected a number of characters"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_in_every_footer_and_totalled_in_status() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let first = client.text("consult", consult("one")).await;
    assert!(
        first
            .lines()
            .last()
            .expect("footer")
            .contains("100 in · 20 out · 5 reasoning tokens"),
        "{first}"
    );
    let second = client.text("reply", json!({"message": "two"})).await;
    assert!(
        second.lines().last().expect("footer").contains("200 in · 20 out"),
        "{second}"
    );
    let status = env.workspace_status().await;
    assert_eq!(status.turns, 2);
    assert_eq!(status.usage.input_tokens, 300);
    assert_eq!(status.usage.output_tokens, 40);
    assert_eq!(status.usage.reasoning_tokens, 10);
    assert_eq!(
        status.usage.context_size,
        Some(200_000),
        "context window from usage_update"
    );
    let text = client.text("status", json!({})).await;
    assert!(
        text.contains("tokens this session: 300 in · 40 out · 10 reasoning · context "),
        "{text}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_rate_limit_and_auth_failures_read_as_what_to_do() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let cases = [
        (
            "fake:error:quota",
            "Codex refused for quota",
            "switch to a cheaper model",
        ),
        ("fake:error:ratelimit", "Codex is rate limited", "wait a minute"),
        ("fake:error:auth", "Codex is not signed in", "codex login"),
    ];
    for (marker, cause, remedy) in cases {
        let result = client.call("consult", consult(marker)).await.expect("answered");
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{text}");
        assert!(text.contains(cause), "{marker}: {text}");
        assert!(text.contains(remedy), "{marker}: {text}");
        assert!(!text.contains("\"jsonrpc\""), "no raw JSON-RPC: {text}");
    }
    // An authentication failure restarts the agent for the next call.
    let text = client.text("consult", consult("after the failures")).await;
    assert!(text.contains("fake answer"), "{text}");
    client.close().await;
}
