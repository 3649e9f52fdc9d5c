//! The core vertical, end to end: an MCP client (rmcp) talks to the real
//! `codex-fusion-mcp`, which forwards to a real `codex-fusiond`, which drives
//! the scripted fake agent. Each test has its own socket and state.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use codex_fusion_testkit::client::{response_text, result_text, token_of};
use codex_fusion_testkit::{Client, RawClient, TestEnv, wait_until};
use serde_json::{Value, json};

fn consult(question: &str) -> Value {
    json!({ "question": question })
}

/// Issue 16: a title for every tool, `readOnlyHint` only where true, the
/// turn tools not destructive; and no result carries `structuredContent`
/// (Claude Code would show the model only that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_carry_annotations_and_results_carry_text_only() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 9);
    for tool in &tools {
        let annotations = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{} has annotations", tool.name));
        let title = annotations.title.as_deref().unwrap_or_default();
        assert!(!title.is_empty(), "{} has a title", tool.name);
        assert_eq!(tool.title.as_deref(), Some(title), "{}", tool.name);
        let read_only = tool.name == "status";
        assert_eq!(
            annotations.read_only_hint,
            read_only.then_some(true),
            "{}: readOnlyHint only where true",
            tool.name
        );
    }
    let hint = |name: &str| {
        tools
            .iter()
            .find(|tool| tool.name == name)
            .and_then(|tool| tool.annotations.clone())
            .expect("listed")
    };
    for name in [
        "consult",
        "review_plan",
        "review_diff",
        "brainstorm",
        "explore",
        "reply",
    ] {
        assert_eq!(hint(name).destructive_hint, Some(false), "{name}");
    }
    assert_eq!(hint("reset").destructive_hint, Some(true));

    let answer = client.call("consult", consult("q")).await.expect("answered");
    let pause = client
        .call("consult", consult("fake:permission:execute:x.txt"))
        .await
        .expect("paused");
    assert!(result_text(&pause).starts_with("🔐 Codex paused"));
    let status = client.call("status", json!({})).await.expect("status");
    let nothing = client
        .call("permit", json!({"decision": "deny"}))
        .await
        .expect("denied");
    for result in [&answer, &pause, &status, &nothing] {
        assert_eq!(result.structured_content, None, "{}", result_text(result));
        assert!(!result.content.is_empty());
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_matches_the_spec() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let tools = client.service.list_all_tools().await.expect("tools/list");
    let names: BTreeSet<String> = tools.iter().map(|tool| tool.name.to_string()).collect();
    let expected: BTreeSet<String> = [
        "consult",
        "review_plan",
        "review_diff",
        "brainstorm",
        "explore",
        "reply",
        "permit",
        "reset",
        "status",
    ]
    .iter()
    .map(|name| name.to_string())
    .collect();
    assert_eq!(names, expected);
    let required = |name: &str| -> Vec<String> {
        let tool = tools.iter().find(|tool| tool.name == name).expect("tool listed");
        tool.input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    assert_eq!(required("consult"), ["question"]);
    assert_eq!(required("review_plan"), ["plan"]);
    assert_eq!(required("brainstorm"), ["problem"]);
    assert_eq!(required("reply"), ["message"]);
    assert_eq!(required("permit"), ["decision"]);
    assert!(required("review_diff").is_empty());
    assert!(required("explore").is_empty());
    assert!(required("reset").is_empty());
    let properties = |name: &str| -> BTreeSet<String> {
        let tool = tools.iter().find(|tool| tool.name == name).expect("tool listed");
        tool.input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(
        properties("review_diff"),
        ["agents", "diff", "effort", "instructions", "model", "paths"]
            .map(String::from)
            .into()
    );
    for tool in ["consult", "review_plan", "brainstorm", "explore", "reply"] {
        let names = properties(tool);
        assert!(
            names.contains("model") && names.contains("effort") && names.contains("agents"),
            "{tool}: {names:?}"
        );
    }
    assert_eq!(
        properties("permit"),
        ["agent", "decision", "id", "note"].map(String::from).into()
    );
    assert_eq!(properties("reset"), ["agents"].map(String::from).into());
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consult_answers_with_a_footer_in_read_only_mode() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let result = client
        .call("consult", consult("Is this design sound?"))
        .await
        .expect("answered");
    assert_ne!(result.is_error, Some(true));
    let text = result_text(&result);
    assert!(text.contains("fake answer: prompts_seen=1 mode=read-only"), "{text}");
    assert!(text.contains("VERDICT: CONSENSUS — fake agrees"), "{text}");
    let footer = text.lines().last().expect("a footer line");
    assert!(footer.starts_with("— codex-fusion · "), "{footer}");
    assert!(footer.contains("100 in · 20 out · 5 reasoning tokens"), "{footer}");
    assert!(footer.contains("CONSENSUS"), "{footer}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_turn_tool_reaches_codex_with_its_own_prompt() {
    let mut env = TestEnv::new();
    let agent_log = env.root().join("agent.jsonl");
    let command = env.fake_agent_command(&format!("--log {}", agent_log.display()));
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let client = Client::start(&env, &[]).await;
    let calls = [
        ("consult", json!({"question": "Q-consult", "context": "C-consult"})),
        ("review_plan", json!({"plan": "P-plan"})),
        ("review_diff", json!({"diff": "+added line", "paths": ["src/lib.rs"]})),
        (
            "brainstorm",
            json!({"problem": "B-problem", "constraints": "K-constraints"}),
        ),
        ("explore", json!({"focus": "F-focus"})),
        ("reply", json!({"message": "R-message"})),
    ];
    for (index, (tool, arguments)) in calls.iter().enumerate() {
        let text = client.text(tool, arguments.clone()).await;
        assert!(text.contains(&format!("prompts_seen={}", index + 1)), "{tool}: {text}");
    }
    let prompts: Vec<String> = std::fs::read_to_string(&agent_log)
        .expect("agent log")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value["method"] == "session/prompt")
        .map(|value| {
            value["params"]["prompt"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(prompts.len(), 6);
    for (prompt, marker) in prompts.iter().zip([
        "Q-consult",
        "P-plan",
        "+added line",
        "B-problem",
        "F-focus",
        "R-message",
    ]) {
        assert!(prompt.contains(marker), "{marker} missing from {prompt}");
        assert!(prompt.starts_with("## Role\n"), "{prompt}");
    }
    assert!(prompts[0].contains("## Context from Claude\nC-consult"));
    assert!(prompts[0].contains("VERDICT: CONSENSUS"));
    assert!(!prompts[4].contains("VERDICT"), "explore is not a debate");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_strictly_increasing_and_carries_reasoning() {
    let env = TestEnv::new();
    // A raw client sees the lines in the order the shim wrote them, so the
    // order is checked as it arrived, not after sorting.
    let mut raw = RawClient::initialized(&env).await;
    raw.send(json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{
        "name":"consult","arguments":{"question":"think first fake:reason fake:slow:400"},
        "_meta":{"progressToken":"tok-3"}}}))
        .await;
    let mut progress = Vec::new();
    let mut messages = Vec::new();
    let response = loop {
        let value = raw.next(Duration::from_secs(15)).await.expect("the turn answers");
        if value["id"] == 3 {
            break value;
        }
        if value["method"] == "notifications/progress" && value["params"]["progressToken"] == "tok-3" {
            progress.push(value["params"]["progress"].as_f64().expect("a number"));
            messages.push(value["params"]["message"].as_str().unwrap_or_default().to_owned());
        }
    };
    let text = response["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("fake answer"), "{response}");
    assert!(
        progress.len() >= 3,
        "expected several progress notifications, got {progress:?}"
    );
    assert!(
        progress.windows(2).all(|pair| pair[0] < pair[1]),
        "not strictly increasing as received: {progress:?}"
    );
    assert!(
        messages.iter().any(|message| message.starts_with("💭 ")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|message| message.contains("streaming")),
        "{messages:?}"
    );
    // Nothing for the request once its result is out.
    let after = raw.drain(Duration::from_millis(500)).await;
    assert!(
        after
            .iter()
            .all(|value| value["id"] != 3 && value["params"]["progressToken"] != "tok-3"),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_allow_resumes_the_same_turn() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let made = env.workspace.join("made.txt");
    let text = client
        .text("consult", consult("please fake:permission:execute:made.txt"))
        .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    assert!(text.contains("command: touch made.txt"), "{text}");
    assert!(text.contains("kind: execute"), "{text}");
    assert!(!made.exists(), "nothing runs before permit");
    let status = client.text("status", json!({})).await;
    assert!(status.contains("pending permission: touch made.txt"), "{status}");
    let text = client.text("permit", json!({"decision": "allow"})).await;
    assert!(text.contains("ran touch made.txt"), "{text}");
    assert!(text.contains("prompts_seen=1"), "the same turn resumed: {text}");
    assert!(made.exists());
    let text = client.text("permit", json!({"decision": "allow"})).await;
    assert!(text.contains("Nothing is waiting for permission"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_deny_still_gets_an_answer_from_codex() {
    let mut env = TestEnv::new();
    let agent_log = env.root().join("agent.jsonl");
    let command = env.fake_agent_command(&format!("--log {}", agent_log.display()));
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let client = Client::start(&env, &[]).await;
    let text = client
        .text("consult", consult("please fake:permission:execute:denied.txt"))
        .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    let result = client
        .call("permit", json!({"decision": "deny", "note": "use a dry run instead"}))
        .await
        .expect("answered");
    let text = result_text(&result);
    assert_ne!(result.is_error, Some(true), "{text}");
    assert!(text.contains("fake answer"), "Codex answered after the deny: {text}");
    assert!(!env.workspace.join("denied.txt").exists());
    let log = std::fs::read_to_string(&agent_log).expect("agent log");
    assert!(
        log.contains(r#""optionId":"cancel""#),
        "deny chose the reject_once option: {log}"
    );
    assert!(!log.contains("accept_execpolicy_amendment"), "never a standing grant");
    assert!(
        log.contains("Claude denied your request: run `touch denied.txt`"),
        "{log}"
    );
    assert!(log.contains("use a dry run instead"), "the note reached Codex");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardian_flags_auto_allow_and_reads_inside_never_ask() {
    let env = TestEnv::new();
    std::fs::write(env.workspace.join("inside.txt"), "first line inside\n").expect("write");
    let client = Client::start(&env, &[("CODEX_FUSION_ALLOW_COMMANDS", "yes")]).await;
    let text = client
        .text(
            "consult",
            consult("fake:permission:execute:auto.txt fake:permission:read:inside.txt"),
        )
        .await;
    assert!(text.contains("ran touch auto.txt"), "{text}");
    assert!(text.contains("first line inside"), "{text}");
    assert!(env.workspace.join("auto.txt").exists());
    let text = client
        .text("consult", consult("fake:permission:read:/etc/hostname"))
        .await;
    assert!(
        text.starts_with("🔐 Codex paused: it wants to read outside the workspace"),
        "{text}"
    );
    let text = client.text("permit", json!({"decision": "deny"})).await;
    assert!(text.contains("fake answer"), "{text}");
    client.close().await;
}

/// A move whose destination only a `tool_call_update`'s diff names (the
/// request lists the source alone, as codex-acp's does) is judged by that
/// destination: with writes allowed it still pauses, and says where it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_whose_destination_only_an_update_names_pauses_with_writes_allowed() {
    let env = TestEnv::new();
    std::fs::write(env.workspace.join("a.txt"), "keep me\n").expect("write");
    let client = Client::start(&env, &[("CODEX_FUSION_ALLOW_WRITES", "1")]).await;
    let text = client
        .text("consult", consult("fake:permission:patch-move:a.txt>../moved.txt"))
        .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    let outside = env.root().join("moved.txt");
    assert!(
        text.contains(&format!("{} (OUTSIDE the workspace)", outside.display())),
        "{text}"
    );
    let text = client.text("permit", json!({"decision": "deny"})).await;
    assert!(text.contains("fake answer"), "{text}");
    assert!(!outside.exists());
    assert!(env.workspace.join("a.txt").exists());
    // Inside the workspace too: what codex-acp sends cannot pair a move's
    // source with its destination, so the flag does not cover moves; the
    // pause says so and names both.
    let text = client
        .text("consult", consult("fake:permission:patch-move:a.txt>b.txt"))
        .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    assert!(text.contains("not every path can be told"), "{text}");
    assert!(text.contains("b.txt (inside the workspace)"), "{text}");
    let text = client.text("permit", json!({"decision": "allow"})).await;
    assert!(!text.starts_with("🔐"), "{text}");
    assert!(env.workspace.join("b.txt").exists(), "{text}");
    client.close().await;
}

/// Each flag grants what it says and no more: with all three on, reading a
/// credential store (inside the workspace, the daemon's state dir, a
/// CODEX_HOME) and changing a file that runs code or configures an agent
/// still pause, and the 🔐 says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_grant_what_they_say_credentials_and_agent_configuration_still_ask() {
    let env = TestEnv::new();
    std::fs::write(env.workspace.join(".env"), "API_KEY=secret\n").expect("write");
    std::fs::write(env.workspace.join("notes.md"), "notes\n").expect("write");
    let codex_home = env.dir("elsewhere/codex-home");
    std::fs::write(codex_home.join("auth.json"), "{}").expect("write");
    let client = Client::start(
        &env,
        &[
            ("CODEX_FUSION_ALLOW_EXTERNAL_READS", "1"),
            ("CODEX_FUSION_ALLOW_WRITES", "1"),
            ("CODEX_FUSION_ALLOW_COMMANDS", "1"),
            ("CODEX_HOME", codex_home.to_str().expect("utf8")),
        ],
    )
    .await;
    let state_file = env.state_dir.join("sessions.json");
    for (ask, why) in [
        (
            "read:.env",
            "it reads a credential store (.env); codex-fusion always asks",
        ),
        (
            &format!("read:{}", state_file.display()),
            &format!("it reads a credential store ({})", env.state_dir.display()),
        ),
        (
            &format!("read:{}", codex_home.join("auth.json").display()),
            &format!("it reads a credential store ({})", codex_home.display()),
        ),
        ("edit:.env", "it changes a credential store (.env)"),
        (
            "edit:.git/hooks/pre-commit",
            "it changes .git, which runs code or configures an agent",
        ),
        (
            "edit:AGENTS.md",
            "it changes AGENTS.md, which runs code or configures an agent",
        ),
        ("edit:.github/workflows/ci.yml", "it changes .github"),
    ] {
        let text = client.text("consult", consult(&format!("fake:permission:{ask}"))).await;
        assert!(text.starts_with("🔐 Codex paused"), "{ask} was not paused: {text}");
        assert!(text.contains(&format!("asked because: {why}")), "{ask}: {text}");
        let text = client.text("permit", json!({"decision": "deny"})).await;
        assert!(text.contains("fake answer"), "{text}");
    }
    assert_eq!(
        std::fs::read_to_string(env.workspace.join(".env")).expect(".env"),
        "API_KEY=secret\n"
    );
    // What the flags do grant still goes ahead.
    let text = client
        .text(
            "consult",
            consult(
                "fake:permission:read:/etc/hostname fake:permission:edit:notes.md fake:permission:execute:made.txt",
            ),
        )
        .await;
    assert!(!text.starts_with("🔐"), "{text}");
    assert!(text.contains("edited"), "{text}");
    client.close().await;
}

/// The `id: …` line of a 🔐.
fn pause_id(text: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no `id:` line in {text}"))
        .trim()
        .to_owned()
}

/// A permit answers the pause it was shown: one naming another pause (a
/// retried or stale call, a second Claude window) is refused, says which
/// pause is waiting, and decides nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_naming_another_pause_is_refused_and_decides_nothing() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let first = client.text("consult", consult("fake:permission:execute:one.txt")).await;
    assert!(first.starts_with("🔐 Codex paused"), "{first}");
    let first_id = pause_id(&first);
    assert!(
        first_id.len() >= 5 && first_id.starts_with('p') && first_id[1..].chars().all(|c| c.is_ascii_hexdigit()),
        "{first_id}"
    );
    let result = client
        .call("permit", json!({"decision": "allow", "id": "p0000stale"}))
        .await
        .expect("answered");
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(text.contains("p0000stale"), "{text}");
    assert!(
        text.contains(&first_id) && text.contains("touch one.txt"),
        "names the current pause: {text}"
    );
    assert!(
        !env.workspace.join("one.txt").exists(),
        "a refused permit decided nothing"
    );
    let text = client
        .text("permit", json!({"decision": "allow", "id": first_id}))
        .await;
    assert!(text.contains("ran touch one.txt"), "{text}");
    // The next pause has an id of its own; the old one no longer answers.
    let second = client.text("consult", consult("fake:permission:execute:two.txt")).await;
    let second_id = pause_id(&second);
    assert_ne!(second_id, first_id);
    let result = client
        .call("permit", json!({"decision": "deny", "id": first_id}))
        .await
        .expect("answered");
    assert_eq!(result.is_error, Some(true), "{}", result_text(&result));
    assert!(result_text(&result).contains(&second_id), "{}", result_text(&result));
    // Without an id, a permit answers whatever is waiting, as before.
    let text = client.text("permit", json!({"decision": "deny"})).await;
    assert!(text.contains("fake answer"), "{text}");
    client.close().await;
}

/// A pause shows the exact command it would approve: one too long for the
/// result budget is not cut in the middle but saved whole, privately, to a
/// file the pause names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_too_long_to_show_is_saved_whole_never_cut() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = TestEnv::new();
    let client = Client::start(&env, &[("CODEX_FUSION_MAX_RESULT_CHARS", "1000")]).await;
    // Marked at both ends, so a cut anywhere shows.
    let name = format!("HEAD{}TAIL", "x".repeat(1500));
    let text = client
        .text("consult", consult(&format!("fake:permission:execute:{name}")))
        .await;
    assert!(
        text.starts_with("🔐 Codex paused: it wants to run a command."),
        "{text}"
    );
    assert!(text.chars().count() <= 1000, "{} characters", text.chars().count());
    assert!(
        !text.contains("HEAD") && !text.contains("TAIL") && !text.contains("xxxxxxxxxx"),
        "no piece of the command is shown: {text}"
    );
    assert!(text.contains("too long to show whole"), "{text}");
    let saved = text
        .split_whitespace()
        .find(|word| word.contains("/pauses/"))
        .map(|word| word.trim_end_matches(['.', ',', ';', ')']))
        .unwrap_or_else(|| panic!("the pause names the file: {text}"));
    let saved = std::path::Path::new(saved);
    assert!(saved.starts_with(&env.state_dir), "{}", saved.display());
    let mode = std::fs::metadata(saved).expect("saved file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "private to the user");
    let whole = std::fs::read_to_string(saved).expect("read");
    assert!(whole.contains(&format!("command: touch {name}\n")), "{whole}");
    assert!(whole.contains(&format!("id: {}", pause_id(&text))), "{whole}");
    let text = client.text("permit", json!({"decision": "deny"})).await;
    assert!(text.contains("fake answer"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_arguments_are_mcp_errors_with_clear_messages() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let error = client.call("consult", json!({})).await.expect_err("missing question");
    let message = error.to_string();
    assert!(message.contains("question: required, but missing"), "{message}");
    let error = client
        .call("permit", json!({"decision": "perhaps"}))
        .await
        .expect_err("bad decision");
    assert!(
        error
            .to_string()
            .contains(r#"decision: expected allow or deny, got "perhaps""#),
        "{error}"
    );
    let error = client.call("nonsense", json!({})).await.expect_err("unknown tool");
    assert!(error.to_string().contains("unknown tool"), "{error}");
    // The connection is still fine.
    assert!(
        client
            .text("consult", consult("still there?"))
            .await
            .contains("fake answer")
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_of_a_turn_that_ignores_cancel_frees_the_workspace_quickly() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let handle = client.start_call("consult", consult("fake:ignore-cancel")).await;
    let token = token_of(&handle);
    wait_until("the turn streams", Duration::from_secs(10), || {
        !client.progress_for(&token).is_empty()
    })
    .await;
    let cancelled_at = Instant::now();
    handle.cancel(Some("test".into())).await.expect("cancel sent");
    let text = client.text("consult", consult("after the cancel")).await;
    let took = cancelled_at.elapsed();
    assert!(text.contains("fake answer"), "{text}");
    assert!(took < Duration::from_secs(3), "the next call waited {took:?}");
    let status = client.text("status", json!({})).await;
    assert!(status.contains("codex-acp: ready"), "respawned: {status}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_turn_fails_fast_and_the_next_call_respawns() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    assert!(
        client
            .text("consult", consult("warm up"))
            .await
            .contains("prompts_seen=1")
    );
    let started = Instant::now();
    let result = client.call("consult", consult("fake:crash")).await.expect("answered");
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(text.contains("codex-acp stopped"), "{text}");
    assert!(text.contains("next call starts it again"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3), "failed fast");
    let text = client.text("consult", consult("are you back?")).await;
    assert!(text.contains("fake answer"), "{text}");
    let status = client.text("status", json!({})).await;
    assert!(status.contains("simulated crash"), "stderr tail in status: {status}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_aborts_a_silent_turn_but_not_a_streaming_one() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[("CODEX_FUSION_TURN_TIMEOUT_MS", "1000")]).await;
    let result = client
        .call("consult", consult("fake:silent:5000"))
        .await
        .expect("answered");
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(text.contains("no activity for 1 s"), "{text}");
    let text = client.text("consult", consult("fake:slow:2500")).await;
    assert!(
        text.contains("fake answer"),
        "a streaming turn runs past the idle limit: {text}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_gives_a_fresh_session() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    assert!(client.text("consult", consult("one")).await.contains("prompts_seen=1"));
    assert!(
        client
            .text("reply", json!({"message": "two"}))
            .await
            .contains("prompts_seen=2")
    );
    let text = client.text("reset", json!({})).await;
    assert!(text.contains("was dropped"), "{text}");
    assert!(
        client
            .text("consult", consult("three"))
            .await
            .contains("prompts_seen=1")
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_survives_an_mcp_restart() {
    let env = TestEnv::new();
    let first = Client::start(&env, &[]).await;
    assert!(
        first
            .text("consult", consult("remember me"))
            .await
            .contains("prompts_seen=1")
    );
    let daemon_pid = env.daemon_pid().expect("the shim started a daemon");
    let status = first.close().await;
    assert!(status.success(), "the shim exits cleanly when stdin closes: {status}");
    let second = Client::start(&env, &[]).await;
    let text = second.text("reply", json!({"message": "do you remember?"})).await;
    assert!(text.contains("prompts_seen=2"), "same Codex session: {text}");
    assert_eq!(env.daemon_pid(), Some(daemon_pid), "same daemon");
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shim_exits_at_once_when_stdin_closes() {
    let env = TestEnv::new();
    let mut raw = RawClient::initialized(&env).await;
    raw.close_stdin();
    let status = tokio::time::timeout(Duration::from_secs(2), raw.shim.wait())
        .await
        .expect("exits within 2 s")
        .expect("wait");
    assert!(status.success());
    assert!(
        std::os::unix::net::UnixStream::connect(&env.socket).is_ok(),
        "the daemon lives on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workspaces_run_turns_concurrently() {
    let env = TestEnv::new();
    let other = env.dir("other-workspace");
    let a = Client::start(&env, &[]).await;
    let b = Client::start(&env, &[("CODEX_FUSION_WORKSPACE", other.to_str().expect("utf8"))]).await;
    let call_a = a.start_call("consult", consult("fake:slow:1500")).await;
    let call_b = b.start_call("consult", consult("fake:slow:1500")).await;
    let (result_a, result_b) = tokio::join!(
        async {
            let response = call_a.await_response().await.expect("a answered");
            (Instant::now(), response)
        },
        async {
            let response = call_b.await_response().await.expect("b answered");
            (Instant::now(), response)
        }
    );
    // Each workspace has its own session: both are its first prompt.
    assert!(response_text(&result_a.1).contains("prompts_seen=1"));
    assert!(response_text(&result_b.1).contains("prompts_seen=1"));
    // Overlap: each turn was streaming before the other one finished.
    let first_b = b.all_progress().iter().map(|event| event.at).min().expect("b streamed");
    let first_a = a.all_progress().iter().map(|event| event.at).min().expect("a streamed");
    assert!(first_b < result_a.0, "b streamed only after a finished");
    assert!(first_a < result_b.0, "a streamed only after b finished");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_on_one_workspace_are_serialized() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let first = client.start_call("consult", consult("fake:slow:800 first")).await;
    let first_token = token_of(&first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = client.start_call("consult", consult("fake:slow:800 second")).await;
    let second_token = token_of(&second);
    let first_text = response_text(&first.await_response().await.expect("first answered"));
    let second_text = response_text(&second.await_response().await.expect("second answered"));
    // As the client saw them (not when this task woke up, which a loaded
    // machine delays): the first turn's last progress.
    let first_done = client
        .progress_for(&first_token)
        .iter()
        .map(|event| event.at)
        .max()
        .expect("first streamed");
    assert!(first_text.contains("prompts_seen=1"), "{first_text}");
    assert!(second_text.contains("prompts_seen=2"), "{second_text}");
    let second_started = client
        .progress_for(&second_token)
        .iter()
        .map(|event| event.at)
        .min()
        .expect("second streamed");
    assert!(
        second_started > first_done,
        "the second turn streamed before the first one's last progress"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_every_field_the_spec_lists() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[("CODEX_FUSION_ALLOW_COMMANDS", "yes")]).await;
    let status = client.text("status", json!({})).await;
    let workspace = env.workspace.canonicalize().expect("workspace");
    assert!(
        status.contains(&format!("workspace: {}\n", workspace.display())),
        "{status}"
    );
    assert!(
        status.contains("guardian: external reads ask, writes ask, commands allowed"),
        "this connection's flags: {status}"
    );
    assert!(status.contains("session: none yet"), "{status}");
    assert!(status.contains("pending permission: none"), "{status}");
    assert!(status.contains("daemon: codex-fusiond "), "{status}");
    assert!(status.contains(", up "), "uptime: {status}");
    assert!(status.contains("recent codex-acp stderr: "), "{status}");
    // After a turn: the session is live, with its pid and turn count.
    client.text("consult", consult("hello")).await;
    let status = client.text("status", json!({})).await;
    assert!(status.contains("(fresh, 1 turn, last used"), "{status}");
    assert!(status.contains("codex-acp: ") && status.contains("(pid "), "{status}");
    // Another connection's flags are its own.
    let other = Client::start(&env, &[("CODEX_FUSION_ALLOW_EXTERNAL_READS", "yes")]).await;
    let status = other.text("status", json!({})).await;
    assert!(
        status.contains("guardian: external reads allowed, writes ask, commands ask"),
        "{status}"
    );
    other.close().await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_outlives_the_idle_timeout() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[("CODEX_FUSION_TURN_TIMEOUT_MS", "1000")]).await;
    let text = client
        .text("consult", consult("fake:permission:execute:late.txt"))
        .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    // Longer than the idle timeout: the wait for `permit` is not timed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let text = client.text("permit", json!({"decision": "allow"})).await;
    assert!(text.contains("ran touch late.txt"), "{text}");
    assert!(env.workspace.join("late.txt").exists());
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reaches_the_client_after_a_cancel() {
    let env = TestEnv::new();
    let mut raw = RawClient::initialized(&env).await;
    raw.send(json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{
        "name":"consult","arguments":{"question":"fake:slow:3000"},"_meta":{"progressToken":"tok-7"}}}))
        .await;
    // Wait for the turn to stream.
    loop {
        let value = raw.next(Duration::from_secs(10)).await.expect("progress arrives");
        if value["method"] == "notifications/progress" && value["params"]["progressToken"] == "tok-7" {
            break;
        }
    }
    raw.send(json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"test"}}))
        .await;
    // Bytes already in the pipe when the cancel was sent may still land.
    raw.drain(Duration::from_millis(150)).await;
    let late = raw.drain(Duration::from_secs(3)).await;
    let about_seven: Vec<&Value> = late
        .iter()
        .filter(|value| value["id"] == 7 || value["params"]["progressToken"] == "tok-7")
        .collect();
    assert!(about_seven.is_empty(), "late messages after cancel: {about_seven:?}");
    // The workspace is free again: a streaming turn with a token of its own.
    raw.send(json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{
        "name":"consult","arguments":{"question":"next fake:reason fake:slow:500"},
        "_meta":{"progressToken":"tok-8"}}}))
        .await;
    let mut streamed = 0;
    let response = loop {
        let value = raw.next(Duration::from_secs(10)).await.expect("the next turn answers");
        if value["id"] == 8 {
            break value;
        }
        if value["params"]["progressToken"] == "tok-8" {
            streamed += 1;
        }
    };
    assert!(
        response["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("fake answer"),
        "{response}"
    );
    assert!(streamed > 0, "the turn streamed before its result");
    // And after a final result, nothing more for that request either: no
    // second response, no progress on its token.
    let after = raw.drain(Duration::from_millis(800)).await;
    assert!(
        after
            .iter()
            .all(|value| value["id"] != 8 && value["params"]["progressToken"] != "tok-8"),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turn_log_records_guardian_decisions_and_the_answer() {
    let env = TestEnv::new();
    let log = env.root().join("turns.jsonl");
    let client = Client::start(&env, &[("CODEX_FUSION_LOG", log.to_str().expect("utf8"))]).await;
    client
        .text("consult", consult("fake:permission:execute:logged.txt"))
        .await;
    client.text("permit", json!({"decision": "allow"})).await;
    // The record is appended once the answer is on its way.
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("the turn is logged", Duration::from_secs(5), || !read().is_empty()).await;
    let records: Vec<Value> = read()
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    let record = records.last().expect("a record");
    assert_eq!(record["tool"], "consult");
    assert_eq!(record["stop_reason"], "end_turn");
    assert_eq!(record["guardian"][0]["kind"], "execute");
    assert_eq!(record["guardian"][0]["decision"], "ask → permit allow");
    assert!(
        record["text"]
            .as_str()
            .unwrap_or_default()
            .contains("ran touch logged.txt")
    );
    assert_eq!(record["usage"]["output_tokens"], 20);
    // Codex's share of the turn: its prompt, which stayed open through the
    // pause, within the whole turn.
    let duration = record["duration_ms"].as_u64().expect("duration_ms") as f64;
    let agent = record["agent_ms"].as_f64().expect("agent_ms");
    assert!(
        agent > 0.0 && agent <= duration + 1.0,
        "agent_ms {agent} of duration_ms {duration}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_after_the_paused_turn_was_dropped_says_why() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let text = client
        .text("consult", consult("fake:permission:execute:never.txt"))
        .await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    client.text("reset", json!({})).await;
    let result = client
        .call("permit", json!({"decision": "allow"}))
        .await
        .expect("answered");
    let text = result_text(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(text.contains("Nothing is waiting for permission"), "{text}");
    assert!(text.contains("the paused turn (touch never.txt) ended"), "{text}");
    assert!(text.contains("was reset"), "{text}");
    assert!(!env.workspace.join("never.txt").exists());
    client.close().await;
}
