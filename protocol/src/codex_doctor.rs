//! What `codex-acp cli doctor --json` says about the codex binary behind
//! codex-acp: the daemon needs that binary to confine Codex's reads (its
//! permission profile wraps it), and `codex-fusion doctor` checks that it
//! can be found. Only the parsing lives here; running the command is each
//! side's own (protocol spawns nothing).

use std::path::PathBuf;

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
}
