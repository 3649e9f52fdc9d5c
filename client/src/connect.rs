//! Reaching the daemon: connect to its socket, start it when nobody answers,
//! check that it runs as our user, and exchange the hello. Every wait has a
//! deadline; a daemon that cannot be reached ends in one clear error, never a
//! hang.

use std::io::{BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use codex_fusion_protocol::limits::HELLO_MAX_BYTES;
use codex_fusion_protocol::{AGENT_ENV_VARS, Hello, PACKAGE_VERSION, frame, paths, private};

use crate::{Error, PeerError, ReplyError};

/// How long a daemon started by a client gets to create its socket.
const DAEMON_START_WAIT: Duration = Duration::from_secs(10);
/// How often the socket is probed while the daemon starts.
const START_POLL: Duration = Duration::from_millis(5);
/// How long the daemon gets to answer the hello.
const HELLO_REPLY_WAIT: Duration = Duration::from_secs(10);
/// Set in the environment of a daemon a client starts: it then writes only
/// warnings to stderr (the start log), so that file stays small.
pub const DAEMON_QUIET_STDERR_ENV: &str = "CODEX_FUSION_DAEMON_QUIET_STDERR";

/// A connected, accepted link to the daemon.
pub struct Connection {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
}

/// Knows how to (re)connect: the socket, and the hello to send each time.
pub struct Connector {
    pub socket: PathBuf,
    hello: Hello,
    /// Where the daemon's start log and logs are; `None` when it cannot be
    /// resolved (no home), in which case a started daemon's stderr is dropped.
    state_dir: Option<PathBuf>,
    /// Whether the version-difference note was printed (once per process).
    version_noted: AtomicBool,
}

impl Connector {
    pub fn new(socket: PathBuf, hello: Hello) -> Connector {
        Connector {
            socket,
            hello,
            state_dir: paths::state_dir(|name| std::env::var_os(name)).ok(),
            version_noted: AtomicBool::new(false),
        }
    }

    /// Where the daemon keeps its log files, for messages.
    pub fn log_hint(&self) -> String {
        match &self.state_dir {
            Some(dir) => format!("its log in {}", paths::log_dir(dir).display()),
            None => format!("its log (set {} to choose where it goes)", paths::STATE_DIR_ENV),
        }
    }

    /// Connects to a running daemon, or starts one and connects to it.
    pub fn connect_or_start(&self) -> Result<Connection, Error> {
        let nobody = match UnixStream::connect(&self.socket) {
            Ok(stream) => return self.handshake(stream),
            Err(error) => match absence(&error, &self.socket) {
                Some(nobody) => nobody,
                None => return Err(self.cannot_connect(&error)),
            },
        };
        let mut child = self.start_daemon(&nobody)?;
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
                Err(error) if absence(&error, &self.socket).is_none() => return Err(self.cannot_connect(&error)),
                Err(_) => {}
            }
            let now = Instant::now();
            if exited_at.is_none()
                && let Ok(Some(status)) = child.try_wait()
            {
                exited_at = Some((now, status));
            }
            // A daemon that exited may have lost a start race to another
            // one; give that one a moment to bind before giving up.
            if let Some((at, status)) = exited_at
                && now.duration_since(at) > Duration::from_millis(500)
            {
                return Err(Error::Connect(format!(
                    "codex-fusiond exited ({status}) before it was ready: {}",
                    self.start_log_tail()
                )));
            }
            if now >= deadline {
                return Err(Error::Connect(format!(
                    "codex-fusiond did not create {} within {} s: {}",
                    self.socket.display(),
                    DAEMON_START_WAIT.as_secs(),
                    self.start_log_tail()
                )));
            }
            std::thread::sleep(START_POLL);
        }
    }

    fn cannot_connect(&self, error: &std::io::Error) -> Error {
        Error::Connect(format!(
            "cannot connect to codex-fusiond at {}: {error}",
            self.socket.display()
        ))
    }

    /// Checks who listens, sends the hello and reads the answer.
    fn handshake(&self, mut stream: UnixStream) -> Result<Connection, Error> {
        let lost = |error: &dyn std::fmt::Display| {
            Error::Connect(format!(
                "codex-fusiond at {} did not complete the hello: {error}",
                self.socket.display()
            ))
        };
        // The hello may carry API keys: only our own user's daemon gets it.
        crate::check_peer(&stream).map_err(|error| peer_refused(error, &self.socket))?;
        let hello = frame::try_encode(&self.hello).map_err(|error| Error::Config(error.to_string()))?;
        stream.write_all(&hello).map_err(|error| lost(&error))?;
        let writer = stream.try_clone().map_err(|error| lost(&error))?;
        stream
            .set_read_timeout(Some(HELLO_REPLY_WAIT))
            .map_err(|error| lost(&error))?;
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let line = match frame::read_line(&mut reader, HELLO_MAX_BYTES) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(lost(&"it closed the connection")),
            Err(frame::FrameError::Io(error))
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // `codex-fusion stop` would go through this same socket; the
                // lock file names the process to end instead.
                let lock = paths::lock_path(&self.socket);
                return Err(lost(&format_args!(
                    "no answer within {} s; it looks wedged: end it with `kill $(cat {})` and try again",
                    HELLO_REPLY_WAIT.as_secs(),
                    lock.display()
                )));
            }
            Err(error) => return Err(lost(&error)),
        };
        match crate::read_reply(&line) {
            Ok(accepted) => {
                reader.get_ref().set_read_timeout(None).map_err(|error| lost(&error))?;
                if let Some(note) = version_note(&accepted.daemon_version, PACKAGE_VERSION)
                    && !self.version_noted.swap(true, Ordering::Relaxed)
                {
                    eprintln!("codex-fusion: note: {note}");
                }
                Ok(Connection { reader, writer })
            }
            Err(ReplyError::Unreadable(error)) => Err(lost(&error)),
            Err(ReplyError::Refused(error)) => Err(Error::Refused(format!("codex-fusiond refused: {error}"))),
        }
    }

    /// Starts `codex-fusiond` detached (own process group, no stdio of ours,
    /// `/` as its directory, without the agent variables of this client),
    /// its stderr going to the start log in the state directory.
    fn start_daemon(&self, nobody: &str) -> Result<Child, Error> {
        let program = daemon_binary().ok_or_else(|| {
            Error::Connect(format!(
                "codex-fusiond is not running ({nobody}) and its binary was found neither next to codex-fusion-mcp nor on PATH; install codex-fusion with `scripts/install.sh` from its checkout, or start the daemon yourself"
            ))
        })?;
        // The daemon runs from `/`; a relative PATH entry must not change meaning.
        let program = std::path::absolute(&program).unwrap_or(program);
        let stderr = match self.state_dir.as_deref().map(open_start_log) {
            Some(Ok(file)) => Stdio::from(file),
            Some(Err(error)) => {
                // Not fatal: the daemon still starts, its startup errors are lost.
                eprintln!("codex-fusion: note: the daemon's start log is not kept: {error}");
                Stdio::null()
            }
            None => Stdio::null(),
        };
        let mut command = Command::new(&program);
        command
            .stdin(Stdio::null())
            // Never our stdout: that is the MCP channel to Claude Code.
            .stdout(Stdio::null())
            .stderr(stderr)
            // Not the client's directory: the daemon serves every workspace
            // and must not keep one busy (or unmountable).
            .current_dir("/")
            .env(paths::SOCKET_ENV, &self.socket)
            .env(DAEMON_QUIET_STDERR_ENV, "1")
            .process_group(0);
        // The daemon outlives this client and serves every workspace: this
        // client's credentials reach it in the hello, per connection, and
        // must not become every codex-acp's default.
        for name in AGENT_ENV_VARS {
            command.env_remove(name);
        }
        command
            .spawn()
            .map_err(|error| Error::Connect(format!("cannot start {}: {error}", program.display())))
    }

    /// The last meaningful line the daemon wrote while starting.
    fn start_log_tail(&self) -> String {
        let Some(path) = self.state_dir.as_deref().map(paths::start_log) else {
            return "it wrote nothing we could keep (no state directory)".to_owned();
        };
        let text = match private::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned(),
            Err(error) => return format!("its start log cannot be read: {error}"),
        };
        text.lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("it wrote nothing; see {}", path.display()))
    }
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

/// The shim's words for a socket whose listener is another user: it would
/// receive our hello, API keys included.
fn peer_refused(error: PeerError, socket: &Path) -> Error {
    match error {
        PeerError::Stranger { uid, own } => Error::Refused(format!(
            "refusing to talk to {}: it is served by uid {uid}, not by us (uid {own}); remove that socket or set {} to a path of your own",
            socket.display(),
            paths::SOCKET_ENV
        )),
        PeerError::Unknown(error) => Error::Connect(format!("cannot tell who serves {}: {error}", socket.display())),
    }
}

/// Why nobody answered at `socket`, when that means "start the daemon".
fn absence(error: &std::io::Error, socket: &Path) -> Option<String> {
    match error.kind() {
        std::io::ErrorKind::NotFound => Some(format!("no socket at {}", socket.display())),
        std::io::ErrorKind::ConnectionRefused => Some(format!(
            "{} refused the connection: a stale socket nobody listens on",
            socket.display()
        )),
        _ => None,
    }
}

/// A one-line note when the daemon and this client are different builds,
/// saying which one to change.
fn version_note(daemon: &str, ours: &str) -> Option<String> {
    if daemon == ours {
        return None;
    }
    let advice = match (numeric_version(daemon), numeric_version(ours)) {
        (Some(theirs), Some(mine)) if theirs < mine => {
            "stop it (`codex-fusion stop`) so the next call starts the installed one"
        }
        (Some(theirs), Some(mine)) if theirs > mine => {
            "this client is older: reinstall codex-fusion (`scripts/install.sh`) so both match"
        }
        _ => "stop it (`codex-fusion stop`) after installing so both match",
    };
    Some(format!(
        "the running codex-fusiond is version {daemon}, this client is {ours}; {advice}"
    ))
}

/// `1.2.3` (pre-release suffix ignored) as numbers, for ordering.
fn numeric_version(version: &str) -> Option<Vec<u64>> {
    let core = version.split(['-', '+']).next()?;
    core.split('.').map(|part| part.parse().ok()).collect()
}

/// Opens (emptying) the daemon's start log in `state_dir`, through
/// `protocol::private`: the directory 0700, the file 0600, never through a
/// symlink and never another user's file.
fn open_start_log(state_dir: &Path) -> Result<std::fs::File, private::PrivateError> {
    private::create_dir(state_dir)?;
    private::open(&paths::start_log(state_dir), private::Access::Replace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_served_by_another_user_is_refused_by_name() {
        let own = codex_fusion_protocol::peer::own_uid();
        let stranger = PeerError::Stranger {
            uid: own.wrapping_add(1),
            own,
        };
        let error = peer_refused(stranger, Path::new("/run/x.sock"));
        let message = error.to_string();
        assert!(matches!(error, Error::Refused(_)), "not retried: {message}");
        assert!(message.contains("/run/x.sock"), "{message}");
        assert!(message.contains(&format!("uid {own}")), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn version_notes_say_which_side_to_change() {
        assert_eq!(version_note("0.1.0", "0.1.0"), None);
        let older_daemon = version_note("0.1.0", "0.2.0").expect("note");
        assert!(older_daemon.contains("codex-fusion stop"), "{older_daemon}");
        let older_client = version_note("0.10.0", "0.9.1").expect("note");
        assert!(older_client.contains("scripts/install.sh"), "{older_client}");
        assert!(version_note("dev", "0.1.0").is_some());
    }

    #[test]
    fn the_start_log_is_private_and_never_follows_a_symlink() {
        use std::os::unix::fs::PermissionsExt as _;
        let temp = tempfile::tempdir().expect("tempdir");
        let state = temp.path().join("state");
        let file = open_start_log(&state).expect("opens");
        drop(file);
        let mode = std::fs::metadata(&state).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let mode = std::fs::metadata(paths::start_log(&state))
            .expect("file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        let victim = temp.path().join("victim");
        std::fs::write(&victim, "keep me").expect("write");
        std::fs::remove_file(paths::start_log(&state)).expect("rm");
        std::os::unix::fs::symlink(&victim, paths::start_log(&state)).expect("symlink");
        assert!(open_start_log(&state).is_err(), "a symlink is not followed");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me");
        // Nor is it read back through the link into an error message.
        let connector = Connector {
            socket: temp.path().join("daemon.sock"),
            hello: Hello::new(codex_fusion_protocol::Role::Shim, codex_fusion_protocol::Channel::Mcp),
            state_dir: Some(state.clone()),
            version_noted: AtomicBool::new(false),
        };
        let tail = connector.start_log_tail();
        assert!(!tail.contains("keep me"), "{tail}");
        assert!(tail.contains("symbolic link"), "{tail}");
    }
}
