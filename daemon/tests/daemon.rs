//! The daemon as a process: help, single instance, stale socket, signals.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn daemon(socket: &std::path::Path, state: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codex-fusiond"));
    command
        .env("CODEX_FUSION_SOCKET", socket)
        .env("CODEX_FUSION_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn wait_for_socket(socket: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "the daemon never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn terminate(mut child: Child) -> std::process::Output {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn help_and_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_codex-fusiond"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("CODEX_FUSION_SOCKET"));
    let output = Command::new(env!("CARGO_BIN_EXE_codex-fusiond"))
        .arg("--version")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("codex-fusiond "));
}

#[test]
fn a_second_daemon_exits_with_a_clear_message_and_the_first_keeps_serving() {
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("run/daemon.sock");
    let state = temp.path().join("state");
    let first = daemon(&socket, &state).spawn().expect("spawn");
    wait_for_socket(&socket);
    let second = daemon(&socket, &state).output().expect("second runs");
    assert_eq!(second.status.code(), Some(3), "the already-running status");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another codex-fusiond is already running"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    assert!(
        std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        "the first still answers"
    );
    let mode = std::fs::metadata(&socket).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let output = terminate(first);
    assert!(output.status.success(), "SIGTERM is a clean exit");
    assert!(!socket.exists(), "the socket is removed on shutdown");
    assert!(String::from_utf8_lossy(&output.stderr).contains("reason=\"SIGTERM\""));
}

#[test]
fn a_stale_socket_is_replaced() {
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("daemon.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("stale socket"));
    let child = daemon(&socket, &temp.path().join("state")).spawn().expect("spawn");
    wait_for_socket(&socket);
    terminate(child);
}

#[test]
fn a_relative_socket_path_is_refused_by_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_codex-fusiond"))
        .env("CODEX_FUSION_SOCKET", "relative.sock")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("CODEX_FUSION_SOCKET must be an absolute path"));
}
