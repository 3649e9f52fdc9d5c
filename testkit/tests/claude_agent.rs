//! Issue 15 with the real `claude-agent-acp` (pinned, installed by `.ci/run`)
//! as the council's second agent, beside the fake agent as Codex, against
//! `anthropic-mock`: offline with `ANTHROPIC_BASE_URL` and a dummy
//! `ANTHROPIC_API_KEY`. Run as root, claude-agent-acp needs `IS_SANDBOX=1`
//! in its command or `session/new` fails. What "Claude" does comes from
//! `claude:call:` / `claude:answer:` lines of the question.
//!
//! Skipped (with a message saying how to install it) when
//! `$CODEX_FUSION_TEST_CLAUDE_AGENT_ACP` is not set.

use std::path::PathBuf;

use codex_fusion_testkit::claude::AnthropicMock;
use codex_fusion_testkit::council::{LIMIT, pauses_on_its_command, permit_runs_it};
use codex_fusion_testkit::{Client, TestEnv};
use serde_json::{Value, json};

const VERSION: &str = "0.101.0";
const ENV: &str = "CODEX_FUSION_TEST_CLAUDE_AGENT_ACP";

fn claude_agent_acp() -> Option<PathBuf> {
    codex_fusion_testkit::real::npm_agent(
        ENV,
        "@agentclientprotocol/claude-agent-acp",
        VERSION,
        "claude-agent-acp",
    )
}

/// A world offering `codex` (the fake) and `claude` (the real one, pointed
/// at the mock, its config in the test's own directory).
fn council_env(acp: &std::path::Path, anthropic: &AnthropicMock) -> TestEnv {
    let mut env = TestEnv::new();
    let sandbox = if nix::unistd::geteuid().is_root() {
        "IS_SANDBOX=1 "
    } else {
        ""
    };
    let config = env.dir("claude-config");
    env.set("CODEX_FUSION_AGENTS", "codex,claude")
        .set("CODEX_FUSION_AGENT_CLAUDE", &format!("{sandbox}{}", acp.display()))
        .set("ANTHROPIC_BASE_URL", &anthropic.base_url())
        .set("ANTHROPIC_API_KEY", "sk-ant-codex-fusion-council-test")
        .set("OPENAI_API_KEY", "sk-openai-for-codex-only")
        // Claude's commands would see its key: they ask even so.
        .set("CODEX_FUSION_ALLOW_COMMANDS", "1")
        .set("CLAUDE_CONFIG_DIR", config.to_str().expect("utf8"));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_reviews_beside_codex_asks_before_acting_and_keeps_its_session() {
    let Some(acp) = claude_agent_acp() else { return };
    let anthropic = AnthropicMock::start().await;
    let env = council_env(&acp, &anthropic);
    let client = Client::start(&env, &[]).await;
    let question = "Is the change safe?\n\
        claude:call:Bash {\"command\": \"touch made-by-claude.txt\", \"description\": \"make a file\"}\n\
        claude:answer:It is safe.\\nVERDICT: CONSENSUS — safe";
    let text = pauses_on_its_command(&client, &env, "claude", question, "made-by-claude.txt").await;
    assert!(text.contains("command: touch made-by-claude.txt"), "{text}");
    assert!(text.contains("which would see this agent's own credentials"), "{text}");
    assert!(text.contains("1 CONSENSUS · 1 PAUSED"), "{text}");
    let claude = env.agent_status("claude").await;
    let session = claude["session_id"].as_str().expect("a session").to_owned();
    // Each agent's process has its own credentials and not the other's.
    let environ = |status: &Value| {
        let pid = status["agent_pid"].as_u64().expect("a pid");
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).expect("environ")).into_owned()
    };
    let claude_env = environ(&claude);
    assert!(claude_env.contains("ANTHROPIC_API_KEY=sk-ant-"), "Claude has its key");
    assert!(
        !claude_env.contains("sk-openai-for-codex-only"),
        "Claude never gets Codex's key"
    );
    let codex_env = environ(&env.agent_status("codex").await);
    assert!(
        codex_env.contains("OPENAI_API_KEY=sk-openai-for-codex-only"),
        "Codex has its key"
    );
    assert!(!codex_env.contains("sk-ant-"), "Codex never gets Claude's key");

    let answer = permit_runs_it(&client, &env, "made-by-claude.txt").await;
    assert!(answer.contains("VERDICT: CONSENSUS — safe"), "{answer}");
    client.close().await;

    // A daemon killed outright: Claude's session comes back with session/load.
    env.kill_daemon().await;
    let client = Client::start(&env, &[]).await;
    let (failed, again) = client
        .call_within(
            LIMIT,
            "consult",
            json!({"question": "And now?\nclaude:answer:Still safe.\\nVERDICT: CONSENSUS — yes", "agents": "claude"}),
        )
        .await;
    assert!(!failed, "{again}");
    assert!(again.contains("Still safe."), "{again}");
    let claude = env.agent_status("claude").await;
    assert_eq!(claude["session_id"], session.as_str(), "{claude}");
    assert_eq!(claude["session_origin"], "loaded", "{claude}");
    assert_eq!(
        claude["mode"], "default",
        "the mode is set again after a load: {claude}"
    );
    client.close().await;
}
