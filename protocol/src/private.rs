//! Files and directories that are the user's alone: the daemon's state (turn
//! log, session pairings, long answers, start log, lock file). One
//! implementation for the daemon, the shim and the CLI.
//!
//! A file is created mode 0600 whatever the umask, opened with `O_NOFOLLOW`
//! (a symlink planted at its name is refused, never followed), and refused
//! when it already exists and belongs to another user; an existing file of
//! ours with wider permissions is narrowed to 0600. A directory is created
//! 0700 and refused when it is another user's. Nothing here spawns a process.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Mode of every file created here.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory created here.
pub const DIR_MODE: u32 = 0o700;

/// How a private file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Created if missing; every write goes to the end (the turn log).
    Append,
    /// Created if missing, emptied if not (the start log).
    Replace,
    /// Must not exist yet (a saved answer, a temporary file).
    CreateNew,
    /// Created if missing, read and written in place (a lock file).
    ReadWrite,
}

/// Why a private file or directory could not be used. The text names the
/// path and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error(
        "refusing {path}: it belongs to uid {owner}, not to this user (uid {me}); remove it or point codex-fusion elsewhere"
    )]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
    #[error("refusing {path}: it is a symbolic link, which codex-fusion never follows here; remove it")]
    Symlink { path: PathBuf },
    #[error("refusing {path}: it is not a regular file; remove it")]
    NotAFile { path: PathBuf },
    #[error("refusing {path}: it is not a directory; remove it")]
    NotADirectory { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PrivateError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateError + '_ {
        move |source| PrivateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Opens `path` as a file private to this user (see the module doc).
pub fn open(path: &Path, access: Access) -> Result<File, PrivateError> {
    let mut options = std::fs::OpenOptions::new();
    options
        .mode(FILE_MODE)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    match access {
        Access::Append => options.append(true).create(true),
        // Truncated only once the owner is known: `O_TRUNC` would empty
        // another user's file before it could be refused.
        Access::Replace | Access::ReadWrite => options.read(true).write(true).create(true),
        Access::CreateNew => options.write(true).create_new(true),
    };
    let file = options.open(path).map_err(|error| match error.raw_os_error() {
        // What O_NOFOLLOW answers when the last component is a symlink.
        Some(code) if code == nix::errno::Errno::ELOOP as i32 => PrivateError::Symlink {
            path: path.to_path_buf(),
        },
        _ => PrivateError::Io {
            path: path.to_path_buf(),
            source: error,
        },
    })?;
    let metadata = file.metadata().map_err(PrivateError::io(path))?;
    if !metadata.is_file() {
        return Err(PrivateError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    check_owner(path, &metadata)?;
    if metadata.permissions().mode() & 0o777 != FILE_MODE {
        // An older file may have been created with wider permissions.
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(PrivateError::io(path))?;
    }
    if access == Access::Replace {
        file.set_len(0).map_err(PrivateError::io(path))?;
    }
    Ok(file)
}

/// Creates `dir` (and missing parents) with mode 0700 and checks that it is
/// a directory of this user. An existing directory keeps its mode: it may be
/// one the user chose (`CODEX_FUSION_STATE_DIR=$HOME/…`).
pub fn create_dir(dir: &Path) -> Result<(), PrivateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(PrivateError::io(dir))?;
    let metadata = std::fs::metadata(dir).map_err(PrivateError::io(dir))?;
    if !metadata.is_dir() {
        return Err(PrivateError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    check_owner(dir, &metadata)
}

/// Creates the missing directories above `path` with mode 0700, leaving
/// existing ones as they are, owner included: for a file the user names
/// (`CODEX_FUSION_LOG`), which may sit in `/tmp` or a project. The file
/// itself is still checked by [`open`].
pub fn create_parent(path: &Path) -> Result<(), PrivateError> {
    let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(PrivateError::io(dir))
}

/// [`create_dir`] for a directory that is the daemon's own (`logs/`,
/// `answers/`): an existing one with wider permissions (made by an older
/// version under a loose umask) is narrowed to 0700.
pub fn own_dir(dir: &Path) -> Result<(), PrivateError> {
    create_dir(dir)?;
    let metadata = std::fs::metadata(dir).map_err(PrivateError::io(dir))?;
    if metadata.permissions().mode() & 0o777 != DIR_MODE {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE)).map_err(PrivateError::io(dir))?;
    }
    Ok(())
}

/// Narrows every regular file of this user directly in `dir` whose name
/// starts with `prefix` to 0600 (files another library created with the
/// umask's mode, such as the daemon's rotating logs). Symlinks and other
/// users' files are left alone; errors are ignored (best effort).
pub fn narrow_files(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let me = nix::unistd::getuid().as_raw();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        // `DirEntry::metadata` does not follow a symlink.
        let Ok(metadata) = entry.metadata() else { continue };
        if metadata.is_file() && metadata.uid() == me && metadata.permissions().mode() & 0o777 != FILE_MODE {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(FILE_MODE));
        }
    }
}

/// Replaces `path` with `bytes` atomically: a private temporary file next to
/// it, synced, then renamed over it (a symlink at `path` is replaced, not
/// followed). Creates the parent directory as [`create_dir`] does.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PrivateError> {
    replace(path, bytes, true)
}

/// [`write_atomically`] without the sync: for what must survive the writer
/// (the daemon killed, the client gone), whose writes the kernel keeps, but
/// need not survive a machine crash, and sits on a path where a sync's
/// milliseconds count (an answer kept before it goes out).
pub fn write_atomically_unsynced(path: &Path, bytes: &[u8]) -> Result<(), PrivateError> {
    replace(path, bytes, false)
}

/// A name beside `path` for writing it whole before it takes `path`'s
/// place: unique to this process and this call, so neither another
/// process nor another thread of this one (two workspaces starting at
/// once write the same codex wrapper) writes the same temporary file.
pub fn temporary_beside(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{call}.tmp", std::process::id()));
    path.with_file_name(name)
}

fn replace(path: &Path, bytes: &[u8], sync: bool) -> Result<(), PrivateError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    create_dir(dir)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let mut file = match open(&temporary, Access::CreateNew) {
        // Left by a process of the same pid that died mid-write; the
        // directory is ours, so it is ours to remove.
        Err(PrivateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&temporary).map_err(PrivateError::io(&temporary))?;
            open(&temporary, Access::CreateNew)?
        }
        other => other?,
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(PrivateError::Io {
            path: path.to_path_buf(),
            source: error,
        });
    }
    Ok(())
}

/// Reads `path` if it is a regular file of this user: `Ok(None)` when it
/// does not exist; a symlink or another user's file is refused.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, PrivateError> {
    use std::io::Read as _;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
            return Err(PrivateError::Symlink {
                path: path.to_path_buf(),
            });
        }
        Err(error) => return Err(PrivateError::io(path)(error)),
    };
    let metadata = file.metadata().map_err(PrivateError::io(path))?;
    if !metadata.is_file() {
        return Err(PrivateError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    check_owner(path, &metadata)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(PrivateError::io(path))?;
    Ok(Some(bytes))
}

fn check_owner(path: &Path, metadata: &std::fs::Metadata) -> Result<(), PrivateError> {
    let me = nix::unistd::getuid().as_raw();
    if metadata.uid() != me {
        return Err(PrivateError::ForeignOwner {
            path: path.to_path_buf(),
            owner: metadata.uid(),
            me,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    /// Runs `body` with umask 000, the worst a user's shell can set.
    fn with_open_umask<T>(body: impl FnOnce() -> T) -> T {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let result = body();
        nix::sys::stat::umask(old);
        result
    }

    #[test]
    fn files_and_directories_are_private_whatever_the_umask() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("state/answers");
        let file = dir.join("a.md");
        with_open_umask(|| {
            create_dir(&dir).expect("creates");
            for access in [Access::CreateNew, Access::Append, Access::Replace, Access::ReadWrite] {
                let _ = std::fs::remove_file(&file);
                drop(open(&file, access).expect("opens"));
                assert_eq!(mode(&file), 0o600, "{access:?}");
            }
        });
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(dir.parent().expect("parent")), 0o700, "parents too");
    }

    #[test]
    fn a_symlink_at_the_name_is_refused_and_its_target_untouched() {
        let temp = tempfile::tempdir().expect("tempdir");
        let victim = temp.path().join("victim");
        std::fs::write(&victim, "keep me").expect("write");
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let link = temp.path().join("turns.jsonl");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        for access in [Access::Append, Access::Replace, Access::CreateNew, Access::ReadWrite] {
            let error = open(&link, access).expect_err("refused");
            assert!(
                matches!(error, PrivateError::Symlink { .. }) || access == Access::CreateNew,
                "{access:?}: {error}"
            );
            assert!(error.to_string().contains(&link.display().to_string()), "{error}");
        }
        assert!(matches!(read(&link), Err(PrivateError::Symlink { .. })));
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me");
        assert_eq!(mode(&victim), 0o644, "the target is never chmodded");
        // The atomic write replaces the link itself.
        write_atomically(&link, b"new").expect("written");
        assert!(!std::fs::symlink_metadata(&link).expect("meta").is_symlink());
        assert_eq!(std::fs::read_to_string(&link).expect("read"), "new");
        assert_eq!(mode(&link), 0o600);
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me");
    }

    #[test]
    fn an_older_file_of_ours_is_narrowed_and_kept() {
        let temp = tempfile::tempdir().expect("tempdir");
        let file = temp.path().join("turns.jsonl");
        std::fs::write(&file, "line 1\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let mut handle = open(&file, Access::Append).expect("opens");
        handle.write_all(b"line 2\n").expect("append");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "line 1\nline 2\n");
        drop(open(&file, Access::Replace).expect("opens"));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "", "replace empties it");
    }

    #[test]
    fn the_owner_check_names_the_path_and_both_users() {
        let temp = tempfile::tempdir().expect("tempdir");
        let metadata = std::fs::metadata(temp.path()).expect("meta");
        check_owner(temp.path(), &metadata).expect("our own directory");
        let error = PrivateError::ForeignOwner {
            path: "/tmp/x/turns.jsonl".into(),
            owner: 1001,
            me: 1000,
        };
        assert_eq!(
            error.to_string(),
            "refusing /tmp/x/turns.jsonl: it belongs to uid 1001, not to this user (uid 1000); remove it or point codex-fusion elsewhere"
        );
    }

    /// Needs root: only root can make a file that belongs to someone else.
    #[test]
    fn another_users_file_is_refused_before_it_is_emptied() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to chown a file to another user");
            return;
        }
        let temp = tempfile::tempdir().expect("tempdir");
        let file = temp.path().join("daemon-start.log");
        std::fs::write(&file, "theirs").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let nobody = nix::unistd::Uid::from_raw(65534);
        nix::unistd::chown(&file, Some(nobody), None).expect("chown");
        for access in [Access::Append, Access::Replace, Access::ReadWrite] {
            let error = open(&file, access).expect_err("refused");
            assert!(
                matches!(error, PrivateError::ForeignOwner { owner: 65534, .. }),
                "{error}"
            );
        }
        assert!(matches!(read(&file), Err(PrivateError::ForeignOwner { .. })));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "theirs");
        assert_eq!(mode(&file), 0o666, "another user's file is never chmodded");
        let dir = temp.path().join("theirs");
        std::fs::create_dir(&dir).expect("mkdir");
        nix::unistd::chown(&dir, Some(nobody), None).expect("chown");
        assert!(matches!(create_dir(&dir), Err(PrivateError::ForeignOwner { .. })));
    }

    #[test]
    fn the_daemons_own_directories_and_files_are_narrowed() {
        let temp = tempfile::tempdir().expect("tempdir");
        let logs = temp.path().join("logs");
        std::fs::create_dir(&logs).expect("mkdir");
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_dir(&logs).expect("exists");
        assert_eq!(mode(&logs), 0o755, "create_dir keeps what it finds");
        own_dir(&logs).expect("narrowed");
        assert_eq!(mode(&logs), 0o700);
        let log = logs.join("codex-fusiond.2026-01-01.log");
        std::fs::write(&log, "").expect("write");
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let other = logs.join("notes.txt");
        std::fs::write(&other, "").expect("write");
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let outside = temp.path().join("outside");
        std::fs::write(&outside, "").expect("write");
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::os::unix::fs::symlink(&outside, logs.join("codex-fusiond.link")).expect("symlink");
        narrow_files(&logs, "codex-fusiond");
        assert_eq!(mode(&log), 0o600);
        assert_eq!(mode(&other), 0o644, "only the prefix");
        assert_eq!(mode(&outside), 0o644, "a symlink's target is never chmodded");
    }

    /// Needs root. A file the user names may live in a directory of
    /// someone else's (`/tmp`); the file, not the directory, must be ours.
    #[test]
    fn a_named_file_in_another_users_directory_is_ours_and_private() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to chown a directory to another user");
            return;
        }
        let temp = tempfile::tempdir().expect("tempdir");
        let shared = temp.path().join("tmp");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        nix::unistd::chown(&shared, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
        let log = shared.join("new/turns.jsonl");
        create_parent(&log).expect("creates what is missing");
        assert_eq!(mode(log.parent().expect("dir")), 0o700);
        drop(open(&log, Access::Append).expect("opens"));
        assert_eq!(mode(&log), 0o600);
        assert!(create_dir(&shared).is_err(), "a state directory must be ours");
    }

    #[test]
    fn a_stale_temporary_file_does_not_block_the_atomic_write() {
        let temp = tempfile::tempdir().expect("tempdir");
        let path = temp.path().join("sessions.json");
        let stale = temp.path().join(format!("sessions.json.{}.tmp", std::process::id()));
        std::fs::write(&stale, "half").expect("write");
        write_atomically(&path, b"{}").expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{}");
        assert!(!stale.exists());
        assert_eq!(read(&temp.path().join("missing")).expect("reads"), None);
    }
}
