//! The agent pool, end to end with the fake agent: workspaces whose agent
//! command and credentials match share one process, each on its own
//! session; a different key gets its own process; past the session limit a
//! second process starts; a wedged turn or a crash costs no other workspace
//! its context; idle processes stop and their sessions come back by load;
//! a failed workspace actor is replaced.

use std::path::Path;
use std::time::{Duration, Instant};

use codex_fusion_protocol::control::{ControlRequest, ControlResponse, DaemonStatus, WorkspaceStatus};
use codex_fusion_testkit::client::{consult, prompts_seen, response_text, token_of};
use codex_fusion_testkit::env::processes_matching;
use codex_fusion_testkit::{Client, TestEnv, wait_until};
use serde_json::json;

/// Live fake agents of this env (their command line names its state dir).
fn agent_pids(env: &TestEnv) -> Vec<i32> {
    let needle = env.agent_state.display().to_string();
    let mut pids: Vec<i32> = processes_matching(&needle)
        .into_iter()
        .filter(|(_, command)| command.contains("fake-codex-acp"))
        .map(|(pid, _)| pid)
        .collect();
    pids.sort();
    pids
}

async fn client_in(env: &TestEnv, workspace: &Path, extra: &[(&str, &str)]) -> Client {
    let workspace = workspace.display().to_string();
    let mut all = vec![("CODEX_FUSION_WORKSPACE", workspace.as_str())];
    all.extend_from_slice(extra);
    Client::start(env, &all).await
}

async fn daemon_status(env: &TestEnv) -> DaemonStatus {
    match env.control(ControlRequest::Status { workspace: None }).await {
        ControlResponse::Status(status) => status,
        other => panic!("status answered {other:?}"),
    }
}

fn workspace_of<'a>(status: &'a DaemonStatus, workspace: &Path) -> &'a WorkspaceStatus {
    status
        .workspaces
        .iter()
        .find(|status| status.workspace == workspace)
        .unwrap_or_else(|| panic!("{} is in the status: {status:?}", workspace.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_with_one_key_share_a_process_and_keep_their_own_sessions() {
    let env = TestEnv::new();
    let (a, b, c) = (env.dir("a"), env.dir("b"), env.dir("c"));
    let first = client_in(&env, &a, &[]).await;
    assert_eq!(prompts_seen(&first.text("consult", consult("one")).await), 1);
    let process = agent_pids(&env);
    assert_eq!(process.len(), 1, "{process:?}");
    let second = client_in(&env, &b, &[]).await;
    assert_eq!(
        prompts_seen(&second.text("consult", consult("two")).await),
        1,
        "its own session"
    );
    assert_eq!(agent_pids(&env), process, "the second workspace spawned nothing");
    assert_eq!(prompts_seen(&first.text("reply", json!({"message": "again"})).await), 2);
    // Other credentials: another process, never the shared one.
    let home = env.dir("other-codex-home");
    let home = home.display().to_string();
    let third = client_in(&env, &c, &[("CODEX_HOME", &home)]).await;
    assert_eq!(prompts_seen(&third.text("consult", consult("three")).await), 1);
    assert_eq!(agent_pids(&env).len(), 2, "a different key gets its own process");

    let status = daemon_status(&env).await;
    assert_eq!(status.agents.len(), 2, "{:?}", status.agents);
    let shared = status
        .agents
        .iter()
        .find(|agent| agent.workspaces.len() == 2)
        .expect("one process carries two workspaces");
    assert_eq!(shared.pid, Some(process[0] as u32));
    assert!(shared.rss_kb.is_some_and(|kb| kb > 0), "{shared:?}");
    assert_eq!(workspace_of(&status, &a).shared_with, vec![b.clone()]);
    assert_eq!(workspace_of(&status, &b).shared_with, vec![a.clone()]);
    assert!(workspace_of(&status, &c).shared_with.is_empty());
    let other = status
        .agents
        .iter()
        .find(|agent| agent.workspaces == vec![c.clone()])
        .expect("the CODEX_HOME workspace has its own process");
    assert!(
        other.agent.contains("CODEX_HOME"),
        "names the forwarded variable: {}",
        other.agent
    );
    assert!(!other.agent.contains(&home), "but never its value: {}", other.agent);
    // The shell sees the same.
    let output = env.cli(&["status"], None).await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(&format!("shared with    {}", b.display())), "{text}");
    assert!(text.contains(&format!("agent process {}", process[0])), "{text}");
    for client in [first, second, third] {
        client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_session_limit_a_second_process_starts() {
    let mut env = TestEnv::new();
    env.set("CODEX_FUSION_AGENT_MAX_SESSIONS", "2");
    let mut clients = Vec::new();
    for name in ["a", "b", "c"] {
        let client = client_in(&env, &env.dir(name), &[]).await;
        assert_eq!(prompts_seen(&client.text("consult", consult(name)).await), 1);
        clients.push(client);
    }
    assert_eq!(agent_pids(&env).len(), 2);
    let status = daemon_status(&env).await;
    let mut sizes: Vec<usize> = status.agents.iter().map(|agent| agent.workspaces.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [1, 2], "{:?}", status.agents);
    for client in clients {
        client.close().await;
    }
}

/// Two workspaces start at the same moment with nothing running: one
/// process starts, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_consults_at_once_share_one_start() {
    let env = TestEnv::new();
    let first = client_in(&env, &env.dir("a"), &[]).await;
    let second = client_in(&env, &env.dir("b"), &[]).await;
    let (one, two) = tokio::join!(
        first.text("consult", consult("one")),
        second.text("consult", consult("two"))
    );
    assert_eq!((prompts_seen(&one), prompts_seen(&two)), (1, 1), "{one}\n{two}");
    assert_eq!(agent_pids(&env).len(), 1);
    first.close().await;
    second.close().await;
}

/// A turn that ignores its cancel has its session closed: the shared
/// process and the other workspace's running turn are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_ignores_cancel_is_closed_without_touching_the_shared_process() {
    let env = TestEnv::new();
    let (a, b) = (env.dir("a"), env.dir("b"));
    let stubborn = client_in(&env, &a, &[]).await;
    let other = client_in(&env, &b, &[]).await;
    assert_eq!(prompts_seen(&other.text("consult", consult("warm")).await), 1);
    let process = agent_pids(&env);
    let handle = stubborn.start_call("consult", consult("fake:ignore-cancel")).await;
    let token = token_of(&handle);
    wait_until("the stubborn turn streams", Duration::from_secs(10), || {
        !stubborn.progress_for(&token).is_empty()
    })
    .await;
    let running = other
        .start_call("reply", json!({"message": "slowly fake:slow:4000"}))
        .await;
    handle.cancel(Some("test".into())).await.expect("cancel sent");
    let cancelled = Instant::now();
    let text = stubborn.text("consult", consult("after the cancel")).await;
    assert!(
        cancelled.elapsed() < Duration::from_secs(3),
        "{:?}",
        cancelled.elapsed()
    );
    assert_eq!(prompts_seen(&text), 2, "the closed session was loaded again: {text}");
    let answer = response_text(&running.await_response().await.expect("answered"));
    assert_eq!(prompts_seen(&answer), 2, "the other turn finished normally: {answer}");
    assert_eq!(agent_pids(&env), process, "no process was killed or started");
    stubborn.close().await;
    other.close().await;
}

/// A process that answers neither cancel nor close is killed: the other
/// workspace's running turn is told its context was kept, and its next call
/// restores the session (mode set and verified again) on a new process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_process_is_killed_and_no_workspace_loses_its_context() {
    let env = TestEnv::new();
    let (a, b) = (env.dir("a"), env.dir("b"));
    let wedged = client_in(&env, &a, &[]).await;
    let other = client_in(&env, &b, &[]).await;
    assert_eq!(prompts_seen(&other.text("consult", consult("warm")).await), 1);
    let process = agent_pids(&env);
    let handle = wedged
        .start_call("consult", consult("fake:ignore-cancel fake:ignore-close"))
        .await;
    let token = token_of(&handle);
    wait_until("the wedged turn streams", Duration::from_secs(10), || {
        !wedged.progress_for(&token).is_empty()
    })
    .await;
    let running = other
        .start_call("reply", json!({"message": "slowly fake:slow:20000"}))
        .await;
    handle.cancel(Some("test".into())).await.expect("cancel sent");
    let answer = tokio::time::timeout(Duration::from_secs(10), running.await_response())
        .await
        .expect("the other turn ends within 10 s")
        .expect("answered");
    let answer = response_text(&answer);
    assert!(answer.contains("Codex's context was kept"), "{answer}");
    assert!(answer.contains("session/load"), "{answer}");
    wait_until("the wedged process is gone", Duration::from_secs(5), || {
        agent_pids(&env).iter().all(|pid| !process.contains(pid))
    })
    .await;
    let text = other.text("reply", json!({"message": "still there?"})).await;
    assert_eq!(prompts_seen(&text), 3, "restored by load: {text}");
    let status = daemon_status(&env).await;
    let restored = workspace_of(&status, &b);
    assert_eq!(restored.session_origin.as_deref(), Some("loaded"), "{restored:?}");
    assert!(restored.mode.is_some(), "the mode was set again: {restored:?}");
    let text = wedged.text("reply", json!({"message": "and you?"})).await;
    assert_eq!(
        prompts_seen(&text),
        2,
        "the wedged workspace kept its context too: {text}"
    );
    wedged.close().await;
    other.close().await;
}

/// One workspace's turn crashes the shared process: the other workspace's
/// next call restores its session by load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_costs_no_workspace_its_context() {
    let env = TestEnv::new();
    let (a, b) = (env.dir("a"), env.dir("b"));
    let crasher = client_in(&env, &a, &[]).await;
    let other = client_in(&env, &b, &[]).await;
    assert_eq!(prompts_seen(&other.text("consult", consult("warm")).await), 1);
    let (failed, text) = crasher
        .call_within(Duration::from_secs(10), "consult", consult("fake:crash"))
        .await;
    assert!(failed, "{text}");
    assert!(text.contains("Codex's context was kept"), "{text}");
    let text = other.text("reply", json!({"message": "still there?"})).await;
    assert_eq!(prompts_seen(&text), 2, "restored by load: {text}");
    let text = crasher.text("reply", json!({"message": "back?"})).await;
    assert_eq!(prompts_seen(&text), 2, "{text}");
    crasher.close().await;
    other.close().await;
}

/// A process none of whose sessions was used for the idle limit stops;
/// both workspaces' sessions come back by load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_process_stops_and_its_sessions_come_back() {
    let mut env = TestEnv::new();
    env.set("CODEX_FUSION_AGENT_IDLE_SECS", "1");
    let (a, b) = (env.dir("a"), env.dir("b"));
    let first = client_in(&env, &a, &[]).await;
    let second = client_in(&env, &b, &[]).await;
    first.text("consult", consult("one")).await;
    second.text("consult", consult("two")).await;
    wait_until("the idle process stops", Duration::from_secs(10), || {
        agent_pids(&env).is_empty()
    })
    .await;
    // The pool lets the process go once what it left is swept too (a few
    // ms after the process itself is gone).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = daemon_status(&env).await;
        if status.agents.is_empty() || tokio::time::Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(status.agents.is_empty(), "{:?}", status.agents);
    let idle = workspace_of(&status, &a);
    assert_eq!(idle.agent_state, "stopped", "an idle stop is no failure: {idle:?}");
    assert_eq!(idle.session_origin.as_deref(), Some("to restore"), "{idle:?}");
    assert_eq!(prompts_seen(&first.text("reply", json!({"message": "again"})).await), 2);
    assert_eq!(
        prompts_seen(&second.text("reply", json!({"message": "again"})).await),
        2
    );
    assert_eq!(agent_pids(&env).len(), 1, "one process again, shared");
    first.close().await;
    second.close().await;
}

/// An actor that panics is replaced: the call it held says so, and the
/// next call in that workspace works, with its Codex session restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_workspace_actor_is_replaced() {
    let mut env = TestEnv::new();
    env.set("CODEX_FUSION_TEST_PANIC_MARKER", "panic-marker-7");
    let client = Client::start(&env, &[]).await;
    assert_eq!(prompts_seen(&client.text("consult", consult("one")).await), 1);
    let error = client
        .call("consult", consult("panic-marker-7"))
        .await
        .expect_err("the call fails");
    let error = error.to_string();
    assert!(error.contains("failed") && error.contains("replaced"), "{error}");
    let text = client.text("reply", json!({"message": "back?"})).await;
    assert_eq!(prompts_seen(&text), 2, "the Codex session was restored: {text}");
    let status = client.text("status", json!({})).await;
    assert!(status.contains("codex-acp: ready"), "{status}");
    client.close().await;
}

/// Claude opens a directory that never used Codex while an agent with its
/// key runs: the SessionStart hook gets it a session on that agent (no
/// spawn), and its first call is answered on that session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_start_warms_a_new_workspace_on_the_running_agent_and_spawns_nothing() {
    use codex_fusion_protocol::control::SessionSource;
    let env = TestEnv::new();
    let (a, b) = (env.dir("a"), env.dir("b"));
    let first = client_in(&env, &a, &[]).await;
    assert_eq!(prompts_seen(&first.text("consult", consult("one")).await), 1);
    let process = agent_pids(&env);
    let answer = env
        .control(ControlRequest::SessionStart {
            workspace: b.clone(),
            claude_session_id: Some("claude-b".into()),
            source: SessionSource::Startup,
        })
        .await;
    assert!(matches!(answer, ControlResponse::SessionStarted { .. }), "{answer:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let warmed = loop {
        let status = daemon_status(&env).await;
        let b_status = workspace_of(&status, &b);
        if let (Some(session), "ready") = (&b_status.session_id, b_status.agent_state.as_str()) {
            assert_eq!(b_status.shared_with, vec![a.clone()], "{status:?}");
            break session.clone();
        }
        assert!(Instant::now() < deadline, "b was not warmed: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(agent_pids(&env), process, "warming spawned nothing");
    let second = client_in(&env, &b, &[]).await;
    assert_eq!(prompts_seen(&second.text("consult", consult("two")).await), 1);
    let status = daemon_status(&env).await;
    assert_eq!(
        workspace_of(&status, &b).session_id.as_ref(),
        Some(&warmed),
        "the warmed session answered"
    );
    assert_eq!(agent_pids(&env), process);
    first.close().await;
    second.close().await;
}
