//! The daemon's socket: a private directory, a single-instance lock, stale
//! socket removal, and the peer check every accepted connection passes
//! before a byte of it is read.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt as _, MetadataExt, OpenOptionsExt as _, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use tokio::net::{UnixListener, UnixStream};

/// Why the socket could not be set up. Startup errors: the daemon exits.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another codex-fusiond is already running on {socket}{pid}; stop it with `codex-fusion stop`, or set CODEX_FUSION_SOCKET to run a separate one", pid = .pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    AlreadyRunning { socket: PathBuf, pid: Option<u32> },
    #[error(
        "the socket directory {dir} belongs to uid {owner}, not to this user (uid {me}); remove it or set CODEX_FUSION_SOCKET"
    )]
    ForeignDirectory { dir: PathBuf, owner: u32, me: u32 },
    #[error("{path} exists and is not a socket; remove it or set CODEX_FUSION_SOCKET")]
    NotASocket { path: PathBuf },
    #[error("cannot set up the socket at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A bound socket and the lock that makes this daemon the only one on it.
/// Dropping it removes the socket file.
pub struct Bound {
    pub listener: UnixListener,
    pub socket: PathBuf,
    _lock: Flock<File>,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Binds `socket`: directory 0700 (created if needed), socket 0600 whatever
/// the umask, a stale socket of a dead daemon removed, a live one never.
pub fn bind(socket: &Path) -> Result<Bound, BindError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BindError::Io { path, source }
    };
    let dir = socket.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let metadata = std::fs::metadata(dir).map_err(io(dir))?;
    let me = nix::unistd::getuid().as_raw();
    if metadata.uid() != me {
        return Err(BindError::ForeignDirectory {
            dir: dir.to_path_buf(),
            owner: metadata.uid(),
            me,
        });
    }
    if metadata.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }

    // One lock file per socket: whoever holds it owns the socket, so two
    // daemons starting at once cannot both remove-and-bind.
    let lock_path = lock_path(socket);
    let lock_file = std::fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    let mut lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((file, _)) => {
            let pid = std::fs::read_to_string(&lock_path)
                .ok()
                .and_then(|text| text.trim().parse().ok());
            drop(file);
            return Err(BindError::AlreadyRunning {
                socket: socket.to_path_buf(),
                pid,
            });
        }
    };

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
    let _ = lock.set_len(0);
    let _ = write!(&mut *lock, "{}", std::process::id());
    Ok(Bound {
        listener,
        socket: socket.to_path_buf(),
        _lock: lock,
    })
}

fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    socket.with_file_name(name)
}

/// The uid of the process at the other end of `stream`, from the kernel
/// (SO_PEERCRED on Linux, getpeereid elsewhere).
pub fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let credentials = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
            .map_err(std::io::Error::from)?;
        Ok(credentials.uid())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (uid, _gid) = nix::unistd::getpeereid(stream).map_err(std::io::Error::from)?;
        Ok(uid.as_raw())
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
        let bound = bind(&socket);
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
        let first = bind(&socket).expect("binds");
        let second = bind(&socket);
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
        let rebound = bind(&socket).expect("a stale socket is replaced");
        assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
        drop(rebound);
    }

    #[test]
    fn a_regular_file_in_the_way_is_an_error() {
        let temp = tempfile::tempdir().expect("tempdir");
        let socket = temp.path().join("daemon.sock");
        std::fs::write(&socket, "not a socket").expect("write");
        assert!(matches!(bind(&socket), Err(BindError::NotASocket { .. })));
    }
}
