//! `codex-fusion hook`: Claude Code's SessionStart hook. It reads the hook's
//! JSON from stdin and reports every SessionStart (`startup`, `resume`,
//! `clear`, `compact`) with Claude's session id to the daemon, which keeps
//! the workspace's Codex session paired with Claude's. When no daemon runs,
//! the change goes into the daemon's state file instead (`offline`), so the
//! next daemon starts from it.
//!
//! Claude Code waits for SessionStart hooks before the session starts, so
//! everything here runs under one deadline, never starts the daemon, and
//! always exits 0. Claude adds a SessionStart hook's stdout to its context:
//! nothing is printed there. Each outcome is one line on stderr.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse, SessionSource};
use codex_fusion_protocol::paths;
use serde::Deserialize;
use tokio::time::Instant;

use crate::link::{self, LinkError};
use crate::output::note;

/// Time the hook may take in total, stdin included: Claude Code should never
/// notice it, whether or not the daemon runs.
pub const HOOK_BUDGET: Duration = Duration::from_millis(900);

/// Claude Code's hook input is a few hundred bytes; anything far larger is
/// not it, and is not worth buffering.
const INPUT_MAX_BYTES: u64 = 1024 * 1024;

/// What the hook learned from Claude Code's SessionStart input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStart {
    /// The session's `cwd`; the hook's own current directory when absent.
    pub workspace: Option<PathBuf>,
    pub claude_session_id: Option<String>,
    pub source: SessionSource,
}

/// Runs the hook; the exit code is always success.
pub async fn run() -> ExitCode {
    let deadline = Instant::now() + HOOK_BUDGET;
    match session_start(deadline).await {
        Ok(message) | Err(message) => note!("codex-fusion hook: {message}"),
    }
    ExitCode::SUCCESS
}

async fn session_start(deadline: Instant) -> Result<String, String> {
    let input = read_input(deadline).await?;
    let start = parse_input(&input)?;
    let workspace = match start.workspace {
        Some(workspace) => workspace,
        None => std::env::current_dir()
            .map_err(|error| format!("no `cwd` in the input and no current directory ({error}); nothing done"))?,
    };
    let socket = crate::socket().map_err(|error| format!("{error:#}; nothing done"))?;
    let source = source_name(start.source);
    let request = ControlRequest::SessionStart {
        workspace: workspace.clone(),
        claude_session_id: start.claude_session_id.clone(),
        source: start.source,
    };
    let budget = deadline.saturating_duration_since(Instant::now());
    let answer = link::exchange(&socket, Role::Hook, &request, budget, "the SessionStart").await;
    match answer.map(|answer| answer.response) {
        Ok(ControlResponse::SessionStarted { action }) => Ok(format!("{} ({source}): {action}", workspace.display())),
        Ok(ControlResponse::Error { message }) => Err(message),
        Ok(other) => Err(format!("unexpected answer from codex-fusiond: {other:?}")),
        Err(LinkError::NotRunning { .. }) => {
            // The workspace as the daemon would key it.
            let workspace = paths::canonical_directory(&workspace).map_err(|error| format!("{error}; nothing done"))?;
            let state_dir = crate::state_dir().map_err(|error| format!("{error:#}; nothing done"))?;
            let done = crate::offline::session_start(
                &state_dir,
                &workspace,
                start.claude_session_id.as_deref(),
                start.source,
            )?;
            Ok(format!("{} ({source}): {done}", workspace.display()))
        }
        Err(LinkError::NotAnswering { delivered: true, .. }) => Err(format!(
            "codex-fusiond did not answer within {} ms; the SessionStart ({source}) was delivered and it applies it when it reads it, Claude Code carries on",
            HOOK_BUDGET.as_millis()
        )),
        Err(LinkError::NotAnswering { delivered: false, .. }) => Err(format!(
            "a daemon holds the socket but did not take the SessionStart ({source}) within {} ms; nothing done, check it with `codex-fusion status`",
            HOOK_BUDGET.as_millis()
        )),
        Err(error) => Err(format!("{error}; nothing done")),
    }
}

/// Parses Claude Code's SessionStart JSON. Every error is one line that says
/// what was wrong.
pub fn parse_input(input: &[u8]) -> Result<SessionStart, String> {
    /// The fields the hook uses; Claude Code sends more (`transcript_path`,
    /// `permission_mode`, …), which are ignored.
    #[derive(Deserialize)]
    struct Input {
        session_id: Option<String>,
        cwd: Option<PathBuf>,
        source: Option<String>,
        hook_event_name: Option<String>,
    }
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(
            "no input on stdin; Claude Code pipes its SessionStart JSON into `codex-fusion hook`, nothing done".into(),
        );
    }
    let input: Input = serde_json::from_slice(input)
        .map_err(|error| format!("stdin is not Claude Code's SessionStart JSON ({error}); nothing done"))?;
    if let Some(event) = input
        .hook_event_name
        .as_deref()
        .filter(|event| *event != "SessionStart")
    {
        return Err(format!(
            "this is a `{event}` hook; `codex-fusion hook` only handles SessionStart, nothing done"
        ));
    }
    let source = match input.source {
        Some(source) => serde_json::from_value::<SessionSource>(serde_json::Value::String(source.clone()))
            .map_err(|_| format!("unknown SessionStart source `{source}`; nothing done"))?,
        None => return Err("the SessionStart JSON has no `source`; nothing done".into()),
    };
    Ok(SessionStart {
        workspace: input.cwd.filter(|cwd| !cwd.as_os_str().is_empty()),
        claude_session_id: input.session_id.filter(|id| !id.is_empty()),
        source,
    })
}

/// The source as Claude Code spells it (serde's lowercase names).
fn source_name(source: SessionSource) -> String {
    serde_json::to_value(source)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{source:?}"))
}

/// Reads stdin to its end, or fails at `deadline`. The read runs on a plain
/// thread: a blocking read cannot be cancelled, and a thread the runtime does
/// not track cannot hold up the process's exit when we give up on it.
async fn read_input(deadline: Instant) -> Result<Vec<u8>, String> {
    if std::io::stdin().is_terminal() {
        return Err(
            "stdin is a terminal; Claude Code pipes its SessionStart JSON into `codex-fusion hook`, nothing done"
                .into(),
        );
    }
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = sender.send(crate::input::read_stdin(INPUT_MAX_BYTES));
    });
    match tokio::time::timeout_at(deadline, receiver).await {
        Ok(Ok(Ok(input))) if input.len() as u64 > INPUT_MAX_BYTES => Err(format!(
            "stdin holds more than {INPUT_MAX_BYTES} bytes, which is not Claude Code's SessionStart JSON; nothing done"
        )),
        Ok(Ok(Ok(input))) => Ok(input),
        Ok(Ok(Err(error))) => Err(format!("cannot read stdin: {error}; nothing done")),
        Ok(Err(_)) => Err("cannot read stdin; nothing done".into()),
        Err(_) => Err(format!(
            "stdin was not closed within {} ms; Claude Code pipes its SessionStart JSON and closes it, nothing done",
            HOOK_BUDGET.as_millis()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_codes_input_is_understood() {
        let input = br#"{"session_id":"abc","transcript_path":"/t.jsonl","cwd":"/w","hook_event_name":"SessionStart","source":"clear","model":"x"}"#;
        assert_eq!(
            parse_input(input),
            Ok(SessionStart {
                workspace: Some("/w".into()),
                claude_session_id: Some("abc".into()),
                source: SessionSource::Clear,
            })
        );
        for (name, source) in [
            ("startup", SessionSource::Startup),
            ("resume", SessionSource::Resume),
            ("compact", SessionSource::Compact),
        ] {
            let input = format!(r#"{{"source":"{name}"}}"#);
            let parsed = parse_input(input.as_bytes()).expect("parses");
            assert_eq!(parsed.source, source);
            assert_eq!(parsed.workspace, None);
        }
    }

    #[test]
    fn empty_or_garbage_input_is_one_line_that_says_so() {
        for (input, expected) in [
            (&b""[..], "no input on stdin"),
            (b"  \n", "no input on stdin"),
            (b"not json", "is not Claude Code's SessionStart JSON"),
            (b"[1,2]", "is not Claude Code's SessionStart JSON"),
            (b"\xff\xfe", "is not Claude Code's SessionStart JSON"),
            (br#"{"source":"later"}"#, "unknown SessionStart source `later`"),
            (br#"{"cwd":"/w"}"#, "has no `source`"),
            (
                br#"{"source":"clear","hook_event_name":"Stop"}"#,
                "only handles SessionStart",
            ),
            (
                br#"{"source":"clear","cwd":7}"#,
                "is not Claude Code's SessionStart JSON",
            ),
        ] {
            let message = parse_input(input).expect_err("refused");
            assert!(message.contains(expected), "{input:?}: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn empty_cwd_and_session_id_count_as_absent() {
        let parsed = parse_input(br#"{"source":"startup","cwd":"","session_id":""}"#).expect("parses");
        assert_eq!(parsed.workspace, None);
        assert_eq!(parsed.claude_session_id, None);
    }
}
