//! The steps the real-agent council tests share: a council of the fake
//! agent as Codex and one real agent, whose scripted command pauses, then a
//! `permit allow` that runs it.

use std::time::Duration;

use serde_json::json;

use crate::client::result_text;
use crate::{Client, TestEnv};

/// A cold agent start and session on a busy 2-core machine.
pub const LIMIT: Duration = Duration::from_secs(120);

/// Consults `codex` and `agent` with `question`, whose script has `agent`
/// run a command that creates `file`; returns the result's text once it
/// holds Codex's answer and `agent`'s pause (`🔐 <Display> paused`), with
/// nothing run yet and `agent` in its asking mode (`default`).
pub async fn pauses_on_its_command(client: &Client, env: &TestEnv, agent: &str, question: &str, file: &str) -> String {
    let result = tokio::time::timeout(
        LIMIT,
        client.call("consult", json!({"question": question, "agents": ["codex", agent]})),
    )
    .await
    .expect("the council answers in time")
    .expect("answered");
    let text = result_text(&result);
    assert!(text.contains("fake answer: prompts_seen=1"), "codex answered: {text}");
    let paused = format!(
        "{}: it wants to run a command.",
        codex_fusion_protocol::agents::pause_prefix(agent)
    );
    assert!(
        text.contains(&paused),
        "{agent} asked before running its command: {text}"
    );
    assert!(text.contains(&format!("touch {file}")), "{text}");
    assert!(!env.workspace.join(file).exists(), "nothing ran before the permit");
    let status = env.agent_status(agent).await;
    assert_eq!(status["mode"], "default", "{status}");
    text
}

/// `permit allow` for the paused agent; its answer, once the command made
/// `file`.
pub async fn permit_runs_it(client: &Client, env: &TestEnv, file: &str) -> String {
    let (failed, answer) = client.call_within(LIMIT, "permit", json!({"decision": "allow"})).await;
    assert!(!failed, "{answer}");
    assert!(env.workspace.join(file).exists(), "the permitted command ran");
    answer
}
