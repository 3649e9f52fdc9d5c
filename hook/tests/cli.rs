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
