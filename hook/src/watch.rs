//! `codex-fusion watch`: follow a workspace's turns live, from another
//! terminal. The daemon streams its events (`ControlRequest::Watch`, see
//! [`codex_fusion_protocol::watch`]); this prints them until Ctrl-C, and
//! when the daemon goes away (stopped, restarted, killed) waits quietly for
//! the next one and goes on. Watching never starts the daemon.
//!
//! Three ways to print: `--json` passes each event through as one JSON
//! object per line; on a terminal a spinner carries the latest reasoning or
//! text tail and everything else is a coloured line above it; otherwise
//! plain lines, the tails at most one a second (the last one before any
//! other line), so a log file reads as the turn went.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::frame;
use codex_fusion_protocol::limits::CONTROL_MAX_BYTES;
use codex_fusion_protocol::watch::WatchEvent;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::BufReader;
use tokio::net::unix::OwnedReadHalf;
use tokio::time::Instant;

use crate::link::{self, LinkError};
use crate::output::{note, say};
use crate::{CONTROL_REPLY_WAIT, fail};

/// How often to look for a daemon while none answers.
const RETRY: Duration = Duration::from_millis(300);
/// In plain output, at most one reasoning or text tail this often.
const TAIL_EVERY: Duration = Duration::from_secs(1);

pub async fn run(socket: &Path, workspace: &Path, json: bool) -> ExitCode {
    let mut out = if json {
        Out::Json
    } else if std::io::stdout().is_terminal() {
        Out::terminal(std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()))
    } else {
        Out::Plain(Lines::default())
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let request = ControlRequest::Watch {
        workspace: workspace.to_path_buf(),
    };
    // Said once per wait, not once per try.
    let mut waiting = false;
    loop {
        let opened = tokio::select! {
            opened = link::open(socket, Role::Cli, &request, CONTROL_REPLY_WAIT, "the watch request") => opened,
            _ = &mut ctrl_c => return out.stop(),
        };
        match opened {
            Ok(stream) => match stream.answer.response {
                ControlResponse::Watching { workspace } => {
                    out.note(&format!(
                        "watching {} (codex-fusiond pid {}); Ctrl-C stops",
                        workspace.display(),
                        stream.answer.pid
                    ));
                    let _writer = stream.writer;
                    if follow(&mut out, stream.reader, &mut ctrl_c).await.is_break() {
                        return out.stop();
                    }
                    out.note("codex-fusiond went away; waiting for it to come back");
                    waiting = true;
                }
                ControlResponse::Error { message } => return out.fail(&format!("codex-fusiond: {message}")),
                other => return out.fail(&format!("codex-fusiond answered the watch request with {other:?}")),
            },
            // Another version of the daemon: waiting does not help.
            Err(error @ LinkError::Refused { .. }) => return out.fail(&error.to_string()),
            Err(error) => {
                if !waiting {
                    out.note(&match error {
                        LinkError::NotRunning { socket } => format!(
                            "waiting for codex-fusiond (nothing listens on {} yet; it starts with the next Codex tool call)",
                            socket.display()
                        ),
                        error => format!("waiting for codex-fusiond: {error}"),
                    });
                    waiting = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = &mut ctrl_c => return out.stop(),
        }
    }
}

/// Prints the connection's events until it ends (`Continue`: reconnect) or
/// Ctrl-C (`Break`).
async fn follow(
    out: &mut Out,
    mut reader: BufReader<OwnedReadHalf>,
    ctrl_c: &mut std::pin::Pin<&mut impl std::future::Future<Output = std::io::Result<()>>>,
) -> std::ops::ControlFlow<()> {
    let mut tick = tokio::time::interval(TAIL_EVERY / 2);
    loop {
        let line = tokio::select! {
            line = frame::read_line_async(&mut reader, CONTROL_MAX_BYTES) => line,
            _ = tick.tick() => {
                out.tick();
                continue;
            }
            _ = ctrl_c.as_mut() => return std::ops::ControlFlow::Break(()),
        };
        match line {
            Ok(Some(line)) => out.line(&line),
            Ok(None) | Err(_) => {
                out.tick();
                return std::ops::ControlFlow::Continue(());
            }
        }
    }
}

/// Where the events go.
enum Out {
    Json,
    Plain(Lines),
    Terminal { bar: ProgressBar, colour: bool },
}

impl Out {
    fn terminal(colour: bool) -> Out {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}") {
            bar.set_style(style);
        }
        bar.set_message(IDLE);
        bar.enable_steady_tick(Duration::from_millis(120));
        Out::Terminal { bar, colour }
    }

    /// One line from the daemon.
    fn line(&mut self, line: &[u8]) {
        if let Out::Json = self {
            // Passed through as it came: an event a newer daemon added
            // still reaches the script.
            say!("{}", String::from_utf8_lossy(line).trim_end());
            return;
        }
        // An event this CLI does not know (a newer daemon) is skipped.
        let Ok(event) = frame::decode::<WatchEvent>(line) else {
            return;
        };
        match self {
            Out::Json => {}
            Out::Plain(lines) => {
                for line in lines.event(&event, Instant::now()) {
                    say!("{line}");
                }
            }
            Out::Terminal { bar, colour } => match &event {
                WatchEvent::Thought { .. } | WatchEvent::Text { .. } => bar.set_message(render(&event, false)),
                _ => {
                    if matches!(event, WatchEvent::TurnStarted { .. } | WatchEvent::Running { .. }) {
                        bar.reset_elapsed();
                        bar.set_message("starting");
                    }
                    if matches!(event, WatchEvent::Answered { .. } | WatchEvent::Failed { .. }) {
                        bar.set_message(IDLE);
                    }
                    bar.println(render(&event, *colour));
                }
            },
        }
    }

    fn tick(&mut self) {
        if let Out::Plain(lines) = self {
            for line in lines.tick(Instant::now()) {
                say!("{line}");
            }
        }
    }

    /// A word about the connection, on stderr (stdout has only events).
    fn note(&self, text: &str) {
        match self {
            Out::Terminal { bar, .. } => bar.suspend(|| note!("codex-fusion watch: {text}")),
            _ => note!("codex-fusion watch: {text}"),
        }
    }

    fn stop(self) -> ExitCode {
        if let Out::Terminal { bar, .. } = self {
            bar.finish_and_clear();
        }
        ExitCode::SUCCESS
    }

    fn fail(self, message: &str) -> ExitCode {
        if let Out::Terminal { bar, .. } = &self {
            bar.finish_and_clear();
        }
        fail(message)
    }
}

const IDLE: &str = "no turn running";

/// Plain output: every event a line, except that reasoning and text tails
/// (one per streamed chunk) are printed at most once per [`TAIL_EVERY`];
/// the latest one waits and is printed before the next other line, or
/// when its time comes.
#[derive(Debug, Default)]
pub struct Lines {
    /// The tail waiting to be printed, and whether it is reasoning.
    pending: Option<(bool, String)>,
    last_tail_at: Option<Instant>,
}

impl Lines {
    pub fn event(&mut self, event: &WatchEvent, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        let is_thought = match event {
            WatchEvent::Thought { .. } => Some(true),
            WatchEvent::Text { .. } => Some(false),
            _ => None,
        };
        match is_thought {
            Some(thought) => {
                // Reasoning that turns into text keeps its last words.
                if self.pending.as_ref().is_some_and(|(was, _)| *was != thought) {
                    out.extend(self.flush(now));
                }
                self.pending = Some((thought, render(event, false)));
                out.extend(self.tick(now));
            }
            None => {
                out.extend(self.flush(now));
                out.push(render(event, false));
            }
        }
        out
    }

    /// The waiting tail, if its time has come.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let due = self
            .last_tail_at
            .is_none_or(|last| now.duration_since(last) >= TAIL_EVERY);
        if due { self.flush(now) } else { Vec::new() }
    }

    fn flush(&mut self, now: Instant) -> Vec<String> {
        match self.pending.take() {
            Some((_, line)) => {
                self.last_tail_at = Some(now);
                vec![line]
            }
            None => Vec::new(),
        }
    }
}

/// One event as a person reads it (a pause takes several lines).
pub fn render(event: &WatchEvent, colour: bool) -> String {
    let paint = |code: &str, text: String| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    match event {
        WatchEvent::TurnStarted { turn, tool } => paint("1", format!("▶ turn {turn}: {tool}")),
        WatchEvent::Running { tool } => paint(
            "1",
            format!("▶ a {tool} turn is under way (it started before this watch)"),
        ),
        WatchEvent::Thought { tail } => paint("2", format!("💭 {tail}")),
        WatchEvent::Activity { line } => paint("36", format!("↳ {line}")),
        WatchEvent::Text { tail } => format!("✎ {tail}"),
        WatchEvent::Paused { id, summary, text } => {
            let mut shown = paint("33", format!("🔐 paused ({id}): {summary}"));
            for line in text.lines() {
                shown.push_str("\n  │ ");
                shown.push_str(line);
            }
            shown
        }
        WatchEvent::Answered { turn, footer, .. } => paint("32", format!("✔ turn {turn} answered {footer}")),
        WatchEvent::Failed { turn, message } => paint("31", format!("✖ turn {turn} failed: {message}")),
        WatchEvent::Dropped { count } => {
            let lines = if *count == 1 { "line" } else { "lines" };
            paint(
                "33",
                format!("… {count} {lines} dropped (this watch fell behind; the turn did not wait)"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thought(tail: &str) -> WatchEvent {
        WatchEvent::Thought { tail: tail.into() }
    }

    #[test]
    fn events_read_as_lines() {
        assert_eq!(
            render(
                &WatchEvent::TurnStarted {
                    turn: 3,
                    tool: "consult".into()
                },
                false
            ),
            "▶ turn 3: consult"
        );
        assert_eq!(
            render(&WatchEvent::Activity { line: "ran ls".into() }, false),
            "↳ ran ls"
        );
        assert_eq!(
            render(
                &WatchEvent::Paused {
                    id: "p1a2b".into(),
                    summary: "touch x (execute): runs a command".into(),
                    text: "🔐 Codex paused\nit wants: touch x".into(),
                },
                false
            ),
            "🔐 paused (p1a2b): touch x (execute): runs a command\n  │ 🔐 Codex paused\n  │ it wants: touch x"
        );
        assert_eq!(
            render(
                &WatchEvent::Answered {
                    turn: 3,
                    verdict: Some("OPEN".into()),
                    footer: "— codex-fusion · 1.2 s · OPEN".into()
                },
                false
            ),
            "✔ turn 3 answered — codex-fusion · 1.2 s · OPEN"
        );
        assert_eq!(
            render(&WatchEvent::Dropped { count: 12 }, false),
            "… 12 lines dropped (this watch fell behind; the turn did not wait)"
        );
        assert_eq!(
            render(&WatchEvent::Dropped { count: 1 }, true),
            "\x1b[33m… 1 line dropped (this watch fell behind; the turn did not wait)\x1b[0m"
        );
        assert_eq!(
            render(
                &WatchEvent::Failed {
                    turn: 4,
                    message: "quota".into()
                },
                false
            ),
            "✖ turn 4 failed: quota"
        );
    }

    #[test]
    fn plain_tails_come_at_most_once_a_second_and_the_last_before_other_lines() {
        let start = Instant::now();
        let mut lines = Lines::default();
        assert_eq!(lines.event(&thought("a"), start), ["💭 a"]);
        assert!(
            lines
                .event(&thought("ab"), start + Duration::from_millis(100))
                .is_empty()
        );
        assert!(
            lines
                .event(&thought("abc"), start + Duration::from_millis(200))
                .is_empty()
        );
        assert!(lines.tick(start + Duration::from_millis(500)).is_empty());
        assert_eq!(lines.tick(start + Duration::from_millis(1000)), ["💭 abc"]);
        assert!(
            lines.tick(start + Duration::from_millis(2500)).is_empty(),
            "nothing new"
        );
        assert!(
            lines
                .event(&thought("abcd"), start + Duration::from_millis(1100))
                .is_empty()
        );
        // Text follows reasoning: the reasoning's last tail first.
        assert_eq!(
            lines.event(
                &WatchEvent::Text { tail: "x".into() },
                start + Duration::from_millis(1200)
            ),
            ["💭 abcd"]
        );
        assert_eq!(
            lines.event(
                &WatchEvent::Activity { line: "ran ls".into() },
                start + Duration::from_millis(1300)
            ),
            ["✎ x", "↳ ran ls"]
        );
    }
}
