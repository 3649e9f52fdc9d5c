//! The real codex-acp (and the real Codex it drives) behind the real daemon
//! and shim, talking to `model-mock` instead of OpenAI: no network, no
//! account. Proves authentication, the read-only/profile mode, permission
//! pauses, streaming, cancel and context against the agent users run.

use std::time::{Duration, Instant};

use codex_fusion_testkit::client::{response_text, token_of};
use codex_fusion_testkit::real::RealEnv;
use codex_fusion_testkit::{Client, wait_until};
use serde_json::{Value, json};

/// Long enough for a cold start (spawn, initialize, session) on a busy
/// 2-core machine; the mock itself answers at once.
const CALL_LIMIT: Duration = Duration::from_secs(60);

async fn call(client: &Client, tool: &str, arguments: Value) -> (bool, String) {
    client.call_within(CALL_LIMIT, tool, arguments).await
}

fn consult(question: &str) -> Value {
    json!({ "question": question })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_with_verdict_and_token_footer_in_a_confined_session() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Is a per-workspace daemon a good idea?")).await;
    assert!(!error, "{text}");
    assert!(text.contains("Mock answer"), "{text}");
    assert!(text.contains("VERDICT: CONSENSUS — mock agrees"), "{text}");
    let footer = text.lines().last().expect("footer");
    assert!(footer.starts_with("— codex-fusion · "), "{footer}");
    assert!(
        footer.contains(" in · ") && footer.contains(" out"),
        "token counts in the footer: {footer}"
    );
    assert!(footer.contains("CONSENSUS"), "{footer}");
    // The prompt reached the model with our frame, and the key authenticated.
    let turns = real.mock.turns().await;
    let last = turns.last().expect("a turn request");
    assert_eq!(last["model"], "gpt-5.5");
    assert!(
        last["last_user_text"]
            .as_str()
            .unwrap_or_default()
            .contains("## Question")
    );
    let (_, status) = call(&client, "status", json!({})).await;
    assert!(
        status.contains("codex mode: permission-profile:codex-fusion"),
        "{status}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_is_streamed_as_thought_progress() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let handle = client
        .start_call("consult", consult("Think it over.\nmock:reason"))
        .await;
    let token = token_of(&handle);
    let response = tokio::time::timeout(CALL_LIMIT, handle.await_response())
        .await
        .expect("answered in time")
        .expect("answered");
    assert!(response_text(&response).contains("Mock answer"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = client.progress_for(&token);
    assert!(
        events.iter().any(|event| event.message.starts_with("💭 ")),
        "no reasoning progress: {events:?}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_escalation_pauses_and_permit_allow_runs_it() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let created = real.env.workspace.join("created.txt");
    let (error, text) = call(
        &client,
        "consult",
        consult("Please create the file.\nmock:exec:touch created.txt"),
    )
    .await;
    assert!(!error, "{text}");
    assert!(
        text.starts_with("🔐 Codex paused: it wants to run a command."),
        "{text}"
    );
    assert!(text.contains("touch created.txt"), "{text}");
    assert!(!created.exists(), "nothing runs before permit");
    let (error, text) = call(&client, "permit", json!({"decision": "allow"})).await;
    assert!(!error, "{text}");
    assert!(text.contains("Ran `touch created.txt` (exit code 0)"), "{text}");
    assert!(created.exists(), "the permitted command ran");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_deny_does_not_run_it_and_codex_still_answers() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let (_, text) = call(
        &client,
        "consult",
        consult("Please create the file.\nmock:exec:touch denied.txt"),
    )
    .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    let (error, text) = call(&client, "permit", json!({"decision": "deny", "note": "not now"})).await;
    assert!(!error, "{text}");
    assert!(text.contains("Mock answer"), "Codex answered after the deny: {text}");
    assert!(!real.env.workspace.join("denied.txt").exists());
    // The follow-up told the model why.
    let turns = real.mock.turns().await;
    let told = turns.iter().any(|turn| {
        turn["last_user_text"]
            .as_str()
            .unwrap_or_default()
            .contains("Claude denied your request")
    });
    assert!(told, "the deny note reached the model");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_a_long_turn_frees_the_workspace() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let handle = client.start_call("consult", consult("Go slowly.\nmock:slow")).await;
    let token = token_of(&handle);
    wait_until("the slow turn streams", CALL_LIMIT, || {
        !client.progress_for(&token).is_empty()
    })
    .await;
    let cancelled = Instant::now();
    handle.cancel(Some("test".into())).await.expect("cancel sent");
    let (error, text) = call(&client, "consult", consult("Are you free again?")).await;
    assert!(!error, "{text}");
    assert!(text.contains("Mock answer"), "{text}");
    assert!(
        cancelled.elapsed() < Duration::from_secs(10),
        "took {:?}",
        cancelled.elapsed()
    );
    // Codex stopped streaming the cancelled answer: the mock notices the
    // dropped stream at its next tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let slow = real
            .mock
            .requests()
            .await
            .into_iter()
            .find(|request| request["scenario"].as_str().unwrap_or_default().contains("slow"))
            .expect("the slow request");
        if slow["client_disconnected"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Codex kept the cancelled stream open: {}",
            slow["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_persists_across_two_shim_processes() {
    let real = RealEnv::new(true).await;
    let first = Client::start(&real.env, &[]).await;
    let (_, text) = call(&first, "consult", consult("Remember the number 42.")).await;
    assert!(text.contains("user_messages=1"), "{text}");
    first.close().await;
    let second = Client::start(&real.env, &[]).await;
    let (_, text) = call(
        &second,
        "reply",
        json!({"message": "What number did I ask you to remember?"}),
    )
    .await;
    assert!(
        text.contains("user_messages=2"),
        "the second shim reached the same Codex thread: {text}"
    );
    let turns = real.mock.turns().await;
    let texts = turns.last().expect("a turn")["user_texts"].to_string();
    assert!(texts.contains("Remember the number 42"), "{texts}");
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_authentication_says_what_to_do_and_the_next_call_recovers() {
    let real = RealEnv::new(false).await;
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("hello?")).await;
    assert!(error, "{text}");
    assert!(text.contains("codex login"), "{text}");
    assert!(text.contains("OPENAI_API_KEY"), "{text}");
    client.close().await;
    // A client that has a key: the same daemon, no restart.
    let daemon = real.env.daemon_pid().expect("daemon running");
    let with_key = Client::start(
        &real.env,
        &[("OPENAI_API_KEY", codex_fusion_testkit::real::TEST_API_KEY)],
    )
    .await;
    let (error, text) = call(&with_key, "consult", consult("hello again?")).await;
    assert!(!error, "{text}");
    assert!(text.contains("Mock answer"), "{text}");
    assert_eq!(real.env.daemon_pid(), Some(daemon), "the daemon was not restarted");
    with_key.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_outside_the_workspace_fail_in_the_sandbox_and_escalations_ask() {
    let real = RealEnv::new(true).await;
    let outside = real.env.dir("outside");
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "outside secret\n").expect("write");
    std::fs::write(real.env.workspace.join("inside.txt"), "inside content\n").expect("write");
    let client = Client::start(&real.env, &[]).await;
    // Inside: read without asking.
    let (_, text) = call(
        &client,
        "consult",
        consult("Read it.\nmock:exec-sandboxed:cat inside.txt"),
    )
    .await;
    assert!(!text.starts_with("🔐"), "{text}");
    assert!(text.contains("inside content"), "{text}");
    // Outside: the sandbox refuses, nothing asks, nothing leaks.
    let (_, text) = call(
        &client,
        "consult",
        consult(&format!("Read it.\nmock:exec-sandboxed:cat {}", secret.display())),
    )
    .await;
    assert!(!text.starts_with("🔐"), "{text}");
    assert!(!text.contains("outside secret"), "the outside file leaked: {text}");
    assert!(text.contains("No such file"), "{text}");
    // Asking for it explicitly reaches Claude.
    let (_, text) = call(
        &client,
        "consult",
        consult(&format!("Read it.\nmock:exec:cat {}", secret.display())),
    )
    .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    let (_, text) = call(&client, "permit", json!({"decision": "deny"})).await;
    assert!(!text.contains("outside secret"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_reads_that_cannot_be_stopped_are_reported() {
    let real = RealEnv::new(true).await;
    let log = real.env.root().join("turns.jsonl");
    let client = Client::start(&real.env, &[("CODEX_FUSION_LOG", log.to_str().expect("utf8"))]).await;
    let handle = client
        .start_call("consult", consult("Read it.\nmock:exec-sandboxed:cat /etc/hostname"))
        .await;
    let token = token_of(&handle);
    tokio::time::timeout(CALL_LIMIT, handle.await_response())
        .await
        .expect("answered in time")
        .expect("answered");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = client.progress_for(&token);
    assert!(
        events
            .iter()
            .any(|event| event.message.starts_with("↳ ")
                && event.message.contains("outside the workspace: /etc/hostname")),
        "the escaped read is in the activity trail: {events:?}"
    );
    let record: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .expect("log")
            .lines()
            .last()
            .expect("a record"),
    )
    .expect("json");
    let calls = record["tool_calls"].as_array().expect("tool calls");
    assert!(
        calls.iter().any(|call| call["outside_workspace"] == true),
        "the debug log marks the outside read: {record}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_after_a_daemon_kill_reaches_a_codex_that_remembers() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let (_, text) = call(&client, "consult", consult("The secret word is pineapple.")).await;
    assert!(text.contains("user_messages=1"), "{text}");
    real.env.kill_daemon().await;
    // The shim reconnects to a new daemon, which loads the thread from
    // Codex's own store in the same CODEX_HOME.
    let (error, text) = call(&client, "reply", json!({"message": "What was the secret word?"})).await;
    assert!(!error, "{text}");
    assert!(text.contains("user_messages=2"), "the thread continued: {text}");
    let turns = real.mock.turns().await;
    let texts = turns.last().expect("a turn")["user_texts"].to_string();
    assert!(
        texts.contains("pineapple"),
        "the earlier message was sent again: {texts}"
    );
    let (_, status) = call(&client, "status", json!({})).await;
    assert!(status.contains("loaded"), "{status}");
    assert!(
        status.contains("codex mode: permission-profile:codex-fusion"),
        "mode set again after load: {status}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_and_effort_argument_reaches_the_model_request() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let (_, text) = call(&client, "consult", consult("First, on the default model.")).await;
    assert!(text.contains("model=gpt-5.5"), "{text}");
    let (error, text) = call(
        &client,
        "reply",
        json!({"message": "Now think harder.", "model": "gpt-5.6-sol", "effort": "high"}),
    )
    .await;
    assert!(!error, "{text}");
    let turns = real.mock.turns().await;
    let last = turns.last().expect("a turn request");
    assert_eq!(last["model"], "gpt-5.6-sol", "{last}");
    assert_eq!(last["reasoning_effort"], "high", "{last}");
    // The choice sticks for the next call.
    call(&client, "reply", json!({"message": "And again."})).await;
    let turns = real.mock.turns().await;
    assert_eq!(turns.last().expect("a turn")["model"], "gpt-5.6-sol");
    let (_, status) = call(&client, "status", json!({})).await;
    assert!(status.contains("model: gpt-5.6-sol, effort high"), "{status}");
    // Values come from the agent: an unknown one lists what Codex offers.
    let error = client
        .call("reply", json!({"message": "x", "effort": "ludicrous"}))
        .await
        .expect_err("unknown effort");
    let message = error.to_string();
    assert!(
        message.contains("effort: expected one of low, medium, high, xhigh") && message.ends_with(r#"got "ludicrous""#),
        "{message}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_rate_limit_answers_read_as_what_to_do() {
    let real = RealEnv::new(true).await;
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Go.\nmock:status:429")).await;
    assert!(error, "{text}");
    assert!(text.contains("Codex refused for quota"), "{text}");
    let (error, text) = call(&client, "consult", consult("Go.\nmock:status:429:rate_limit_exceeded")).await;
    assert!(error, "{text}");
    assert!(text.contains("Codex is rate limited"), "{text}");
    let (error, text) = call(&client, "consult", consult("And now a normal question.")).await;
    assert!(!error, "the session recovers: {text}");
    client.close().await;
}

/// `apply_patch` moving a workspace file out of the workspace: codex-acp's
/// permission request names only the source (`src/a.rs`, inside); the
/// destination is only in the diff content of the `tool_call` before it.
/// With writes allowed, the move must still pause, the 🔐 must name the
/// destination as outside, and a deny must leave both files as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_out_of_the_workspace_pauses_even_with_writes_allowed() {
    let real = RealEnv::new(true).await;
    let workspace = &real.env.workspace;
    std::fs::create_dir_all(workspace.join("src")).expect("mkdir");
    std::fs::write(workspace.join("src/a.rs"), "fn a() {}\n").expect("write");
    let destination = workspace.join("../outside.txt");
    let client = Client::start(&real.env, &[("CODEX_FUSION_ALLOW_WRITES", "1")]).await;
    let patch = r"*** Begin Patch\n*** Update File: src/a.rs\n*** Move to: ../outside.txt\n@@\n-fn a() {}\n+fn moved() {}\n*** End Patch";
    let (error, text) = call(&client, "consult", consult(&format!("Move it.\nmock:patch:{patch}"))).await;
    assert!(!error, "{text}");
    assert!(
        text.starts_with("🔐 Codex paused"),
        "a move out of the workspace was not paused (outside.txt exists: {}): {text}",
        destination.exists()
    );
    assert!(
        text.lines().any(|line| line.starts_with("path: ")
            && line.contains("outside.txt")
            && line.contains("OUTSIDE the workspace")),
        "the 🔐 names the destination as outside: {text}"
    );
    assert!(
        text.contains("outside.txt (+1 −1)\n  -fn a() {}\n  +fn moved() {}\n"),
        "the 🔐 shows the diff it would write: {text}"
    );
    assert!(!destination.exists(), "nothing is written before permit");
    let (error, text) = call(&client, "permit", json!({"decision": "deny"})).await;
    assert!(!error, "{text}");
    assert!(
        !destination.exists(),
        "denied, yet {} was written",
        destination.display()
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("src/a.rs")).expect("src/a.rs is still there"),
        "fn a() {}\n"
    );
    client.close().await;
}

/// The live agent processes of the daemon, from `status`.
async fn agent_processes(real: &RealEnv) -> Vec<codex_fusion_protocol::control::AgentProcessStatus> {
    use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
    match real.env.control(ControlRequest::Status { workspace: None }).await {
        ControlResponse::Status(status) => status.agents,
        other => panic!("status answered {other:?}"),
    }
}

async fn client_in(real: &RealEnv, name: &str) -> Client {
    let workspace = real.env.dir(name);
    let workspace = workspace.display().to_string();
    Client::start(&real.env, &[("CODEX_FUSION_WORKSPACE", workspace.as_str())]).await
}

/// Two workspaces on one codex-acp: one process, one Codex thread each,
/// and neither thread sees the other's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workspaces_share_one_codex_acp_each_with_its_own_thread() {
    let real = RealEnv::new(true).await;
    let apple = client_in(&real, "apple").await;
    let pear = client_in(&real, "pear").await;
    let (_, text) = call(&apple, "consult", consult("Remember the word apple.")).await;
    assert!(text.contains("user_messages=1"), "{text}");
    let (_, text) = call(&pear, "consult", consult("Remember the word pear.")).await;
    assert!(text.contains("user_messages=1"), "its own thread: {text}");
    let agents = agent_processes(&real).await;
    assert_eq!(agents.len(), 1, "one codex-acp: {agents:?}");
    assert_eq!(agents[0].workspaces.len(), 2, "{agents:?}");
    let (_, text) = call(&apple, "reply", json!({"message": "Which word?"})).await;
    assert!(text.contains("user_messages=2"), "{text}");
    let turns = real.mock.turns().await;
    let texts = turns.last().expect("a turn")["user_texts"].to_string();
    assert!(texts.contains("apple") && !texts.contains("pear"), "{texts}");
    let (_, status) = call(&pear, "status", json!({})).await;
    assert!(
        status.contains("codex mode: permission-profile:codex-fusion"),
        "{status}"
    );
    assert!(status.contains("shares its codex-acp process with"), "{status}");
    apple.close().await;
    pear.close().await;
}

/// The shared codex-acp dies mid-turn: the running turn says its context
/// was kept, and both workspaces continue their own threads on a new
/// process, confined again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_of_the_shared_codex_acp_costs_no_workspace_its_thread() {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let real = RealEnv::new(true).await;
    let apple = client_in(&real, "apple").await;
    let pear = client_in(&real, "pear").await;
    call(&apple, "consult", consult("Remember the word apple.")).await;
    call(&pear, "consult", consult("Remember the word pear.")).await;
    let agents = agent_processes(&real).await;
    let pid = agents[0].pid.expect("a pid") as i32;
    let handle = pear
        .start_call("reply", json!({"message": "Go slowly.\nmock:slow"}))
        .await;
    let token = token_of(&handle);
    wait_until("the slow turn streams", CALL_LIMIT, || {
        !pear.progress_for(&token).is_empty()
    })
    .await;
    // The whole group, as a crash of node would take codex with it.
    killpg(Pid::from_raw(pid), Signal::SIGKILL).expect("kill codex-acp");
    let response = tokio::time::timeout(Duration::from_secs(10), handle.await_response())
        .await
        .expect("the turn ends")
        .expect("answered");
    let text = response_text(&response);
    assert!(text.contains("Codex's context was kept"), "{text}");
    let (error, text) = call(&apple, "reply", json!({"message": "Which word?"})).await;
    assert!(!error, "{text}");
    assert!(text.contains("user_messages=2"), "apple's thread continued: {text}");
    let turns = real.mock.turns().await;
    let texts = turns.last().expect("a turn")["user_texts"].to_string();
    assert!(texts.contains("apple") && !texts.contains("pear"), "{texts}");
    let (error, text) = call(&pear, "reply", json!({"message": "Which word?"})).await;
    assert!(!error, "{text}");
    let turns = real.mock.turns().await;
    let texts = turns.last().expect("a turn")["user_texts"].to_string();
    assert!(
        texts.contains("pear") && !texts.contains("apple"),
        "pear's thread continued: {texts}"
    );
    let agents = agent_processes(&real).await;
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_ne!(agents[0].pid, Some(pid as u32), "a new process");
    let (_, status) = call(&pear, "status", json!({})).await;
    assert!(status.contains("loaded"), "{status}");
    assert!(
        status.contains("codex mode: permission-profile:codex-fusion"),
        "{status}"
    );
    apple.close().await;
    pear.close().await;
}

/// What the daemon's log says when it asks codex-acp where codex is.
const PROBE_LOG: &str = "asking `cli doctor` where codex-acp's codex binary is";

fn daemon_log(real: &RealEnv) -> String {
    std::fs::read_dir(real.env.state_dir.join("logs"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Issue 17: an npm-installed codex-acp named directly is never asked
/// `cli doctor` (two node starts): its bundled codex is found by its
/// layout, and it is the binary the doctor names. A command the layout
/// does not cover (here codex-acp behind `/usr/bin/env`) is asked, unless
/// `codex-fusion doctor` already kept the answer where the daemon looks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_acp_is_asked_where_codex_is_only_when_its_layout_does_not_say() {
    let doctor = std::process::Command::new(codex_fusion_testkit::real::codex_acp())
        .args(["cli", "doctor", "--json"])
        .output()
        .expect("cli doctor");
    let named = codex_fusion_protocol::codex_doctor::codex_executable(&doctor.stdout).expect("the doctor names codex");
    let wrapped = format!("/usr/bin/env {}", codex_fusion_testkit::real::codex_acp().display());
    for (command, after_doctor, asks) in [
        (None, false, false),
        (Some(&wrapped), false, true),
        (Some(&wrapped), true, false),
    ] {
        let mut real = RealEnv::new(true).await;
        if let Some(command) = command {
            real.env.set("CODEX_FUSION_ACP_COMMAND", command);
        }
        if after_doctor {
            let output = real.env.cli(&["doctor"], None).await;
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(text.contains("read confinement"), "{text}");
            let kept: Vec<_> = std::fs::read_dir(real.env.state_dir.join("codex-wrapper"))
                .expect("doctor made the wrapper directory")
                .flatten()
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("doctor-"))
                .collect();
            assert_eq!(kept.len(), 1, "doctor kept its answer: {text}");
        }
        let _daemon = real.env.start_daemon().await;
        let client = Client::start(&real.env, &[]).await;
        let (error, text) = call(&client, "consult", consult("hello")).await;
        assert!(!error, "{text}");
        client.close().await;
        let log = daemon_log(&real);
        assert_eq!(
            log.contains(PROBE_LOG),
            asks,
            "{command:?}, after doctor: {after_doctor}\n{log}"
        );
        // Whichever way it was found, the wrapper runs the doctor's codex.
        let wrappers: Vec<String> = std::fs::read_dir(real.env.state_dir.join("codex-wrapper"))
            .expect("the wrapper directory")
            .flatten()
            .filter(|entry| !entry.file_name().to_string_lossy().starts_with("doctor-"))
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .collect();
        assert_eq!(wrappers.len(), 1, "{wrappers:?}");
        let exec = format!("exec '{}' ", std::fs::canonicalize(&named).expect("codex").display());
        assert!(wrappers[0].contains(&exec), "{exec}\n{}", wrappers[0]);
    }
}

/// Issue 17: the daemon names each new Codex session, so codex-acp spends
/// no model request of its own on a title after the first turn (nor the
/// thread it would start for it, right when the next call arrives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_costs_no_title_request() {
    let real = RealEnv::new(true).await;
    let _daemon = real.env.start_daemon().await;
    let client = Client::start(&real.env, &[]).await;
    for question in ["first", "second"] {
        let (error, text) = call(&client, "consult", consult(question)).await;
        assert!(!error, "{text}");
    }
    // A title request would have been sent right after the first turn.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = real.mock.requests().await;
    // Codex's own probes of the provider (`HEAD /responses`, `GET /models`)
    // are not model requests.
    let kinds: Vec<&str> = requests
        .iter()
        .filter(|request| request["method"] == "POST")
        .filter_map(|request| request["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["turn", "turn"], "{requests:#?}");
    client.close().await;
}

/// How often `needle` occurs in the user messages of a model request.
fn in_user_messages(request: &Value, needle: &str) -> usize {
    request["body"]["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["role"] == "user")
        .map(|item| item["content"].to_string().matches(needle).count())
        .sum()
}

/// Consults with `question` and checks that the model request it made
/// holds `marker` once in its user messages; the answer.
async fn consult_carrying_once(real: &RealEnv, client: &Client, question: &str, marker: &str) -> String {
    let (error, text) = call(client, "consult", consult(question)).await;
    assert!(!error, "{text}");
    let last = real.mock.turns().await.pop().expect("a turn");
    assert_eq!(in_user_messages(&last, marker), 1, "{last:#}");
    text
}

/// Issue 17: a confined Codex does not search for AGENTS.md itself (each
/// file it looks at costs a sandbox launch); the daemon sends the
/// workspace's own file before a new session's first prompt: once, not
/// again on the next turn, again after a reset, and never when it is a
/// symlink to a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_agents_md_reaches_codex_once_per_session_and_a_linked_secret_never() {
    const MARKER: &str = "instructions-marker-5d1c";
    const SECRET: &str = "sk-linked-secret-93af";
    const FRAME: &str = "# AGENTS.md instructions for";
    let real = RealEnv::new(true).await;
    let apple = real.env.dir("apple");
    std::fs::write(apple.join("AGENTS.md"), format!("Answer in haiku. {MARKER}\n")).expect("AGENTS.md");
    let pear = real.env.dir("pear");
    std::fs::write(pear.join(".env"), format!("OPENAI_API_KEY={SECRET}\n")).expect(".env");
    std::os::unix::fs::symlink(".env", pear.join("AGENTS.md")).expect("symlink");
    let _daemon = real.env.start_daemon().await;
    let client = client_in(&real, "apple").await;

    let (error, text) = call(&client, "consult", consult("first")).await;
    assert!(!error, "{text}");
    // Our block is not taken for a prompt of its own.
    assert!(text.contains("user_messages=1"), "{text}");
    let (error, text) = call(&client, "reply", json!({"message": "second"})).await;
    assert!(!error, "{text}");
    assert!(text.contains("user_messages=2"), "{text}");
    let turns = real.mock.turns().await;
    assert_eq!(turns.len(), 2, "{turns:#?}");
    for turn in &turns {
        // Once in the thread: Codex did not add its own copy, and the
        // second turn did not get another.
        assert_eq!(in_user_messages(turn, MARKER), 1, "{turn:#}");
        assert_eq!(in_user_messages(turn, FRAME), 1, "{turn:#}");
    }

    let output = real
        .env
        .cli(&["reset", "--workspace", apple.to_str().expect("utf8")], None)
        .await;
    assert!(output.status.success(), "{output:?}");
    let text = consult_carrying_once(&real, &client, "after the reset", MARKER).await;
    assert!(text.contains("user_messages=1"), "a new thread: {text}");
    client.close().await;

    let client = client_in(&real, "pear").await;
    let (error, text) = call(&client, "consult", consult("third")).await;
    assert!(!error, "{text}");
    let requests = real.mock.requests().await;
    let last = requests.last().expect("a request");
    assert_eq!(in_user_messages(last, FRAME), 0, "{last:#}");
    for request in &requests {
        assert!(!request.to_string().contains(SECRET), "{request:#}");
    }
    client.close().await;
}

/// A session the SessionStart hook opened ahead of need has had no prompt
/// yet, so its transcript holds no AGENTS.md: restored after a daemon
/// restart (or an idle stop), its first prompt still carries it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_warmed_by_the_hook_gets_agents_md_even_when_restored_before_its_first_prompt() {
    use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
    const MARKER: &str = "warmed-instructions-marker-77b2";
    let real = RealEnv::new(true).await;
    std::fs::write(real.env.workspace.join("AGENTS.md"), format!("{MARKER}\n")).expect("AGENTS.md");
    // Another workspace's consult starts the agent the hook's session goes on.
    let other = client_in(&real, "other").await;
    let (error, text) = call(&other, "consult", consult("first")).await;
    assert!(!error, "{text}");
    other.close().await;
    let hook = json!({
        "session_id": "claude-session-warm",
        "cwd": real.env.workspace,
        "hook_event_name": "SessionStart",
        "source": "startup",
    })
    .to_string();
    let output = real.env.cli(&["hook"], Some(&hook)).await;
    assert!(output.status.success(), "{output:?}");
    let workspace = real.env.workspace.clone();
    let mut state = String::new();
    for _ in 0..300 {
        state = match real
            .env
            .control(ControlRequest::Status {
                workspace: Some(workspace.clone()),
            })
            .await
        {
            ControlResponse::Status(status) => status
                .workspaces
                .into_iter()
                .next()
                .map(|workspace| workspace.agent_state)
                .unwrap_or_default(),
            other => panic!("status answered {other:?}"),
        };
        if state == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "ready", "the hook opened a session");
    let output = real.env.cli(&["stop"], None).await;
    assert!(output.status.success(), "{output:?}");

    let client = Client::start(&real.env, &[]).await;
    consult_carrying_once(&real, &client, "the first question here", MARKER).await;
    client.close().await;

    // Restored again, now with a prompt in its history: not sent twice.
    let output = real.env.cli(&["stop"], None).await;
    assert!(output.status.success(), "{output:?}");
    let client = Client::start(&real.env, &[]).await;
    let text = consult_carrying_once(&real, &client, "the second question here", MARKER).await;
    assert!(text.contains("user_messages=2"), "the thread carried on: {text}");
    client.close().await;
}
