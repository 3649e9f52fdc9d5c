//! The text of tool results: an answer with its one-line footer, a `🔐`
//! pause, and the status report. Pure formatting.

use std::fmt::Write as _;

use codex_fusion_protocol::control::{DaemonStatus, WorkspaceStatus};

use crate::turn::{Answer, Pause};

/// Prefix of every pause result (SPEC: results start with it).
pub const PAUSE_PREFIX: &str = "🔐 Codex paused";

/// The answer followed by a blank line and the footer.
pub fn answer(answer: &Answer) -> String {
    format!("{}\n\n{}", answer.text.trim_end(), footer(answer))
}

/// Room kept for the cut notice, the verdict and the footer.
const CUT_RESERVE: usize = 600;

/// `answer` within `limit` characters. A longer text is cut at the last
/// paragraph break that fits (else a line break, else a character), then
/// one line says so and where the full text is (`saved`, if it could be
/// saved), the verdict line is kept, and the footer names the file.
pub fn answer_within(answer: &Answer, limit: usize, saved: Option<&std::path::Path>) -> String {
    let text = answer.text.trim_end();
    let total = text.chars().count();
    let whole = self::answer(answer);
    if whole.chars().count() <= limit {
        return whole;
    }
    let keep = limit.saturating_sub(CUT_RESERVE).max(1);
    let byte_limit = text.char_indices().nth(keep).map_or(text.len(), |(index, _)| index);
    let head = &text[..byte_limit];
    let cut = head
        .rfind("\n\n")
        .or_else(|| head.rfind('\n'))
        .filter(|index| *index > byte_limit / 2)
        .unwrap_or(byte_limit);
    let shown = text[..cut].trim_end();
    let where_ = match saved {
        Some(path) => format!("the full answer is in {}", path.display()),
        None => "the full answer could not be saved; ask Codex to continue with `reply`".to_owned(),
    };
    let mut out = format!(
        "{shown}\n\n[… answer cut at {} of {total} characters to fit Claude's tool-output limit; {where_}]",
        shown.chars().count()
    );
    if let Some(verdict_line) = text.lines().rev().map(str::trim).find(|line| !line.is_empty())
        && answer.verdict.is_some()
        && !shown.ends_with(verdict_line)
    {
        out.push('\n');
        out.push_str(verdict_line);
    }
    let mut trimmed = answer.clone();
    if let Some(path) = saved {
        trimmed.notes.push(format!("full answer: {}", path.display()));
    }
    out.push_str("\n\n");
    out.push_str(&footer(&trimmed));
    out
}

/// One line: latency, tokens, verdict, notes.
pub fn footer(answer: &Answer) -> String {
    let mut parts = vec![format!("codex-fusion · {:.1} s", answer.elapsed.as_secs_f64())];
    if let Some(usage) = answer.usage {
        let mut tokens = format!(
            "{} in · {} out",
            thousands(usage.input_tokens),
            thousands(usage.output_tokens)
        );
        if usage.reasoning_tokens > 0 {
            let _ = write!(tokens, " · {} reasoning", thousands(usage.reasoning_tokens));
        }
        parts.push(format!("{tokens} tokens"));
    }
    if let Some(verdict) = &answer.verdict {
        parts.push(verdict.label().to_owned());
    }
    parts.extend(answer.notes.iter().cloned());
    format!("— {}", parts.join(" · "))
}

/// The `🔐` result: what Codex wants, why it was not auto-allowed, and how
/// to resume.
pub fn pause(pause: &Pause) -> String {
    let request = &pause.request;
    let what = match request.kind {
        crate::guardian::ActionKind::Execute => "run a command",
        crate::guardian::ActionKind::Edit => "edit files",
        crate::guardian::ActionKind::Delete => "delete files",
        crate::guardian::ActionKind::Move => "move files",
        crate::guardian::ActionKind::Fetch => "fetch from the network",
        crate::guardian::ActionKind::Read | crate::guardian::ActionKind::Search => "read outside the workspace",
        _ => "do something that needs your approval",
    };
    let mut text = format!("{PAUSE_PREFIX}: it wants to {what}.\n\n");
    let _ = writeln!(text, "kind: {}", request.kind.label());
    let _ = writeln!(text, "title: {}", request.title);
    if let Some(command) = &request.command {
        let _ = writeln!(text, "command: {command}");
    }
    if let Some(cwd) = &request.cwd {
        let _ = writeln!(text, "cwd: {}", cwd.resolved.display());
    }
    for path in &request.paths {
        let place = if path.inside_workspace {
            "inside the workspace"
        } else {
            "OUTSIDE the workspace"
        };
        if path.raw == path.resolved {
            let _ = writeln!(text, "path: {} ({place})", path.resolved.display());
        } else {
            let _ = writeln!(
                text,
                "path: {} → {} ({place})",
                path.raw.display(),
                path.resolved.display()
            );
        }
    }
    if let Some(url) = &request.url {
        let _ = writeln!(text, "url: {url}");
    }
    if let Some(reason) = &request.reason {
        let _ = writeln!(text, "Codex's reason: {reason}");
    }
    let _ = writeln!(text, "asked because: {}", pause.why);
    text.push_str(
        "\nCall `permit` with decision `allow` to let it go ahead, or `deny` (optionally with a `note`) \
to refuse; Codex then answers without it. The turn waits for your decision.",
    );
    text
}

/// The `status` tool's report for one workspace.
pub fn status(daemon: &DaemonStatus, workspace: &WorkspaceStatus) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "workspace: {}", workspace.workspace.display());
    let guardian = &workspace.guardian;
    let _ = writeln!(
        text,
        "guardian: external reads {}, writes {}, commands {} (reads inside the workspace are always allowed)",
        on_off(guardian.allow_external_reads),
        on_off(guardian.allow_writes),
        on_off(guardian.allow_commands)
    );
    let agent = match (&workspace.agent_pid, workspace.agent_state.as_str()) {
        (Some(pid), state) => format!("{state} (pid {pid})"),
        (None, state) => state.to_owned(),
    };
    let _ = writeln!(text, "codex-acp: {agent}");
    if let Some(command) = &workspace.agent_command {
        let _ = writeln!(text, "command: {command}");
    }
    match &workspace.session_id {
        Some(id) => {
            let origin = workspace.session_origin.as_deref().unwrap_or("fresh");
            let _ = writeln!(
                text,
                "session: {id} ({origin}, {} turns, last used {})",
                workspace.turns,
                workspace
                    .last_used_secs_ago
                    .map_or_else(|| "never".to_owned(), |secs| format!("{} ago", duration(secs)))
            );
        }
        None => {
            let _ = writeln!(text, "session: none yet (the next call starts one)");
        }
    }
    if let Some(claude) = &workspace.claude_session_id {
        let _ = writeln!(text, "paired Claude session: {claude}");
    }
    if let Some(mode) = &workspace.mode {
        let _ = writeln!(text, "codex mode: {mode}");
    }
    if let Some(model) = &workspace.model {
        let effort = workspace
            .effort
            .as_deref()
            .map(|effort| format!(", effort {effort}"))
            .unwrap_or_default();
        let _ = writeln!(text, "model: {model}{effort}");
    }
    if !workspace.available_models.is_empty() {
        let _ = writeln!(text, "models offered: {}", workspace.available_models.join(", "));
    }
    if !workspace.available_efforts.is_empty() {
        let _ = writeln!(text, "efforts offered: {}", workspace.available_efforts.join(", "));
    }
    let usage = &workspace.usage;
    let _ = write!(
        text,
        "tokens this session: {} in · {} out · {} reasoning",
        thousands(usage.input_tokens),
        thousands(usage.output_tokens),
        thousands(usage.reasoning_tokens)
    );
    if let (Some(used), Some(size)) = (usage.context_used, usage.context_size) {
        let _ = write!(text, " · context {} / {}", thousands(used), thousands(size));
    }
    text.push('\n');
    match (&workspace.running_turn, workspace.queued_turns) {
        (Some(tool), queued) => {
            let _ = writeln!(text, "running: {tool} ({queued} queued)");
        }
        (None, 0) => {
            let _ = writeln!(text, "running: nothing");
        }
        (None, queued) => {
            let _ = writeln!(text, "running: nothing ({queued} queued)");
        }
    }
    match &workspace.pending_permission {
        Some(pending) => {
            let _ = writeln!(text, "pending permission: {pending} (call `permit`)");
        }
        None => {
            let _ = writeln!(text, "pending permission: none");
        }
    }
    if let Some(error) = &workspace.last_error {
        let _ = writeln!(text, "last error: {error}");
    }
    let _ = writeln!(
        text,
        "daemon: codex-fusiond {} (pid {}), up {}, {} workspaces, {} connections",
        daemon.daemon_version,
        daemon.pid,
        duration(daemon.uptime_secs),
        daemon.workspaces.len(),
        daemon.connections
    );
    if workspace.stderr_tail.is_empty() {
        text.push_str("recent codex-acp stderr: none");
    } else {
        text.push_str("recent codex-acp stderr:");
        let start = workspace.stderr_tail.len().saturating_sub(10);
        for line in &workspace.stderr_tail[start..] {
            let _ = write!(text, "\n  {line}");
        }
    }
    text
}

fn on_off(on: bool) -> &'static str {
    if on { "allowed" } else { "ask" }
}

/// `1234567` as `1,234,567`.
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

/// `3725` seconds as `1h 2m`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d {}h", secs / 86400, (secs % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardian::{ActionKind, PermissionRequest, ResolvedPath};
    use crate::prompts::Verdict;
    use crate::turn::TurnUsage;
    use std::time::Duration;

    #[test]
    fn footer_is_one_line_with_latency_tokens_and_verdict() {
        let text = answer(&Answer {
            text: "Looks right.\n\nVERDICT: CONSENSUS — ship it\n".into(),
            elapsed: Duration::from_millis(2345),
            usage: Some(TurnUsage {
                input_tokens: 12345,
                output_tokens: 678,
                reasoning_tokens: 90,
            }),
            verdict: Some(Verdict::Consensus("ship it".into())),
            notes: vec!["new Codex session".into()],
        });
        assert_eq!(
            text,
            "Looks right.\n\nVERDICT: CONSENSUS — ship it\n\n— codex-fusion · 2.3 s · 12,345 in · 678 out · 90 reasoning tokens · CONSENSUS · new Codex session"
        );
    }

    #[test]
    fn a_long_answer_is_cut_at_a_paragraph_and_keeps_its_verdict() {
        let paragraph = "word ".repeat(40).trim_end().to_owned();
        let body = vec![paragraph; 60].join("\n\n");
        let text = format!("{body}\n\nVERDICT: OPEN — too long");
        let long = Answer {
            verdict: Verdict::parse(&text),
            text,
            elapsed: Duration::from_secs(1),
            usage: None,
            notes: vec![],
        };
        let path = std::path::Path::new("/state/answers/a.md");
        let shown = answer_within(&long, 3000, Some(path));
        assert!(shown.chars().count() <= 3000, "{} chars", shown.chars().count());
        let (kept, rest) = shown.split_once("\n\n[… answer cut at ").expect("cut notice");
        assert!(kept.ends_with("word"), "cut at a paragraph end");
        assert!(rest.contains("the full answer is in /state/answers/a.md]"), "{rest}");
        assert!(
            rest.contains("\nVERDICT: OPEN — too long\n"),
            "the verdict stays: {rest}"
        );
        assert!(
            shown
                .lines()
                .last()
                .expect("footer")
                .contains("full answer: /state/answers/a.md")
        );
        // Short answers are untouched.
        let short = Answer {
            text: "ok".into(),
            verdict: None,
            ..long.clone()
        };
        assert_eq!(answer_within(&short, 3000, Some(path)), answer(&short));
    }

    #[test]
    fn pause_describes_the_action_and_how_to_resume() {
        let text = pause(&Pause {
            request: PermissionRequest {
                kind: ActionKind::Execute,
                title: "touch x".into(),
                command: Some("touch x".into()),
                cwd: Some(ResolvedPath {
                    raw: "/w".into(),
                    resolved: "/w".into(),
                    inside_workspace: true,
                    entry_inside_workspace: true,
                }),
                paths: vec![ResolvedPath {
                    raw: "link/secret".into(),
                    resolved: "/etc/secret".into(),
                    inside_workspace: false,
                    entry_inside_workspace: true,
                }],
                url: None,
                reason: Some("to test".into()),
            },
            why: "it runs a command (CODEX_FUSION_ALLOW_COMMANDS is off)".into(),
        });
        assert!(
            text.starts_with("🔐 Codex paused: it wants to run a command."),
            "{text}"
        );
        assert!(text.contains("command: touch x\n"));
        assert!(text.contains("path: link/secret → /etc/secret (OUTSIDE the workspace)"));
        assert!(text.contains("Codex's reason: to test"));
        assert!(text.contains("`permit`"));
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m 1s");
        assert_eq!(duration(3725), "1h 2m");
        assert_eq!(duration(90000), "1d 1h");
    }
}
