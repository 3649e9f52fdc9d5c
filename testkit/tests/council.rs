//! Issue 15, the council: the fake agent as three agents (`codex`, `second`,
//! `third`), each its own process and its own session in the workspace,
//! through the real shim and daemon. A marker `fake@NAME:…` reaches only the
//! fake started with `--agent-name NAME`, so one member can pause or crash
//! while the others answer.

use std::time::Duration;

use codex_fusion_testkit::client::{prompts_seen, result_text};
use codex_fusion_testkit::{Client, TestEnv};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(20);

/// A world offering three fake agents; the default agent stays `codex`.
fn council_env() -> TestEnv {
    let mut env = TestEnv::new();
    let codex = env.fake_agent_command("--agent-name codex");
    let second = env.fake_agent_command("--agent-name second");
    let third = env.fake_agent_command("--agent-name third");
    env.set("CODEX_FUSION_ACP_COMMAND", &codex)
        .set("CODEX_FUSION_AGENTS", "codex,second,third")
        .set("CODEX_FUSION_AGENT_SECOND", &second)
        .set("CODEX_FUSION_AGENT_THIRD", &third);
    env
}

fn consult_all(question: &str) -> Value {
    json!({ "question": question, "agents": ["codex", "second", "third"] })
}

/// The body of agent `agent`'s section in a council result.
fn section<'a>(text: &'a str, agent: &str) -> &'a str {
    // The last two lines are the tally and the footer.
    let text = text.rsplitn(3, '\n').last().unwrap_or_default();
    let heading = format!("({agent}) ──\n");
    let start = text
        .find(&heading)
        .unwrap_or_else(|| panic!("no section for {agent}: {text}"))
        + heading.len();
    let rest = &text[start..];
    let end = rest.find("\n── ").unwrap_or(rest.len());
    &rest[..end]
}

async fn status_json(env: &TestEnv) -> Value {
    let output = env.cli(&["status", "--json"], None).await;
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_council_answers_with_a_section_per_agent_a_tally_and_one_footer() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    let (failed, text) = client
        .call_within(LIMIT, "consult", consult_all("Is the cache sound?"))
        .await;
    assert!(!failed, "{text}");
    for agent in ["codex", "second", "third"] {
        let body = section(&text, agent);
        assert!(
            body.contains("fake answer: prompts_seen=1 mode=read-only"),
            "{agent}: {body}"
        );
        assert!(body.contains("VERDICT: CONSENSUS"), "{agent}: {body}");
        assert!(!body.contains("— codex-fusion"), "no footer inside a section: {body}");
    }
    assert!(text.contains("\n3 CONSENSUS\n"), "{text}");
    assert_eq!(text.matches("— codex-fusion").count(), 1, "one footer: {text}");
    let footer = text.lines().last().expect("footer");
    assert!(footer.starts_with("— codex-fusion · council of 3 · "), "{footer}");
    for agent in ["codex", "second", "third"] {
        assert!(footer.contains(&format!(" · {agent} ")), "{footer}");
    }

    // Each agent keeps its own session: a second council call is each one's
    // second prompt, and a call naming no agent goes to the default alone.
    let (_, again) = client.call_within(LIMIT, "consult", consult_all("And now?")).await;
    for agent in ["codex", "second", "third"] {
        assert_eq!(prompts_seen(section(&again, agent)), 2, "{agent}: {again}");
    }
    let (_, alone) = client
        .call_within(LIMIT, "consult", json!({"question": "codex only"}))
        .await;
    assert_eq!(prompts_seen(&alone), 3, "{alone}");
    assert!(!alone.contains("── "), "one agent, no sections: {alone}");

    // `reply` goes to the agents of the last turn: here codex alone, then
    // the council again once a council spoke last.
    let (_, reply) = client.call_within(LIMIT, "reply", json!({"message": "why?"})).await;
    assert_eq!(prompts_seen(&reply), 4, "{reply}");
    client.call_within(LIMIT, "consult", consult_all("third round")).await;
    let (_, reply) = client.call_within(LIMIT, "reply", json!({"message": "agreed?"})).await;
    assert_eq!(prompts_seen(section(&reply, "second")), 4, "{reply}");
    assert_eq!(prompts_seen(section(&reply, "codex")), 6, "{reply}");

    // Three processes, one per agent, and status shows each agent's session.
    let status = status_json(&env).await;
    let agents: Vec<&str> = status["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .map(|workspace| workspace["agent"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(agents, ["codex", "second", "third"], "{status}");
    assert_eq!(status["agents"].as_array().map(Vec::len), Some(3), "{status}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_not_on_offer_is_an_invalid_argument_naming_those_that_are() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    let error = client
        .call("consult", json!({"question": "q", "agents": ["codex", "grok"]}))
        .await
        .expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains("agents: `grok` is not on offer; the agents on offer are codex, second, third"),
        "{message}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_paused_agent_does_not_hold_back_the_others_and_permit_finds_it() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    let result = tokio::time::timeout(
        LIMIT,
        client.call(
            "consult",
            consult_all("Check it: fake@second:permission:execute:made.txt"),
        ),
    )
    .await
    .expect("in time")
    .expect("answered");
    let text = result_text(&result);
    assert!(section(&text, "codex").contains("fake answer"), "{text}");
    assert!(section(&text, "third").contains("fake answer"), "{text}");
    let paused = section(&text, "second");
    assert!(
        paused.starts_with("🔐 second paused: it wants to run a command."),
        "{paused}"
    );
    assert!(text.contains("2 CONSENSUS · 1 PAUSED"), "{text}");
    let meta = result.meta.as_ref().expect("the pause is marked");
    let pause = codex_fusion_protocol::PauseMeta::read(&meta.0).expect("a pause");
    assert_eq!(pause.agent.as_deref(), Some("second"));

    // The only paused agent is found without being named.
    let (failed, answer) = client
        .call_within(LIMIT, "permit", json!({"decision": "allow", "id": pause.id}))
        .await;
    assert!(!failed, "{answer}");
    assert!(answer.contains("fake answer"), "{answer}");
    assert!(answer.contains("ran touch made.txt"), "{answer}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_agents_paused_permit_must_name_one_and_answers_only_it() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    let (_, text) = client
        .call_within(
            LIMIT,
            "consult",
            consult_all("fake@second:permission:execute:a.txt fake@third:permission:execute:b.txt"),
        )
        .await;
    assert!(text.contains("1 CONSENSUS · 2 PAUSED"), "{text}");
    let (failed, refused) = client.call_within(LIMIT, "permit", json!({"decision": "deny"})).await;
    assert!(failed, "{refused}");
    assert!(refused.contains("Several agents are paused here"), "{refused}");
    assert!(
        refused.contains("second (pause ") && refused.contains("third (pause "),
        "{refused}"
    );

    let (failed, third) = client
        .call_within(LIMIT, "permit", json!({"decision": "deny", "agent": "third"}))
        .await;
    assert!(!failed, "{third}");
    assert!(third.contains("fake answer"), "{third}");
    // Second is still paused, and now the only one: found unnamed.
    let status = status_json(&env).await;
    let paused: Vec<&str> = status["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .filter(|workspace| !workspace["pause_id"].is_null())
        .map(|workspace| workspace["agent"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(paused, ["second"], "{status}");
    let (failed, second) = client.call_within(LIMIT, "permit", json!({"decision": "allow"})).await;
    assert!(!failed, "{second}");
    assert!(second.contains("fake answer"), "{second}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_crashing_agent_costs_only_its_own_section() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    let (failed, text) = client
        .call_within(LIMIT, "consult", consult_all("fake@third:crash"))
        .await;
    assert!(!failed, "the others answered: {text}");
    assert!(section(&text, "codex").contains("fake answer"), "{text}");
    assert!(section(&text, "second").contains("fake answer"), "{text}");
    assert!(section(&text, "third").starts_with("⚠ "), "{text}");
    assert!(text.contains("2 CONSENSUS · 1 FAILED"), "{text}");
    // The crashed agent comes back on the next call; the others kept theirs.
    let (_, next) = client.call_within(LIMIT, "consult", consult_all("again")).await;
    assert_eq!(prompts_seen(section(&next, "codex")), 2, "{next}");
    assert!(section(&next, "third").contains("fake answer"), "{next}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_drops_every_agents_session_or_only_the_named_ones() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    client.call_within(LIMIT, "consult", consult_all("first")).await;
    let (_, text) = client.call_within(LIMIT, "reset", json!({"agents": ["second"]})).await;
    assert_eq!(
        text,
        "second's session for this workspace was dropped; the next call starts a fresh one."
    );
    let (_, next) = client.call_within(LIMIT, "consult", consult_all("second")).await;
    assert_eq!(prompts_seen(section(&next, "codex")), 2, "{next}");
    assert_eq!(prompts_seen(section(&next, "second")), 1, "fresh: {next}");
    assert_eq!(prompts_seen(section(&next, "third")), 2, "{next}");

    let (_, text) = client.call_within(LIMIT, "reset", json!({})).await;
    assert!(
        text.starts_with("Dropped the sessions of Codex, second, third"),
        "{text}"
    );
    let (_, after) = client.call_within(LIMIT, "consult", consult_all("third")).await;
    for agent in ["codex", "second", "third"] {
        assert_eq!(prompts_seen(section(&after, agent)), 1, "{agent}: {after}");
    }
    client.close().await;
}

/// Each agent's session survives a daemon killed outright (restored with
/// `session/load` on its own process), and Claude's SessionStart rules
/// apply to each: a new Claude session starts every agent afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agents_session_survives_a_daemon_restart_and_follows_session_start() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    client.call_within(LIMIT, "consult", consult_all("before")).await;
    client.close().await;
    env.kill_daemon().await;
    let client = Client::start(&env, &[]).await;
    let (_, after) = client.call_within(LIMIT, "consult", consult_all("after")).await;
    for agent in ["codex", "second", "third"] {
        assert_eq!(prompts_seen(section(&after, agent)), 2, "{agent} restored: {after}");
    }
    env.session_start(codex_fusion_protocol::control::SessionSource::Startup, "claude-new")
        .await;
    let (_, fresh) = client
        .call_within(LIMIT, "consult", consult_all("new Claude session"))
        .await;
    for agent in ["codex", "second", "third"] {
        assert_eq!(prompts_seen(section(&fresh, agent)), 1, "{agent} fresh: {fresh}");
    }
    client.close().await;
}

/// An agent that offers none of the modes in which it would ask before
/// acting is not run: a fake named `claude` offers Codex's modes, not
/// Claude's `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_an_asking_mode_is_refused_and_the_others_answer() {
    let mut env = council_env();
    let claude = env.fake_agent_command("--agent-name claude-lookalike");
    env.set("CODEX_FUSION_AGENTS", "codex,claude")
        .set("CODEX_FUSION_AGENT_CLAUDE", &claude);
    let client = Client::start(&env, &[]).await;
    let (failed, text) = client
        .call_within(
            LIMIT,
            "consult",
            json!({"question": "q", "agents": ["codex", "claude"]}),
        )
        .await;
    assert!(!failed, "codex answered: {text}");
    assert!(section(&text, "codex").contains("fake answer"), "{text}");
    let refused = section(&text, "claude");
    assert!(
        refused.contains("claude-lookalike offers none of the modes default")
            && refused.contains("so that Claude asks before acting, and does not run it"),
        "{refused}"
    );
    assert!(!refused.contains("fake answer"), "{refused}");
    client.close().await;
}

/// Codex CLI as the MCP client (its `clientInfo.name` is
/// `codex-mcp-client`) is not its own reviewer: a call naming no agent goes
/// to the first other agent on offer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_host_gets_another_agent_by_default() {
    let env = council_env();
    let mut client = codex_fusion_testkit::RawClient::start(&env).await;
    client
        .send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "codex-mcp-client", "title": "Codex", "version": "0.99.0"}}}))
        .await;
    client.response(0, LIMIT).await;
    client
        .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    client
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "consult", "arguments": {"question": "which agent?"}}}))
        .await;
    let response = client.response(1, LIMIT).await;
    let text = response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains("fake answer"), "{response}");
    let status = status_json(&env).await;
    let answered: Vec<(&str, u64)> = status["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .map(|workspace| {
            (
                workspace["agent"].as_str().unwrap_or_default(),
                workspace["turns"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert!(answered.contains(&("second", 1)), "second answered: {answered:?}");
    assert!(
        !answered.iter().any(|(agent, turns)| *agent == "codex" && *turns > 0),
        "{answered:?}"
    );
}

/// A council's `model` can name each agent's; a value one agent does not
/// offer is that agent's error, listing what it offers, and the others
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_takes_its_own_model_and_an_unknown_one_lists_that_agents_models() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    let (failed, text) = client
        .call_within(
            LIMIT,
            "consult",
            json!({"question": "q", "agents": ["codex", "second"], "model": "codex=fake-small,second=gpt-9"}),
        )
        .await;
    assert!(!failed, "codex answered: {text}");
    assert!(section(&text, "codex").contains("model=fake-small"), "{text}");
    let refused = section(&text, "second");
    assert!(
        refused.contains("model: expected one of fake-large, fake-small (what second offers), got \"gpt-9\""),
        "{refused}"
    );
    client.close().await;
}

/// The shell's `ask --agents` runs a council too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_a_council() {
    let env = council_env();
    let output = env
        .cli(&["ask", "consult", "from the shell", "--agents", "codex,third"], None)
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(section(&stdout, "codex").contains("fake answer"), "{stdout}");
    assert!(section(&stdout, "third").contains("fake answer"), "{stdout}");
    assert!(stdout.contains("2 CONSENSUS"), "{stdout}");
}

/// The result budget is shared: a short answer is shown whole, a long one
/// is cut to what is left, keeps its verdict line and names the file its
/// whole text is kept in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_member_answer_is_cut_to_its_share_and_names_its_file() {
    let env = council_env();
    let client = Client::start(&env, &[("CODEX_FUSION_MAX_RESULT_CHARS", "5000")]).await;
    let (failed, text) = client
        .call_within(LIMIT, "consult", consult_all("fake@second:big:30000"))
        .await;
    assert!(!failed, "{text}");
    assert!(text.chars().count() <= 5000, "{} chars", text.chars().count());
    for agent in ["codex", "third"] {
        let whole = section(&text, agent);
        assert!(
            whole.contains("fake answer") && whole.contains("VERDICT: CONSENSUS"),
            "{agent}: {whole}"
        );
    }
    let cut = section(&text, "second");
    assert!(cut.contains("[… answer cut at "), "{cut}");
    assert!(
        cut.contains("VERDICT: CONSENSUS — fake agrees"),
        "the verdict is kept: {cut}"
    );
    let path = cut
        .split("(full answer: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("the cut answer names its file: {cut}"));
    let full = std::fs::read_to_string(path).expect("the full answer");
    assert!(full.chars().count() > 30_000, "{} chars", full.chars().count());
    assert!(text.contains("3 CONSENSUS"), "{text}");
    client.close().await;
}

/// `reply` follows the last turn's agents that this connection still
/// offers: a client that now offers Codex alone replies to Codex alone,
/// not with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_keeps_only_the_last_agents_still_on_offer() {
    let env = council_env();
    let client = Client::start(&env, &[]).await;
    client
        .call_within(
            LIMIT,
            "consult",
            json!({"question": "q", "agents": ["codex", "second"]}),
        )
        .await;
    client.close().await;
    let codex_only = Client::start(&env, &[("CODEX_FUSION_AGENTS", "codex")]).await;
    let (failed, text) = codex_only.call_within(LIMIT, "reply", json!({"message": "and?"})).await;
    assert!(!failed, "{text}");
    assert_eq!(prompts_seen(&text), 2, "Codex alone, on its session: {text}");
    assert!(!text.contains("── "), "{text}");
    codex_only.close().await;
}

/// Another agent's commands inherit its environment, its API key included,
/// so `CODEX_FUSION_ALLOW_COMMANDS` does not let them run unasked; Codex's
/// commands, which run without credentials, it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_agents_commands_ask_even_with_commands_allowed() {
    let env = council_env();
    let client = Client::start(&env, &[("CODEX_FUSION_ALLOW_COMMANDS", "1")]).await;
    let (_, text) = client
        .call_within(
            LIMIT,
            "consult",
            json!({"question": "fake:permission:execute:made.txt", "agents": ["codex", "second"]}),
        )
        .await;
    assert!(section(&text, "codex").contains("ran touch made.txt"), "{text}");
    let paused = section(&text, "second");
    assert!(paused.starts_with("🔐 second paused"), "{text}");
    assert!(
        paused.contains("which would see this agent's own credentials"),
        "{paused}"
    );
    client.close().await;
}

/// An agent whose program is missing is told as itself: where it would be
/// got and which variable names its command, not codex-acp's package.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_says_which_variable_names_it() {
    let mut env = council_env();
    env.set("CODEX_FUSION_AGENT_THIRD", "/nonexistent/third-acp");
    let client = Client::start(&env, &[]).await;
    let (failed, text) = client
        .call_within(LIMIT, "consult", json!({"question": "q", "agents": ["codex", "third"]}))
        .await;
    assert!(!failed, "codex answered: {text}");
    let missing = section(&text, "third");
    assert!(
        missing.contains("third (agent `third`) is not installed: `/nonexistent/third-acp` does not exist. Set CODEX_FUSION_AGENT_THIRD"),
        "{missing}"
    );
    assert!(!missing.contains("codex-acp"), "{missing}");
    client.close().await;
}
