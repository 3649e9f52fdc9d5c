//! A raw line client for the shim: writes JSON-RPC lines and reads back
//! every line the shim prints, with arrival times. For tests that must see
//! exactly what reaches the client (no late messages, bad input).

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::env::{TestEnv, binary};

pub struct RawClient {
    pub shim: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub received: Vec<(Instant, Value)>,
}

impl RawClient {
    pub async fn start(env: &TestEnv) -> RawClient {
        let mut command = tokio::process::Command::new(binary("codex-fusion-mcp"));
        env.apply(&mut command);
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        let mut shim = command.spawn().expect("spawn shim");
        let stdin = shim.stdin.take();
        let stdout = BufReader::new(shim.stdout.take().expect("stdout"));
        RawClient {
            shim,
            stdin,
            stdout,
            received: Vec::new(),
        }
    }

    /// Starts a shim and completes the MCP handshake.
    pub async fn initialized(env: &TestEnv) -> RawClient {
        let mut client = RawClient::start(env).await;
        client
            .send(
                serde_json::json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion":"2025-06-18","capabilities":{},
                "clientInfo":{"name":"raw-test","version":"0"}}}),
            )
            .await;
        client.response(0, Duration::from_secs(20)).await;
        client
            .send(serde_json::json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        client
    }

    pub async fn send(&mut self, message: Value) {
        let mut line = serde_json::to_vec(&message).expect("json");
        line.push(b'\n');
        self.send_bytes(&line).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).await.expect("write to shim");
        stdin.flush().await.expect("flush");
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads the next line within `timeout`; `None` on timeout or EOF.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        let mut line = String::new();
        match tokio::time::timeout(timeout, self.stdout.read_line(&mut line)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => None,
            Ok(Ok(_)) => {
                let value: Value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                self.received.push((Instant::now(), value.clone()));
                Some(value)
            }
        }
    }

    /// Reads until the response to `id` arrives; panics on timeout.
    pub async fn response(&mut self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(value) = self.next(left).await else {
                panic!(
                    "no response to request {id} within {timeout:?}; got {:?}",
                    self.received
                );
            };
            if value.get("id") == Some(&Value::from(id)) && value.get("method").is_none() {
                return value;
            }
        }
    }

    /// Reads everything that arrives within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        let mut lines = Vec::new();
        while let Some(value) = self.next(deadline.saturating_duration_since(Instant::now())).await {
            lines.push(value);
        }
        lines
    }
}
