//! `codex-fusion log`: a workspace's recent turns, from the daemon's store of
//! recent answers ([`codex_fusion_protocol::answers`]).
//!
//! A running daemon is asked (`ControlRequest::Log`): it knows the state
//! directory it writes to, which may not be the one this shell resolves (a
//! service started with another `CODEX_FUSION_STATE_DIR`). When none runs,
//! or it does not answer, the files are read directly from this shell's
//! state directory: the answers outlive the daemon, and the reason to run
//! `log` is often that something went wrong.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::answers::{self, AnswerRecord, Outcome};
use codex_fusion_protocol::control::{ControlRequest, ControlResponse, thousands};
use serde::Serialize;

use crate::link::{self, LinkError};
use crate::output::{note, say, stdout_text};
use crate::{CONTROL_REPLY_WAIT, fail};

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    workspace: &'a Path,
    state_dir: &'a Path,
    /// `daemon` (asked over the socket) or `files` (read directly).
    source: &'static str,
    answers: &'a [AnswerRecord],
}

pub async fn run(workspace: &Path, count: usize, json: bool) -> ExitCode {
    let (state_dir, source, answers) = match from_daemon(workspace, count).await {
        Ok(Some((state_dir, answers))) => (state_dir, "daemon", answers),
        Ok(None) => match from_files(workspace, count) {
            Ok((state_dir, answers)) => (state_dir, "files", answers),
            Err(error) => return fail(error),
        },
        Err(error) => {
            note!("codex-fusion: {error}; reading the kept answers directly");
            match from_files(workspace, count) {
                Ok((state_dir, answers)) => (state_dir, "files", answers),
                Err(error) => return fail(error),
            }
        }
    };
    if json {
        let report = Report {
            workspace,
            state_dir: &state_dir,
            source,
            answers: &answers,
        };
        return match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                say!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(format_args!("cannot print the log as JSON: {error}")),
        };
    }
    let now = answers::millis_since_epoch(std::time::SystemTime::now());
    if answers.is_empty() {
        let others = answers::workspaces(&state_dir);
        stdout_text(&render_empty(workspace, &state_dir, &others, now));
    } else {
        stdout_text(&render(workspace, &answers, now));
    }
    ExitCode::SUCCESS
}

/// The daemon's answer; `Ok(None)` when no daemon runs.
async fn from_daemon(workspace: &Path, count: usize) -> Result<Option<(PathBuf, Vec<AnswerRecord>)>, String> {
    let socket = crate::socket().map_err(|error| format!("{error:#}"))?;
    let request = ControlRequest::Log {
        workspace: workspace.to_path_buf(),
        limit: count,
    };
    match link::exchange(&socket, Role::Cli, &request, CONTROL_REPLY_WAIT, "the log request").await {
        Ok(answer) => match answer.response {
            ControlResponse::Log { state_dir, answers, .. } => Ok(Some((state_dir, answers))),
            ControlResponse::Error { message } => Err(format!("codex-fusiond: {message}")),
            other => Err(format!("codex-fusiond answered the log request with {other:?}")),
        },
        Err(LinkError::NotRunning { .. }) => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

/// The files of this shell's state directory.
fn from_files(workspace: &Path, count: usize) -> Result<(PathBuf, Vec<AnswerRecord>), String> {
    let state_dir = crate::state_dir().map_err(|error| format!("{error:#}"))?;
    let answers = answers::list(&state_dir, workspace, count).map_err(|error| error.to_string())?;
    Ok((state_dir, answers))
}

/// The turns as a person reads them: one line of facts, the file beneath.
pub fn render(workspace: &Path, records: &[AnswerRecord], now_ms: u64) -> String {
    let mut out = String::new();
    let turns = if records.len() == 1 { "turn" } else { "turns" };
    let _ = writeln!(
        out,
        "The last {} {turns} of {} (newest first):",
        records.len(),
        workspace.display()
    );
    for record in records {
        out.push('\n');
        let _ = writeln!(out, "{}", facts(record, now_ms));
        if let Some(summary) = &record.verdict_summary {
            let _ = writeln!(out, "  verdict: {summary}");
        }
        let what = match record.outcome {
            Outcome::Answer if record.cut => "full answer (Claude got it cut)",
            Outcome::Answer => "full answer",
            Outcome::Paused => "the pause",
            Outcome::Failed => "the error",
        };
        let _ = writeln!(out, "  {what}: {}", record.file.display());
    }
    out
}

/// `2026-01-15 10:15:02Z (3m ago) · consult · CONSENSUS · 12.3 s · 1,200 in / 300 out tokens · end_turn`.
fn facts(record: &AnswerRecord, now_ms: u64) -> String {
    let when = record.finished_at.replacen('T', " ", 1);
    let ago = answers::age(now_ms.saturating_sub(record.finished_at_ms) / 1000);
    let mut parts = vec![format!("{when} ({ago} ago)")];
    let mut tool = record.tool.clone();
    if record.after_permit {
        tool.push_str(" (after permit)");
    }
    parts.push(tool);
    match (record.outcome, &record.verdict) {
        (Outcome::Answer, Some(verdict)) => parts.push(verdict.clone()),
        (Outcome::Answer, None) => parts.push("no verdict".to_owned()),
        (outcome, _) => parts.push(outcome.label().to_uppercase()),
    }
    if let Some(ms) = record.duration_ms {
        parts.push(format!("{:.1} s", ms as f64 / 1000.0));
    }
    if let Some(tokens) = record.tokens {
        let mut text = format!("{} in / {} out", thousands(tokens.input), thousands(tokens.output));
        if tokens.reasoning > 0 {
            let _ = write!(text, " / {} reasoning", thousands(tokens.reasoning));
        }
        parts.push(format!("{text} tokens"));
    }
    if let Some(stop) = &record.stop_reason {
        parts.push(stop.clone());
    }
    parts.join(" · ")
}

/// Nothing kept for `workspace`: say what would be, and which workspaces
/// do have answers.
fn render_empty(workspace: &Path, state_dir: &Path, others: &[AnswerRecord], now_ms: u64) -> String {
    let mut out = format!(
        "No answers kept for {} yet. Each Codex tool call's answer is kept once it finishes \
         (the last {} per workspace, for {} days) in {}.\n",
        workspace.display(),
        answers::KEEP_COUNT,
        answers::KEEP_AGE.as_secs() / 86_400,
        state_dir.join(answers::DIR).display()
    );
    if !others.is_empty() {
        out.push_str("\nOther workspaces have some (see them with --workspace DIR):\n");
        for record in others.iter().take(10) {
            let ago = answers::age(now_ms.saturating_sub(record.finished_at_ms) / 1000);
            let _ = writeln!(out, "  {} (last {ago} ago)", record.workspace.display());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use codex_fusion_protocol::answers::Tokens;

    const NOW: u64 = 1_768_472_102_000;

    fn kept() -> AnswerRecord {
        AnswerRecord {
            id: "x".into(),
            finished_at_ms: NOW - 185_000,
            finished_at: answers::iso_utc(NOW - 185_000),
            workspace: "/home/u/project".into(),
            tool: "review_plan".into(),
            verdict: Some("OPEN".into()),
            verdict_summary: Some("step 3 needs a rollback".into()),
            tokens: Some(Tokens {
                input: 12_345,
                output: 678,
                reasoning: 90,
            }),
            duration_ms: Some(125_300),
            stop_reason: Some("end_turn".into()),
            file: "/s/recent/project-1/a.md".into(),
            ..AnswerRecord::default()
        }
    }

    #[test]
    fn a_turn_reads_as_its_facts_and_its_file() {
        let mut paused = kept();
        paused.outcome = Outcome::Paused;
        paused.verdict = None;
        paused.verdict_summary = None;
        paused.tokens = None;
        paused.duration_ms = None;
        paused.stop_reason = None;
        paused.file = "/s/recent/project-1/b.md".into();
        let text = render(Path::new("/home/u/project"), &[kept(), paused], NOW);
        assert_eq!(
            text,
            "The last 2 turns of /home/u/project (newest first):\n\
             \n\
             2026-01-15 10:11:57Z (3m ago) · review_plan · OPEN · 125.3 s · 12,345 in / 678 out / 90 reasoning tokens · end_turn\n  \
             verdict: step 3 needs a rollback\n  \
             full answer: /s/recent/project-1/a.md\n\
             \n\
             2026-01-15 10:11:57Z (3m ago) · review_plan · PAUSED\n  \
             the pause: /s/recent/project-1/b.md\n"
        );
    }

    #[test]
    fn nothing_kept_says_what_would_be_and_where_others_are() {
        let text = render_empty(Path::new("/w"), Path::new("/s"), &[], NOW);
        assert_eq!(
            text,
            "No answers kept for /w yet. Each Codex tool call's answer is kept once it finishes \
             (the last 20 per workspace, for 7 days) in /s/recent.\n"
        );
        let text = render_empty(Path::new("/w"), Path::new("/s"), &[kept()], NOW);
        assert!(
            text.ends_with("see them with --workspace DIR):\n  /home/u/project (last 3m ago)\n"),
            "{text}"
        );
    }
}
