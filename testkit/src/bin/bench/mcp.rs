//! A minimal blocking MCP client: JSON-RPC lines over any byte pipe, either
//! a shim's stdio (as Claude Code talks to it) or the daemon's socket after
//! a hello (as the shim itself does). Blocking std I/O on purpose: the
//! client's own cost must be small and steady next to what it measures.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use codex_fusion_protocol::{Channel, Hello, HelloReply, Role, frame};
use codex_fusion_testkit::{TestEnv, binary};
use serde_json::{Value, json};

/// The `initialize` request every client here sends, as id 0.
pub const INITIALIZE: &[u8] = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"codex-fusion-bench","version":"0"}}}
"#;
const INITIALIZED: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
/// How a progress notification line starts as rmcp writes it; lines that
/// start otherwise are parsed in full.
const PROGRESS_PREFIX: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/progress""#;

/// JSON-RPC lines over a reader and a writer.
pub struct Lines<R: Read, W: Write> {
    reader: BufReader<R>,
    writer: W,
    line: Vec<u8>,
    next_id: u64,
}

/// What a tool call returned, and the progress seen on the way.
#[derive(Debug)]
pub struct CallOutcome {
    pub text: String,
    pub is_error: bool,
    pub progress: usize,
    pub first_progress: Option<Instant>,
    pub last_progress: Option<Instant>,
    /// When the response line was read.
    pub answered: Instant,
}

impl<R: Read, W: Write> Lines<R, W> {
    pub fn new(reader: R, writer: W) -> Self {
        Lines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            writer,
            line: Vec::with_capacity(64 * 1024),
            next_id: 1,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// The next line (with its newline); an error at EOF.
    pub fn read_line(&mut self) -> std::io::Result<&[u8]> {
        self.line.clear();
        if self.reader.read_until(b'\n', &mut self.line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the stream",
            ));
        }
        Ok(&self.line)
    }

    /// A fresh request id.
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// `initialize` (id 0) and `notifications/initialized`.
    pub fn initialize(&mut self) -> anyhow::Result<()> {
        self.send(INITIALIZE).context("sending initialize")?;
        self.wait_response(0).context("waiting for the initialize response")?;
        self.send(INITIALIZED).context("sending initialized")?;
        Ok(())
    }

    /// Reads until the response to `id`, skipping notifications.
    pub fn wait_response(&mut self, id: u64) -> anyhow::Result<Value> {
        loop {
            let line = self.read_line()?;
            if line.starts_with(PROGRESS_PREFIX) {
                continue;
            }
            let value: Value =
                serde_json::from_slice(line).with_context(|| format!("not JSON: {}", String::from_utf8_lossy(line)))?;
            if value.get("method").is_none() && value.get("id") == Some(&Value::from(id)) {
                return Ok(value);
            }
        }
    }

    /// Sends `tools/call` with a progress token and reads to its response,
    /// counting the progress notifications that arrive first.
    pub fn call(&mut self, tool: &str, arguments: Value) -> anyhow::Result<CallOutcome> {
        let id = self.id();
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": {"progressToken": format!("bench-{id}")}}});
        let mut bytes = serde_json::to_vec(&request)?;
        bytes.push(b'\n');
        self.send(&bytes).context("sending tools/call")?;
        let mut progress = 0;
        let mut first_progress = None;
        let mut last_progress = None;
        loop {
            let line = self.read_line().context("reading the tools/call answer")?;
            if line.starts_with(PROGRESS_PREFIX) {
                let now = Instant::now();
                progress += 1;
                first_progress.get_or_insert(now);
                last_progress = Some(now);
                continue;
            }
            let answered = Instant::now();
            let value: Value =
                serde_json::from_slice(line).with_context(|| format!("not JSON: {}", String::from_utf8_lossy(line)))?;
            if value.get("method").is_some() || value.get("id") != Some(&Value::from(id)) {
                continue;
            }
            if let Some(error) = value.get("error") {
                bail!("{tool} failed: {error}");
            }
            let result = &value["result"];
            let text = result["content"]
                .as_array()
                .map(|blocks| {
                    blocks
                        .iter()
                        .filter_map(|block| block["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            return Ok(CallOutcome {
                text,
                is_error: result["isError"] == true,
                progress,
                first_progress,
                last_progress,
                answered,
            });
        }
    }

    /// `tools/list`: the names of the tools the server offers.
    pub fn tool_names(&mut self) -> anyhow::Result<Vec<String>> {
        let id = self.id();
        let request = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/list\"}}\n");
        self.send(request.as_bytes()).context("sending tools/list")?;
        let response = self.wait_response(id).context("waiting for the tools/list response")?;
        if let Some(error) = response.get("error") {
            bail!("tools/list failed: {error}");
        }
        let tools = response["result"]["tools"]
            .as_array()
            .with_context(|| format!("tools/list answered without a tool list: {response}"))?;
        Ok(tools
            .iter()
            .filter_map(|tool| tool["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// A `consult` that must succeed; returns its text.
    pub fn consult(&mut self, question: &str) -> anyhow::Result<String> {
        let outcome = self.call("consult", json!({ "question": question }))?;
        if outcome.is_error {
            bail!("consult answered with an error: {}", outcome.text);
        }
        Ok(outcome.text)
    }
}

/// A `codex-fusion-mcp` process with its stdio as an MCP pipe. Closing its
/// stdin (on [`ShimProcess::close`] or drop) ends it, as Claude Code does.
pub struct ShimProcess {
    pub child: Child,
    lines: Option<Lines<ChildStdout, ChildStdin>>,
}

impl ShimProcess {
    /// Starts a shim in `env`, plus `extra` variables; not yet initialized.
    pub fn spawn(env: &TestEnv, extra: &[(&str, &str)]) -> anyhow::Result<ShimProcess> {
        let mut command = tokio::process::Command::new(binary("codex-fusion-mcp"));
        env.apply(&mut command);
        let mut command = command.into_std();
        command
            .envs(extra.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().context("spawning codex-fusion-mcp")?;
        let stdin = child.stdin.take().context("shim stdin")?;
        let stdout = child.stdout.take().context("shim stdout")?;
        Ok(ShimProcess {
            child,
            lines: Some(Lines::new(stdout, stdin)),
        })
    }

    /// Starts a shim and completes the MCP handshake.
    pub fn initialized(env: &TestEnv, extra: &[(&str, &str)]) -> anyhow::Result<ShimProcess> {
        let mut shim = ShimProcess::spawn(env, extra)?;
        shim.lines().initialize()?;
        Ok(shim)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn lines(&mut self) -> &mut Lines<ChildStdout, ChildStdin> {
        self.lines.as_mut().expect("open until closed")
    }

    /// Closes stdin and waits for the exit (killing it after 5 s).
    pub fn close(mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.shut()
    }

    fn shut(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.lines = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait()?;
                bail!("the shim did not exit within 5 s of stdin closing ({status})");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for ShimProcess {
    fn drop(&mut self) {
        if self.lines.is_some() {
            let _ = self.shut();
        }
    }
}

/// The variables a shim started in `env` would forward in its hello.
pub fn forwarded_env(env: &TestEnv) -> BTreeMap<String, String> {
    let mut vars: BTreeMap<String, String> = std::env::vars().collect();
    for (name, value) in [
        ("CODEX_FUSION_SOCKET", &env.socket),
        ("CODEX_FUSION_STATE_DIR", &env.state_dir),
        ("CODEX_FUSION_WORKSPACE", &env.workspace),
    ] {
        vars.insert(name.to_owned(), value.display().to_string());
    }
    vars.insert("CODEX_FUSION_DAEMON_LOG".to_owned(), "debug,rmcp=info".to_owned());
    vars.extend(env.env.clone());
    vars.into_iter()
        .filter(|(name, _)| codex_fusion_protocol::is_forwarded(name))
        .collect()
}

/// An MCP connection straight to the daemon's socket: the same hello a
/// shim sends, then JSON-RPC lines with no process in between.
pub fn connect_direct(env: &TestEnv, workspace: &Path) -> anyhow::Result<Lines<UnixStream, UnixStream>> {
    let stream = UnixStream::connect(&env.socket).with_context(|| format!("connecting to {}", env.socket.display()))?;
    let hello = Hello::new(Role::Shim, Channel::Mcp)
        .with_workspace(workspace.to_path_buf())
        .with_env(forwarded_env(env));
    let mut lines = Lines::new(stream.try_clone()?, stream);
    lines.send(&frame::encode(&hello))?;
    let reply: HelloReply = frame::decode(lines.read_line()?).map_err(|error| anyhow!("hello reply: {error}"))?;
    match reply {
        HelloReply::Accepted { .. } => Ok(lines),
        HelloReply::Refused { error, .. } => bail!("the daemon refused the hello: {error}"),
    }
}
