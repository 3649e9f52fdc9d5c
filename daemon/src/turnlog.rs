//! `CODEX_FUSION_LOG`: one JSON line per finished turn with everything that
//! happened in it (tool, timing, stop reason, tokens, each guardian decision
//! and tool call, the final text). Appends only; never read back.

use std::io::Write as _;
use std::path::Path;

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
    let result = (|| -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        // One write call per record keeps lines whole even with concurrent
        // turns appending to the same file.
        file.write_all(&line)
    })();
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), %error, "cannot append to CODEX_FUSION_LOG");
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
}
