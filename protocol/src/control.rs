//! Control messages: what the CLI and the hook ask the daemon outside MCP, and
//! the status report both the CLI and the MCP `status` tool render.
//!
//! Wire form: one [`ControlRequest`] per line, answered by one
//! [`ControlResponse`] per line, on a connection whose hello chose
//! [`crate::Channel::Control`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::answers::AnswerRecord;

/// A request on a control connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Is the daemon there, and which version is it.
    Ping,
    /// Daemon health, and every workspace's session (or just `workspace`'s).
    Status {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<PathBuf>,
    },
    /// Drop Codex's session for `workspace`; the next turn starts fresh.
    Reset { workspace: PathBuf },
    /// Claude Code's SessionStart, as the hook saw it.
    SessionStart {
        workspace: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claude_session_id: Option<String>,
        source: SessionSource,
    },
    /// The recent answers kept for `workspace`, newest first, at most `limit`.
    Log { workspace: PathBuf, limit: usize },
    /// Follow `workspace`'s turns: answered by [`ControlResponse::Watching`],
    /// then the connection carries [`crate::watch::WatchEvent`] lines until
    /// either side closes it.
    Watch { workspace: PathBuf },
    /// Stop the daemon gracefully.
    Stop,
}

/// Why Claude Code started a session (its SessionStart `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionSource {
    Startup,
    Resume,
    Clear,
    Compact,
}

/// The daemon's answer to one [`ControlRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ControlResponse {
    Pong {
        daemon_version: String,
        pid: u32,
    },
    Status(DaemonStatus),
    Reset {
        workspace: PathBuf,
        /// Whether there was a live session or running turn to drop.
        had_session: bool,
    },
    /// What the daemon did about a SessionStart, in a few words.
    SessionStarted {
        action: String,
    },
    Stopping,
    /// The answers a [`ControlRequest::Log`] asked for, newest first, and
    /// the daemon's state directory they are kept in.
    Log {
        workspace: PathBuf,
        state_dir: PathBuf,
        answers: Vec<AnswerRecord>,
    },
    /// A [`ControlRequest::Watch`] is accepted; its events follow.
    Watching {
        workspace: PathBuf,
    },
    /// The request failed; `message` says why and what to do.
    Error {
        message: String,
    },
}

/// Daemon-wide health, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub daemon_version: String,
    pub pid: u32,
    pub uptime_secs: u64,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub connections: usize,
    pub workspaces: Vec<WorkspaceStatus>,
    /// Every agent process, with the workspaces whose sessions it carries.
    #[serde(default)]
    pub agents: Vec<AgentProcessStatus>,
    /// The newest answer kept for each workspace in `workspaces` that has
    /// one, with the file holding its full text (`codex-fusion log` lists
    /// the others).
    #[serde(default)]
    pub last_answers: Vec<AnswerRecord>,
}

impl DaemonStatus {
    /// The newest kept answer of `workspace`, if it has one.
    pub fn last_answer(&self, workspace: &std::path::Path) -> Option<&AnswerRecord> {
        self.last_answers.iter().find(|record| record.workspace == workspace)
    }
}

/// One agent process of the daemon's pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentProcessStatus {
    pub pid: Option<u32>,
    /// What the process is keyed by, without secret values: the command as
    /// displayed, the names of the forwarded variables, what its profile
    /// grants.
    pub agent: String,
    /// The workspaces with a session on it.
    pub workspaces: Vec<PathBuf>,
    /// How many of them run a turn now.
    pub busy: usize,
    pub started_secs_ago: u64,
    /// Since a session of it was last used.
    pub idle_secs: u64,
    /// Resident memory of the process and everything below it.
    pub rss_kb: Option<u64>,
    /// Why it is being stopped, while it is.
    pub stopping: Option<String>,
    /// Why it runs without the read-confining permission profile.
    pub unconfined: Option<String>,
}

/// One workspace's session, as `status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceStatus {
    pub workspace: PathBuf,
    /// Which agent of `CODEX_FUSION_AGENTS` this session is (`codex` when
    /// empty, as from a daemon older than the council).
    pub agent: String,
    /// `stopped`, `starting`, `ready` or `failed`.
    pub agent_state: String,
    pub agent_pid: Option<u32>,
    pub agent_command: Option<String>,
    /// Why the last start or turn of the agent failed, if it did.
    pub last_error: Option<String>,
    pub session_id: Option<String>,
    pub claude_session_id: Option<String>,
    /// `fresh` or `loaded`, or `to restore` for a session remembered from
    /// before a restart that the next call will load.
    pub session_origin: Option<String>,
    /// Turns completed on the current Codex session.
    pub turns: u64,
    /// The tool of the running turn, if one runs.
    pub running_turn: Option<String>,
    pub queued_turns: usize,
    /// What Codex is waiting on `permit` for.
    pub pending_permission: Option<String>,
    /// The id of that pause (what `permit`'s `id` names).
    pub pause_id: Option<String>,
    pub last_used_secs_ago: Option<u64>,
    pub guardian: GuardianFlags,
    pub usage: UsageTotals,
    /// The agent's permission mode (`permission-profile:codex-fusion` or
    /// `read-only`).
    pub mode: Option<String>,
    /// Why the agent runs without the read-confining permission profile
    /// (sandboxed commands may then read any file without asking).
    pub unconfined: Option<String>,
    pub model: Option<String>,
    /// The reasoning effort in use.
    pub effort: Option<String>,
    pub available_models: Vec<String>,
    /// Efforts the current model offers.
    pub available_efforts: Vec<String>,
    /// The last lines codex-acp wrote to stderr.
    pub stderr_tail: Vec<String>,
    /// The other workspaces whose sessions share this one's agent process.
    pub shared_with: Vec<PathBuf>,
}

impl WorkspaceStatus {
    /// The agent's name; `codex` for a status without one.
    pub fn agent_name(&self) -> &str {
        if self.agent.is_empty() {
            crate::agents::DEFAULT_AGENT
        } else {
            &self.agent
        }
    }

    /// The workspaces sharing this one's agent process, for people.
    pub fn shared_with_text(&self) -> String {
        let names: Vec<String> = self.shared_with.iter().map(|path| path.display().to_string()).collect();
        names.join(", ")
    }
}

/// `1234567` as `1,234,567`, for token counts shown to people.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The guardian settings in force for the workspace's last call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardianFlags {
    pub allow_external_reads: bool,
    pub allow_writes: bool,
    pub allow_commands: bool,
}

/// Token use since the session started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Tokens in Codex's context window, from its last usage report.
    pub context_used: Option<u64>,
    pub context_size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(request: &ControlRequest) -> String {
        let json = serde_json::to_string(request).expect("serializes");
        let back: ControlRequest = serde_json::from_str(&json).expect("parses");
        assert_eq!(&back, request);
        json
    }

    #[test]
    fn requests_wire_form_is_stable() {
        assert_eq!(round_trip(&ControlRequest::Ping), r#"{"op":"ping"}"#);
        assert_eq!(
            round_trip(&ControlRequest::Status { workspace: None }),
            r#"{"op":"status"}"#
        );
        assert_eq!(
            round_trip(&ControlRequest::Reset { workspace: "/w".into() }),
            r#"{"op":"reset","workspace":"/w"}"#
        );
        assert_eq!(
            round_trip(&ControlRequest::SessionStart {
                workspace: "/w".into(),
                claude_session_id: Some("abc".into()),
                source: SessionSource::Clear,
            }),
            r#"{"op":"session_start","workspace":"/w","claude_session_id":"abc","source":"clear"}"#
        );
        assert_eq!(round_trip(&ControlRequest::Stop), r#"{"op":"stop"}"#);
        assert_eq!(
            round_trip(&ControlRequest::Watch { workspace: "/w".into() }),
            r#"{"op":"watch","workspace":"/w"}"#
        );
        assert_eq!(
            round_trip(&ControlRequest::Log {
                workspace: "/w".into(),
                limit: 5
            }),
            r#"{"op":"log","workspace":"/w","limit":5}"#
        );
    }

    #[test]
    fn responses_wire_form_is_stable() {
        let json = serde_json::to_string(&ControlResponse::Reset {
            workspace: "/w".into(),
            had_session: true,
        })
        .expect("serializes");
        assert_eq!(json, r#"{"result":"reset","workspace":"/w","had_session":true}"#);
        let json = serde_json::to_string(&ControlResponse::Error { message: "bad".into() }).expect("serializes");
        assert_eq!(json, r#"{"result":"error","message":"bad"}"#);
    }

    #[test]
    fn status_tolerates_missing_fields_from_an_older_daemon() {
        let status: WorkspaceStatus =
            serde_json::from_str(r#"{"workspace":"/w","agent_state":"ready"}"#).expect("parses");
        assert_eq!(status.agent_state, "ready");
        assert_eq!(status.turns, 0);
    }
}
