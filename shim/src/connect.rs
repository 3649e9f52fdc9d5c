//! Reaching the daemon: connect to its socket, start it when nobody answers,
//! and exchange the hello. Every wait has a deadline; a daemon that cannot be
//! reached ends in one clear error, never a hang.

use std::io::{BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use codex_fusion_protocol::frame;
use codex_fusion_protocol::limits::HELLO_MAX_BYTES;
use codex_fusion_protocol::{Hello, HelloReply, paths};

use crate::ShimError;

/// How long a daemon started by the shim gets to create its socket.
const DAEMON_START_WAIT: Duration = Duration::from_secs(10);
/// How often the socket is probed while the daemon starts.
const START_POLL: Duration = Duration::from_millis(5);
/// How long the daemon gets to answer the hello.
const HELLO_REPLY_WAIT: Duration = Duration::from_secs(10);

/// A connected, accepted link to the daemon.
pub struct Connection {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
}

/// Knows how to (re)connect: the socket, and the hello to send each time.
pub struct Connector {
    pub socket: PathBuf,
    hello: Vec<u8>,
}

impl Connector {
    pub fn new(socket: PathBuf, hello: Hello) -> Connector {
        Connector {
            socket,
            hello: frame::encode(&hello),
        }
    }

    /// Connects to a running daemon, or starts one and connects to it.
    pub fn connect_or_start(&self) -> Result<Connection, ShimError> {
        match UnixStream::connect(&self.socket) {
            Ok(stream) => return self.handshake(stream),
            Err(error) if is_absent(&error) => {}
            Err(error) => {
                return Err(ShimError::Connect(format!(
                    "cannot connect to codex-fusiond at {}: {error}",
                    self.socket.display()
                )));
            }
        }
        let mut child = start_daemon(&self.socket)?;
        let deadline = Instant::now() + DAEMON_START_WAIT;
        let mut exited_at = None;
        loop {
            match UnixStream::connect(&self.socket) {
                Ok(stream) => {
                    // Reap the daemon we started if it lost the race to
                    // another one; it is not ours to keep otherwise.
                    let _ = child.try_wait();
                    return self.handshake(stream);
                }
                Err(error) if !is_absent(&error) => {
                    return Err(ShimError::Connect(format!(
                        "cannot connect to codex-fusiond at {}: {error}",
                        self.socket.display()
                    )));
                }
                Err(_) => {}
            }
            let now = Instant::now();
            if exited_at.is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    exited_at = Some((now, status));
                }
            }
            // A daemon that exited may have lost a start race to another
            // one; give that one a moment to bind before giving up.
            if let Some((at, status)) = exited_at {
                if now.duration_since(at) > Duration::from_millis(500) {
                    return Err(ShimError::Connect(format!(
                        "codex-fusiond exited ({status}) before it was ready: {}",
                        start_log_tail(&self.socket)
                    )));
                }
            }
            if now >= deadline {
                return Err(ShimError::Connect(format!(
                    "codex-fusiond did not create {} within {} s: {}",
                    self.socket.display(),
                    DAEMON_START_WAIT.as_secs(),
                    start_log_tail(&self.socket)
                )));
            }
            std::thread::sleep(START_POLL);
        }
    }

    /// Sends the hello and reads the answer.
    fn handshake(&self, mut stream: UnixStream) -> Result<Connection, ShimError> {
        let lost = |error: &dyn std::fmt::Display| {
            ShimError::Connect(format!(
                "codex-fusiond at {} did not complete the hello: {error}",
                self.socket.display()
            ))
        };
        stream.write_all(&self.hello).map_err(|error| lost(&error))?;
        let writer = stream.try_clone().map_err(|error| lost(&error))?;
        stream
            .set_read_timeout(Some(HELLO_REPLY_WAIT))
            .map_err(|error| lost(&error))?;
        let mut reader = BufReader::new(stream);
        let line = match frame::read_line(&mut reader, HELLO_MAX_BYTES) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(lost(&"it closed the connection")),
            Err(frame::FrameError::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(lost(&format_args!(
                    "no answer within {} s; is it wedged? Try `codex-fusion stop`",
                    HELLO_REPLY_WAIT.as_secs()
                )));
            }
            Err(error) => return Err(lost(&error)),
        };
        let reply: HelloReply = frame::decode(&line).map_err(|error| lost(&error))?;
        match reply {
            HelloReply::Accepted { .. } => {
                reader.get_ref().set_read_timeout(None).map_err(|error| lost(&error))?;
                Ok(Connection { reader, writer })
            }
            HelloReply::Refused { error, .. } => Err(ShimError::Refused(format!("codex-fusiond refused: {error}"))),
        }
    }
}

fn is_absent(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

/// Starts `codex-fusiond` detached (own process group, no stdio of ours),
/// its early stderr going to a start log next to the socket.
fn start_daemon(socket: &Path) -> Result<Child, ShimError> {
    let program = daemon_binary().ok_or_else(|| {
        ShimError::Connect(format!(
            "codex-fusiond is not running (no socket at {}) and its binary was found neither next to codex-fusion-mcp nor on PATH; install codex-fusion (`cargo install --path .` in its checkout) or start the daemon yourself",
            socket.display()
        ))
    })?;
    let log_path = start_log(socket);
    if let Some(dir) = log_path.parent() {
        let _ = create_private_dir(dir);
    }
    let stderr = std::fs::File::create(&log_path)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    Command::new(&program)
        .stdin(Stdio::null())
        // Never our stdout: that is the MCP channel to Claude Code.
        .stdout(Stdio::null())
        .stderr(stderr)
        .env(paths::SOCKET_ENV, socket)
        .process_group(0)
        .spawn()
        .map_err(|error| ShimError::Connect(format!("cannot start {}: {error}", program.display())))
}

/// `codex-fusiond` next to our own executable, else on PATH.
pub fn daemon_binary() -> Option<PathBuf> {
    const NAME: &str = "codex-fusiond";
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(NAME)))
        .filter(|path| path.is_file())
    {
        return Some(sibling);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(NAME))
            .find(|candidate| candidate.is_file())
    })
}

fn start_log(socket: &Path) -> PathBuf {
    socket.with_file_name("daemon-start.log")
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// The last meaningful line the daemon wrote while starting.
fn start_log_tail(socket: &Path) -> String {
    let path = start_log(socket);
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| {
            text.lines()
                .rev()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("it wrote nothing; see {}", path.display()))
}
