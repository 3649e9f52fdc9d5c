//! `CODEX_FUSION_LOG`: one JSON line per finished turn with everything that
//! happened in it (tool, timing, stop reason, tokens, each guardian decision
//! and tool call, the final text). Appends only; never read back. The file
//! holds whole answers and every command Codex ran, so it is the user's
//! alone: created 0600 (its missing directories 0700), never written through
//! a symlink, refused when it belongs to someone else (`protocol::private`).
//! The directory it sits in may be anyone's (`/tmp`): the user chose it.

use std::io::Write as _;
use std::path::Path;

use codex_fusion_protocol::private;
use serde::Serialize;

use crate::turn::TurnUsage;

/// One turn, as logged.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TurnRecord {
    /// Seconds since the Unix epoch when the turn finished.
    pub finished_at: f64,
    pub workspace: String,
    pub tool: String,
    pub turn: u64,
    pub session_id: Option<String>,
    pub duration_ms: u64,
    /// How long codex-acp took to answer this turn's prompts (from sending
    /// `session/prompt` to its response, pauses for permission included);
    /// the rest of `duration_ms` is waiting for the session and
    /// codex-fusion's own work. Fractional: it resolves microseconds.
    pub agent_ms: f64,
    /// `end_turn`, `cancelled`, `failed`, `paused`, …
    pub stop_reason: String,
    pub usage: Option<TurnUsage>,
    pub guardian: Vec<GuardianEntry>,
    pub tool_calls: Vec<ToolCallEntry>,
    pub error: Option<String>,
    pub text: String,
}

/// A permission request and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct GuardianEntry {
    pub kind: String,
    pub title: String,
    pub command: Option<String>,
    pub paths: Vec<String>,
    /// `allow` (by policy), `ask`, then `permit allow` / `permit deny` / `cancelled`.
    pub decision: String,
    pub reason: Option<String>,
}

/// A tool call Codex made.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCallEntry {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub status: Option<String>,
    pub locations: Vec<String>,
    /// Set when a read reached outside the workspace without asking (codex
    /// does not ask before reads; see docs/adr).
    pub outside_workspace: bool,
}

/// Appends `record` to `path` as one line. Failures are logged, never
/// propagated: a debug log must not fail a turn.
pub fn append(path: &Path, record: &TurnRecord) {
    let result = (|| -> Result<(), String> {
        private::create_parent(path).map_err(|error| error.to_string())?;
        let mut line = serde_json::to_vec(record).map_err(|error| error.to_string())?;
        line.push(b'\n');
        let mut file = private::open(path, private::Access::Append).map_err(|error| error.to_string())?;
        // One write call per record keeps lines whole even with concurrent
        // turns appending to the same file.
        file.write_all(&line)
            .map_err(|error| format!("{}: {error}", path.display()))
    })();
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), %error, "cannot append to CODEX_FUSION_LOG; set it to a file of your own, e.g. under ~/.local/state/codex-fusion/");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_append_as_json_lines() {
        let temp = tempfile::tempdir().expect("tempdir");
        let path = temp.path().join("sub/log.jsonl");
        let record = TurnRecord {
            tool: "consult".into(),
            text: "answer\nwith newline".into(),
            ..TurnRecord::default()
        };
        append(&path, &record);
        append(&path, &record);
        let content = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines.len(), 2);
        let parsed: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
        assert_eq!(parsed["tool"], "consult");
        assert_eq!(parsed["text"], "answer\nwith newline");
    }

    /// Issue 13: the log holds whole answers; it was created with the
    /// umask's mode (0644 under the usual 022, 0666 under 000) and written
    /// through a symlink planted at its name.
    #[test]
    fn the_log_is_private_and_never_written_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt as _;
        let temp = tempfile::tempdir().expect("tempdir");
        let path = temp.path().join("logs/turns.jsonl");
        let record = TurnRecord {
            text: "secret answer".into(),
            ..TurnRecord::default()
        };
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        append(&path, &record);
        nix::sys::stat::umask(old);
        let mode = |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);

        let victim = temp.path().join("victim");
        std::fs::write(&victim, "keep me\n").expect("write");
        let link = temp.path().join("logs/planted.jsonl");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        append(&link, &record);
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me\n");
    }
}
