//! `codex-fusion status`: the daemon's health and every workspace's session,
//! as a readable report or as the daemon's JSON.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::answers::{self, AnswerRecord};
use codex_fusion_protocol::control::{
    AgentProcessStatus, ControlRequest, ControlResponse, DaemonStatus, WorkspaceStatus,
};

use crate::link::{self, LinkError};
use crate::output::{say, stdout_text};
use crate::{CONTROL_REPLY_WAIT, fail};

/// What `--json` prints when no daemon runs, so a script can tell "not
/// running" from a broken command without parsing stderr.
const NOT_RUNNING_JSON: &str = r#"{"running": false}"#;

/// Asks the daemon for its status (of `only` that workspace, if given) and
/// prints it. `here` is the workspace of the current directory: hints for
/// other workspaces name theirs with `--workspace`.
pub async fn run(socket: &Path, only: Option<&Path>, here: Option<&Path>, json: bool) -> ExitCode {
    let request = ControlRequest::Status {
        workspace: only.map(Path::to_path_buf),
    };
    let answer = link::exchange(socket, Role::Cli, &request, CONTROL_REPLY_WAIT, "the status request").await;
    match answer.map(|answer| answer.response) {
        Ok(ControlResponse::Status(status)) => {
            if json {
                match serde_json::to_string_pretty(&status) {
                    Ok(text) => say!("{text}"),
                    Err(error) => return fail(format_args!("cannot print the status as JSON: {error}")),
                }
            } else {
                stdout_text(&render(&status, only, here));
            }
            ExitCode::SUCCESS
        }
        Ok(ControlResponse::Error { message }) => fail(message),
        Ok(other) => fail(format_args!("codex-fusiond answered the status request with {other:?}")),
        Err(error @ LinkError::NotRunning { .. }) => {
            if json {
                say!("{NOT_RUNNING_JSON}");
            }
            fail(error)
        }
        Err(error) => fail(error),
    }
}

/// The human report: a daemon block, then one block per workspace. `only`
/// is the workspace asked about, if one was; `here` the current directory's.
pub fn render(status: &DaemonStatus, only: Option<&Path>, here: Option<&Path>) -> String {
    let mut out = String::new();
    let connections = match status.connections {
        1 => "1 connection".to_owned(),
        count => format!("{count} connections"),
    };
    let _ = writeln!(
        out,
        "codex-fusiond {} · pid {} · up {} · {connections}",
        status.daemon_version,
        status.pid,
        duration(status.uptime_secs)
    );
    row(&mut out, "", "socket", &status.socket.display().to_string());
    row(&mut out, "", "state dir", &status.state_dir.display().to_string());
    match only {
        Some(workspace) if status.workspaces.is_empty() => {
            let _ = writeln!(
                out,
                "\nNo Codex session for {}: its first Codex tool call starts one.",
                workspace.display()
            );
        }
        _ if status.workspaces.is_empty() => {
            out.push_str("\nNo workspace sessions yet: the first Codex tool call in a project starts one.\n");
        }
        _ => {}
    }
    for workspace in &status.workspaces {
        out.push('\n');
        // Name the workspace in the hint unless it is the one a bare command
        // would act on.
        let named = only.is_some() || here != Some(workspace.workspace.as_path());
        render_workspace(&mut out, workspace, named, status.last_answer(&workspace.workspace));
    }
    for agent in &status.agents {
        out.push('\n');
        render_agent(&mut out, agent);
    }
    out
}

/// One agent process: what it is, who shares it, what it holds.
fn render_agent(out: &mut String, agent: &AgentProcessStatus) {
    let pid = agent.pid.map_or_else(|| "?".to_owned(), |pid| pid.to_string());
    let _ = writeln!(out, "agent process {pid} · {}", agent.agent);
    let mut state = format!("up {}", duration(agent.started_secs_ago));
    match agent.busy {
        0 => {
            let _ = write!(state, " · idle for {}", duration(agent.idle_secs));
        }
        busy => {
            let _ = write!(state, " · {busy} turn{} running", if busy == 1 { "" } else { "s" });
        }
    }
    if let Some(kb) = agent.rss_kb {
        let _ = write!(state, " · {:.0} MiB with its children", kb as f64 / 1024.0);
    }
    row(out, "  ", "state", &state);
    if let Some(why) = &agent.stopping {
        row(out, "  ", "stopping", why);
    }
    let sessions = match agent.workspaces.len() {
        0 => "none (stops when idle)".to_owned(),
        count => format!(
            "{count}: {}",
            agent
                .workspaces
                .iter()
                .map(|path| path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    row(out, "  ", "sessions", &sessions);
}

fn render_workspace(out: &mut String, workspace: &WorkspaceStatus, named: bool, last: Option<&AnswerRecord>) {
    let agent_name = workspace.agent_name();
    if agent_name == codex_fusion_protocol::agents::DEFAULT_AGENT {
        let _ = writeln!(out, "workspace {}", workspace.workspace.display());
    } else {
        // Another agent of a council, on its own session here.
        let _ = writeln!(out, "workspace {} · agent {agent_name}", workspace.workspace.display());
    }
    let session = match &workspace.session_id {
        Some(id) => {
            let mut text = id.clone();
            if let Some(origin) = &workspace.session_origin {
                let _ = write!(text, " ({origin})");
            }
            text
        }
        None => "none (the next tool call starts one)".to_owned(),
    };
    row(out, "  ", "session", &session);
    if let Some(claude) = &workspace.claude_session_id {
        row(out, "  ", "claude session", claude);
    }
    let mut agent = workspace.agent_state.clone();
    if let Some(pid) = workspace.agent_pid {
        let _ = write!(agent, " · pid {pid}");
    }
    if let Some(command) = &workspace.agent_command {
        let _ = write!(agent, " · {command}");
    }
    row(out, "  ", "agent", &agent);
    if !workspace.shared_with.is_empty() {
        row(out, "  ", "shared with", &workspace.shared_with_text());
    }
    if let Some(mode) = &workspace.mode {
        row(out, "  ", "mode", mode);
    }
    if let Some(reason) = &workspace.unconfined {
        row(
            out,
            "  ",
            "warning",
            &format!(
                "reads are not confined to the workspace ({reason}); the agent's sandboxed commands may read any file without asking"
            ),
        );
    }
    if let Some(model) = &workspace.model {
        let mut shown = model.clone();
        if let Some(effort) = &workspace.effort {
            let _ = write!(shown, " · effort {effort}");
        }
        row(out, "  ", "model", &shown);
    }
    if !workspace.available_models.is_empty() {
        let mut offered = workspace.available_models.join(", ");
        if !workspace.available_efforts.is_empty() {
            let _ = write!(offered, " · efforts {}", workspace.available_efforts.join(", "));
        }
        row(out, "  ", "offered", &offered);
    }
    let mut turns = format!("{} done", workspace.turns);
    match &workspace.running_turn {
        Some(tool) => {
            let _ = write!(turns, " · running: {tool}");
        }
        None => turns.push_str(" · idle"),
    }
    if workspace.queued_turns > 0 {
        let _ = write!(turns, " · queued: {}", workspace.queued_turns);
    }
    row(out, "  ", "turns", &turns);
    if let Some(pending) = &workspace.pending_permission {
        let flag = if named {
            let dir = workspace.workspace.to_string_lossy();
            let quoted = shlex::try_quote(&dir).map_or_else(|_| dir.to_string(), |quoted| quoted.into_owned());
            format!(" --workspace {quoted}")
        } else {
            String::new()
        };
        row(
            out,
            "  ",
            "permission",
            &format!("waiting on {pending} (answer: codex-fusion ask{flag} permit allow|deny)"),
        );
    }
    let usage = &workspace.usage;
    let mut tokens = format!(
        "{} in · {} out · {} reasoning",
        usage.input_tokens, usage.output_tokens, usage.reasoning_tokens
    );
    if let (Some(used), Some(size)) = (usage.context_used, usage.context_size) {
        let _ = write!(tokens, " · context {used} of {size}");
    }
    row(out, "  ", "tokens", &tokens);
    let guardian = &workspace.guardian;
    let allowed: Vec<&str> = [
        (guardian.allow_external_reads, "external reads"),
        (guardian.allow_writes, "writes"),
        (guardian.allow_commands, "commands"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    let guardian = if allowed.is_empty() {
        "asks before anything but reads inside the workspace".to_owned()
    } else {
        format!("also auto-allows {}", allowed.join(", "))
    };
    row(out, "  ", "guardian", &guardian);
    if let Some(seconds) = workspace.last_used_secs_ago {
        row(out, "  ", "last used", &format!("{} ago", duration(seconds)));
    }
    if let Some(error) = &workspace.last_error {
        row(out, "  ", "last error", error);
    }
    if let Some(last) = last {
        let now = answers::millis_since_epoch(std::time::SystemTime::now());
        row(out, "  ", "last answer", &last.summary(now));
        row(out, "  ", "", &last.file.display().to_string());
    }
    if !workspace.stderr_tail.is_empty() {
        let program = if agent_name == codex_fusion_protocol::agents::DEFAULT_AGENT {
            "codex-acp"
        } else {
            agent_name
        };
        let _ = writeln!(out, "  {program} stderr (latest last):");
        let start = workspace.stderr_tail.len().saturating_sub(STDERR_LINES);
        for line in &workspace.stderr_tail[start..] {
            let _ = writeln!(out, "    {line}");
        }
    }
}

/// Lines of codex-acp's stderr shown per workspace; `--json` has them all.
const STDERR_LINES: usize = 5;

/// Width of the label column, so values line up.
const LABEL_WIDTH: usize = 15;

fn row(out: &mut String, indent: &str, label: &str, value: &str) {
    let _ = writeln!(out, "{indent}{label:<LABEL_WIDTH$}{value}");
}

/// `45s`, `3m 07s`, `2h 03m`, `3d 04h`.
pub fn duration(seconds: u64) -> String {
    let (days, hours, minutes, secs) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs:02}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use codex_fusion_protocol::control::{GuardianFlags, UsageTotals};

    fn daemon(workspaces: Vec<WorkspaceStatus>) -> DaemonStatus {
        DaemonStatus {
            daemon_version: "0.1.0".into(),
            pid: 42,
            uptime_secs: 3725,
            socket: "/run/user/1000/codex-fusion/daemon.sock".into(),
            state_dir: "/home/u/.local/state/codex-fusion".into(),
            connections: 1,
            workspaces,
            agents: Vec::new(),
            last_answers: Vec::new(),
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(187), "3m 07s");
        assert_eq!(duration(7380), "2h 03m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3d 04h");
    }

    #[test]
    fn an_idle_daemon_says_how_sessions_start() {
        let text = render(&daemon(Vec::new()), None, None);
        assert_eq!(
            text,
            "codex-fusiond 0.1.0 · pid 42 · up 1h 02m · 1 connection\n\
             socket         /run/user/1000/codex-fusion/daemon.sock\n\
             state dir      /home/u/.local/state/codex-fusion\n\
             \n\
             No workspace sessions yet: the first Codex tool call in a project starts one.\n"
        );
    }

    #[test]
    fn a_busy_workspace_shows_every_field() {
        let workspace = WorkspaceStatus {
            workspace: "/home/u/project".into(),
            agent: "codex".into(),
            pause_id: Some("p3f9a".into()),
            agent_state: "ready".into(),
            agent_pid: Some(4321),
            agent_command: Some("codex-acp".into()),
            last_error: Some("quota exceeded".into()),
            session_id: Some("sess-1".into()),
            claude_session_id: Some("claude-9".into()),
            session_origin: Some("loaded".into()),
            turns: 4,
            running_turn: Some("consult".into()),
            queued_turns: 2,
            pending_permission: Some("touch made.txt".into()),
            last_used_secs_ago: Some(12),
            guardian: GuardianFlags {
                allow_external_reads: false,
                allow_writes: true,
                allow_commands: true,
            },
            usage: UsageTotals {
                input_tokens: 1200,
                output_tokens: 300,
                reasoning_tokens: 50,
                context_used: Some(12_000),
                context_size: Some(200_000),
            },
            mode: Some("read-only".into()),
            unconfined: None,
            model: Some("gpt-5.5".into()),
            effort: Some("high".into()),
            available_models: vec!["gpt-5.5".into(), "gpt-6".into()],
            available_efforts: vec!["low".into(), "high".into()],
            stderr_tail: (1..=7).map(|index| format!("line {index}")).collect(),
            shared_with: Vec::new(),
        };
        let text = render(
            &daemon(vec![workspace.clone()]),
            None,
            Some(Path::new("/home/u/project")),
        );
        let expected = "\
workspace /home/u/project
  session        sess-1 (loaded)
  claude session claude-9
  agent          ready · pid 4321 · codex-acp
  mode           read-only
  model          gpt-5.5 · effort high
  offered        gpt-5.5, gpt-6 · efforts low, high
  turns          4 done · running: consult · queued: 2
  permission     waiting on touch made.txt (answer: codex-fusion ask permit allow|deny)
  tokens         1200 in · 300 out · 50 reasoning · context 12000 of 200000
  guardian       also auto-allows writes, commands
  last used      12s ago
  last error     quota exceeded
  codex-acp stderr (latest last):
    line 3
    line 4
    line 5
    line 6
    line 7
";
        assert!(text.ends_with(expected), "{text}");
        // Asked about by name, or listed from elsewhere, the hint names it.
        for (only, here) in [
            (Some(Path::new("/home/u/project")), Some(Path::new("/home/u/project"))),
            (None, Some(Path::new("/home/u/other"))),
            (None, None),
        ] {
            let text = render(&daemon(vec![workspace.clone()]), only, here);
            assert!(
                text.contains("(answer: codex-fusion ask --workspace /home/u/project permit allow|deny)"),
                "{only:?} {here:?}: {text}"
            );
        }
    }

    #[test]
    fn the_last_answer_and_its_file_are_named() {
        let workspace = WorkspaceStatus {
            workspace: "/w/a".into(),
            agent_state: "ready".into(),
            ..WorkspaceStatus::default()
        };
        let mut status = daemon(vec![workspace]);
        let now = answers::millis_since_epoch(std::time::SystemTime::now());
        status.last_answers = vec![AnswerRecord {
            workspace: "/w/a".into(),
            tool: "consult".into(),
            verdict: Some("CONSENSUS".into()),
            duration_ms: Some(1500),
            finished_at_ms: now - 125_000,
            file: "/s/recent/a-1/x.md".into(),
            ..AnswerRecord::default()
        }];
        let text = render(&status, None, None);
        assert!(
            text.contains(
                "  last answer    consult · CONSENSUS · 1.5 s · 2m ago\n                 /s/recent/a-1/x.md\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_shared_agent_process_lists_its_workspaces() {
        let workspace = WorkspaceStatus {
            workspace: "/w/a".into(),
            agent_state: "ready".into(),
            agent_pid: Some(77),
            shared_with: vec!["/w/b".into()],
            ..WorkspaceStatus::default()
        };
        let mut status = daemon(vec![workspace]);
        status.agents = vec![AgentProcessStatus {
            pid: Some(77),
            agent: "codex-acp with CODEX_HOME".into(),
            workspaces: vec!["/w/a".into(), "/w/b".into()],
            busy: 1,
            started_secs_ago: 125,
            idle_secs: 3,
            rss_kb: Some(300 * 1024),
            stopping: None,
            unconfined: None,
        }];
        let text = render(&status, None, None);
        assert!(text.contains("  shared with    /w/b\n"), "{text}");
        assert!(
            text.ends_with(
                "\nagent process 77 · codex-acp with CODEX_HOME\n  \
                 state          up 2m 05s · 1 turn running · 300 MiB with its children\n  \
                 sessions       2: /w/a, /w/b\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_workspace_asked_about_without_a_session_says_so() {
        let text = render(&daemon(Vec::new()), Some(Path::new("/w/it")), None);
        assert!(
            text.ends_with("\nNo Codex session for /w/it: its first Codex tool call starts one.\n"),
            "{text}"
        );
    }

    #[test]
    fn a_fresh_workspace_has_no_session_yet() {
        let workspace = WorkspaceStatus {
            workspace: "/w".into(),
            agent_state: "stopped".into(),
            ..WorkspaceStatus::default()
        };
        let text = render(&daemon(vec![workspace]), None, None);
        assert!(
            text.contains("  session        none (the next tool call starts one)\n"),
            "{text}"
        );
        assert!(text.contains("  turns          0 done · idle\n"), "{text}");
        assert!(
            text.contains("asks before anything but reads inside the workspace"),
            "{text}"
        );
        assert!(!text.contains("permission"), "{text}");
    }
}
