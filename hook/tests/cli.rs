//! The CLI as a process: every command documents itself, usage errors exit
//! 2, and commands that need the daemon fail clearly (exit 1) without one.
//! The end-to-end behaviour against a live daemon is in testkit/tests/cli.rs.

use std::process::{Command, Stdio};

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_codex-fusion"))
}

#[test]
fn every_command_has_help() {
    for command in ["reset", "status", "hook", "doctor", "install", "ask", "stop"] {
        let output = cli().args([command, "--help"]).output().expect("runs");
        assert!(output.status.success(), "{command} --help");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: codex-fusion"), "{command}: {text}");
    }
    let output = cli().args(["ask", "consult", "--help"]).output().expect("runs");
    assert!(output.status.success());
}

#[test]
fn usage_errors_exit_2() {
    let output = cli().arg("frobnicate").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let output = cli().args(["ask", "permit", "perhaps"]).output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn without_a_daemon_status_fails_clearly_and_the_hook_still_exits_0() {
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("run/daemon.sock");
    let output = cli()
        .arg("status")
        .env("CODEX_FUSION_SOCKET", &socket)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not running"), "{stderr}");
    let mut hook = cli()
        .arg("hook")
        .env("CODEX_FUSION_SOCKET", &socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(hook.stdin.take());
    let output = hook.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty(), "the hook never writes to Claude's context");
}

/// A pipe whose reading end is already closed: writing to it fails with
/// EPIPE (Rust ignores SIGPIPE), as when `| head -1` has exited.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

/// r8: `eprintln!` on a closed stderr panicked, and the hook's panic hook
/// panicked again writing about it, which aborted the process (exit -6):
/// Claude Code saw a failed hook.
#[test]
fn the_hook_exits_0_when_stderr_is_closed() {
    use std::io::Write as _;
    let temp = tempfile::tempdir().expect("tempdir");
    let mut hook = cli()
        .arg("hook")
        .env("CODEX_FUSION_SOCKET", temp.path().join("run/daemon.sock"))
        .env("CODEX_FUSION_STATE_DIR", temp.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(closed_pipe())
        .spawn()
        .expect("spawn");
    let input = serde_json::json!({"session_id": "s", "cwd": temp.path(), "source": "clear"}).to_string();
    hook.stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let output = hook.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(0), "{:?}", output.status);
    assert!(output.stdout.is_empty());
}

/// r8: `println!` on a closed stdout panicked (exit 101); a reader that went
/// away is a normal end.
#[test]
fn a_closed_stdout_is_a_normal_exit() {
    let temp = tempfile::tempdir().expect("tempdir");
    let output = cli()
        .arg("reset")
        .env("CODEX_FUSION_SOCKET", temp.path().join("run/daemon.sock"))
        .env("CODEX_FUSION_STATE_DIR", temp.path().join("state"))
        .env("CODEX_FUSION_WORKSPACE", temp.path())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
