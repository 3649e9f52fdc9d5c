//! What the user is told when the agent cannot be used: not installed,
//! exits at start, speaks another protocol version, never initializes.
//! Each error is one clear tool result, and the daemon keeps serving.

use codex_fusion_testkit::client::result_text;
use codex_fusion_testkit::{Client, TestEnv};
use serde_json::json;

async fn consult_error(env: &TestEnv, command: &str) -> String {
    let client = Client::start(env, &[("CODEX_FUSION_ACP_COMMAND", command)]).await;
    let result = client
        .call("consult", json!({"question": "hello?"}))
        .await
        .expect("answered");
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    client.close().await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_acp_not_installed_names_the_package_and_the_install_command() {
    let env = TestEnv::new();
    let text = consult_error(&env, "/nonexistent/bin/codex-acp").await;
    assert!(text.contains("codex-acp is not installed"), "{text}");
    assert!(text.contains("npm install -g @agentclientprotocol/codex-acp"), "{text}");
    assert!(text.contains("CODEX_FUSION_ACP_COMMAND"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_acp_exiting_at_start_shows_its_stderr() {
    let env = TestEnv::new();
    let text = consult_error(&env, "sh -c 'echo cannot find node modules >&2; exit 7'").await;
    assert!(text.contains("exited while starting"), "{text}");
    assert!(text.contains("exit status: 7"), "{text}");
    assert!(text.contains("cannot find node modules"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_version_mismatch_says_which_side_to_change() {
    let env = TestEnv::new();
    let agent = env.root().join("old-agent.py");
    std::fs::write(
        &agent,
        r#"import sys, json
for line in sys.stdin:
    message = json.loads(line)
    if message.get("method") == "initialize":
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"],
            "result": {"protocolVersion": 7, "agentCapabilities": {}, "authMethods": []}}), flush=True)
"#,
    )
    .expect("write agent");
    let text = consult_error(&env, &format!("python3 {}", agent.display())).await;
    assert!(text.contains("different ACP protocol versions"), "{text}");
    assert!(text.contains("version 7"), "{text}");
    assert!(text.contains("npm install -g @agentclientprotocol/codex-acp"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_never_initializes_times_out_and_the_next_call_retries() {
    let env = TestEnv::new();
    let hanging = env.fake_agent_command("--hang-initialize");
    let client = Client::start(
        &env,
        &[
            ("CODEX_FUSION_ACP_COMMAND", &hanging),
            ("CODEX_FUSION_STARTUP_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    for _ in 0..2 {
        let result = client
            .call("consult", json!({"question": "hello?"}))
            .await
            .expect("answered");
        let text = result_text(&result);
        assert_eq!(result.is_error, Some(true), "{text}");
        assert!(text.contains("did not finish starting within 1 s"), "{text}");
    }
    client.close().await;
    // A working agent on the same daemon answers.
    let client = Client::start(&env, &[]).await;
    let text = client.text("consult", json!({"question": "and now?"})).await;
    assert!(text.contains("fake answer"), "{text}");
    client.close().await;
}
