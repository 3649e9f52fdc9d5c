//! The daemon's socket: a private directory, a single-instance lock and stale
//! socket removal. (The peer check every accepted connection passes is
//! `protocol::peer`, shared with the shim.)

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt as _, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use tokio::net::UnixListener;

/// Why the socket could not be set up. Startup errors: the daemon exits.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another codex-fusiond is already running on {socket}{pid}; stop it with `codex-fusion stop`, or set CODEX_FUSION_SOCKET to run a separate one", pid = .pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    AlreadyRunning { socket: PathBuf, pid: Option<u32> },
    /// A symlink, another user's directory, or not a directory.
    #[error(transparent)]
    UntrustedDirectory(#[from] codex_fusion_protocol::paths::SocketDirError),
    #[error(transparent)]
    LockFile(#[from] codex_fusion_protocol::private::PrivateError),
    #[error("{path} exists and is not a socket; remove it or set CODEX_FUSION_SOCKET")]
    NotASocket { path: PathBuf },
    #[error(
        "the socket directory {dir} can be written by other users (mode {mode:o}), who could replace the socket; point CODEX_FUSION_SOCKET into a private directory"
    )]
    SharedDirectory { dir: PathBuf, mode: u32 },
    #[error("cannot set up the socket at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How long a starting daemon waits for the lock of one that is stopping
/// (a restart, or a shim starting a daemon while the old one drains).
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// A bound socket and the lock that makes this daemon the only one on it.
/// Dropping it removes the socket file.
pub struct Bound {
    pub listener: UnixListener,
    socket: SocketFile,
    lock: Flock<File>,
}

/// How often a daemon that cannot watch its socket's directory (no
/// inotify instance left) checks that its socket is still there.
const SOCKET_POLL: Duration = Duration::from_secs(5);

/// A socket file known by its path and inode.
#[derive(Debug, Clone)]
struct SocketId {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketId {
    fn of(path: &Path) -> SocketId {
        SocketId {
            path: path.to_path_buf(),
            identity: identity(path),
        }
    }

    fn still_there(&self) -> bool {
        self.identity.is_some() && identity(&self.path) == self.identity
    }
}

/// The socket file this daemon bound; removed when dropped, unless what is
/// at its path now is another file (the socket of a daemon started after
/// this one lost its own).
struct SocketFile(SocketId);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.0.still_there() {
            let _ = std::fs::remove_file(&self.0.path);
        }
    }
}

/// A message each time an entry of `dir` is created, removed or renamed,
/// or `dir` itself is removed or moved, from a thread blocked on an inotify
/// watch (it ends with the process, or when the receiver is gone and the
/// next change comes).
fn watch_directory(dir: &Path) -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
    inotify.add_watch(
        dir,
        AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR,
    )?;
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    std::thread::Builder::new()
        .name("socket-watch".to_owned())
        .spawn(move || {
            while inotify.read_events().is_ok() {
                // A message already waiting says the same.
                if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) = sender.try_send(()) {
                    return;
                }
            }
        })?;
    Ok(receiver)
}

/// The device and inode at `path`, not following a symlink.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::symlink_metadata(path).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// The single-instance lock, held after the socket is gone until the
/// daemon has finished stopping, so no new daemon starts before its
/// children are gone.
pub struct InstanceLock {
    _lock: Flock<File>,
}

impl Bound {
    /// Resolves once this daemon's socket file is no longer at its path:
    /// removed (with its directory, say) or replaced. No client can reach
    /// the daemon then, and it should stop rather than keep its agents
    /// running for nobody. A thread waits on an inotify watch of the
    /// directory, so an idle daemon does not wake up for this (figure 6);
    /// without one it is checked every [`SOCKET_POLL`].
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let socket = self.socket.0.clone();
        async move {
            let dir = socket.path.parent().unwrap_or(Path::new("/")).to_path_buf();
            match watch_directory(&dir) {
                Ok(mut changed) => {
                    // Checked once the watch is set too: the socket may have
                    // gone before it was.
                    while socket.still_there() {
                        if changed.recv().await.is_none() {
                            break;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        %error,
                        "cannot watch the socket's directory; checking it every {} s instead",
                        SOCKET_POLL.as_secs()
                    );
                }
            }
            while socket.still_there() {
                tokio::time::sleep(SOCKET_POLL).await;
            }
        }
    }

    /// Stops listening: the socket file goes (new clients see no daemon), the
    /// lock stays with the caller.
    pub fn stop_listening(self) -> InstanceLock {
        let Bound { listener, socket, lock } = self;
        drop(socket);
        drop(listener);
        InstanceLock { _lock: lock }
    }
}

/// Binds `socket`: socket 0600 whatever the umask, a stale socket of a dead
/// daemon removed, a live one never. Its directory must be a real directory
/// of this user, checked without following a symlink at its name
/// (`paths::check_socket_dir`). It is made 0700 when the daemon created it
/// or it is the daemon's own (`dedicated`); a directory named by the user is
/// left as it is but must not be writable by others.
pub fn bind(socket: &Path, dedicated: bool) -> Result<Bound, BindError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BindError::Io { path, source }
    };
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let created = !dir.exists();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let metadata = codex_fusion_protocol::paths::check_socket_dir(dir)?;
    let mode = metadata.permissions().mode() & 0o777;
    if created || dedicated {
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        }
    } else if mode & 0o022 != 0 {
        return Err(BindError::SharedDirectory {
            dir: dir.to_path_buf(),
            mode,
        });
    }

    // One lock file per socket: whoever holds it owns the socket, so two
    // daemons starting at once cannot both remove-and-bind.
    let lock_path = codex_fusion_protocol::paths::lock_path(socket);
    let lock_file =
        codex_fusion_protocol::private::open(&lock_path, codex_fusion_protocol::private::Access::ReadWrite)?;
    let mut lock = lock_with_patience(lock_file, &lock_path).map_err(|pid| BindError::AlreadyRunning {
        socket: socket.to_path_buf(),
        pid,
    })?;
    // Ours now: say so at once, so a loser names this daemon, not the last.
    let _ = lock.set_len(0);
    let _ = write!(&mut *lock, "{}", std::process::id());

    match std::fs::symlink_metadata(socket) {
        Ok(metadata) if metadata.file_type().is_socket() => {
            // We hold the lock, so a daemon answering here is one that lost
            // its lock file; never steal from it.
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(BindError::AlreadyRunning {
                    socket: socket.to_path_buf(),
                    pid: None,
                });
            }
            tracing::info!(socket = %socket.display(), "removing the stale socket of a daemon that is gone");
            std::fs::remove_file(socket).map_err(io(socket))?;
        }
        Ok(_) => {
            return Err(BindError::NotASocket {
                path: socket.to_path_buf(),
            });
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(socket).map_err(io(socket))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io(socket))?;
    Ok(Bound {
        listener,
        socket: SocketFile(SocketId::of(socket)),
        lock,
    })
}

/// Takes the lock, waiting up to [`LOCK_WAIT`] for a daemon that is
/// stopping; `Err` with the holder's pid (from the file) if it stays taken.
fn lock_with_patience(mut file: File, path: &Path) -> Result<Flock<File>, Option<u32>> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((returned, _)) => file = returned,
        }
        if std::time::Instant::now() >= deadline {
            return Err(std::fs::read_to_string(path)
                .ok()
                .and_then(|text| text.trim().parse().ok()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_and_directory_are_private_whatever_the_umask() {
        let temp = tempfile::tempdir().expect("tempdir");
        let socket = temp.path().join("run/daemon.sock");
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o000));
        let bound = bind(&socket, false);
        nix::sys::stat::umask(old);
        let bound = bound.expect("binds");
        let dir_mode = std::fs::metadata(socket.parent().expect("parent"))
            .expect("meta")
            .permissions()
            .mode();
        let socket_mode = std::fs::metadata(&socket).expect("meta").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(socket_mode & 0o777, 0o600);
        drop(bound);
        assert!(!socket.exists(), "dropping removes the socket");
    }

    #[tokio::test]
    async fn a_live_daemon_is_never_replaced_and_a_stale_socket_is() {
        let temp = tempfile::tempdir().expect("tempdir");
        let socket = temp.path().join("daemon.sock");
        let first = bind(&socket, false).expect("binds");
        let second = bind(&socket, false);
        let Err(BindError::AlreadyRunning { pid, .. }) = second else {
            panic!("second bind must refuse")
        };
        assert_eq!(pid, Some(std::process::id()));
        assert!(socket.exists(), "the live socket is left alone");
        drop(first);
        // A socket file left by a daemon that died without cleaning up.
        let stale = std::os::unix::net::UnixListener::bind(&socket).expect("stale bind");
        drop(stale);
        assert!(socket.exists());
        let rebound = bind(&socket, false).expect("a stale socket is replaced");
        assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
        drop(rebound);
    }

    #[tokio::test]
    async fn a_socket_removed_or_replaced_is_lost_and_a_successors_is_left_alone() {
        let temp = tempfile::tempdir().expect("tempdir");
        let socket = temp.path().join("run/daemon.sock");
        let bound = bind(&socket, false).expect("binds");
        let lost = tokio::spawn(bound.lost());
        // Other entries of the directory come and go: nothing is lost.
        std::fs::write(temp.path().join("run/other"), "x").expect("write");
        std::fs::remove_file(temp.path().join("run/other")).expect("remove");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!lost.is_finished(), "the socket is still there");

        // Replaced: removed, and another socket bound at its path.
        std::fs::remove_file(&socket).expect("remove the socket");
        let successor = std::os::unix::net::UnixListener::bind(&socket).expect("a successor binds");
        tokio::time::timeout(Duration::from_secs(2), lost)
            .await
            .expect("lost at once")
            .expect("task");
        drop(bound);
        assert!(socket.exists(), "the successor's socket is not removed");
        drop(successor);

        // Removed with its directory.
        std::fs::remove_file(&socket).expect("remove");
        let bound = bind(&socket, false).expect("binds again");
        let lost = tokio::spawn(bound.lost());
        std::fs::remove_dir_all(temp.path().join("run")).expect("remove the directory");
        tokio::time::timeout(Duration::from_secs(2), lost)
            .await
            .expect("lost at once")
            .expect("task");
    }

    #[tokio::test]
    async fn a_directory_named_by_the_user_is_never_chmodded_but_must_be_private() {
        let temp = tempfile::tempdir().expect("tempdir");
        let shared = temp.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(matches!(
            bind(&shared.join("daemon.sock"), false),
            Err(BindError::SharedDirectory { .. })
        ));
        let home_like = temp.path().join("home");
        std::fs::create_dir(&home_like).expect("mkdir");
        std::fs::set_permissions(&home_like, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let bound = bind(&home_like.join("daemon.sock"), false).expect("binds in a 0755 directory of ours");
        let mode = std::fs::metadata(&home_like).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "left as it was");
        drop(bound);
    }

    /// Issue 13: the fallback directory under /tmp, planted as a symlink to
    /// a directory of the user's, is refused before anything is chmodded or
    /// created in it.
    #[tokio::test]
    async fn a_symlinked_socket_directory_is_refused_and_left_alone() {
        let temp = tempfile::tempdir().expect("tempdir");
        let home_like = temp.path().join("home");
        std::fs::create_dir(&home_like).expect("mkdir");
        std::fs::set_permissions(&home_like, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let planted = temp.path().join("codex-fusion-1000");
        std::os::unix::fs::symlink(&home_like, &planted).expect("symlink");
        let socket = planted.join("daemon.sock");
        for dedicated in [true, false] {
            let error = bind(&socket, dedicated).err().expect("refused");
            assert!(matches!(error, BindError::UntrustedDirectory(_)), "{error}");
            assert!(error.to_string().contains(&planted.display().to_string()), "{error}");
        }
        let mode = std::fs::metadata(&home_like).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "the link's target is never chmodded");
        assert_eq!(
            std::fs::read_dir(&home_like).expect("list").count(),
            0,
            "nothing created there"
        );
    }

    #[test]
    fn the_lock_file_is_never_opened_through_a_symlink() {
        let temp = tempfile::tempdir().expect("tempdir");
        let victim = temp.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        let socket = temp.path().join("run/daemon.sock");
        std::fs::create_dir(temp.path().join("run")).expect("mkdir");
        std::os::unix::fs::symlink(&victim, codex_fusion_protocol::paths::lock_path(&socket)).expect("symlink");
        let error = bind(&socket, true).err().expect("refused");
        assert!(matches!(error, BindError::LockFile(_)), "{error}");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
    }

    #[test]
    fn a_regular_file_in_the_way_is_an_error() {
        let temp = tempfile::tempdir().expect("tempdir");
        let socket = temp.path().join("daemon.sock");
        std::fs::write(&socket, "not a socket").expect("write");
        assert!(matches!(bind(&socket, false), Err(BindError::NotASocket { .. })));
    }
}
