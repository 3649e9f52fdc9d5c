//! The shim as a process: its help, and its failures when no daemon can be
//! reached or the daemon refuses it. Each failure is one line and a non-zero
//! exit, never a hang.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn shim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_codex-fusion-mcp"))
}

#[test]
fn help_explains_registration_and_settings() {
    let output = shim().arg("--help").output().expect("runs");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("claude mcp add codex-fusion -- codex-fusion-mcp"), "{text}");
    assert!(text.contains("CODEX_FUSION_WORKSPACE"), "{text}");
    let output = shim().arg("--bogus").output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--help"));
}

#[test]
fn a_daemon_that_cannot_be_started_is_one_clear_line() {
    let temp = tempfile::tempdir().expect("tempdir");
    // A copy of the shim with no codex-fusiond beside it or on PATH.
    let lonely = temp.path().join("codex-fusion-mcp");
    std::fs::copy(env!("CARGO_BIN_EXE_codex-fusion-mcp"), &lonely).expect("copy");
    let started = Instant::now();
    let output = Command::new(&lonely)
        .env("PATH", temp.path().join("empty"))
        .env("CODEX_FUSION_SOCKET", temp.path().join("run/daemon.sock"))
        .env("CODEX_FUSION_WORKSPACE", temp.path())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert!(started.elapsed() < Duration::from_secs(5), "gave up quickly");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("codex-fusion-mcp: codex-fusiond is not running"), "{stderr}");
    assert!(stderr.contains("install"), "says what to do: {stderr}");
}

#[test]
fn a_bad_workspace_is_named() {
    let temp = tempfile::tempdir().expect("tempdir");
    let output = shim()
        .env("CODEX_FUSION_SOCKET", temp.path().join("daemon.sock"))
        .env("CODEX_FUSION_WORKSPACE", temp.path().join("missing"))
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CODEX_FUSION_WORKSPACE"), "{stderr}");
}

#[test]
fn a_daemon_that_refuses_the_settings_is_reported_with_the_variable() {
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("run/daemon.sock");
    // The shim starts the daemon next to it, which refuses the malformed flag.
    let output = shim()
        .env("CODEX_FUSION_SOCKET", &socket)
        .env("CODEX_FUSION_STATE_DIR", temp.path().join("state"))
        .env("CODEX_FUSION_WORKSPACE", temp.path())
        .env("CODEX_FUSION_ALLOW_WRITES", "maybe")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CODEX_FUSION_ALLOW_WRITES: expected 1/true/yes or 0/false/no, got `maybe`"),
        "{stderr}"
    );
    stop_daemon(&socket);
}

fn stop_daemon(socket: &std::path::Path) {
    let mut lock = socket.as_os_str().to_owned();
    lock.push(".lock");
    if let Some(pid) = std::fs::read_to_string(lock).ok().and_then(|text| text.trim().parse::<i32>().ok()) {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
}
