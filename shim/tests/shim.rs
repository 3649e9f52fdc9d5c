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
    assert!(
        text.contains("claude mcp add codex-fusion -- codex-fusion-mcp"),
        "{text}"
    );
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
    assert!(
        stderr.starts_with("codex-fusion-mcp: codex-fusiond is not running"),
        "{stderr}"
    );
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
    if let Some(pid) = std::fs::read_to_string(lock)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
}

/// A daemon that accepts, says hello, and drops every connection as soon as
/// the client writes: the shim reconnects with backoff, then gives up with a
/// clear message instead of looping forever.
#[test]
fn a_reconnect_storm_ends_in_a_clear_failure() {
    use std::io::{BufRead, BufReader, Write};
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("daemon.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut hello = String::new();
            let _ = reader.read_line(&mut hello);
            let mut writer = stream;
            let _ = writer.write_all(
                br#"{"status":"accepted","protocol":"codex-fusion","version":1,"daemon_version":"0","pid":1}"#,
            );
            let _ = writer.write_all(b"\n");
            // Drop the connection after the first client line (or at once
            // after a replayed handshake).
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
        }
    });
    let started = Instant::now();
    let mut child = shim()
        .env("CODEX_FUSION_SOCKET", &socket)
        .env("CODEX_FUSION_WORKSPACE", temp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{}}\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    drop(stdin);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("keeps going away"), "{stderr}");
    assert!(stderr.contains("reconnects within 60 s"), "{stderr}");
    let attempts = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((5..=8).contains(&attempts), "bounded attempts: {attempts}");
    assert!(
        took > Duration::from_secs(3),
        "retried with backoff, not at once: {took:?}"
    );
    assert!(took < Duration::from_secs(30), "gave up in {took:?}");
    // Every in-flight request got an error response before the shim left.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(r#""id":0,"error""#), "{stdout}");
}
