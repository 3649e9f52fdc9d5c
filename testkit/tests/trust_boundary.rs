//! The guardian's promise at its edges, against the real codex-acp (and the
//! real Codex sandbox it drives) behind the real daemon and shim, with
//! `model-mock` as the model: what a command's environment holds, what a
//! sandboxed command can read of credential stores, which tools the model
//! is offered, where codex-acp starts and what it resolves on PATH, and
//! that a codex-acp which cannot be confined is refused.

use std::time::Duration;

use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_testkit::real::{RealEnv, TEST_API_KEY, codex_acp};
use codex_fusion_testkit::{Client, TestEnv};
use serde_json::{Value, json};

/// Long enough for a cold start on a busy 2-core machine.
const CALL_LIMIT: Duration = Duration::from_secs(90);

/// Secrets the daemon's own environment holds (the shell that started it
/// exported them); none may reach a command Codex runs.
const PLANTED: [(&str, &str); 4] = [
    ("DB_PASSWORD", "planted-db-password-31337"),
    ("ANTHROPIC_API_KEY", "sk-ant-planted-31337"),
    ("GITHUB_TOKEN", "ghp_planted31337"),
    ("AWS_SECRET_ACCESS_KEY", "planted-aws-secret-31337"),
];

async fn call(client: &Client, tool: &str, arguments: Value) -> (bool, String) {
    client.call_within(CALL_LIMIT, tool, arguments).await
}

fn consult(question: &str) -> Value {
    json!({ "question": question })
}

/// A daemon of its own whose agent is the fake with `flags`, and a client
/// that has sent it one consult: the env, the client, and the consult's
/// (is error, text).
async fn fake_consult(flags: &str) -> (TestEnv, Client, (bool, String)) {
    let mut env = TestEnv::new();
    let command = env.fake_agent_command(flags);
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let client = Client::start(&env, &[]).await;
    let answer = call(&client, "consult", consult("Hi")).await;
    (env, client, answer)
}

/// What the model was sent back from the tools of its last turn request.
async fn last_tool_output(real: &RealEnv) -> String {
    let turns = real.mock.turns().await;
    let last = turns.last().expect("a turn request");
    last["tool_outputs"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_codex_runs_see_no_credential_sandboxed_or_escalated() {
    let mut real = RealEnv::new(true).await;
    for (name, value) in PLANTED {
        real.env.set(name, value);
    }
    real.env.set("CODEX_FUSION_ALLOW_COMMANDS", "1");
    // The daemon is started by a shell that exported the secrets.
    let _daemon = real.env.start_daemon().await;
    let client = Client::start(&real.env, &[]).await;
    // Its own environment, and that of every process it can see (codex-acp
    // and the app-server hold the key in theirs).
    let command = "env; for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f 2>/dev/null; done; echo PROC-SCANNED";
    for marker in ["mock:exec-sandboxed:", "mock:exec:"] {
        let marker = format!("{marker}{command}");
        let (error, text) = call(&client, "consult", consult(&format!("Show the environment.\n{marker}"))).await;
        assert!(!error, "{text}");
        let output = last_tool_output(&real).await;
        assert!(
            output.contains("PATH="),
            "{marker} ran and printed its environment: {output}"
        );
        for (name, value) in PLANTED {
            assert!(!output.contains(value), "{marker}: {name} reached the model: {output}");
        }
        assert!(
            !output.contains(TEST_API_KEY),
            "{marker}: the API key codex-acp signs in with reached the model: {output}"
        );
        assert!(!text.contains(TEST_API_KEY), "{text}");
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_search_is_offered_only_when_external_reads_are_allowed() {
    let real = RealEnv::new(true).await;
    let offered = |request: &Value| {
        request["body"]["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|tool| tool["type"] == "web_search"))
    };
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Anything new?")).await;
    assert!(!error, "{text}");
    let turns = real.mock.turns().await;
    let first = turns.last().expect("a turn request");
    assert!(
        first["body"]["tools"].is_array(),
        "the request lists its tools: {first}"
    );
    assert!(
        !offered(first),
        "web_search offered by default: {}",
        first["body"]["tools"]
    );
    client.close().await;
    // A client that allows external reads gets an agent that offers it (the
    // first agent, pinned without it, is not reused).
    let open = Client::start(&real.env, &[("CODEX_FUSION_ALLOW_EXTERNAL_READS", "1")]).await;
    let (error, text) = call(&open, "reply", json!({"message": "And on the web?"})).await;
    assert!(!error, "{text}");
    let turns = real.mock.turns().await;
    assert!(
        offered(turns.last().expect("a turn")),
        "web_search with external reads allowed"
    );
    open.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_stores_in_the_workspace_are_masked_even_from_approved_commands() {
    let mut real = RealEnv::new(true).await;
    let workspace = real.env.workspace.clone();
    std::fs::create_dir_all(workspace.join(".ssh")).expect("mkdir");
    std::fs::write(workspace.join(".ssh/id_ed25519"), "PLANTED-SSH-KEY-31337\n").expect("key");
    std::fs::create_dir_all(workspace.join("app")).expect("mkdir");
    std::fs::write(workspace.join("app/.env"), "PLANTED-DOTENV-31337\n").expect(".env");
    std::fs::write(workspace.join("app/.env.example"), "TEMPLATE-IS-FINE\n").expect(".env.example");
    std::fs::write(workspace.join("server.pem"), "PLANTED-PEM-31337\n").expect("pem");
    std::fs::write(workspace.join("notes.txt"), "ORDINARY-FILE\n").expect("notes");
    real.env.set("CODEX_FUSION_ALLOW_COMMANDS", "1");
    let client = Client::start(&real.env, &[]).await;
    let command = "cat notes.txt app/.env.example .ssh/id_ed25519 app/.env server.pem";
    for marker in ["mock:exec-sandboxed:", "mock:exec:"] {
        let (error, text) = call(&client, "consult", consult(&format!("Read them.\n{marker}{command}"))).await;
        assert!(!error, "{text}");
        let output = last_tool_output(&real).await;
        assert!(
            output.contains("ORDINARY-FILE"),
            "{marker}: ordinary files stay readable: {output}"
        );
        assert!(
            output.contains("TEMPLATE-IS-FINE"),
            "{marker}: templates stay readable: {output}"
        );
        for secret in ["PLANTED-SSH-KEY-31337", "PLANTED-DOTENV-31337", "PLANTED-PEM-31337"] {
            assert!(
                !output.contains(secret),
                "{marker}: {secret} reached the model: {output}"
            );
        }
        // The model (and so Claude) learns why: the read was refused.
        assert!(output.contains("Permission denied"), "{marker}: {output}");
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_acp_starts_outside_the_workspace_and_ignores_relative_path_entries() {
    let mut real = RealEnv::new(true).await;
    let workspace = real.env.workspace.clone();
    // A hostile repository ships its own `codex-acp` and hopes a relative
    // PATH entry, or the agent's working directory, picks it up.
    let hostile_bin = workspace.join("node_modules/.bin");
    std::fs::create_dir_all(&hostile_bin).expect("mkdir");
    let marker = real.env.root().join("hostile-ran");
    let script = format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display());
    let hostile = hostile_bin.join("codex-acp");
    std::fs::write(&hostile, script).expect("script");
    std::fs::set_permissions(&hostile, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let real_dir = codex_acp().parent().expect("bin dir").to_path_buf();
    let path = format!(
        ":node_modules/.bin:./node_modules/.bin:{}:/usr/local/bin:/usr/bin:/bin",
        real_dir.display()
    );
    real.env.set("PATH", &path);
    real.env.set("CODEX_FUSION_ACP_COMMAND", "codex-acp");
    let _daemon = real.env.start_daemon().await;
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Who answers?")).await;
    assert!(!error, "{text}");
    assert!(text.contains("Mock answer"), "{text}");
    assert!(!marker.exists(), "the workspace's codex-acp ran");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_path_in_the_agent_command_cannot_undo_the_confinement() {
    let mut real = RealEnv::new(true).await;
    // The plain codex binary, named by the user: the profile must still be
    // in force (the daemon's own CODEX_PATH wins).
    let install = codex_acp()
        .parent()
        .and_then(|bin| bin.parent())
        .expect("node_modules")
        .join("@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex");
    assert!(install.is_file(), "{} exists", install.display());
    let command = format!("CODEX_PATH={} {}", install.display(), codex_acp().display());
    real.env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let outside = real.env.dir("outside");
    std::fs::write(outside.join("secret.txt"), "OUTSIDE-SECRET-31337\n").expect("write");
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(
        &client,
        "consult",
        consult(&format!(
            "Read it.\nmock:exec-sandboxed:cat {}",
            outside.join("secret.txt").display()
        )),
    )
    .await;
    assert!(!error, "{text}");
    let output = last_tool_output(&real).await;
    assert!(
        !output.contains("OUTSIDE-SECRET-31337"),
        "the sandbox read outside: {output}"
    );
    let (_, status) = call(&client, "status", json!({})).await;
    assert!(
        status.contains("codex mode: permission-profile:codex-fusion"),
        "{status}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codex_acp_that_cannot_be_confined_is_refused_with_what_to_do() {
    let mut real = RealEnv::new(true).await;
    // codex-acp behind a script that does not answer `cli doctor`, so the
    // daemon cannot find the codex binary to confine.
    let script = real.env.root().join("codex-acp-no-doctor");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = cli ]; then exit 1; fi\nexec {} \"$@\"\n",
            codex_acp().display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    real.env.set("CODEX_FUSION_ACP_COMMAND", script.to_str().expect("utf8"));
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Hello?")).await;
    assert!(error, "an unconfined codex-acp answered: {text}");
    assert!(text.contains("could not confine"), "{text}");
    assert!(text.contains("codex-fusion doctor"), "says what to do: {text}");
    assert!(real.mock.turns().await.is_empty(), "nothing reached the model");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_agent_runs_read_only_and_status_says_it_is_not_confined() {
    let (env, client, (error, text)) = fake_consult("").await;
    assert!(!error, "{text}");
    let (_, status) = call(&client, "status", json!({})).await;
    assert!(status.contains("codex mode: read-only"), "{status}");
    assert!(status.contains("warning: reads are not confined"), "{status}");
    let shell = env.cli(&["status"], None).await;
    let shown = String::from_utf8_lossy(&shell.stdout);
    assert!(
        shown.contains("reads are not confined"),
        "codex-fusion status warns too: {shown}"
    );
    let json = env.cli(&["status", "--json"], None).await;
    let json = String::from_utf8_lossy(&json.stdout);
    assert!(json.contains("\"unconfined\""), "{json}");
    client.close().await;
    // The same fake calling itself codex-acp must be confined, and cannot
    // be: it is refused.
    let (_env, client, (error, text)) = fake_consult("--agent-name @agentclientprotocol/codex-acp").await;
    assert!(error, "{text}");
    assert!(text.contains("could not confine"), "{text}");
    client.close().await;
}

/// A `sh` command line that leaves `marker` behind when it runs.
fn leaves(marker: &std::path::Path) -> String {
    format!("touch {}; sleep 30", marker.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_own_codex_mcp_servers_and_hooks_are_not_loaded() {
    let real = RealEnv::new(true).await;
    let mcp_marker = real.env.root().join("user-mcp-ran");
    let config = std::fs::read_to_string(real.codex_home.join("config.toml")).expect("config");
    let extra = format!(
        "\n[mcp_servers.probe]\ncommand = \"sh\"\nargs = [\"-c\", {:?}]\n",
        leaves(&mcp_marker)
    );
    std::fs::write(real.codex_home.join("config.toml"), config + &extra).expect("config");
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Hello?")).await;
    assert!(!error, "{text}");
    assert!(text.contains("Mock answer"), "{text}");
    // MCP servers start with the session; give a late start a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!mcp_marker.exists(), "the user's Codex MCP server was started");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projects_codex_config_is_refused_unless_allowed() {
    let real = RealEnv::new(true).await;
    let workspace = real.env.workspace.clone();
    std::fs::create_dir_all(workspace.join(".git")).expect("git");
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Hello?")).await;
    assert!(!error, "a clean workspace works: {text}");
    // Then the repository gains rules that would let `touch` run without
    // asking, and an MCP server that would start outside the sandbox (a
    // `git pull`); the next session must see them.
    std::fs::create_dir_all(workspace.join(".codex/rules")).expect("rules");
    std::fs::write(
        workspace.join(".codex/rules/default.rules"),
        "prefix_rule(pattern=[\"touch\"], decision=\"allow\")\n",
    )
    .expect("rules");
    let marker = real.env.root().join("project-mcp-ran");
    std::fs::write(
        workspace.join(".codex/config.toml"),
        format!(
            "[mcp_servers.evil]\ncommand = \"sh\"\nargs = [\"-c\", {:?}]\n",
            leaves(&marker)
        ),
    )
    .expect("config");
    let (error, text) = call(&client, "reset", json!({})).await;
    assert!(!error, "{text}");
    let asked = real.mock.turns().await.len();
    let (error, text) = call(&client, "consult", consult("Make it.\nmock:exec:touch made-by-rule")).await;
    assert!(error, "Codex ran in a workspace with its own .codex config: {text}");
    assert!(text.contains(".codex/config.toml"), "names the file: {text}");
    assert!(
        text.contains("CODEX_FUSION_ALLOW_CODEX_CONFIG"),
        "says how to allow it: {text}"
    );
    client.close().await;
    // A fresh daemon start is refused the same way.
    let stopped = real.env.cli(&["stop"], None).await;
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = call(&client, "consult", consult("Make it.\nmock:exec:touch made-by-rule")).await;
    assert!(error && text.contains(".codex/config.toml"), "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "the project's MCP server ran");
    assert!(!workspace.join("made-by-rule").exists());
    assert_eq!(real.mock.turns().await.len(), asked, "nothing more reached the model");
    client.close().await;
    // Allowed on purpose, Codex runs there.
    let trusting = Client::start(&real.env, &[("CODEX_FUSION_ALLOW_CODEX_CONFIG", "1")]).await;
    let (error, text) = call(&trusting, "consult", consult("Hello again?")).await;
    assert!(!error, "{text}");
    trusting.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_directory_is_refused_as_a_workspace_by_every_entry() {
    let mut env = TestEnv::new();
    env.set("CODEX_FUSION_WORKSPACE", "/");
    // The MCP server Claude would start in `/`.
    let mut shim = tokio::process::Command::new(codex_fusion_testkit::binary("codex-fusion-mcp"));
    env.apply(&mut shim);
    shim.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(CALL_LIMIT, shim.output())
        .await
        .expect("the shim exits")
        .expect("the shim ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("root directory"), "{stderr}");
    assert!(env.daemon_pid().is_none(), "no daemon was started for `/`");
    // The shell.
    let output = env.cli(&["reset", "--workspace", "/"], None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("root directory"), "{stderr}");
}

/// Not the trust boundary, but the same fresh-state edge: a new user's first
/// two consults, in two workspaces at the same moment, on a `CODEX_HOME`
/// codex has never initialised (two codex processes creating its state
/// database at once failed one of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_consults_at_once_on_a_fresh_codex_home_both_answer() {
    let real = RealEnv::new(true).await;
    let other = real.env.dir("second-workspace");
    let _daemon = real.env.start_daemon().await;
    let second_env = [("CODEX_FUSION_WORKSPACE", other.to_str().expect("utf8"))];
    let (first, second) = tokio::join!(Client::start(&real.env, &[]), Client::start(&real.env, &second_env));
    let (a, b) = tokio::join!(
        call(&first, "consult", consult("First?")),
        call(&second, "consult", consult("Second?")),
    );
    assert!(!a.0 && a.1.contains("Mock answer"), "{}", a.1);
    assert!(!b.0 && b.1.contains("Mock answer"), "{}", b.1);
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_initialising_a_fresh_codex_home_is_tried_once_more() {
    let (env, client, (error, text)) = fake_consult(
        "--fail-first-start 'Error: failed to initialize sqlite state runtime under /home/x/.codex: locked'",
    )
    .await;
    assert!(!error, "the second start answered: {text}");
    assert!(text.contains("fake answer"), "{text}");
    assert!(
        env.daemon_logs().contains("starting it once more"),
        "the retry is logged"
    );
    client.close().await;
    // Any other start failure is not retried: it is reported.
    let (_env, client, (error, text)) = fake_consult("--fail-first-start 'Error: something else broke'").await;
    assert!(error, "{text}");
    assert!(text.contains("something else broke"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_started_in_the_home_directory_reads_none_of_its_credential_stores() {
    let mut real = RealEnv::new(true).await;
    // Claude started in `~`: the home directory is the workspace.
    let home = real.env.dir("home");
    for (path, content) in [
        (".ssh/id_ed25519", "HOME-SSH-KEY-31337"),
        (".aws/credentials", "HOME-AWS-31337"),
        (".config/gh/hosts.yml", "HOME-GH-TOKEN-31337"),
        (".netrc", "HOME-NETRC-31337"),
        (".claude/.credentials.json", "HOME-CLAUDE-31337"),
        ("projects/app/.env", "HOME-DOTENV-31337"),
        ("projects/app/README.md", "ORDINARY-README"),
    ] {
        let file = home.join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, format!("{content}\n")).expect("write");
    }
    real.env.set("HOME", home.to_str().expect("utf8"));
    real.env.set("CODEX_FUSION_WORKSPACE", home.to_str().expect("utf8"));
    real.env.set("CODEX_FUSION_ALLOW_COMMANDS", "1");
    let _daemon = real.env.start_daemon().await;
    let client = Client::start(&real.env, &[]).await;
    let command = "cat projects/app/README.md .ssh/id_ed25519 .aws/credentials .config/gh/hosts.yml .netrc .claude/.credentials.json projects/app/.env";
    for marker in ["mock:exec-sandboxed:", "mock:exec:"] {
        let (error, text) = call(&client, "consult", consult(&format!("Look around.\n{marker}{command}"))).await;
        assert!(!error, "{text}");
        let output = last_tool_output(&real).await;
        let wrappers: Vec<String> = std::fs::read_dir(real.env.state_dir.join("codex-wrapper"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().to_string_lossy().starts_with("codex-"))
                    .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            output.contains("ORDINARY-README"),
            "{marker}: {output}\nwrapper: {wrappers:?}"
        );
        assert!(
            !output.contains("31337"),
            "{marker}: a credential reached the model: {output}"
        );
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_file_created_in_the_home_after_codex_started_is_masked_from_the_next_turn() {
    // The home's own credential files are masked by exact path (a pattern
    // there would walk the whole home before every sandboxed command), so
    // one that appears later must move the session to an agent that masks it.
    let mut real = RealEnv::new(true).await;
    let home = real.env.dir("home");
    std::fs::write(home.join(".pgpass"), "HOME-PGPASS-31337\n").expect("write");
    real.env.set("CODEX_FUSION_ALLOW_COMMANDS", "1");
    let _daemon = real.env.start_daemon().await;
    let client = Client::start(&real.env, &[]).await;
    let netrc = home.join(".netrc");
    let pem = home.join("deploy.pem");
    let pgpass = home.join(".pgpass");
    let command = format!(
        "cat {} {} {} {}",
        real.env.workspace.join("README.md").display(),
        pgpass.display(),
        netrc.display(),
        pem.display()
    );
    std::fs::write(real.env.workspace.join("README.md"), "ORDINARY-README\n").expect("write");
    let (error, text) = call(
        &client,
        "consult",
        consult(&format!("First look.\nmock:exec:{command}")),
    )
    .await;
    assert!(!error, "{text}");
    let first = last_tool_output(&real).await;
    assert!(first.contains("ORDINARY-README"), "{first}");
    assert!(!first.contains("31337"), "a credential reached the model: {first}");
    let before = daemon_agents(&real).await;
    std::fs::write(&netrc, "machine x password HOME-NETRC-31337\n").expect("write");
    std::fs::write(&pem, "HOME-PEM-31337\n").expect("write");
    let (error, text) = call(&client, "consult", consult(&format!("Again.\nmock:exec:{command}"))).await;
    assert!(!error, "{text}");
    let second = last_tool_output(&real).await;
    assert!(second.contains("ORDINARY-README"), "the command ran: {second}");
    assert!(
        !second.contains("31337"),
        "a credential created later reached the model: {second}"
    );
    let after = daemon_agents(&real).await;
    assert_ne!(
        before, after,
        "the session moved to an agent started with the new stores"
    );
    client.close().await;
}

/// The pids of the daemon's agent processes, from `status`.
async fn daemon_agents(real: &RealEnv) -> Vec<u32> {
    match real.env.control(ControlRequest::Status { workspace: None }).await {
        ControlResponse::Status(status) => status.agents.iter().filter_map(|agent| agent.pid).collect(),
        other => panic!("status: {other:?}"),
    }
}
