//! A control connection to a running daemon: connect with a short timeout,
//! exchange the hello, then one request and one response at a time. This
//! module never starts the daemon (`ask` does, through the shim's connector).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::frame::{self, FrameError};
use codex_fusion_protocol::limits::{CONNECT_TIMEOUT, CONTROL_MAX_BYTES, HELLO_MAX_BYTES};
use codex_fusion_protocol::{Channel, Hello, HelloReply, Role};
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Why the daemon could not be talked to. The text names the socket and what
/// to do next.
#[derive(Debug)]
pub enum LinkError {
    /// Nobody listens on the socket (no file, or a stale one).
    NotRunning { socket: PathBuf },
    /// Something is there but did not let us in within [`CONNECT_TIMEOUT`], or
    /// the OS refused (permissions).
    Unreachable { socket: PathBuf, reason: String },
    /// The daemon answered the hello with a refusal (version mismatch, …).
    Refused { message: String },
    /// The connection broke or carried something we cannot read.
    Lost { reason: String },
    /// The daemon accepted but did not answer `what` in time.
    TimedOut { what: &'static str, after: Duration },
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::NotRunning { socket } => write!(
                f,
                "codex-fusiond is not running (nothing listens on {}); {}",
                socket.display(),
                start_hint()
            ),
            LinkError::Unreachable { socket, reason } => write!(
                f,
                "cannot reach codex-fusiond at {}: {reason}; check it with `codex-fusion doctor`",
                socket.display()
            ),
            LinkError::Refused { message } => write!(f, "codex-fusiond refused the connection: {message}"),
            LinkError::Lost { reason } => write!(f, "lost the connection to codex-fusiond: {reason}"),
            LinkError::TimedOut { what, after } => write!(
                f,
                "codex-fusiond did not answer {what} within {} ms; if it stays wedged, `codex-fusion stop` and look at its log",
                after.as_millis()
            ),
        }
    }
}

impl std::error::Error for LinkError {}

/// How a person starts the daemon on this system.
pub fn start_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "start it with `launchctl kickstart gui/$(id -u)/dev.codex-fusion.daemon` (after `codex-fusion install`); the MCP server also starts it on demand"
    } else {
        "start it with `systemctl --user start codex-fusiond` (after `codex-fusion install`); the MCP server also starts it on demand"
    }
}

/// An accepted control connection.
pub struct ControlLink {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub daemon_version: String,
    pub pid: u32,
}

impl ControlLink {
    /// Connects to the daemon at `socket` (within [`CONNECT_TIMEOUT`]) and
    /// sends the hello with our forwarded variables. Callers bound the whole exchange with their own
    /// deadline; the hello reply itself is not timed here.
    pub async fn connect(socket: &Path, role: Role) -> Result<ControlLink, LinkError> {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Err(LinkError::NotRunning {
                    socket: socket.to_path_buf(),
                });
            }
            Ok(Err(error)) => {
                return Err(LinkError::Unreachable {
                    socket: socket.to_path_buf(),
                    reason: error.to_string(),
                });
            }
            Err(_) => {
                return Err(LinkError::Unreachable {
                    socket: socket.to_path_buf(),
                    reason: format!(
                        "it did not accept the connection within {} ms (is it wedged? `codex-fusion stop`)",
                        CONNECT_TIMEOUT.as_millis()
                    ),
                });
            }
        };
        let (read, mut writer) = stream.into_split();
        let mut reader = BufReader::new(read);
        let hello = Hello::new(role, Channel::Control).with_env(crate::forwarded_env());
        writer.write_all(&frame::encode(&hello)).await.map_err(lost)?;
        let line = frame::read_line_async(&mut reader, HELLO_MAX_BYTES)
            .await
            .map_err(lost)?
            .ok_or_else(|| LinkError::Lost {
                reason: "it closed the connection before answering the hello".into(),
            })?;
        match frame::decode::<HelloReply>(&line).map_err(lost)? {
            HelloReply::Accepted {
                daemon_version, pid, ..
            } => Ok(ControlLink {
                reader,
                writer,
                daemon_version,
                pid,
            }),
            HelloReply::Refused { error, .. } => Err(LinkError::Refused { message: error }),
        }
    }

    /// Sends one request and reads its response.
    pub async fn request(&mut self, request: &ControlRequest) -> Result<ControlResponse, LinkError> {
        self.writer.write_all(&frame::encode(request)).await.map_err(lost)?;
        let line = frame::read_line_async(&mut self.reader, CONTROL_MAX_BYTES)
            .await
            .map_err(lost)?
            .ok_or_else(|| LinkError::Lost {
                reason: "it closed the connection without answering".into(),
            })?;
        frame::decode(&line).map_err(lost)
    }
}

/// Runs a whole exchange with the daemon under one deadline.
pub async fn timed<T>(
    after: Duration,
    what: &'static str,
    exchange: impl Future<Output = Result<T, LinkError>>,
) -> Result<T, LinkError> {
    tokio::time::timeout(after, exchange)
        .await
        .unwrap_or(Err(LinkError::TimedOut { what, after }))
}

fn lost(error: impl Into<FrameError>) -> LinkError {
    LinkError::Lost {
        reason: error.into().to_string(),
    }
}
