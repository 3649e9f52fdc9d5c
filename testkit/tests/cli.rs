//! The shell side, end to end: the real `codex-fusion` binary against a real
//! `codex-fusiond` (and the fake agent) on a private socket — reset, status,
//! the SessionStart hook, ask with its permission pause, stop, install into a
//! temporary HOME, and `--help` everywhere.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use codex_fusion_protocol::control::DaemonStatus;
use codex_fusion_testkit::client::{consult, prompts_seen};
use codex_fusion_testkit::{Client, TestEnv, binary};
use serde_json::{Value, json};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Claude Code's SessionStart input for `cwd`.
fn session_start(cwd: &Path, source: &str) -> String {
    session_start_of(cwd, source, "claude-session-1")
}

/// Claude Code's SessionStart input for `cwd` and Claude session `claude`.
fn session_start_of(cwd: &Path, source: &str, claude: &str) -> String {
    json!({
        "session_id": claude,
        "transcript_path": "/tmp/transcript.jsonl",
        "cwd": cwd,
        "hook_event_name": "SessionStart",
        "source": source,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_from_the_shell_makes_the_next_consult_fresh() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    assert!(client.text("consult", consult("one")).await.contains("prompts_seen=1"));
    assert!(
        client
            .text("reply", json!({"message": "two"}))
            .await
            .contains("prompts_seen=2")
    );
    let output = env.cli(&["reset"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        format!(
            "Reset Codex's session for {}; its next tool call starts fresh",
            env.workspace.display()
        )
    );
    let text = client.text("consult", consult("three")).await;
    assert!(
        text.contains("prompts_seen=1"),
        "a fresh session after the shell reset: {text}"
    );
    let output = env
        .cli(
            &["reset", "--workspace", env.dir("elsewhere").to_str().expect("utf8")],
            None,
        )
        .await;
    assert!(output.status.success());
    assert!(stdout(&output).contains("nothing to reset"), "{}", stdout(&output));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_stop_without_a_daemon_succeed_and_status_says_how_to_start_it() {
    let env = TestEnv::new();
    let output = env.cli(&["reset"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("not running"), "{}", stdout(&output));
    let output = env.cli(&["stop"], None).await;
    assert!(output.status.success());
    assert!(stdout(&output).contains("nothing to stop"));
    let output = env.cli(&["status"], None).await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("codex-fusiond is not running"), "{message}");
    assert!(
        message.contains(&env.socket.display().to_string()),
        "names the socket: {message}"
    );
    assert!(
        message.contains("systemctl --user start codex-fusiond"),
        "says how to start it: {message}"
    );
    // A script gets an answer on stdout too, and the same exit code.
    let output = env.cli(&["status", "--json"], None).await;
    assert_eq!(output.status.code(), Some(1));
    let status: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(status, json!({"running": false}));
    assert!(env.daemon_pid().is_none(), "no control command starts the daemon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_on_clear_resets_and_on_compact_keeps_the_session() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    assert!(client.text("consult", consult("one")).await.contains("prompts_seen=1"));
    let output = env
        .cli(&["hook"], Some(&session_start(&env.workspace, "compact")))
        .await;
    assert!(output.status.success());
    assert!(output.stdout.is_empty(), "stdout would go into Claude's context");
    let message = stderr(&output);
    assert!(message.contains("Codex's session is kept"), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    let text = client.text("reply", json!({"message": "still there?"})).await;
    assert!(text.contains("prompts_seen=2"), "compact keeps the session: {text}");
    let output = env.cli(&["hook"], Some(&session_start(&env.workspace, "clear"))).await;
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(message.contains("fresh Codex session"), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    let text = client.text("consult", consult("after clear")).await;
    assert!(text.contains("prompts_seen=1"), "clear resets: {text}");
    // The other sources reach the daemon too, which decides what they mean;
    // the hook's side of the contract is one line, no stdout, exit 0.
    for source in ["startup", "resume"] {
        let output = env.cli(&["hook"], Some(&session_start(&env.workspace, source))).await;
        assert!(output.status.success());
        assert!(output.stdout.is_empty());
        let message = stderr(&output);
        assert!(message.contains(&format!("({source}): ")), "{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_with_garbage_or_empty_stdin_exits_0_with_one_line() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon().await;
    for input in ["", "this is not json", "{\"source\": 7}", "[]"] {
        let output = env.cli(&["hook"], Some(input)).await;
        assert_eq!(output.status.code(), Some(0), "{input:?}");
        assert!(output.stdout.is_empty(), "{input:?}");
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{input:?}: {message}");
        assert!(message.starts_with("codex-fusion hook: "), "{message}");
        assert!(message.contains("nothing done"), "{message}");
        assert!(!message.contains("panicked"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_without_a_daemon_exits_0_within_a_second_and_starts_nothing() {
    let env = TestEnv::new();
    let started = Instant::now();
    let output = env.cli(&["hook"], Some(&session_start(&env.workspace, "clear"))).await;
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(0));
    assert!(took < Duration::from_millis(1200), "took {took:?}");
    assert!(stderr(&output).contains("not running"), "{}", stderr(&output));
    assert!(env.daemon_pid().is_none(), "the hook never starts the daemon");
    assert!(!env.socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_never_waits_long_for_a_stdin_that_stays_open() {
    let env = TestEnv::new();
    let mut command = tokio::process::Command::new(binary("codex-fusion"));
    env.apply(&mut command);
    command
        .arg("hook")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn codex-fusion hook");
    // Keep stdin open and silent: the hook must give up on it by itself.
    let _stdin = child.stdin.take();
    let output = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("the hook returns on its own")
        .expect("output");
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(0));
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(stderr(&output).contains("stdin was not closed"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_parses_and_names_the_workspace() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    assert!(client.text("consult", consult("one")).await.contains("fake answer"));
    let output = env.cli(&["status", "--json"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let status: DaemonStatus = serde_json::from_slice(&output.stdout).expect("status --json is a DaemonStatus");
    assert_eq!(status.socket, env.socket);
    assert_eq!(Some(status.pid as i32), env.daemon_pid());
    let workspace = status
        .workspaces
        .iter()
        .find(|workspace| workspace.workspace == env.workspace)
        .expect("the workspace is listed");
    assert_eq!(workspace.turns, 1);
    assert!(workspace.session_id.is_some());
    let output = env.cli(&["status"], None).await;
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.starts_with("codex-fusiond "), "{text}");
    assert!(
        text.contains(&format!("workspace {}", env.workspace.display())),
        "{text}"
    );
    assert!(text.contains("1 done"), "{text}");
    let only = env
        .cli(
            &[
                "status",
                "--json",
                "--workspace",
                env.dir("other").to_str().expect("utf8"),
            ],
            None,
        )
        .await;
    assert!(only.status.success(), "{}", stderr(&only));
    let status: DaemonStatus = serde_json::from_slice(&only.stdout).expect("parses");
    assert!(
        status
            .workspaces
            .iter()
            .all(|workspace| workspace.workspace != env.workspace),
        "filtered"
    );
    let other = env.dir("other");
    let output = env
        .cli(&["status", "--workspace", other.to_str().expect("utf8")], None)
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("No Codex session for {}", other.display())),
        "{}",
        stdout(&output)
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_consult_starts_the_daemon_and_prints_the_answer_on_stdout() {
    let env = TestEnv::new();
    let output = env
        .cli(
            &["ask", "consult", "Is this design sound?", "--context", "a cache"],
            None,
        )
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("fake answer: prompts_seen=1 mode=read-only"), "{text}");
    assert!(text.contains("VERDICT: CONSENSUS — fake agrees"), "{text}");
    assert!(
        stderr(&output).is_empty(),
        "no spinner without a terminal: {}",
        stderr(&output)
    );
    assert!(env.daemon_pid().is_some(), "ask started the daemon");
    let output = env.cli(&["ask", "reply", "go on"], None).await;
    assert!(
        stdout(&output).contains("prompts_seen=2"),
        "same session: {}",
        stdout(&output)
    );
    let output = env.cli(&["ask", "status"], None).await;
    assert!(output.status.success());
    assert!(
        stdout(&output).contains(&env.workspace.display().to_string()),
        "{}",
        stdout(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_reads_dash_from_stdin_and_tool_errors_exit_1() {
    let env = TestEnv::new();
    let output = env.cli(&["ask", "consult", "-"], Some("question from stdin")).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("fake answer"));
    let output = env.cli(&["ask", "consult", ""], None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("must not be empty"), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("consult: consult:"),
        "the tool is named once: {}",
        stderr(&output)
    );
    let output = env
        .cli(&["ask", "review_diff", "--diff", "/definitely/missing.patch"], None)
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("/definitely/missing.patch"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_stops_at_a_permission_pause_without_a_terminal_and_permit_resumes_it() {
    let env = TestEnv::new();
    let made = env.workspace.join("made.txt");
    let output = env
        .cli(&["ask", "consult", "please fake:permission:execute:made.txt"], None)
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    assert!(text.contains("touch made.txt"), "{text}");
    let id = text
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("the pause shows its id: {text}"))
        .to_owned();
    let message = stderr(&output);
    assert!(
        message.contains(&format!("codex-fusion ask permit allow --id {id}")),
        "says how to resume that pause: {message}"
    );
    assert!(!made.exists(), "nothing runs before permit");
    let output = env.cli(&["ask", "permit", "allow", "--id", "pstale"], None).await;
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains(&id),
        "names the pause waiting: {}",
        stderr(&output)
    );
    assert!(!made.exists(), "a permit for another pause decides nothing");
    let output = env.cli(&["ask", "permit", "allow", "--id", &id], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("ran touch made.txt"), "{text}");
    assert!(text.contains("prompts_seen=1"), "the same turn resumed: {text}");
    assert!(made.exists());
}

/// On a terminal (a pseudo-terminal made by util-linux `script`): the
/// spinner shows the turn's reasoning on stderr, a `🔐` pause asks allow or
/// deny and a note, and the answer follows in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_on_a_terminal_spins_and_asks_at_a_pause() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    if std::process::Command::new("script").arg("--version").output().is_err() {
        panic!("this test needs util-linux `script` to make a pseudo-terminal");
    }
    let env = TestEnv::new();
    let made = env.workspace.join("tty.txt");
    let line = format!(
        "{} ask consult 'think fake:reason fake:slow:1500 fake:permission:execute:tty.txt'",
        codex_fusion_testkit::binary("codex-fusion").display()
    );
    let mut command = tokio::process::Command::new("script");
    env.apply(&mut command);
    command
        .args(["-qfec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env("COLUMNS", "100")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("script runs");
    let mut input = child.stdin.take().expect("stdin");
    let mut output = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut read_until = async |needle: &str, seen: &mut Vec<u8>| {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(seen).contains(needle) {
            let read = tokio::time::timeout(Duration::from_secs(20), output.read(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("no `{needle}` within 20 s: {}", String::from_utf8_lossy(seen)))
                .expect("read the terminal");
            assert!(
                read > 0,
                "the terminal closed before `{needle}`: {}",
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buffer[..read]);
        }
    };
    read_until("Allow Codex to do this?", &mut seen).await;
    let before_pause = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        before_pause.contains("💭"),
        "the spinner showed the reasoning: {before_pause}"
    );
    assert!(before_pause.contains("🔐 Codex paused"), "{before_pause}");
    let id = before_pause
        .lines()
        .find_map(|line| line.trim().strip_prefix("id: "))
        .unwrap_or_else(|| panic!("the pause shows its id: {before_pause}"))
        .trim()
        .to_owned();
    assert!(!made.exists(), "nothing runs before the answer");
    input.write_all(b"a\r").await.expect("answer");
    read_until("Note for Codex", &mut seen).await;
    // A note of `-` is a note, not "read stdin" (it once hit an
    // `unreachable!`).
    input.write_all(b"-\r").await.expect("a note");
    read_until("prompts_seen=1", &mut seen).await;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("ask ends after the answer")
        .expect("status");
    let all = String::from_utf8_lossy(&seen).into_owned();
    assert!(status.success(), "{status}: {all}");
    assert!(all.contains("ran touch tty.txt"), "{all}");
    assert!(made.exists(), "allowed on the terminal, the command ran");
    // The answer named the pause it was shown.
    let logs = env.daemon_logs();
    assert!(
        logs.lines().any(|line| line.contains("permission resolved by Claude")
            && line.contains(&format!("pause={id}"))
            && line.contains("named=true")),
        "the permit sent id {id}: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_a_running_ask_and_frees_the_workspace() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon().await;
    let mut command = tokio::process::Command::new(binary("codex-fusion"));
    env.apply(&mut command);
    command
        .args(["ask", "consult", "wait for me fake:wait-cancel"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("spawn ask");
    let pid = child.id().expect("running") as i32;
    let started = Instant::now();
    loop {
        let output = env.cli(&["status", "--json"], None).await;
        if let Ok(status) = serde_json::from_slice::<DaemonStatus>(&output.stdout)
            && status
                .workspaces
                .iter()
                .any(|workspace| workspace.running_turn.is_some())
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the turn never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let output = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("ask exits soon after Ctrl-C")
        .expect("output");
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stderr(&output).contains("cancelled consult"), "{}", stderr(&output));
    let started = Instant::now();
    let output = env.cli(&["ask", "consult", "after the cancel"], None).await;
    assert!(stdout(&output).contains("fake answer"), "{}", stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(5), "the workspace was freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_stops_the_daemon_and_removes_its_socket() {
    let env = TestEnv::new();
    let mut daemon = env.start_daemon().await;
    let output = env.cli(&["stop"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!("Stopped codex-fusiond (pid {})", daemon.pid())),
        "{}",
        stdout(&output)
    );
    assert!(!env.socket.exists(), "the socket is gone when stop returns");
    let status = tokio::time::timeout(Duration::from_secs(5), daemon.child.wait())
        .await
        .expect("the daemon exits")
        .expect("wait");
    assert!(
        status.success(),
        "a clean exit, which a service manager does not restart: {status}"
    );
}

/// A temporary HOME with a fake `claude` and `systemctl` on PATH that record
/// their arguments and remember what they were told, the way the real ones
/// would answer `mcp get` and `is-enabled` afterwards.
struct FakeHome {
    home: PathBuf,
    bin: PathBuf,
    claude_log: PathBuf,
    systemctl_log: PathBuf,
}

impl FakeHome {
    fn new(env: &mut TestEnv) -> FakeHome {
        let home = env.dir("home");
        let bin = env.dir("fake-bin");
        let state = env.dir("fake-state");
        let claude_log = state.join("claude.log");
        let systemctl_log = state.join("systemctl.log");
        write_script(
            &bin.join("claude"),
            &format!(
                r#"#!/bin/sh
echo "$*" >> '{log}'
case "$1 $2" in
  "mcp get") if [ -e '{state}/mcp' ]; then echo "codex-fusion: registered"; exit 0; fi
             echo "No MCP server found with name: $3" >&2; exit 1 ;;
  "mcp add") touch '{state}/mcp'
             printf '{{"mcpServers":{{"%s":{{"type":"stdio","command":"%s","args":[],"env":{{}}}}}}}}' "$3" "$7" > "$HOME/.claude.json" ;;
  "mcp remove") rm -f '{state}/mcp' "$HOME/.claude.json" ;;
esac
exit 0
"#,
                log = claude_log.display(),
                state = state.display()
            ),
        );
        write_script(
            &bin.join("systemctl"),
            &format!(
                r#"#!/bin/sh
echo "$*" >> '{log}'
case "$*" in
  "--user is-enabled codex-fusiond.service")
    if [ -e '{state}/enabled' ]; then echo enabled; exit 0; else echo disabled; exit 1; fi ;;
  "--user is-active codex-fusiond.service")
    if [ -e '{state}/active' ]; then echo active; exit 0; else echo inactive; exit 3; fi ;;
  "--user enable codex-fusiond.service") touch '{state}/enabled' ;;
  "--user start codex-fusiond.service") touch '{state}/active' ;;
esac
exit 0
"#,
                log = systemctl_log.display(),
                state = state.display()
            ),
        );
        env.set("HOME", home.to_str().expect("utf8"));
        env.set("XDG_CONFIG_HOME", home.join(".config").to_str().expect("utf8"));
        env.set("CLAUDE_CONFIG_DIR", "");
        env.set("PATH", &format!("{}:/usr/bin:/bin", bin.display()));
        FakeHome {
            home,
            bin,
            claude_log,
            systemctl_log,
        }
    }

    fn log(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_into_a_temporary_home_is_idempotent_and_keeps_the_users_settings() {
    let mut env = TestEnv::new();
    let fake = FakeHome::new(&mut env);
    assert!(fake.bin.join("claude").exists());
    let settings_path = fake.home.join(".claude/settings.json");
    std::fs::create_dir_all(settings_path.parent().expect("dir")).expect("mkdir");
    let original = r#"{
  "model": "opus",
  "permissions": { "allow": ["Bash(ls:*)"] },
  "hooks": { "SessionStart": [ { "matcher": "startup", "hooks": [ { "type": "command", "command": "echo hello" } ] } ] }
}
"#;
    std::fs::write(&settings_path, original).expect("write settings");

    // A dry run says what it would do and touches nothing.
    let output = env.cli(&["install", "--claude", "--dry-run"], None).await;
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("→ would write"), "{text}");
    assert!(text.contains("Dry run: nothing was changed."), "{text}");
    assert_eq!(std::fs::read_to_string(&settings_path).expect("read"), original);
    let unit_path = fake.home.join(".config/systemd/user/codex-fusiond.service");
    assert!(!unit_path.exists());
    assert!(
        !FakeHome::log(&fake.claude_log)
            .iter()
            .any(|line| line.starts_with("mcp add"))
    );

    let output = env.cli(&["install", "--claude"], None).await;
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let first = stdout(&output);
    let unit = std::fs::read_to_string(&unit_path).expect("the unit was written");
    assert!(
        unit.contains(&format!("ExecStart={}", binary("codex-fusiond").display())),
        "the real daemon path: {unit}"
    );
    assert!(
        unit.contains(&format!("Environment=\"CODEX_FUSION_SOCKET={}\"", env.socket.display())),
        "the service listens where this shell looks: {unit}"
    );
    assert!(
        unit.contains(&format!(
            "Environment=\"CODEX_FUSION_STATE_DIR={}\"",
            env.state_dir.display()
        )),
        "{unit}"
    );
    assert!(first.contains(&format!("wrote {}", unit_path.display())), "{first}");
    let systemctl = FakeHome::log(&fake.systemctl_log);
    for expected in [
        "--user daemon-reload",
        "--user enable codex-fusiond.service",
        "--user start codex-fusiond.service",
    ] {
        assert!(
            systemctl.iter().any(|line| line == expected),
            "{expected} in {systemctl:?}"
        );
    }
    let add = format!(
        "mcp add codex-fusion -s user -- {}",
        binary("codex-fusion-mcp").display()
    );
    assert_eq!(
        FakeHome::log(&fake.claude_log)
            .iter()
            .filter(|line| **line == add)
            .count(),
        1,
        "{:?}",
        FakeHome::log(&fake.claude_log)
    );
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(&settings_path).expect("read")).expect("valid JSON");
    assert_eq!(settings["model"], "opus");
    assert_eq!(settings["permissions"]["allow"][0], "Bash(ls:*)");
    let session_start = settings["hooks"]["SessionStart"].as_array().expect("array");
    assert_eq!(session_start.len(), 2, "{settings}");
    assert_eq!(
        session_start[0]["hooks"][0]["command"], "echo hello",
        "the user's hook stays"
    );
    let command = session_start[1]["hooks"][0]["command"].as_str().expect("command");
    assert!(command.ends_with("codex-fusion hook"), "{command}");
    let backup = fake.home.join(".claude/settings.json.codex-fusion-backup");
    assert_eq!(std::fs::read_to_string(&backup).expect("a backup"), original);
    assert!(
        first.contains(&backup.display().to_string()),
        "says where the backup is: {first}"
    );

    // The second run changes nothing and says so.
    let settings_after_first = std::fs::read_to_string(&settings_path).expect("read");
    let systemctl_calls = FakeHome::log(&fake.systemctl_log).len();
    let output = env.cli(&["install", "--claude"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let second = stdout(&output);
    assert!(second.contains("Nothing to change"), "{second}");
    assert!(!second.contains('✓'), "{second}");
    assert_eq!(
        std::fs::read_to_string(&settings_path).expect("read"),
        settings_after_first
    );
    assert_eq!(
        std::fs::read_to_string(&backup).expect("backup"),
        original,
        "the backup keeps the original"
    );
    assert_eq!(std::fs::read_to_string(&unit_path).expect("unit"), unit);
    assert_eq!(
        FakeHome::log(&fake.claude_log)
            .iter()
            .filter(|line| line.starts_with("mcp add"))
            .count(),
        1
    );
    let new_calls: Vec<String> = FakeHome::log(&fake.systemctl_log)[systemctl_calls..].to_vec();
    assert!(
        new_calls
            .iter()
            .all(|line| line.contains("is-") || line.contains("show-environment")),
        "only queries the second time: {new_calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_without_claude_or_systemd_says_what_to_run() {
    let mut env = TestEnv::new();
    let fake = FakeHome::new(&mut env);
    std::fs::remove_file(fake.bin.join("claude")).expect("no claude");
    // A systemctl whose user manager is unreachable, as in a container.
    write_script(
        &fake.bin.join("systemctl"),
        "#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n",
    );
    let output = env.cli(&["install", "--claude"], None).await;
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("systemctl --user enable --now codex-fusiond"), "{text}");
    assert!(
        text.contains(&format!(
            "claude mcp add codex-fusion -s user -- {}",
            binary("codex-fusion-mcp").display()
        )),
        "{text}"
    );
    let settings = std::fs::read_to_string(fake.home.join(".claude/settings.json")).expect("created");
    assert!(settings.contains("codex-fusion hook"), "{settings}");
    assert!(
        !fake.home.join(".claude/settings.json.codex-fusion-backup").exists(),
        "nothing to back up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_every_check_and_fails_without_a_codex_login() {
    let mut env = TestEnv::new();
    let fake = FakeHome::new(&mut env);
    env.set("OPENAI_API_KEY", "")
        .set("CODEX_API_KEY", "")
        .set("CODEX_HOME", "");
    let _daemon = env.start_daemon().await;
    let output = env.cli(&["doctor"], None).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("✓ codex-acp: "), "{text}");
    assert!(text.contains("✗ Codex login: "), "{text}");
    assert!(text.contains("fix: run `codex login`"), "{text}");
    assert!(text.contains("✓ socket: "), "{text}");
    assert!(text.contains("✓ daemon: codex-fusiond "), "{text}");
    assert!(text.contains("✗ service: not installed"), "{text}");
    assert!(text.contains("✗ Claude Code MCP server: "), "{text}");
    assert!(text.contains("✗ Claude Code hook: "), "{text}");
    assert!(text.contains("1 essential check failed"), "{text}");

    // With a login and after install, everything is green.
    std::fs::create_dir_all(fake.home.join(".codex")).expect("mkdir");
    std::fs::write(fake.home.join(".codex/auth.json"), "{}").expect("auth");
    std::fs::write(
        fake.home.join(".claude.json"),
        json!({"mcpServers": {"codex-fusion": {"command": binary("codex-fusion-mcp")}}}).to_string(),
    )
    .expect("claude.json");
    let install = env.cli(&["install", "--claude"], None).await;
    assert!(install.status.success(), "{}", stdout(&install));
    // The fake agent answers no `cli doctor --json`, so reads cannot be
    // confined; an agent that does (as codex-acp) makes that check green.
    let output = env.cli(&["doctor"], None).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("✗ read confinement: not in force"), "{text}");
    let command = codex_like_agent(&env);
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let output = env.cli(&["doctor"], None).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!text.contains('✗'), "{text}");
    assert!(
        text.contains("✓ Claude Code MCP server: registered as `codex-fusion`, user scope"),
        "{text}"
    );
    assert!(text.contains("✓ service: "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_has_help_and_usage_errors_exit_2() {
    let env = TestEnv::new();
    let commands: &[&[&str]] = &[
        &[],
        &["reset"],
        &["status"],
        &["hook"],
        &["doctor"],
        &["install"],
        &["ask"],
        &["stop"],
        &["ask", "consult"],
        &["ask", "review_plan"],
        &["ask", "review_diff"],
        &["ask", "brainstorm"],
        &["ask", "explore"],
        &["ask", "reply"],
        &["ask", "permit"],
        &["ask", "reset"],
        &["ask", "status"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let output = env.cli(&args, None).await;
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", stderr(&output));
        assert!(
            stdout(&output).contains("Usage: codex-fusion"),
            "{args:?}: {}",
            stdout(&output)
        );
    }
    for bad in [
        &["frobnicate"][..],
        &["status", "--jsn"],
        &["ask", "permit", "maybe"],
        &["ask", "nope"],
        &[],
    ] {
        let output = env.cli(bad, None).await;
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {}", stderr(&output));
    }
    assert!(env.daemon_pid().is_none(), "help starts nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_script_shows_its_plan_in_a_dry_run() {
    let env = TestEnv::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install.sh");
    let prefix = env.dir("prefix");
    let run = |args: &[&str]| {
        std::process::Command::new("sh")
            .arg(&script)
            .args(args)
            .output()
            .expect("run scripts/install.sh")
    };
    let output = run(&["--dry-run", "--prefix", prefix.to_str().expect("utf8")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("would run: cargo build --release"), "{text}");
    for binary in ["codex-fusiond", "codex-fusion-mcp", "codex-fusion"] {
        assert!(
            text.contains(&format!("{}/bin/{binary}", prefix.display())),
            "{binary} goes to the prefix: {text}"
        );
    }
    assert!(text.contains("codex-fusion install --claude"), "{text}");
    assert!(
        std::fs::read_dir(&prefix).expect("prefix").next().is_none(),
        "a dry run installs nothing"
    );
    assert!(
        [
            "codex-fusion stop",
            "systemctl --user try-restart",
            "launchctl kickstart -k"
        ]
        .iter()
        .any(|restart| text.contains(restart)),
        "a running daemon is restarted with the new binaries: {text}"
    );
    let output = run(&["--no-claude", "--dry-run", "--prefix", prefix.to_str().expect("utf8")]);
    assert!(!stdout(&output).contains("--claude"), "{}", stdout(&output));
    assert_eq!(run(&["--help"]).status.code(), Some(0));
    assert_eq!(run(&["--frobnicate"]).status.code(), Some(2));

    // r10: a relative --prefix is relative to where the script was started
    // (it was taken relative to the checkout), and the binaries are taken
    // from cargo's own target directory.
    let target = env.dir("elsewhere-target");
    let output = std::process::Command::new("sh")
        .arg(&script)
        .args(["--dry-run", "--prefix", "rel"])
        .current_dir(env.root())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run scripts/install.sh");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "install -m 0755 {}/release/codex-fusiond {}/rel/bin/codex-fusiond",
            target.display(),
            env.root().display()
        )),
        "{text}"
    );
}

/// r1: with the daemon down, `reset` and the hook did nothing, and the next
/// daemon restored the old session from its state file. Now they write the
/// change there, and the next daemon starts from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_reset_and_the_hook_while_the_daemon_is_down_reach_the_next_daemon() {
    let env = TestEnv::new();
    let hook = |source: &str, claude: &str| {
        let input = session_start_of(&env.workspace, source, claude);
        let env = &env;
        async move {
            let output = env.cli(&["hook"], Some(&input)).await;
            assert_eq!(output.status.code(), Some(0));
            assert!(output.stdout.is_empty(), "nothing on Claude's context");
            let message = stderr(&output);
            assert_eq!(message.lines().count(), 1, "{message}");
            message
        }
    };
    let stop = || async {
        let output = env.cli(&["stop"], None).await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(!env.socket.exists(), "stopped");
    };

    // Claude session A talks to Codex twice.
    let client = Client::start(&env, &[]).await;
    hook("startup", "claude-a").await;
    assert_eq!(prompts_seen(&client.text("consult", consult("a1")).await), 1);
    assert_eq!(prompts_seen(&client.text("reply", json!({"message": "a2"})).await), 2);
    client.close().await;
    stop().await;

    // `/clear` while no daemon runs: the next daemon starts fresh.
    let message = hook("clear", "claude-b").await;
    assert!(message.contains("not running; recorded in"), "{message}");
    assert!(message.contains("fresh Codex session"), "{message}");
    assert!(!env.socket.exists(), "the hook never starts the daemon");
    let client = Client::start(&env, &[]).await;
    assert_eq!(
        prompts_seen(&client.text("consult", consult("b1")).await),
        1,
        "the cleared session is not restored"
    );
    client.close().await;
    stop().await;

    // `--resume` of A while no daemon runs: the next daemon restores A's session.
    let message = hook("resume", "claude-a").await;
    assert!(message.contains("re-attaches Codex session"), "{message}");
    let client = Client::start(&env, &[]).await;
    assert_eq!(
        prompts_seen(&client.text("reply", json!({"message": "a3"})).await),
        3,
        "back in A's session"
    );
    client.close().await;
    stop().await;

    // `codex-fusion reset` while no daemon runs.
    let output = env.cli(&["reset"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("not running; removed Codex session"), "{text}");
    let client = Client::start(&env, &[]).await;
    assert_eq!(
        prompts_seen(&client.text("consult", consult("after reset")).await),
        1,
        "the reset session is not restored"
    );
    client.close().await;
}

/// r3: the hook sent its request only after the hello reply, so a daemon
/// slower than the hook's budget never got it, although the hook said the
/// reset would complete. Now the request goes with the hello, and the hook
/// says it was delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_a_daemon_too_slow_for_the_hook_still_gets_its_session_start() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    assert_eq!(prompts_seen(&client.text("consult", consult("one")).await), 1);
    let pid = Pid::from_raw(env.daemon_pid().expect("a daemon"));
    /// Lets the daemon run again however the test ends.
    struct Resume(Pid);
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = kill(self.0, Signal::SIGCONT);
        }
    }
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    let resume = Resume(pid);
    let started = Instant::now();
    let output = env
        .cli(
            &["hook"],
            Some(&session_start_of(&env.workspace, "clear", "claude-late")),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(message.contains("was delivered"), "{message}");
    drop(resume);
    // The daemon serves the request the hook delivered, though the hook
    // left before the reply: Claude's /clear is not lost.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.workspace_status().await.claude_session_id.as_deref() != Some("claude-late") {
        assert!(
            Instant::now() < deadline,
            "the delivered SessionStart was never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        prompts_seen(&client.text("consult", consult("after the clear")).await),
        1
    );
    client.close().await;
}

/// Something that holds the socket like a wedged daemon: it accepts nothing
/// and answers nothing.
fn wedged_socket(env: &TestEnv) -> std::os::unix::net::UnixListener {
    let dir = env.socket.parent().expect("socket dir");
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::net::UnixListener::bind(&env.socket).expect("bind")
}

fn write_lock(env: &TestEnv, pid: u32) {
    let mut lock = env.socket.clone().into_os_string();
    lock.push(".lock");
    std::fs::write(lock, pid.to_string()).expect("lock file");
}

/// r4: `stop` on a daemon that does not answer suggested `codex-fusion
/// stop`. Now it sends SIGTERM to the pid in the lock file, once the process
/// table says it is a codex-fusiond, and waits for it to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r4_stop_signals_a_daemon_that_does_not_answer() {
    let env = TestEnv::new();
    let _socket = wedged_socket(&env);

    // A pid that is not a codex-fusiond is never signalled.
    let mut stranger = tokio::process::Command::new("sleep")
        .arg("60")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sleep");
    write_lock(&env, stranger.id().expect("pid"));
    let output = env.cli(&["stop"], None).await;
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let message = stderr(&output);
    assert!(message.contains("is `sleep` now, not codex-fusiond"), "{message}");
    assert!(message.contains("pgrep"), "says how to find it: {message}");
    assert!(stranger.try_wait().expect("wait").is_none(), "the stranger lives");
    stranger.kill().await.expect("kill");

    // A process named codex-fusiond (a script of that name) is.
    let fake = env.dir("fake-daemon").join("codex-fusiond");
    write_script(&fake, "#!/bin/sh\nwhile :; do sleep 1; done\n");
    // Its `sleep` outlives a SIGTERM by up to a second: keep it off the
    // test's output.
    let mut daemon = tokio::process::Command::new(&fake)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the fake daemon");
    let pid = daemon.id().expect("pid");
    write_lock(&env, pid);
    let reaped = tokio::spawn(async move { daemon.wait().await });
    let started = Instant::now();
    let output = env.cli(&["stop"], None).await;
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(
        stdout(&output).contains(&format!("Stopped codex-fusiond (pid {pid})")),
        "{}",
        stdout(&output)
    );
    let message = stderr(&output);
    assert!(message.contains("did not answer the stop request"), "{message}");
    assert!(message.contains("SIGTERM"), "{message}");
    let status = reaped.await.expect("join").expect("wait");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(15), "{status}");
}

/// r2: `install` asked a daemon on the socket for its pid with no deadline
/// and hung forever on a wedged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_install_does_not_hang_on_a_wedged_socket() {
    let mut env = TestEnv::new();
    let _fake = FakeHome::new(&mut env);
    let _socket = wedged_socket(&env);
    let started = Instant::now();
    let output = env.cli(&["install"], None).await;
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("a daemon holds the socket") && text.contains("but does not answer"),
        "{text}"
    );
    assert!(text.contains("codex-fusion stop"), "{text}");
}

/// r12: `review_diff --diff -` with nothing on stdin ran a whole turn
/// reviewing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r12_an_empty_diff_is_refused_without_a_turn() {
    let env = TestEnv::new();
    let output = env.cli(&["ask", "review_diff", "--diff", "-"], Some(" \n\n")).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the diff is empty; leave out --diff to let Codex inspect git itself"),
        "{}",
        stderr(&output)
    );
    assert!(env.daemon_pid().is_none(), "nothing was started for it");
}

/// r11: after the binaries moved, install kept the old MCP registration
/// (matched by name only) and the old hook, and doctor called both fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_moved_binaries_are_reported_by_doctor_and_repaired_by_install() {
    let mut env = TestEnv::new();
    let fake = FakeHome::new(&mut env);
    std::fs::write(
        fake.home.join(".claude.json"),
        json!({"mcpServers": {"codex-fusion": {"type": "stdio", "command": "/old/place/codex-fusion-mcp", "args": []}}})
            .to_string(),
    )
    .expect("claude.json");
    let settings_path = fake.home.join(".claude/settings.json");
    std::fs::create_dir_all(settings_path.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &settings_path,
        json!({"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "/old/place/codex-fusion hook"}]}]}})
            .to_string(),
    )
    .expect("settings");

    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(
        text.contains("✗ Claude Code MCP server: registered as `codex-fusion`, user scope (~/.claude.json), but it runs `/old/place/codex-fusion-mcp`, which does not exist"),
        "{text}"
    );
    assert!(
        text.contains("runs `/old/place/codex-fusion hook`, but `/old/place/codex-fusion` does not exist"),
        "{text}"
    );

    let output = env.cli(&["install", "--claude"], None).await;
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("re-registered the MCP server"), "{text}");
    assert!(text.contains("pointed the SessionStart hook"), "{text}");
    let calls = FakeHome::log(&fake.claude_log);
    let add = format!(
        "mcp add codex-fusion -s user -- {}",
        binary("codex-fusion-mcp").display()
    );
    let remove = calls
        .iter()
        .position(|line| line == "mcp remove codex-fusion -s user")
        .unwrap_or_else(|| panic!("removed first: {calls:?}"));
    assert!(calls[remove..].contains(&add), "then added again: {calls:?}");
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(&settings_path).expect("read")).expect("json");
    let hooks = settings["hooks"]["SessionStart"].as_array().expect("array");
    assert_eq!(hooks.len(), 1, "repointed, not added: {settings}");
    let command = hooks[0]["hooks"][0]["command"].as_str().expect("command");
    assert!(
        command.ends_with("codex-fusion hook") && !command.starts_with("/old"),
        "{command}"
    );

    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(text.contains("✓ Claude Code MCP server: "), "{text}");
    assert!(text.contains("✓ Claude Code hook: "), "{text}");
    let output = env.cli(&["install", "--claude"], None).await;
    assert!(stdout(&output).contains("Nothing to change"), "{}", stdout(&output));
}

/// Issue 16: the hook was registered as `codex-fusion hook`, which runs only
/// where Claude Code's PATH finds the binary; a server or hook run by name
/// is flagged by doctor and registered by absolute path by install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_or_server_run_by_name_is_flagged_and_install_registers_it_by_path() {
    let mut env = TestEnv::new();
    let fake = FakeHome::new(&mut env);
    std::fs::write(
        fake.home.join(".claude.json"),
        json!({"mcpServers": {"codex-fusion": {"type": "stdio", "command": "codex-fusion-mcp", "args": []}}})
            .to_string(),
    )
    .expect("claude.json");
    let settings_path = fake.home.join(".claude/settings.json");
    std::fs::create_dir_all(settings_path.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &settings_path,
        json!({"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "codex-fusion hook"}]}]}})
            .to_string(),
    )
    .expect("settings");

    // Not on PATH at all: missing, and said so.
    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(text.contains("runs `codex-fusion-mcp`, which is not on PATH"), "{text}");
    assert!(
        text.contains("runs `codex-fusion hook`, but `codex-fusion` is not on PATH"),
        "{text}"
    );

    // On this PATH, but only by name.
    for name in ["codex-fusion-mcp", "codex-fusion"] {
        std::os::unix::fs::symlink(binary(name), fake.bin.join(name)).expect("link");
    }
    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(
        text.contains("✗ Claude Code MCP server: registered as `codex-fusion`, user scope (~/.claude.json), running `codex-fusion-mcp` by name"),
        "{text}"
    );
    assert!(text.contains("runs `codex-fusion hook` by name"), "{text}");
    assert!(text.contains("registers it by absolute path"), "{text}");

    let output = env.cli(&["install", "--claude"], None).await;
    assert!(output.status.success(), "{}\n{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("re-registered the MCP server"), "{text}");
    assert!(text.contains("pointed the SessionStart hook"), "{text}");
    let add = format!(
        "mcp add codex-fusion -s user -- {}",
        binary("codex-fusion-mcp").display()
    );
    assert!(
        FakeHome::log(&fake.claude_log).contains(&add),
        "{:?}",
        FakeHome::log(&fake.claude_log)
    );
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(&settings_path).expect("read")).expect("json");
    let hooks = settings["hooks"]["SessionStart"].as_array().expect("array");
    assert_eq!(hooks.len(), 1, "repointed, not added: {settings}");
    assert_eq!(
        hooks[0]["hooks"][0]["command"],
        format!("{} hook", binary("codex-fusion").display())
    );
    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(text.contains("✓ Claude Code MCP server: "), "{text}");
    assert!(text.contains("✓ Claude Code hook: "), "{text}");
}

/// r13: an invalid settings.json was reported as "no hook registered".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_doctor_says_which_settings_file_is_not_json() {
    let mut env = TestEnv::new();
    let fake = FakeHome::new(&mut env);
    let settings_path = fake.home.join(".claude/settings.json");
    std::fs::create_dir_all(settings_path.parent().expect("dir")).expect("mkdir");
    std::fs::write(&settings_path, "{\n  \"hooks\": oops\n}\n").expect("settings");
    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(
        text.contains(&format!(
            "✗ Claude Code hook: {} is not valid JSON (2:12)",
            settings_path.display()
        )),
        "{text}"
    );
}

/// r6: doctor took a leading `NAME=value` word of CODEX_FUSION_ACP_COMMAND
/// for the program, and knew API keys only from its own environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r6_doctor_reads_the_agent_commands_environment_and_the_mcp_servers() {
    let mut env = TestEnv::new();
    let fake = FakeHome::new(&mut env);
    env.set("OPENAI_API_KEY", "")
        .set("CODEX_API_KEY", "")
        .set("CODEX_HOME", "");
    let command = format!("OPENAI_API_KEY=sk-secret-1 {}", env.fake_agent_command(""));
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let output = env.cli(&["doctor"], None).await;
    let text = stdout(&output);
    assert!(text.contains("✓ codex-acp: "), "{text}");
    assert!(
        text.contains("✓ Codex login: API key in OPENAI_API_KEY, set in CODEX_FUSION_ACP_COMMAND"),
        "{text}"
    );
    assert!(!text.contains("sk-secret"), "never shows the key: {text}");

    let command = env.fake_agent_command("");
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    std::fs::write(
        fake.home.join(".claude.json"),
        json!({"mcpServers": {"codex-fusion": {"command": binary("codex-fusion-mcp"), "env": {"CODEX_API_KEY": "sk-secret-2"}}}})
            .to_string(),
    )
    .expect("claude.json");
    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(
        text.contains("✓ Codex login: API key in CODEX_API_KEY, set in the env of the MCP server `codex-fusion`"),
        "{text}"
    );
    assert!(!text.contains("sk-secret"), "{text}");
}

/// A stand-in for codex-acp that answers `cli doctor --json` as codex-acp
/// does (naming an existing codex executable) and otherwise runs the fake.
fn codex_like_agent(env: &TestEnv) -> String {
    let script = env.dir("codex-like").join("codex-acp");
    write_script(
        &script,
        &format!(
            r#"#!/bin/sh
if [ "$*" = "cli doctor --json" ]; then
  printf '{{"checks":{{"installation":{{"details":{{"current executable":"%s"}}}}}}}}' '{codex}'
  exit 0
fi
exec {fake} "$@"
"#,
            codex = binary("fake-codex-acp").display(),
            fake = env.fake_agent_command("")
        ),
    );
    script.display().to_string()
}

/// Issue 13: a project's `.mcp.json` that turns on `CODEX_FUSION_ALLOW_*`
/// for our server (a repository granting itself permissions) was not
/// mentioned, nor was an agent whose reads cannot be confined. doctor now
/// warns about both and says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_about_a_project_granting_itself_permissions_and_about_unconfined_reads() {
    let mut env = TestEnv::new();
    let _fake = FakeHome::new(&mut env);
    let mcp_json = env.workspace.join(".mcp.json");
    std::fs::write(
        &mcp_json,
        json!({"mcpServers": {
            "codex-fusion": {"command": "codex-fusion-mcp", "env": {
                "CODEX_FUSION_ALLOW_WRITES": "1",
                "CODEX_FUSION_ALLOW_COMMANDS": "Yes",
                "CODEX_FUSION_ALLOW_EXTERNAL_READS": "0"
            }},
            "other": {"command": "other-server", "env": {"CODEX_FUSION_ALLOW_COMMANDS": "1"}}
        }})
        .to_string(),
    )
    .expect("write .mcp.json");
    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(
        text.contains(&format!(
            "✗ project permissions: {} turns on CODEX_FUSION_ALLOW_WRITES, CODEX_FUSION_ALLOW_COMMANDS for the MCP server `codex-fusion`; a project's .mcp.json comes with the repository",
            mcp_json.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fix: delete CODEX_FUSION_ALLOW_WRITES, CODEX_FUSION_ALLOW_COMMANDS from `env` in {}",
            mcp_json.display()
        )),
        "{text}"
    );
    assert!(text.contains("✗ read confinement: not in force: "), "{text}");
    assert!(text.contains("fix: run codex-acp itself"), "{text}");

    // Switches set off, and an agent that names its codex binary: both quiet.
    std::fs::write(
        &mcp_json,
        json!({"mcpServers": {"codex-fusion": {"command": "codex-fusion-mcp", "env": {"CODEX_FUSION_ALLOW_WRITES": "no"}}}})
            .to_string(),
    )
    .expect("write .mcp.json");
    let command = codex_like_agent(&env);
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let text = stdout(&env.cli(&["doctor"], None).await);
    assert!(!text.contains("project permissions"), "{text}");
    assert!(
        text.contains(&format!(
            "✓ read confinement: in force (codex at {})",
            binary("fake-codex-acp").display()
        )),
        "{text}"
    );
}

/// Issue 13: a key in the agent command after its leading words (`env
/// OPENAI_API_KEY=… codex-acp`) was shown by the status tool, `codex-fusion
/// status` (and `--json`) and the daemon's log; an agent that prints its
/// environment put it in the stderr tail too. None of them shows it now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_planted_in_the_agent_command_is_never_shown() {
    const KEY: &str = "sk-planted-123";
    let mut env = TestEnv::new();
    let _fake = FakeHome::new(&mut env);
    let command = format!("env OPENAI_API_KEY={KEY} {}", env.fake_agent_command(""));
    env.set("CODEX_FUSION_ACP_COMMAND", &command);
    let turn_log = env.state_dir.join("turns.jsonl");
    env.set("CODEX_FUSION_LOG", turn_log.to_str().expect("utf8"));
    let _daemon = env.start_daemon().await;
    let client = Client::start(&env, &[]).await;
    let answer = client
        .text("consult", consult("fake:stderr-env:OPENAI_API_KEY is it safe?"))
        .await;
    assert!(answer.contains("prompts_seen=1"), "{answer}");
    let mut shown = Vec::new();
    // An agent whose error quotes its key: the failed call does not show it.
    let failed = client
        .call("consult", consult("fake:error:env:OPENAI_API_KEY"))
        .await
        .expect("a tool result");
    let failed = codex_fusion_testkit::client::result_text(&failed);
    assert!(failed.contains("the server rejected OPENAI_API_KEY=…"), "{failed}");
    shown.push(("a failed call", failed));
    let status_tool = client.text("status", json!({})).await;
    assert!(status_tool.contains("command: env OPENAI_API_KEY=… "), "{status_tool}");
    assert!(status_tool.contains("OPENAI_API_KEY=…"), "{status_tool}");
    shown.push(("the status tool", status_tool));
    client.close().await;
    let status = env.cli(&["status"], None).await;
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stdout(&status).contains("env OPENAI_API_KEY=…"), "{}", stdout(&status));
    shown.push(("codex-fusion status", format!("{}{}", stdout(&status), stderr(&status))));
    let json = env.cli(&["status", "--json"], None).await;
    let parsed: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let workspace = &parsed["workspaces"][0];
    assert!(
        workspace["stderr_tail"]
            .as_array()
            .expect("a tail")
            .iter()
            .any(|line| line == "OPENAI_API_KEY=…"),
        "the agent printed the key, scrubbed: {workspace}"
    );
    shown.push(("codex-fusion status --json", stdout(&json)));
    let doctor = env.cli(&["doctor"], None).await;
    shown.push(("codex-fusion doctor", format!("{}{}", stdout(&doctor), stderr(&doctor))));
    wait_for_file(&turn_log).await;
    shown.push(("the turn log", std::fs::read_to_string(&turn_log).expect("turn log")));
    shown.push(("the daemon's log", env.daemon_logs()));
    for (place, text) in &shown {
        assert!(!text.contains(KEY), "{place} shows the key:\n{text}");
    }
}

/// Issue 13: the agent was matched to a client by its command's display,
/// which hides values, so a client bringing another key in the command
/// (`OPENAI_API_KEY=A agent` after `OPENAI_API_KEY=B agent`) was served by
/// the agent started with the first key. Now it gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_with_another_hidden_key_gets_its_own_agent() {
    let env = TestEnv::new();
    let _daemon = env.start_daemon().await;
    let first = format!("OPENAI_API_KEY=sk-first-0000 {}", env.fake_agent_command(""));
    let client = Client::start(&env, &[("CODEX_FUSION_ACP_COMMAND", &first)]).await;
    assert!(client.text("consult", consult("one")).await.contains("prompts_seen=1"));
    client.close().await;
    let first_pid = env.workspace_status().await.agent_pid.expect("an agent");
    let second = format!("OPENAI_API_KEY=sk-second-000 {}", env.fake_agent_command(""));
    let client = Client::start(&env, &[("CODEX_FUSION_ACP_COMMAND", &second)]).await;
    assert!(client.text("consult", consult("two")).await.contains("prompts_seen="));
    client.close().await;
    let status = env.workspace_status().await;
    assert_eq!(
        status
            .agent_command
            .as_deref()
            .map(|command| command.starts_with("OPENAI_API_KEY=… ")),
        Some(true),
        "{status:?}"
    );
    assert_ne!(
        status.agent_pid,
        Some(first_pid),
        "the second key's client got its own agent"
    );
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} was not written", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The CLI's hello carries the forwarded variables, API keys among them: it
/// is never sent to a socket another user listens on (as the shim already
/// refuses). Runs where setpriv and perl can start a listener as nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_nothing_to_another_users_socket() {
    use tokio::io::AsyncBufReadExt as _;
    let (Some(nobody), true) = (
        nix::unistd::User::from_name("nobody").ok().flatten(),
        nix::unistd::getuid().is_root(),
    ) else {
        println!("SKIPPED the_cli_sends_nothing_to_another_users_socket: needs root and a `nobody` user");
        return;
    };
    let tools = ["setpriv", "perl"].map(|tool| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    });
    let [Some(setpriv), Some(perl)] = tools else {
        println!("SKIPPED the_cli_sends_nothing_to_another_users_socket: needs setpriv and perl");
        return;
    };
    let mut env = TestEnv::new();
    let shared = env.dir("shared");
    for dir in [env.root(), shared.clone()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let socket = shared.join("daemon.sock");
    env.set("CODEX_FUSION_SOCKET", socket.to_str().expect("utf8"));
    const LISTENER: &str = r#"
use IO::Socket::UNIX;
my $path = shift;
my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => 1) or die "listen: $!";
chmod 0666, $path;
$| = 1;
print "LISTENING\n";
my $client = $server->accept() or die "accept: $!";
my $got = "";
my $rin = "";
vec($rin, fileno($client), 1) = 1;
while (select(my $rout = $rin, undef, undef, 2)) {
    my $n = sysread($client, my $buf, 65536);
    last unless $n;
    $got .= $buf;
}
print "BYTES ", length($got), "\n";
"#;
    let mut listener = tokio::process::Command::new(setpriv)
        .arg(format!("--reuid={}", nobody.uid))
        .arg(format!("--regid={}", nobody.gid))
        .arg("--clear-groups")
        .arg(perl)
        .arg("-e")
        .arg(LISTENER)
        .arg(&socket)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the other user's listener");
    let mut lines = tokio::io::BufReader::new(listener.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
    assert_eq!(
        ready.expect("listening in time").expect("read").as_deref(),
        Some("LISTENING")
    );
    let output = env.cli(&["status"], None).await;
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("served by uid {}", nobody.uid)) && message.contains("nothing was sent"),
        "{message}"
    );
    let got = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
    assert_eq!(
        got.expect("the listener finishes").expect("read").as_deref(),
        Some("BYTES 0"),
        "not a byte of the hello reached the other user"
    );
}
