//! Issue 15 with the real `gemini --acp` (Gemini CLI, pinned, installed by
//! `.ci/run`) as a council member beside the fake agent as Codex, offline
//! against the Gemini API side of `anthropic-mock`: Gemini CLI sends its
//! requests to `GOOGLE_GEMINI_BASE_URL` when it signs in with
//! `GEMINI_API_KEY`. What "Gemini" does comes from `gemini:call:` /
//! `gemini:answer:` lines of the question.
//!
//! Skipped (with a message saying how to install it) when
//! `$CODEX_FUSION_TEST_GEMINI` is not set.

use std::path::PathBuf;
use std::time::Duration;

use codex_fusion_testkit::claude::AnthropicMock;
use codex_fusion_testkit::client::result_text;
use codex_fusion_testkit::{Client, TestEnv};
use serde_json::json;

const VERSION: &str = "0.61.0";
const ENV: &str = "CODEX_FUSION_TEST_GEMINI";
/// A cold Gemini CLI start and session on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(120);

fn gemini() -> Option<PathBuf> {
    codex_fusion_testkit::real::npm_agent(ENV, "@google/gemini-cli", VERSION, "gemini")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_reviews_beside_codex_and_asks_before_running_a_command() {
    let Some(gemini) = gemini() else { return };
    let mock = AnthropicMock::start().await;
    let mut env = TestEnv::new();
    // Gemini CLI keeps its settings and history under the home.
    let home = env.dir("gemini-home");
    env.set("CODEX_FUSION_AGENTS", "codex,gemini")
        .set("CODEX_FUSION_AGENT_GEMINI", &format!("{} --acp", gemini.display()))
        .set("GOOGLE_GEMINI_BASE_URL", &mock.base_url())
        .set("GEMINI_API_KEY", "gemini-codex-fusion-test")
        .set("HOME", home.to_str().expect("utf8"));
    let client = Client::start(&env, &[]).await;
    let question = "Is the change safe?\n\
        gemini:call:run_shell_command {\"command\": \"touch made-by-gemini.txt\", \"description\": \"make a file\"}\n\
        gemini:answer:It is safe.\\nVERDICT: OPEN — one doubt";
    let result = tokio::time::timeout(
        LIMIT,
        client.call("consult", json!({"question": question, "agents": ["codex", "gemini"]})),
    )
    .await
    .expect("the council answers in time")
    .expect("answered");
    let text = result_text(&result);
    assert!(text.contains("fake answer: prompts_seen=1"), "codex answered: {text}");
    assert!(
        text.contains("🔐 Gemini paused: it wants to run a command."),
        "Gemini asked before running its command: {text}"
    );
    assert!(text.contains("touch made-by-gemini.txt"), "{text}");
    assert!(
        !env.workspace.join("made-by-gemini.txt").exists(),
        "nothing ran before the permit"
    );
    let status = env.agent_status("gemini").await;
    assert_eq!(status["mode"], "default", "{status}");

    let (failed, answer) = client.call_within(LIMIT, "permit", json!({"decision": "allow"})).await;
    assert!(!failed, "{answer}");
    assert!(answer.contains("VERDICT: OPEN — one doubt"), "{answer}");
    assert!(
        env.workspace.join("made-by-gemini.txt").exists(),
        "the permitted command ran"
    );
    client.close().await;
}
