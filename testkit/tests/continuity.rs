//! Codex's context follows Claude's session through MCP restarts, daemon
//! restarts and resume: SessionStart rules, persisted pairings, the shim's
//! reconnect, and a pause that outlives its connection.

use std::time::Duration;

use codex_fusion_protocol::control::SessionSource;
use codex_fusion_testkit::client::{consult, prompts_seen};
use codex_fusion_testkit::{Client, RawClient, TestEnv};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_after_the_daemon_is_killed_reaches_a_codex_that_remembers() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    assert_eq!(prompts_seen(&client.text("consult", consult("first")).await), 1);
    assert_eq!(
        prompts_seen(&client.text("reply", json!({"message": "second"})).await),
        2
    );
    let old = env.daemon_pid().expect("daemon");
    env.kill_daemon().await;
    // The same MCP session: the shim reconnects (starting a new daemon) and
    // the new daemon restores the Codex session from its state file.
    let result = client
        .call("reply", json!({"message": "third"}))
        .await
        .expect("no protocol error");
    let text = codex_fusion_testkit::client::result_text(&result);
    assert_ne!(result.is_error, Some(true), "{text}");
    assert_eq!(prompts_seen(&text), 3, "{text}");
    assert_ne!(env.daemon_pid(), Some(old), "a new daemon answered");
    let status = env.workspace_status().await;
    assert_eq!(status.session_origin.as_deref(), Some("loaded"));
    client.close().await;
}

/// After a daemon is killed, its codex may hold the session for a moment
/// ("in use by another Codex client", seen once in a full run with the real
/// codex-acp): the new daemon's load waits for it instead of starting a
/// fresh session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_still_held_by_the_killed_daemons_codex_is_loaded_once_free() {
    let mut env = TestEnv::new();
    let command = env.fake_agent_command("--busy-loads 3");
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let client = Client::start(&env, &[]).await;
    assert_eq!(prompts_seen(&client.text("consult", consult("first")).await), 1);
    env.kill_daemon().await;
    let text = client.text("reply", json!({"message": "second"})).await;
    assert_eq!(prompts_seen(&text), 2, "the context was kept: {text}");
    assert!(!text.contains("new Codex session"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shim_answers_in_flight_requests_and_replays_initialize_after_a_restart() {
    let env = TestEnv::new();
    let mut raw = RawClient::initialized(&env).await;
    raw.send(json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{
        "name":"consult","arguments":{"question":"fake:slow:5000"}}}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.kill_daemon().await;
    let response = raw.response(5, Duration::from_secs(10)).await;
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("restarted"), "{response}");
    // The replayed initialize's response is not forwarded: the next line
    // for id 0 would be a second initialize result.
    raw.send(json!({"jsonrpc":"2.0","id":6,"method":"tools/list","params":{}}))
        .await;
    let response = raw.response(6, Duration::from_secs(20)).await;
    assert!(
        response["result"]["tools"]
            .as_array()
            .is_some_and(|tools| tools.len() == 9),
        "{response}"
    );
    let duplicates: Vec<&Value> = raw
        .received
        .iter()
        .map(|(_, value)| value)
        .filter(|value| value["id"] == 0)
        .collect();
    assert_eq!(duplicates.len(), 1, "one initialize response only: {duplicates:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_pairs_the_right_one_of_two_claude_sessions() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    env.session_start(SessionSource::Startup, "claude-a").await;
    assert_eq!(prompts_seen(&client.text("consult", consult("a1")).await), 1);
    assert_eq!(prompts_seen(&client.text("reply", json!({"message": "a2"})).await), 2);
    let session_a = env.workspace_status().await.session_id.expect("a session");
    env.session_start(SessionSource::Startup, "claude-b").await;
    assert_eq!(
        prompts_seen(&client.text("consult", consult("b1")).await),
        1,
        "startup gives a fresh session"
    );
    let session_b = env.workspace_status().await.session_id.expect("b session");
    assert_ne!(session_a, session_b);
    let action = env.session_start(SessionSource::Resume, "claude-a").await;
    assert!(action.contains(&session_a), "{action}");
    assert_eq!(
        prompts_seen(&client.text("reply", json!({"message": "a3"})).await),
        3,
        "back in A"
    );
    let status = env.workspace_status().await;
    assert_eq!(status.session_id.as_deref(), Some(session_a.as_str()));
    assert_eq!(status.claude_session_id.as_deref(), Some("claude-a"));
    env.session_start(SessionSource::Resume, "claude-b").await;
    assert_eq!(
        prompts_seen(&client.text("reply", json!({"message": "b2"})).await),
        2,
        "back in B"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_starts_fresh_and_compact_keeps_the_session() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    env.session_start(SessionSource::Startup, "claude-1").await;
    client.text("consult", consult("one")).await;
    assert_eq!(prompts_seen(&client.text("reply", json!({"message": "two"})).await), 2);
    let action = env.session_start(SessionSource::Compact, "claude-1").await;
    assert!(action.contains("kept"), "{action}");
    assert_eq!(
        prompts_seen(&client.text("reply", json!({"message": "three"})).await),
        3
    );
    let action = env.session_start(SessionSource::Clear, "claude-2").await;
    assert!(action.contains("fresh"), "{action}");
    assert_eq!(prompts_seen(&client.text("consult", consult("after clear")).await), 1);
    let status = env.workspace_status().await;
    assert_eq!(status.claude_session_id.as_deref(), Some("claude-2"));
    assert_eq!(status.session_origin.as_deref(), Some("fresh"));
    assert_eq!(status.turns, 1);
    assert!(status.last_used_secs_ago.is_some());
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_warms_the_agent_of_a_workspace_that_used_codex() {
    let env = TestEnv::new();
    // The workspace has used Codex before this daemon started.
    let earlier = Client::start(&env, &[]).await;
    earlier.text("consult", consult("earlier")).await;
    earlier.close().await;
    env.kill_daemon().await;
    let _daemon = env.start_daemon().await;
    env.session_start(SessionSource::Startup, "claude-warm").await;
    codex_fusion_testkit::wait_until("the warmed session is ready", Duration::from_secs(10), || {
        std::fs::read_to_string(env.state_dir.join("sessions.json")).is_ok_and(|text| {
            let value: Value = serde_json::from_str(&text).unwrap_or_default();
            value["workspaces"]
                .as_object()
                .and_then(|workspaces| workspaces.values().next())
                .is_some_and(|record| {
                    record["claude_session_id"] == "claude-warm" && record["codex_session_id"].is_string()
                })
        })
    })
    .await;
    let status = env.workspace_status().await;
    assert_eq!(status.agent_state, "ready", "{status:?}");
    let warmed = status.session_id.clone().expect("a session");
    let client = Client::start(&env, &[]).await;
    let text = client.text("consult", consult("first")).await;
    assert_eq!(prompts_seen(&text), 1, "a fresh session for the new Claude session");
    assert_eq!(
        env.workspace_status().await.session_id,
        Some(warmed),
        "the warmed session answered"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_in_a_directory_that_never_used_codex_starts_no_agent() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon().await;
    env.session_start(SessionSource::Startup, "claude-elsewhere").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = env.workspace_status().await;
    assert_eq!(status.agent_pid, None, "{status:?}");
    assert_eq!(status.claude_session_id.as_deref(), Some("claude-elsewhere"));
    assert!(
        codex_fusion_testkit::env::processes_matching(env.agent_state.to_str().expect("utf8")).is_empty(),
        "no codex-acp was spawned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_logged_and_treated_as_empty() {
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.state_dir).expect("state dir");
    std::fs::write(
        env.state_dir.join("sessions.json"),
        b"{\"version\": 1, \"workspaces\": [garbage",
    )
    .expect("write");
    let client = Client::start(&env, &[]).await;
    assert_eq!(prompts_seen(&client.text("consult", consult("hello")).await), 1);
    assert!(env.daemon_logs().contains("the session file is corrupt"), "logged");
    let saved = std::fs::read_to_string(env.state_dir.join("sessions.json")).expect("rewritten");
    assert!(
        serde_json::from_str::<Value>(&saved).is_ok(),
        "replaced by a valid file: {saved}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_survives_a_new_connection_and_permit_resumes_it() {
    let env = TestEnv::new();
    let first = Client::start(&env, &[]).await;
    let text = first
        .text("consult", consult("fake:permission:execute:later.txt"))
        .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    first.close().await;
    let second = Client::start(&env, &[]).await;
    let text = second.text("permit", json!({"decision": "allow"})).await;
    assert!(text.contains("ran touch later.txt"), "{text}");
    assert!(env.workspace.join("later.txt").exists());
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_is_announced_in_the_footer() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    client.text("consult", consult("remember")).await;
    env.kill_daemon().await;
    // The agent's own record of the session disappears (a deleted rollout).
    for entry in std::fs::read_dir(&env.agent_state).expect("agent state") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    let text = client.text("reply", json!({"message": "still there?"})).await;
    assert_eq!(prompts_seen(&text), 1, "{text}");
    let footer = text.lines().last().expect("footer");
    assert!(
        footer.contains("new Codex session: the previous one could not be restored"),
        "{footer}"
    );
    assert!(footer.contains("re-establish context"), "{footer}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_cannot_load_starts_fresh_and_says_so() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    client.text("consult", consult("remember")).await;
    client.close().await;
    env.kill_daemon().await;
    // The next daemon's agent does not advertise `loadSession`.
    let command = env.fake_agent_command("--no-load");
    let client = Client::start(&env, &[("CODEX_FUSION_ACP_COMMAND", &command)]).await;
    let status = env.workspace_status().await;
    assert_eq!(status.session_origin.as_deref(), Some("to restore"), "{status:?}");
    let text = client.text("reply", json!({"message": "still there?"})).await;
    assert_eq!(prompts_seen(&text), 1, "{text}");
    let footer = text.lines().last().expect("footer");
    assert!(
        footer.contains("new Codex session: codex-acp cannot restore sessions; re-establish context"),
        "{footer}"
    );
    assert_eq!(env.workspace_status().await.session_origin.as_deref(), Some("fresh"));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_replayed_by_a_load_never_reaches_the_client() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    client.text("consult", consult("zebra-one fake:reason")).await;
    client.text("reply", json!({"message": "zebra-two"})).await;
    env.kill_daemon().await;
    let handle = client
        .start_call(
            "reply",
            json!({"message": "after the restart fake:reason fake:slow:300"}),
        )
        .await;
    let token = codex_fusion_testkit::client::token_of(&handle);
    let response = handle.await_response().await.expect("answered");
    let text = codex_fusion_testkit::client::response_text(&response);
    assert_eq!(prompts_seen(&text), 3, "restored: {text}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = client.progress_for(&token);
    assert!(!events.is_empty(), "the turn itself streamed");
    // The fake replays both earlier prompts and answers as updates during
    // `session/load`; none of it may show up as this call's progress.
    let replayed: Vec<_> = events
        .iter()
        .filter(|event| {
            event.message.contains("zebra")
                || event.message.contains("prompts_seen=1")
                || event.message.contains("prompts_seen=2")
        })
        .collect();
    assert!(replayed.is_empty(), "history leaked into progress: {replayed:?}");
    assert!(!text.contains("zebra"), "history leaked into the answer: {text}");
    client.close().await;
}

/// The idle clock runs from the end of the last turn: a turn longer than the
/// idle limit does not get its agent stopped the moment it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_longer_than_the_idle_limit_keeps_its_agent() {
    let mut env = TestEnv::new();
    env.set("CODEX_FUSION_AGENT_IDLE_SECS", "1");
    let _daemon = env.start_daemon().await;
    let client = Client::start(&env, &[]).await;
    let text = client.text("consult", consult("long fake:slow:2500")).await;
    assert_eq!(prompts_seen(&text), 1, "{text}");
    let pid = env
        .workspace_status()
        .await
        .agent_pid
        .expect("the agent still runs right after its turn");
    let text = client.text("reply", json!({"message": "right after"})).await;
    assert_eq!(prompts_seen(&text), 2, "{text}");
    assert_eq!(
        env.workspace_status().await.agent_pid,
        Some(pid),
        "the same agent answered: it was not stopped as idle"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_agent_is_stopped_and_its_session_restored_on_the_next_call() {
    let mut env = TestEnv::new();
    env.set("CODEX_FUSION_AGENT_IDLE_SECS", "1");
    let _daemon = env.start_daemon().await;
    let client = Client::start(&env, &[]).await;
    assert_eq!(prompts_seen(&client.text("consult", consult("one")).await), 1);
    let pid = env.workspace_status().await.agent_pid.expect("an agent runs");
    codex_fusion_testkit::wait_until("the idle agent is stopped", Duration::from_secs(10), || {
        !codex_fusion_testkit::env::is_alive(pid as i32)
    })
    .await;
    // The workspace learns of the exit once the daemon has swept the
    // agent's tree (a few ms after the process is gone).
    let mut status = env.workspace_status().await;
    for _ in 0..100 {
        if status.agent_pid.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = env.workspace_status().await;
    }
    assert_eq!(status.agent_pid, None, "{status:?}");
    assert!(status.session_id.is_some(), "the session is remembered: {status:?}");
    assert_eq!(status.session_origin.as_deref(), Some("to restore"), "{status:?}");
    let text = client.text("reply", json!({"message": "two"})).await;
    assert_eq!(prompts_seen(&text), 2, "restored by load: {text}");
    client.close().await;
}
