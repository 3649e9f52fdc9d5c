//! One control exchange with a running daemon: connect, send the hello and
//! the request, read the hello reply and the response, all under one
//! deadline ([`exchange`]; [`open`] keeps the connection for a stream).
//! This module never starts the daemon (`ask` does, through
//! `codex_fusion_client`'s connector). The connection is async and under
//! one deadline here, but the hello, the peer rule and the reading of the
//! reply are `codex_fusion_client`'s, as for every client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use codex_fusion_client::{PeerError, ReplyError};
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::frame::{self, FrameError};
use codex_fusion_protocol::limits::{CONNECT_TIMEOUT, CONTROL_MAX_BYTES, HELLO_MAX_BYTES};
use codex_fusion_protocol::{Channel, Role};
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout_at};

/// Why the daemon could not be talked to. The text names the socket and what
/// to do next.
#[derive(Debug)]
pub enum LinkError {
    /// Nobody listens on the socket (no file, or a stale one).
    NotRunning { socket: PathBuf },
    /// The OS refused the connection (permissions, a path that is not a
    /// socket, …).
    Unreachable { socket: PathBuf, reason: String },
    /// Something holds the socket but did not accept the connection, or
    /// did not answer `what`, before the deadline. `delivered` says whether
    /// the request had reached the socket, so a daemon that is only slow
    /// still carries it out when it gets to it.
    NotAnswering {
        socket: PathBuf,
        what: &'static str,
        after: Duration,
        delivered: bool,
    },
    /// The daemon answered the hello with a refusal (version mismatch, …).
    Refused { message: String },
    /// The connection broke or carried something we cannot read.
    Lost { reason: String },
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
            LinkError::NotAnswering {
                socket, what, after, ..
            } => write!(
                f,
                "a daemon holds the socket {} but does not answer ({what}, waited {} ms); `codex-fusion stop` stops it, with a signal if need be",
                socket.display(),
                after.as_millis()
            ),
            LinkError::Refused { message } => write!(f, "codex-fusiond refused the connection: {message}"),
            LinkError::Lost { reason } => write!(f, "lost the connection to codex-fusiond: {reason}"),
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

/// The daemon's answer to one request.
#[derive(Debug)]
pub struct Answer {
    /// The daemon's pid, from its hello reply.
    pub pid: u32,
    pub response: ControlResponse,
}

/// Sends `request` to the daemon at `socket` and reads its answer, all
/// within `wait`; `what` names the request in a timeout message.
///
/// The hello and the request go out in one write: the daemon reads the
/// request from the same buffer once it has accepted the hello, so a daemon
/// that is slow to answer still receives the request even if we stop
/// waiting (`LinkError::NotAnswering { delivered: true, .. }`).
pub async fn exchange(
    socket: &Path,
    role: Role,
    request: &ControlRequest,
    wait: Duration,
    what: &'static str,
) -> Result<Answer, LinkError> {
    open(socket, role, request, wait, what)
        .await
        .map(|stream| stream.answer)
}

/// A control connection after its first answer, kept open: `watch` reads
/// the events that follow. Dropping it closes the connection.
pub struct Stream {
    pub answer: Answer,
    pub reader: BufReader<OwnedReadHalf>,
    /// Kept so the daemon does not read an EOF while we listen.
    pub writer: OwnedWriteHalf,
}

/// [`exchange`], keeping the connection for what the daemon sends next.
pub async fn open(
    socket: &Path,
    role: Role,
    request: &ControlRequest,
    wait: Duration,
    what: &'static str,
) -> Result<Stream, LinkError> {
    let started = Instant::now();
    let deadline = started + wait;
    let not_answering = |delivered: bool| LinkError::NotAnswering {
        socket: socket.to_path_buf(),
        what,
        after: started.elapsed(),
        delivered,
    };
    let connect_by = deadline.min(started + CONNECT_TIMEOUT);
    let stream = match timeout_at(connect_by, UnixStream::connect(socket)).await {
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
        // A listener whose backlog is full: it stopped accepting.
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::WouldBlock => return Err(not_answering(false)),
        Ok(Err(error)) => {
            return Err(LinkError::Unreachable {
                socket: socket.to_path_buf(),
                reason: error.to_string(),
            });
        }
        Err(_) => return Err(not_answering(false)),
    };
    // The hello carries the forwarded variables, API keys among them: never
    // to a socket another user listens on.
    if let Err(error) = codex_fusion_client::check_peer(&stream) {
        let reason = match error {
            PeerError::Stranger { uid, own } => {
                format!("it is served by uid {uid}, not by you (uid {own}); nothing was sent")
            }
            PeerError::Unknown(error) => format!("cannot tell who serves it ({error}); nothing was sent"),
        };
        return Err(LinkError::Unreachable {
            socket: socket.to_path_buf(),
            reason,
        });
    }
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    let hello = codex_fusion_client::hello(role, Channel::Control, None);
    let mut message = frame::encode(&hello);
    message.extend_from_slice(&frame::encode(request));
    match timeout_at(deadline, writer.write_all(&message)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(lost(error)),
        Err(_) => return Err(not_answering(false)),
    }
    let line = match timeout_at(deadline, frame::read_line_async(&mut reader, HELLO_MAX_BYTES)).await {
        Ok(line) => line.map_err(lost)?.ok_or_else(|| LinkError::Lost {
            reason: "it closed the connection before answering the hello".into(),
        })?,
        Err(_) => return Err(not_answering(true)),
    };
    let pid = match codex_fusion_client::read_reply(&line) {
        Ok(accepted) => accepted.pid,
        Err(ReplyError::Unreadable(error)) => return Err(lost(error)),
        Err(ReplyError::Refused(message)) => return Err(LinkError::Refused { message }),
    };
    let line = match timeout_at(deadline, frame::read_line_async(&mut reader, CONTROL_MAX_BYTES)).await {
        Ok(line) => line.map_err(lost)?.ok_or_else(|| LinkError::Lost {
            reason: "it closed the connection without answering".into(),
        })?,
        Err(_) => return Err(not_answering(true)),
    };
    let response = frame::decode(&line).map_err(lost)?;
    Ok(Stream {
        answer: Answer { pid, response },
        reader,
        writer,
    })
}

fn lost(error: impl Into<FrameError>) -> LinkError {
    LinkError::Lost {
        reason: error.into().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that accepts nothing: connections queue in its backlog and
    /// nobody answers, as with a wedged daemon.
    fn wedged_socket() -> (tempfile::TempDir, PathBuf, std::os::unix::net::UnixListener) {
        let temp = tempfile::tempdir().expect("tempdir");
        let socket = temp.path().join("daemon.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        (temp, socket, listener)
    }

    #[tokio::test]
    async fn a_wedged_daemon_is_reported_within_the_deadline_with_the_request_delivered() {
        let (_temp, socket, listener) = wedged_socket();
        let started = std::time::Instant::now();
        let error = exchange(
            &socket,
            Role::Cli,
            &ControlRequest::Ping,
            Duration::from_millis(300),
            "a ping",
        )
        .await
        .expect_err("nobody answers");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(
            matches!(error, LinkError::NotAnswering { delivered: true, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("a daemon holds the socket"), "{error}");
        // The hello and the request are both in the socket already: a daemon
        // that accepts late reads them both.
        let (stream, _) = listener.accept().expect("queued connection");
        let mut reader = std::io::BufReader::new(stream);
        let hello = frame::read_line(&mut reader, HELLO_MAX_BYTES)
            .expect("read")
            .expect("hello");
        assert!(frame::decode::<codex_fusion_protocol::Hello>(&hello).is_ok());
        let request = frame::read_line(&mut reader, CONTROL_MAX_BYTES)
            .expect("read")
            .expect("request");
        assert_eq!(
            frame::decode::<ControlRequest>(&request).expect("decodes"),
            ControlRequest::Ping
        );
    }

    #[tokio::test]
    async fn no_socket_is_not_running() {
        let temp = tempfile::tempdir().expect("tempdir");
        let error = exchange(
            &temp.path().join("none.sock"),
            Role::Cli,
            &ControlRequest::Ping,
            Duration::from_secs(1),
            "a ping",
        )
        .await
        .expect_err("nothing there");
        assert!(matches!(error, LinkError::NotRunning { .. }), "{error:?}");
    }
}
