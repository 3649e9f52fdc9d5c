//! The shim as a process: its help, and its failures when no daemon can be
//! reached or the daemon refuses it. Each failure is one line and a non-zero
//! exit, never a hang.

use std::io::{BufRead as _, Write as _};
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
        .env("CODEX_FUSION_STATE_DIR", temp.path().join("state"))
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
    let logs = temp.path().join("state/logs");
    assert!(stderr.contains(&logs.display().to_string()), "names the log: {stderr}");
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

// ---- Regression tests of the review's findings (rN: finding N) ----

mod fake {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::mpsc::Receiver;
    use std::time::{Duration, Instant};

    /// The hello answer of a fake daemon; its version differs from the
    /// shim's on purpose (the shim notes that once).
    pub const ACCEPTED: &[u8] =
        b"{\"status\":\"accepted\",\"protocol\":\"codex-fusion\",\"version\":1,\"daemon_version\":\"0.0.1\",\"pid\":1}\n";

    /// Listens on `socket`; for the n-th connection, reads the hello,
    /// accepts it, and hands the connection to `serve` on its own thread.
    pub fn daemon(socket: &Path, serve: impl Fn(usize, BufReader<UnixStream>, UnixStream) + Send + Sync + 'static) {
        let listener = UnixListener::bind(socket).expect("bind");
        let serve = std::sync::Arc::new(serve);
        std::thread::spawn(move || {
            for (index, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                let serve = serve.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut hello = String::new();
                    if reader.read_line(&mut hello).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut writer = stream;
                    if writer.write_all(ACCEPTED).is_err() {
                        return;
                    }
                    serve(index, reader, writer);
                });
            }
        });
    }

    /// A running shim with its stdout lines on a channel.
    pub struct Shim {
        pub child: Child,
        pub stdin: Option<ChildStdin>,
        lines: Receiver<String>,
    }

    impl Shim {
        pub fn start(socket: &Path, workspace: &Path) -> Shim {
            Shim::start_with(socket, workspace, |_| {})
        }

        pub fn start_with(socket: &Path, workspace: &Path, configure: impl FnOnce(&mut Command)) -> Shim {
            let mut command = super::shim();
            command
                .env("CODEX_FUSION_SOCKET", socket)
                .env("CODEX_FUSION_WORKSPACE", workspace)
                .env("CODEX_FUSION_STATE_DIR", workspace.join("state"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            configure(&mut command);
            let mut child = command.spawn().expect("spawn the shim");
            let stdout = child.stdout.take().expect("stdout");
            let (sender, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            });
            let stdin = child.stdin.take();
            Shim { child, stdin, lines }
        }

        pub fn send(&mut self, line: &[u8]) {
            let stdin = self.stdin.as_mut().expect("stdin open");
            stdin.write_all(line).expect("write to the shim");
            stdin.flush().expect("flush");
        }

        /// The next stdout line, or `None` at the deadline.
        pub fn next_line(&self, within: Duration) -> Option<String> {
            self.lines.recv_timeout(within).ok()
        }

        /// Stdout lines until `done` matches one (included), or `None` if
        /// the deadline passes first.
        pub fn lines_until(&self, within: Duration, done: impl Fn(&str) -> bool) -> Option<Vec<String>> {
            let deadline = Instant::now() + within;
            let mut seen = Vec::new();
            loop {
                let left = deadline.checked_duration_since(Instant::now())?;
                let line = self.next_line(left)?;
                let finished = done(&line);
                seen.push(line);
                if finished {
                    return Some(seen);
                }
            }
        }

        /// Ends the shim (our own child) and returns its stderr.
        pub fn stop(mut self) -> String {
            drop(self.stdin.take());
            let _ = self.child.kill();
            let mut stderr = String::new();
            if let Some(mut pipe) = self.child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            let _ = self.child.wait();
            stderr
        }
    }

    /// A copy of the shim alone in `dir/bin`, with `daemon_script` as the
    /// `codex-fusiond` next to it (or none).
    pub fn lonely_shim(dir: &Path, daemon_script: Option<&str>) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        let shim = bin.join("codex-fusion-mcp");
        std::fs::copy(env!("CARGO_BIN_EXE_codex-fusion-mcp"), &shim).expect("copy");
        if let Some(script) = daemon_script {
            let daemon = bin.join("codex-fusiond");
            std::fs::write(&daemon, script).expect("write");
            std::fs::set_permissions(&daemon, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        shim
    }

    pub fn initialize(id: u32) -> Vec<u8> {
        format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"test\",\"version\":\"0\"}}}}}}\n").into_bytes()
    }

    pub fn json(line: &str) -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
    }
}

/// r1: the daemon stops reading (it back-pressures a client with many
/// requests in flight) while the shim is writing a large line to it, and
/// keeps talking. The shim's stdin thread is stuck in that write; the
/// daemon's output must still reach the client, or nothing ever drains.
#[test]
fn r1_a_daemon_that_stops_reading_still_reaches_the_client() {
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("daemon.sock");
    fake::daemon(&socket, |_, reader, mut writer| {
        // Wait until the client's large line starts arriving, read none of
        // it, give the shim time to fill the socket and block, then stream.
        let mut reader = reader;
        let _ = reader.fill_buf();
        std::thread::sleep(Duration::from_millis(300));
        for index in 0..200 {
            let line = format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"level\":\"info\",\"data\":{index}}}}}\n"
            );
            if writer.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"done\"}}\n");
        // Never read: hold the connection until the test ends.
        std::thread::sleep(Duration::from_secs(60));
        drop(reader);
    });
    let mut shim = fake::Shim::start(&socket, temp.path());
    let mut stdin = shim.stdin.take().expect("stdin");
    // 8 MiB: far more than a socket buffer holds, well under the line limit.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"review_diff\",\"arguments\":{{\"diff\":\"{}\"}}}}}}\n",
        "x".repeat(8 * 1024 * 1024)
    );
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(big.as_bytes());
        stdin
    });
    let lines = shim.lines_until(Duration::from_secs(10), |line| line.contains("\"done\""));
    let stderr = shim.stop();
    drop(writer);
    let lines = lines.unwrap_or_else(|| panic!("the daemon's output stopped at the shim (deadlock); stderr: {stderr}"));
    assert_eq!(lines.len(), 201, "every daemon line, in order");
}

/// r2: the daemon goes away before answering `initialize`. The client has
/// no answer yet, so the shim replays it on the new connection and passes
/// the real answer on: no synthesized error, nothing swallowed.
#[test]
fn r2_an_initialize_lost_with_the_daemon_is_replayed_and_answered() {
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("daemon.sock");
    fake::daemon(&socket, |index, mut reader, mut writer| {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if index == 0 {
            // Gone before answering.
            return;
        }
        assert!(
            line.contains("\"initialize\""),
            "the handshake is replayed first: {line}"
        );
        let _ = writer.write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"serverInfo\":{\"name\":\"fake\",\"version\":\"0\"}}}\n",
        );
        while reader.read_line(&mut line).unwrap_or(0) > 0 {}
    });
    let mut shim = fake::Shim::start(&socket, temp.path());
    shim.send(&fake::initialize(0));
    let first = shim.next_line(Duration::from_secs(10));
    let stray = shim.next_line(Duration::from_millis(500));
    let stderr = shim.stop();
    let first = first.unwrap_or_else(|| panic!("initialize was never answered; stderr: {stderr}"));
    let response = fake::json(&first);
    assert_eq!(response["id"], 0, "{first}");
    assert!(
        response.get("result").is_some(),
        "the real answer, not an error: {first}"
    );
    assert_eq!(stray, None, "one answer only");
    // The fake daemon's version differs: one note, however many connections.
    assert_eq!(stderr.matches("note:").count(), 1, "{stderr}");
    assert!(stderr.contains("0.0.1"), "{stderr}");
}

/// Part of r3: when `SHIM_TEST_FOREIGN_SOCKET` is set (by
/// `r3_a_socket_served_by_another_user_never_gets_the_hello`, running this
/// binary as another user), listens there and records how many bytes the
/// one client sent. Otherwise does nothing.
#[test]
fn helper_foreign_listener() {
    use std::io::Read as _;
    let Some(socket) = std::env::var_os("SHIM_TEST_FOREIGN_SOCKET") else {
        return;
    };
    let socket = std::path::PathBuf::from(socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    std::fs::write(socket.with_extension("ready"), "").expect("ready");
    let (mut stream, _) = listener.accept().expect("accept");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    std::fs::write(socket.with_extension("received"), received.len().to_string()).expect("record");
}

/// r3: a socket whose listener is another user gets no hello (which may
/// carry API keys); the shim says why, naming the socket and the uid.
#[test]
fn r3_a_socket_served_by_another_user_never_gets_the_hello() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    if codex_fusion_protocol::peer::own_uid() != 0 {
        // Only root can listen as another user; the check itself is unit
        // tested in client/src/connect.rs.
        eprintln!("skipped: listening as another user needs root");
        return;
    }
    let temp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let socket = temp.path().join("daemon.sock");
    let mut listener = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "helper_foreign_listener", "--nocapture"])
        .env("SHIM_TEST_FOREIGN_SOCKET", &socket)
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the listener as nobody");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.with_extension("ready").exists() {
        assert!(Instant::now() < deadline, "the foreign listener never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = shim()
        .env("CODEX_FUSION_SOCKET", &socket)
        .env("CODEX_FUSION_WORKSPACE", temp.path())
        .env("OPENAI_API_KEY", "sk-must-not-leak")
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let status = listener.wait().expect("listener ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&socket.display().to_string()), "{stderr}");
    assert!(stderr.contains("uid 65534"), "{stderr}");
    assert!(status.success(), "listener: {status}");
    let received = std::fs::read_to_string(socket.with_extension("received")).expect("recorded");
    assert_eq!(received, "0", "not a byte of the hello was sent");
}

/// r3 and r4: a daemon the shim starts runs from `/`, without the client's
/// API keys and Codex home (they travel in each hello), told to keep its
/// stderr quiet; its stderr goes to a private start log in the state
/// directory, not next to the socket.
#[test]
fn r4_a_started_daemon_gets_no_agent_credentials_and_logs_privately() {
    use std::os::unix::fs::PermissionsExt as _;
    let temp = tempfile::tempdir().expect("tempdir");
    let script = "#!/bin/sh\nenv > \"$FAKE_DAEMON_OUT/env\"\npwd > \"$FAKE_DAEMON_OUT/cwd\"\necho 'fake daemon: refusing to start on purpose' >&2\nexit 3\n";
    let lonely = fake::lonely_shim(temp.path(), Some(script));
    let workspace = temp.path().join("workspace");
    std::fs::create_dir(&workspace).expect("mkdir");
    let state = temp.path().join("state");
    let socket = temp.path().join("run/daemon.sock");
    std::fs::create_dir(temp.path().join("run")).expect("mkdir");
    let output = Command::new(&lonely)
        .current_dir(&workspace)
        .env("CODEX_FUSION_SOCKET", &socket)
        .env("CODEX_FUSION_STATE_DIR", &state)
        .env("CODEX_FUSION_WORKSPACE", &workspace)
        .env("OPENAI_API_KEY", "sk-first-shim")
        .env("CODEX_API_KEY", "ck-first-shim")
        .env("CODEX_HOME", temp.path().join("codex-home"))
        .env("FAKE_DAEMON_OUT", temp.path())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exited") && stderr.contains("fake daemon: refusing to start on purpose"),
        "the start log is read back: {stderr}"
    );
    let env = std::fs::read_to_string(temp.path().join("env")).expect("the fake daemon ran");
    for name in ["OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_HOME"] {
        assert!(
            !env.lines().any(|line| line.starts_with(&format!("{name}="))),
            "{name} leaked into the daemon: {env}"
        );
    }
    assert!(
        env.lines().any(|line| line == "CODEX_FUSION_DAEMON_QUIET_STDERR=1"),
        "{env}"
    );
    assert!(
        env.lines().any(|line| line.starts_with("CODEX_FUSION_STATE_DIR=")),
        "{env}"
    );
    let cwd = std::fs::read_to_string(temp.path().join("cwd")).expect("cwd");
    assert_eq!(cwd.trim(), "/");
    let log = state.join("daemon-start.log");
    let mode = std::fs::metadata(&log).expect("start log").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mode = std::fs::metadata(&state).expect("state dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(
        !temp.path().join("run/daemon-start.log").exists(),
        "nothing in the socket directory"
    );
}

/// r5: a workspace whose path is not UTF-8 is refused by name, not a panic.
#[test]
fn r5_a_workspace_path_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt as _;
    let temp = tempfile::tempdir().expect("tempdir");
    let odd = temp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir(&odd).expect("mkdir");
    let output = shim()
        .env("CODEX_FUSION_SOCKET", temp.path().join("daemon.sock"))
        .env("CODEX_FUSION_WORKSPACE", &odd)
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("CODEX_FUSION_WORKSPACE"), "{stderr}");
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// r6: a client line over the daemon's limit would be dropped there without
/// an answer. The shim answers such a request itself, drops anything else
/// with a note, and never sends them; the next line goes through.
#[test]
fn r6_an_oversized_request_is_answered_by_the_shim() {
    let limit = codex_fusion_protocol::limits::MCP_MAX_LINE_BYTES;
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("daemon.sock");
    let (sender, received) = std::sync::mpsc::channel::<usize>();
    let sender = std::sync::Mutex::new(sender);
    fake::daemon(&socket, move |_, mut reader, mut writer| {
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let _ = sender.lock().expect("sender").send(line.len());
            if line.contains("\"id\":10") {
                let _ = writer.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":10,\"result\":{\"tools\":[]}}\n");
            }
        }
    });
    let mut shim = fake::Shim::start(&socket, temp.path());
    let filler = "y".repeat(limit);
    // The id comes last, as JavaScript clients write it.
    shim.send(
        format!("{{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{{\"name\":\"review_diff\",\"arguments\":{{\"diff\":\"{filler}\"}}}},\"id\":9}}\n")
            .as_bytes(),
    );
    shim.send(
        format!("{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"data\":\"{filler}\"}}}}\n")
            .as_bytes(),
    );
    shim.send(b"{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/list\"}\n");
    let lines = shim.lines_until(Duration::from_secs(20), |line| line.contains("\"id\":10"));
    let stderr = shim.stop();
    let lines = lines.unwrap_or_else(|| panic!("no answer; stderr: {stderr}"));
    let refusal = lines
        .iter()
        .map(|line| fake::json(line))
        .find(|value| value["id"] == 9)
        .unwrap_or_else(|| panic!("request 9 was never answered: {lines:?}"));
    let message = refusal["error"]["message"].as_str().expect("an error message");
    assert!(message.contains("too large"), "{message}");
    assert!(message.contains("16 MiB"), "{message}");
    assert!(stderr.contains("dropped a"), "the notification is noted: {stderr}");
    let sent: Vec<usize> = received.try_iter().collect();
    assert!(
        sent.iter().all(|bytes| *bytes < 1024),
        "no oversized line reached the daemon: {sent:?}"
    );
    assert_eq!(sent.len(), 1, "only request 10: {sent:?}");
}

/// r9: a socket file nobody listens on is reported as stale, not missing.
#[test]
fn r9_a_stale_socket_is_named_as_such() {
    let temp = tempfile::tempdir().expect("tempdir");
    let lonely = fake::lonely_shim(temp.path(), None);
    let socket = temp.path().join("daemon.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    let output = Command::new(&lonely)
        .env("PATH", temp.path().join("empty"))
        .env("CODEX_FUSION_SOCKET", &socket)
        .env("CODEX_FUSION_WORKSPACE", temp.path())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the connection"), "{stderr}");
    assert!(stderr.contains("stale socket"), "{stderr}");
    assert!(!stderr.contains("no socket at"), "{stderr}");
    assert!(stderr.contains("scripts/install.sh"), "{stderr}");
    assert!(!stderr.contains("cargo install --path"), "{stderr}");
}

/// r9: a daemon that accepts but never answers the hello: the advice does
/// not go through that same socket, it names the lock file's pid.
#[test]
fn r9_a_wedged_daemon_is_named_with_its_lock_file() {
    let temp = tempfile::tempdir().expect("tempdir");
    let socket = temp.path().join("daemon.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let output = shim()
        .env("CODEX_FUSION_SOCKET", &socket)
        .env("CODEX_FUSION_WORKSPACE", temp.path())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("kill $(cat {}.lock)", socket.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("codex-fusion stop"), "{stderr}");
}
