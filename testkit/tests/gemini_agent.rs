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

use codex_fusion_testkit::claude::AnthropicMock;
use codex_fusion_testkit::council::{pauses_on_its_command, permit_runs_it};
use codex_fusion_testkit::{Client, TestEnv};

const VERSION: &str = "0.61.0";
const ENV: &str = "CODEX_FUSION_TEST_GEMINI";

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
    pauses_on_its_command(&client, &env, "gemini", question, "made-by-gemini.txt").await;
    let answer = permit_runs_it(&client, &env, "made-by-gemini.txt").await;
    assert!(answer.contains("VERDICT: OPEN — one doubt"), "{answer}");
    client.close().await;
}
