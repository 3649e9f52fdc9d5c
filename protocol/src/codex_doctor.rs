//! What `codex-acp cli doctor --json` says about the codex binary behind
//! codex-acp: the daemon needs that binary to confine Codex's reads (its
//! permission profile wraps it), and `codex-fusion doctor` checks that it
//! can be found. The parsing and the answer kept on disk ([`DoctorCache`])
//! live here; running the command is each side's own (protocol spawns
//! nothing). The doctor fills the cache the daemon reads, so a daemon's
//! first start after `codex-fusion doctor` or `install` skips the probe.

use std::path::{Path, PathBuf};

/// The arguments, after the agent command, that ask codex-acp for its report.
pub const DOCTOR_ARGS: [&str; 3] = ["cli", "doctor", "--json"];

/// Where the report names the codex executable (a JSON pointer).
pub const EXECUTABLE_POINTER: &str = "/checks/installation/details/current executable";

/// Why a report names no usable codex executable; the text says what was
/// missing, for a log line or a doctor check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("`cli doctor --json` printed no JSON report")]
    NotJson,
    #[error("the doctor report names no codex executable (no `{EXECUTABLE_POINTER}`)")]
    NoExecutable,
    #[error("the doctor report names a codex executable that is not an absolute path: {0}")]
    Relative(String),
}

/// The codex executable the report names: an absolute path, not yet checked
/// against the filesystem (the caller does that).
pub fn codex_executable(report: &[u8]) -> Result<PathBuf, ReportError> {
    let report: serde_json::Value = serde_json::from_slice(report).map_err(|_| ReportError::NotJson)?;
    let path = report
        .pointer(EXECUTABLE_POINTER)
        .and_then(serde_json::Value::as_str)
        .ok_or(ReportError::NoExecutable)?;
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(ReportError::Relative(path.display().to_string()));
    }
    Ok(path)
}

/// What `cli doctor` said, kept in the daemon's state directory across
/// daemon restarts (asking costs a node start, ~0.3 s of a cold start):
/// valid while the agent program and the codex binary it named are the
/// same files, unchanged since.
pub struct DoctorCache {
    path: PathBuf,
    key: String,
}

impl DoctorCache {
    /// The cache entry for `command` (program, arguments and `NAME=value`
    /// words) found on `path` (the agent's PATH). `None` when the program
    /// cannot be located (then nothing is cached).
    pub fn new(state_dir: &Path, command: &crate::command::AcpCommand, path: Option<&str>) -> Option<DoctorCache> {
        let program = which(&command.program, path)?;
        let stamp = file_stamp(&program)?;
        // Hashed into the file name and stored: the whole command, so two
        // that differ only in a hidden word are told apart.
        let whole = format!("{:?}", (&command.env, &command.args));
        let key = format!(
            "{:016x}\u{0}{}\u{0}{stamp}",
            crate::fnv1a(whole.as_bytes()),
            program.display()
        );
        Some(DoctorCache {
            path: state_dir
                .join("codex-wrapper")
                .join(format!("doctor-{:016x}.json", crate::fnv1a(key.as_bytes()))),
            key,
        })
    }

    /// The binary recorded for this command, if it is still the same file.
    pub fn load(&self) -> Option<PathBuf> {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&self.path).ok()?).ok()?;
        if saved.get("key")?.as_str()? != self.key {
            return None;
        }
        let binary = PathBuf::from(saved.get("codex")?.as_str()?);
        // The binary must be the very file the doctor named.
        (file_stamp(&binary)? == saved.get("codex_stamp")?.as_str()?).then_some(binary)
    }

    /// Records `binary` (private to the user, replaced atomically).
    pub fn store(&self, binary: &Path) -> Result<(), crate::private::PrivateError> {
        let Some(stamp) = file_stamp(binary) else { return Ok(()) };
        let record = serde_json::json!({ "key": self.key, "codex": binary, "codex_stamp": stamp });
        if let Some(parent) = self.path.parent() {
            crate::private::own_dir(parent)?;
        }
        crate::private::write_atomically(&self.path, record.to_string().as_bytes())
    }
}

/// `program` as the OS would find it: a path, or the first match on `path`.
pub fn which(program: &str, path: Option<&str>) -> Option<PathBuf> {
    if program.contains('/') {
        return std::fs::canonicalize(program).ok();
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .and_then(|found| std::fs::canonicalize(found).ok())
}

/// Size and modification time of a file, as a short fingerprint.
fn file_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}.{}",
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_is_read_from_its_pointer() {
        let report = br#"{"checks": {"installation": {"details": {"current executable": "/opt/codex/bin/codex"}}}}"#;
        assert_eq!(codex_executable(report), Ok(PathBuf::from("/opt/codex/bin/codex")));
        assert_eq!(codex_executable(b"unknown flag `cli`"), Err(ReportError::NotJson));
        assert_eq!(codex_executable(b""), Err(ReportError::NotJson));
        assert_eq!(
            codex_executable(br#"{"checks": {"installation": {"details": {}}}}"#),
            Err(ReportError::NoExecutable)
        );
        assert_eq!(
            codex_executable(br#"{"checks": {"installation": {"details": {"current executable": 3}}}}"#),
            Err(ReportError::NoExecutable)
        );
        assert_eq!(
            codex_executable(br#"{"checks": {"installation": {"details": {"current executable": "codex"}}}}"#),
            Err(ReportError::Relative("codex".into()))
        );
    }

    #[test]
    fn the_doctor_cache_holds_while_the_files_are_unchanged() {
        let temp = tempfile::tempdir().expect("tempdir");
        let program = temp.path().join("codex-acp");
        let binary = temp.path().join("codex");
        std::fs::write(&program, "#!/bin/sh\n").expect("write");
        std::fs::write(&binary, "binary").expect("write");
        let command = crate::command::AcpCommand::parse(program.to_str().expect("utf8")).expect("parses");
        let cache = DoctorCache::new(temp.path(), &command, None).expect("a cache");
        assert_eq!(cache.load(), None, "empty at first");
        cache.store(&binary).expect("stored");
        assert_eq!(cache.load(), Some(binary.clone()));
        // A changed codex binary (an upgrade) invalidates it.
        std::fs::write(&binary, "a newer binary").expect("write");
        assert_eq!(cache.load(), None);
        cache.store(&binary).expect("stored");
        // So does a changed agent program.
        std::fs::write(&program, "#!/bin/sh\n# upgraded\n").expect("write");
        let cache = DoctorCache::new(temp.path(), &command, None).expect("a cache");
        assert_eq!(cache.load(), None);
        // A bare program name is looked up on the agent's PATH only.
        let bare = crate::command::AcpCommand::parse("codex-acp").expect("parses");
        assert!(DoctorCache::new(temp.path(), &bare, None).is_none());
        let dir = temp.path().to_str().expect("utf8");
        assert!(DoctorCache::new(temp.path(), &bare, Some(dir)).is_some());
    }
}
