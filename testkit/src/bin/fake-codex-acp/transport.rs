//! The fake's own stdio transport: newline-delimited JSON over tokio's stdin
//! and stdout, built on the SDK's `Lines`. We own the stdout writer (rather
//! than using the SDK's `Stdio`) so a scenario can write raw garbage between
//! JSON lines, and we see every incoming line so `--log` can record it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::Lines;
use futures::{Sink, Stream};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{oneshot, watch};

/// The process's stdout, shared by the ACP connection and scenarios that
/// write raw bytes. Clones share the same writer.
#[derive(Clone)]
pub struct Output {
    // A tokio mutex: writes are awaited while it is held, and one JSON line
    // must never be interleaved with raw garbage.
    stdout: Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>,
    // Counts lines fully written to stdout, so a scenario can wait until a
    // message it queued has actually left the process (see `fake:crash`).
    written: Arc<watch::Sender<u64>>,
    log: Option<Arc<MessageLog>>,
}

impl Output {
    /// Call inside the runtime: a pipe writer registers with its reactor.
    pub fn new(log: Option<Arc<MessageLog>>) -> Self {
        Self {
            stdout: Arc::new(tokio::sync::Mutex::new(stdout_writer())),
            written: Arc::new(watch::channel(0).0),
            log,
        }
    }

    /// Writes raw bytes to stdout between JSON lines.
    pub async fn write_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut stdout = self.stdout.lock().await;
        stdout.write_all(bytes).await?;
        stdout.flush().await
    }

    /// How many JSON lines have been written so far.
    pub fn lines_written(&self) -> u64 {
        *self.written.borrow()
    }

    /// Waits until more than `seen` lines were written, at most `limit`.
    pub async fn wait_written_past(&self, seen: u64, limit: Duration) {
        let mut receiver = self.written.subscribe();
        let _ = tokio::time::timeout(limit, receiver.wait_for(|count| *count > seen)).await;
    }

    async fn write_line(&self, line: String) -> std::io::Result<()> {
        if let Some(log) = &self.log {
            log.note_outgoing(&line);
        }
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        {
            let mut stdout = self.stdout.lock().await;
            stdout.write_all(&bytes).await?;
            stdout.flush().await?;
        }
        self.written.send_modify(|count| *count += 1);
        Ok(())
    }
}

/// Stdout as an async pipe when it is one (how every client runs the fake),
/// else tokio's `Stdout`. `Stdout` hands each write and flush to a blocking
/// thread; at a flood's rate those hand-offs cost the fake more CPU than the
/// daemon spends on the same updates, and figure 3 of the bench would
/// measure the fixture rather than the daemon.
fn stdout_writer() -> Box<dyn AsyncWrite + Send + Unpin> {
    use std::os::fd::AsFd as _;
    let pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok());
    match pipe {
        Some(pipe) => Box::new(pipe),
        None => Box::new(tokio::io::stdout()),
    }
}

/// Builds the transport over stdin/stdout. The receiver fires when stdin
/// reaches EOF (or fails), which is when the fake must exit.
pub fn stdio(
    output: Output,
    log: Option<Arc<MessageLog>>,
) -> (
    Lines<
        impl Sink<String, Error = std::io::Error> + Send + 'static,
        impl Stream<Item = std::io::Result<String>> + Send + 'static,
    >,
    oneshot::Receiver<()>,
) {
    let (eof_sender, eof) = oneshot::channel();
    let outgoing = futures::sink::unfold(output, |output, line: String| async move {
        output.write_line(line).await?;
        Ok::<_, std::io::Error>(output)
    });
    let reader = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let incoming = futures::stream::unfold(Some((reader, log, eof_sender)), |state| async move {
        let (mut reader, log, eof_sender) = state?;
        match reader.next_line().await {
            Ok(Some(line)) => {
                if let Some(log) = &log {
                    log.record_incoming(&line);
                }
                Some((Ok(line), Some((reader, log, eof_sender))))
            }
            Ok(None) => {
                let _ = eof_sender.send(());
                None
            }
            Err(error) => {
                let _ = eof_sender.send(());
                Some((Err(error), None))
            }
        }
    });
    (Lines::new(outgoing, incoming), eof)
}

/// The `--log` file: one JSON object per received message. Requests and
/// notifications are logged as `{"method", "params", "id"?}`; responses to
/// the fake's own requests as `{"id", "responseTo", "result" | "error"}`.
pub struct MessageLog {
    file: Mutex<File>,
    // JSON-encoded request id → method, for the requests the fake sent, so a
    // logged response says what it answers (e.g. `session/request_permission`).
    sent_requests: Mutex<HashMap<String, String>>,
}

impl MessageLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
            sent_requests: Mutex::new(HashMap::new()),
        })
    }

    fn note_outgoing(&self, line: &str) {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            return;
        };
        if let (Some(id), Some(method)) = (message.get("id"), message.get("method")) {
            let method = method.as_str().unwrap_or_default().to_owned();
            lock(&self.sent_requests).insert(id.to_string(), method);
        }
    }

    fn record_incoming(&self, line: &str) {
        let record = match serde_json::from_str::<Value>(line) {
            Ok(message) if message.get("method").is_some() => {
                let mut record = json!({
                    "method": message["method"],
                    "params": message.get("params").cloned().unwrap_or(Value::Null),
                });
                if let Some(id) = message.get("id") {
                    record["id"] = id.clone();
                }
                record
            }
            Ok(message) if message.get("id").is_some() => {
                let id = message["id"].clone();
                let answered = lock(&self.sent_requests).remove(&id.to_string());
                let mut record = json!({ "id": id, "responseTo": answered });
                for key in ["result", "error"] {
                    if let Some(value) = message.get(key) {
                        record[key] = value.clone();
                    }
                }
                record
            }
            _ => json!({ "unparsed": line }),
        };
        let mut line = record.to_string();
        line.push('\n');
        if let Err(error) = lock(&self.file).write_all(line.as_bytes()) {
            eprintln!("fake-codex-acp: writing the message log failed: {error}");
        }
    }
}

/// Locks a std mutex, recovering from poisoning: the fake's shared maps stay
/// usable even if some task panicked while holding them.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
