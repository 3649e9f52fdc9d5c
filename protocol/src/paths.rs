//! Where things live: the daemon's socket, its state directory, and the
//! canonical form of a workspace path.
//!
//! Every function takes an environment lookup instead of reading the process
//! environment, so each side resolves paths the same way and tests can pass
//! their own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Overrides the socket path (tests run isolated daemons with it).
pub const SOCKET_ENV: &str = "CODEX_FUSION_SOCKET";
/// Overrides the per-user state directory (logs, pairings, long answers).
pub const STATE_DIR_ENV: &str = "CODEX_FUSION_STATE_DIR";
/// The workspace Codex is scoped to; the current directory when unset.
pub const WORKSPACE_ENV: &str = "CODEX_FUSION_WORKSPACE";

const APP_DIR: &str = "codex-fusion";
const SOCKET_FILE: &str = "daemon.sock";
const LOG_DIR: &str = "logs";
const START_LOG_FILE: &str = "daemon-start.log";

/// Why a path could not be resolved. The text says what to set or create.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{SOCKET_ENV} must be an absolute path, got `{0}`")]
    RelativeSocket(String),
    #[error("{STATE_DIR_ENV} must be an absolute path, got `{0}`")]
    RelativeStateDir(String),
    #[error("cannot find a home directory for the state directory; set {STATE_DIR_ENV}")]
    NoHome,
    #[error("{WORKSPACE_ENV}: `{path}` is not usable as a workspace: {reason}")]
    Workspace { path: String, reason: String },
    #[error("cannot determine the current directory for the workspace: {0}; set {WORKSPACE_ENV}")]
    NoCurrentDir(std::io::Error),
}

/// Why the socket's directory cannot be trusted. The text names it and what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum SocketDirError {
    #[error(
        "the socket directory {dir} is a symbolic link, which could lead anywhere; remove it (the daemon creates a real one) or set {SOCKET_ENV} to a path in a directory of your own"
    )]
    Symlink { dir: PathBuf },
    #[error(
        "the socket directory {dir} belongs to uid {owner}, not to this user (uid {me}); remove it or set {SOCKET_ENV}"
    )]
    Foreign { dir: PathBuf, owner: u32, me: u32 },
    #[error("the socket directory {dir} is not a directory; remove it or set {SOCKET_ENV}")]
    NotADirectory { dir: PathBuf },
    #[error("cannot inspect the socket directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checks the socket's directory `dir` without following a symlink at its
/// name (`lstat`): it must be a real directory of this user. A fallback
/// directory under a shared `/tmp` can be created ahead of us by anyone, as
/// a directory of theirs or as a link to one of ours. Its metadata on
/// success, for the caller's mode checks.
pub fn check_socket_dir(dir: &Path) -> Result<std::fs::Metadata, SocketDirError> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::symlink_metadata(dir).map_err(|source| SocketDirError::Io {
        dir: dir.to_path_buf(),
        source,
    })?;
    if metadata.file_type().is_symlink() {
        return Err(SocketDirError::Symlink { dir: dir.to_path_buf() });
    }
    let me = nix::unistd::getuid().as_raw();
    if metadata.uid() != me {
        return Err(SocketDirError::Foreign {
            dir: dir.to_path_buf(),
            owner: metadata.uid(),
            me,
        });
    }
    if !metadata.is_dir() {
        return Err(SocketDirError::NotADirectory { dir: dir.to_path_buf() });
    }
    Ok(metadata)
}

/// The daemon's socket: `CODEX_FUSION_SOCKET`, else
/// `$XDG_RUNTIME_DIR/codex-fusion/daemon.sock` on Linux, else a per-user
/// directory (`$TMPDIR/codex-fusion-<uid>`, `/tmp` by default, on Linux
/// without a runtime dir; the
/// user's cache directory on other systems).
pub fn socket_path(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, PathError> {
    if let Some(value) = non_empty(env(SOCKET_ENV)) {
        let path = PathBuf::from(value);
        if !path.is_absolute() {
            return Err(PathError::RelativeSocket(path.display().to_string()));
        }
        return Ok(path);
    }
    Ok(default_socket_dir(&env).join(SOCKET_FILE))
}

fn default_socket_dir(env: &impl Fn(&str) -> Option<OsString>) -> PathBuf {
    if cfg!(target_os = "linux") {
        if let Some(runtime) = non_empty(env("XDG_RUNTIME_DIR")).map(PathBuf::from)
            && runtime.is_absolute()
        {
            return runtime.join(APP_DIR);
        }
    } else if let Some(dirs) = directories::ProjectDirs::from("", "", APP_DIR) {
        // macOS keeps no per-user runtime dir; the cache dir is private to the
        // user and short enough for the 104-byte socket path limit.
        return dirs.cache_dir().to_path_buf();
    }
    // Like `std::env::temp_dir`, but through `env` so the lookup stays injected.
    let temp = non_empty(env("TMPDIR"))
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    temp.join(format!("{APP_DIR}-{}", nix::unistd::getuid()))
}

/// The daemon's single-instance lock file next to `socket` (`daemon.sock.lock`):
/// whoever holds its lock owns the socket, and it holds that daemon's pid, which
/// `codex-fusion stop` and the shim's messages name.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    socket.with_file_name(name)
}

/// The per-user state directory: `CODEX_FUSION_STATE_DIR`, else
/// `$XDG_STATE_HOME/codex-fusion` (`~/.local/state/codex-fusion`) on Linux,
/// the application-support directory on macOS.
pub fn state_dir(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, PathError> {
    if let Some(value) = non_empty(env(STATE_DIR_ENV)) {
        let path = PathBuf::from(value);
        if !path.is_absolute() {
            return Err(PathError::RelativeStateDir(path.display().to_string()));
        }
        return Ok(path);
    }
    if cfg!(target_os = "linux") {
        if let Some(state) = non_empty(env("XDG_STATE_HOME")).map(PathBuf::from)
            && state.is_absolute()
        {
            return Ok(state.join(APP_DIR));
        }
        if let Some(home) = non_empty(env("HOME")).map(PathBuf::from) {
            return Ok(home.join(".local/state").join(APP_DIR));
        }
    }
    let dirs = directories::ProjectDirs::from("", "", APP_DIR).ok_or(PathError::NoHome)?;
    Ok(dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_path_buf())
}

/// The canonical workspace: `CODEX_FUSION_WORKSPACE` if set, else `cwd`;
/// made absolute, with `..` and symlinks resolved, and required to be a
/// directory.
pub fn resolve_workspace(
    env: impl Fn(&str) -> Option<OsString>,
    cwd: impl FnOnce() -> std::io::Result<PathBuf>,
) -> Result<PathBuf, PathError> {
    let raw = match non_empty(env(WORKSPACE_ENV)) {
        Some(value) => {
            let path = PathBuf::from(value);
            if path.is_absolute() {
                path
            } else {
                cwd().map_err(PathError::NoCurrentDir)?.join(path)
            }
        }
        None => cwd().map_err(PathError::NoCurrentDir)?,
    };
    canonical_directory(&raw)
}

/// `path` canonicalised, if it is an existing directory.
pub fn canonical_directory(path: &Path) -> Result<PathBuf, PathError> {
    let fail = |reason: String| PathError::Workspace {
        path: path.display().to_string(),
        reason,
    };
    let canonical = std::fs::canonicalize(path).map_err(|error| fail(error.to_string()))?;
    if !canonical.is_dir() {
        return Err(fail("not a directory".into()));
    }
    if canonical.parent().is_none() {
        // Every path would be "inside the workspace": Codex could read the
        // whole disk, and write anywhere with CODEX_FUSION_ALLOW_WRITES.
        return Err(fail(format!(
            "the root directory cannot be a workspace (everything would count as inside it); start Claude in a project directory, or set {WORKSPACE_ENV} to one"
        )));
    }
    // Workspaces travel as JSON strings (the hello, control messages, status),
    // which cannot hold arbitrary bytes.
    if canonical.to_str().is_none() {
        return Err(fail("not valid UTF-8".into()));
    }
    Ok(canonical)
}

/// Where the daemon writes its rotating log files, under `state_dir`.
pub fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(LOG_DIR)
}

/// Where a client that starts the daemon sends the daemon's stderr, under
/// `state_dir`: the daemon's startup errors, read back if it dies early.
/// Opened through [`crate::private`] (0600, never through a symlink).
pub fn start_log(state_dir: &Path) -> PathBuf {
    state_dir.join(START_LOG_FILE)
}

fn non_empty(value: Option<OsString>) -> Option<OsString> {
    value.filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), OsString::from(value)))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn the_lock_file_sits_next_to_the_socket() {
        assert_eq!(
            lock_path(Path::new("/run/user/1/codex-fusion/daemon.sock")),
            Path::new("/run/user/1/codex-fusion/daemon.sock.lock")
        );
    }

    #[test]
    fn socket_override_wins_and_must_be_absolute() {
        let path = socket_path(env_of(&[(SOCKET_ENV, "/tmp/x.sock")])).expect("absolute");
        assert_eq!(path, PathBuf::from("/tmp/x.sock"));
        let error = socket_path(env_of(&[(SOCKET_ENV, "x.sock")])).expect_err("relative");
        assert!(error.to_string().contains(SOCKET_ENV));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_socket_lives_in_the_runtime_dir() {
        let path = socket_path(env_of(&[("XDG_RUNTIME_DIR", "/run/user/1000")])).expect("resolves");
        assert_eq!(path, PathBuf::from("/run/user/1000/codex-fusion/daemon.sock"));
        let fallback = socket_path(env_of(&[])).expect("resolves");
        assert!(fallback.ends_with("daemon.sock"));
        assert!(
            fallback
                .parent()
                .and_then(|dir| dir.file_name())
                .is_some_and(|name| name.to_string_lossy().starts_with("codex-fusion-")),
            "{}",
            fallback.display()
        );
    }

    /// r10: the fallback directory comes from the injected `TMPDIR`, not
    /// from the process environment.
    #[cfg(target_os = "linux")]
    #[test]
    fn linux_fallback_socket_dir_reads_tmpdir_through_env() {
        let uid = nix::unistd::getuid();
        let path = socket_path(env_of(&[("TMPDIR", "/injected/tmp")])).expect("resolves");
        assert_eq!(
            path,
            PathBuf::from(format!("/injected/tmp/codex-fusion-{uid}/daemon.sock"))
        );
        let path = socket_path(env_of(&[("TMPDIR", "relative")])).expect("resolves");
        assert_eq!(path, PathBuf::from(format!("/tmp/codex-fusion-{uid}/daemon.sock")));
        let path = socket_path(env_of(&[])).expect("resolves");
        assert_eq!(path, PathBuf::from(format!("/tmp/codex-fusion-{uid}/daemon.sock")));
    }

    /// r5: a workspace whose path is not UTF-8 is refused with a reason (it
    /// cannot travel in a JSON hello), never a panic later on.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_workspace_path_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStrExt as _;
        let temp = tempfile::tempdir().expect("tempdir");
        let odd = temp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        std::fs::create_dir(&odd).expect("mkdir");
        let error = canonical_directory(&odd).expect_err("refused");
        assert!(
            matches!(&error, PathError::Workspace { reason, .. } if reason == "not valid UTF-8"),
            "{error}"
        );
        assert!(error.to_string().contains(WORKSPACE_ENV), "{error}");
    }

    /// Issue 13: the fallback socket directory under a shared `/tmp` may be
    /// planted by another user as a symlink to a directory of ours (which the
    /// daemon would then chmod and fill); it is refused by name.
    #[test]
    fn a_symlinked_socket_directory_is_refused_by_name() {
        let temp = tempfile::tempdir().expect("tempdir");
        let real = temp.path().join("home-of-the-user");
        std::fs::create_dir(&real).expect("mkdir");
        check_socket_dir(&real).expect("a directory of ours passes");
        let link = temp.path().join("codex-fusion-1000");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let error = check_socket_dir(&link).expect_err("refused");
        assert!(matches!(error, SocketDirError::Symlink { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains(&link.display().to_string()), "{message}");
        assert!(message.contains(SOCKET_ENV), "says what to do: {message}");
        let file = temp.path().join("file");
        std::fs::write(&file, "").expect("write");
        assert!(matches!(
            check_socket_dir(&file),
            Err(SocketDirError::NotADirectory { .. })
        ));
    }

    /// Needs root, to make a directory that belongs to someone else.
    #[test]
    fn another_users_socket_directory_is_refused_by_name() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to chown a directory to another user");
            return;
        }
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("codex-fusion-0");
        std::fs::create_dir(&dir).expect("mkdir");
        nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
        let error = check_socket_dir(&dir).expect_err("refused");
        assert!(matches!(error, SocketDirError::Foreign { owner: 65534, .. }), "{error}");
        assert!(error.to_string().contains(&dir.display().to_string()), "{error}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_state_dir_follows_xdg() {
        let dir = state_dir(env_of(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")])).expect("resolves");
        assert_eq!(dir, PathBuf::from("/s/codex-fusion"));
        let dir = state_dir(env_of(&[("HOME", "/h")])).expect("resolves");
        assert_eq!(dir, PathBuf::from("/h/.local/state/codex-fusion"));
        let dir = state_dir(env_of(&[(STATE_DIR_ENV, "/o"), ("HOME", "/h")])).expect("resolves");
        assert_eq!(dir, PathBuf::from("/o"));
    }

    #[test]
    fn the_root_directory_is_never_a_workspace() {
        let error = canonical_directory(Path::new("/")).expect_err("refused");
        assert!(error.to_string().contains("root directory"), "{error}");
        assert!(error.to_string().contains(WORKSPACE_ENV), "says what to set: {error}");
        let error = canonical_directory(Path::new("/tmp/../")).expect_err("refused however written");
        assert!(error.to_string().contains("root directory"), "{error}");
    }

    #[test]
    fn workspace_is_canonicalised_through_symlinks() {
        let temp = std::env::temp_dir().join(format!("cf-paths-{}", std::process::id()));
        let real = temp.join("real");
        std::fs::create_dir_all(&real).expect("mkdir");
        let link = temp.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let via_env = resolve_workspace(
            env_of(&[(WORKSPACE_ENV, link.join("../link").to_str().expect("utf8"))]),
            || unreachable!("cwd is not consulted when the variable is set"),
        )
        .expect("resolves");
        assert_eq!(via_env, std::fs::canonicalize(&real).expect("canonical"));
        let via_cwd = resolve_workspace(env_of(&[]), || Ok(link.clone())).expect("resolves");
        assert_eq!(via_cwd, via_env);
        let missing = resolve_workspace(env_of(&[(WORKSPACE_ENV, "/definitely/not/here")]), || unreachable!())
            .expect_err("missing dir");
        assert!(missing.to_string().contains(WORKSPACE_ENV));
        std::fs::remove_dir_all(&temp).expect("cleanup");
    }
}
