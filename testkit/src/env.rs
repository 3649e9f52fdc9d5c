//! An isolated test environment: its own temp dir, socket, state dir and
//! workspace, so daemons of concurrent tests never meet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A built binary of this workspace, next to the test executable. Fails
/// with the command that builds it.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let mut dir = exe
        .parent()
        .expect("test executables live in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing; build it with `cargo build --workspace --bins` (the README's test command builds everything)",
        path.display()
    );
    path
}

/// Polls `condition` until it holds or `timeout` passes; panics naming
/// `what` on timeout.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut condition: F) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One test's private world.
pub struct TestEnv {
    pub temp: tempfile::TempDir,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub workspace: PathBuf,
    /// Where the fake agent persists its sessions.
    pub agent_state: PathBuf,
    /// Extra environment for every process this env starts.
    pub env: BTreeMap<String, String>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let temp = tempfile::Builder::new().prefix("cf-test-").tempdir().expect("tempdir");
        let root = std::fs::canonicalize(temp.path()).expect("canonical temp");
        let workspace = root.join("workspace");
        std::fs::create_dir_all(&workspace).expect("workspace");
        let agent_state = root.join("agent-state");
        std::fs::create_dir_all(&agent_state).expect("agent state");
        let mut env = TestEnv {
            socket: root.join("run/daemon.sock"),
            state_dir: root.join("state"),
            workspace,
            agent_state,
            env: BTreeMap::new(),
            temp,
        };
        let command = env.fake_agent_command("");
        env.set("CODEX_FUSION_ACP_COMMAND", &command);
        env
    }

    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The command line of the fake agent with `extra` flags, persisting to
    /// this env's agent state dir.
    pub fn fake_agent_command(&self, extra: &str) -> String {
        format!(
            "{} --state-dir {} {extra}",
            binary("fake-codex-acp").display(),
            self.agent_state.display()
        )
    }

    /// A new directory under the temp dir, canonical.
    pub fn dir(&self, name: &str) -> PathBuf {
        let path = self.root().join(name);
        std::fs::create_dir_all(&path).expect("mkdir");
        path
    }

    pub fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.temp.path()).expect("canonical temp")
    }

    /// Applies this env to a command: isolation variables, then extras.
    pub fn apply(&self, command: &mut tokio::process::Command) {
        command
            .env("CODEX_FUSION_SOCKET", &self.socket)
            .env("CODEX_FUSION_STATE_DIR", &self.state_dir)
            .env("CODEX_FUSION_WORKSPACE", &self.workspace)
            .env("CODEX_FUSION_DAEMON_LOG", "debug,rmcp=info")
            .envs(&self.env)
            .current_dir(&self.workspace);
    }

    /// Starts `codex-fusiond` and waits until its socket accepts.
    pub async fn start_daemon(&self) -> DaemonProcess {
        self.start_daemon_with(&[]).await
    }

    /// [`Self::start_daemon`] with `extra` variables over this env's.
    pub async fn start_daemon_with(&self, extra: &[(&str, &std::ffi::OsStr)]) -> DaemonProcess {
        let mut command = tokio::process::Command::new(binary("codex-fusiond"));
        self.apply(&mut command);
        command.envs(extra.iter().copied());
        let log = std::fs::File::create(
            self.root()
                .join(format!("daemon-{}.log", Instant::now().elapsed().as_nanos())),
        )
        .expect("daemon log");
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().expect("spawn codex-fusiond");
        let socket = self.socket.clone();
        wait_until("the daemon socket accepts", Duration::from_secs(10), || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        })
        .await;
        DaemonProcess { child }
    }

    /// The pid in the daemon's lock file, if a daemon holds it.
    pub fn daemon_pid(&self) -> Option<i32> {
        let lock = codex_fusion_protocol::paths::lock_path(&self.socket);
        std::fs::read_to_string(lock).ok()?.trim().parse().ok()
    }

    /// Runs `codex-fusion ARGS` to completion.
    pub async fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use tokio::io::AsyncWriteExt as _;
        let mut command = tokio::process::Command::new(binary("codex-fusion"));
        self.apply(&mut command);
        command
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn codex-fusion");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.expect("write stdin");
        }
        drop(input);
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("codex-fusion finished within 60 s")
            .expect("codex-fusion output")
    }

    /// The daemon's log files concatenated, for assertions and failures.
    pub fn daemon_logs(&self) -> String {
        let mut text = String::new();
        for dir in [self.state_dir.join("logs"), self.root()] {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                let mut paths: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
                paths.sort();
                for path in paths {
                    let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                    if name.starts_with("codex-fusiond") || name.starts_with("daemon-") {
                        text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
                    }
                }
            }
        }
        text
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // A daemon a shim started on its own is not a child of the test:
        // stop it through its lock file so nothing outlives the test.
        if let Some(pid) = self.daemon_pid() {
            stop_pid(pid);
        }
    }
}

/// A daemon the test started; killed when dropped.
pub struct DaemonProcess {
    pub child: tokio::process::Child,
}

impl DaemonProcess {
    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    /// Sends `signal` and waits for the exit.
    pub async fn signal_and_wait(&mut self, signal: Signal) -> std::process::ExitStatus {
        let _ = kill(Pid::from_raw(self.pid()), signal);
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the daemon exits within 10 s")
            .expect("wait")
    }
}

fn stop_pid(pid: i32) {
    let pid = Pid::from_raw(pid);
    if kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !is_alive(pid.as_raw()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
}

/// Processes whose command line mentions `needle` (from /proc).
pub fn processes_matching(needle: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let command = String::from_utf8_lossy(&raw).replace('\0', " ");
        if command.contains(needle) && !is_zombie(&entry.path()) {
            found.push((pid, command));
        }
    }
    found
}

/// Whether `pid` runs: it exists and is not a zombie waiting to be reaped
/// (a daemon started by a shim is reparented and reaped late).
pub fn is_alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok() && !is_zombie(Path::new(&format!("/proc/{pid}")))
}

fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

impl TestEnv {
    /// Sends one control request straight to the daemon's socket (as the
    /// hook and CLI do) and returns the answer.
    pub async fn control(
        &self,
        request: codex_fusion_protocol::control::ControlRequest,
    ) -> codex_fusion_protocol::control::ControlResponse {
        use codex_fusion_protocol::{Channel, Hello, HelloReply, Role, frame};
        use tokio::io::{AsyncWriteExt as _, BufReader};
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .expect("connect to the daemon");
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let hello = Hello::new(Role::Hook, Channel::Control).with_env(self.env.clone());
        write.write_all(&frame::encode(&hello)).await.expect("hello");
        let line = frame::read_line_async(&mut reader, 1 << 20)
            .await
            .expect("reply")
            .expect("a reply line");
        assert!(matches!(
            frame::decode::<HelloReply>(&line).expect("reply"),
            HelloReply::Accepted { .. }
        ));
        write.write_all(&frame::encode(&request)).await.expect("request");
        let line = frame::read_line_async(&mut reader, 1 << 24)
            .await
            .expect("response")
            .expect("a response line");
        frame::decode(&line).expect("a control response")
    }

    /// A SessionStart as the hook sends it.
    pub async fn session_start(
        &self,
        source: codex_fusion_protocol::control::SessionSource,
        claude_session_id: &str,
    ) -> String {
        use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
        match self
            .control(ControlRequest::SessionStart {
                workspace: self.workspace.clone(),
                claude_session_id: Some(claude_session_id.to_owned()),
                source,
            })
            .await
        {
            ControlResponse::SessionStarted { action } => action,
            other => panic!("session_start answered {other:?}"),
        }
    }

    /// The daemon's view of this env's workspace.
    pub async fn workspace_status(&self) -> codex_fusion_protocol::control::WorkspaceStatus {
        use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
        match self
            .control(ControlRequest::Status {
                workspace: Some(self.workspace.clone()),
            })
            .await
        {
            ControlResponse::Status(status) => status
                .workspaces
                .into_iter()
                .next()
                .expect("the workspace has a session"),
            other => panic!("status answered {other:?}"),
        }
    }

    /// The status of agent `agent`'s session in the workspace, as
    /// `codex-fusion status --json` reports it.
    pub async fn agent_status(&self, agent: &str) -> serde_json::Value {
        let output = self.cli(&["status", "--json"], None).await;
        let status: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)));
        status["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|workspace| workspace["agent"] == agent)
            .cloned()
            .unwrap_or_else(|| panic!("no {agent} in {status}"))
    }

    /// SIGKILLs the daemon (found through its lock file) and waits until it
    /// is gone.
    pub async fn kill_daemon(&self) {
        let pid = self.daemon_pid().expect("a daemon runs");
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        // A killed multi-threaded process shows as a zombie while its other
        // threads still exit and hold its descriptors; it is really gone once
        // only its (zombie) main thread is left.
        wait_until("the daemon is gone", Duration::from_secs(10), || {
            let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |entries| entries.count());
            !is_alive(pid) && threads <= 1
        })
        .await;
    }
}
