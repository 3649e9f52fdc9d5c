//! `codex-fusion ask TOOL …`: one tool call through the daemon, as Claude
//! would make it, from the shell.
//!
//! The connection is the shim's too (`codex_fusion_client::connect::Connector`:
//! connect, or start the daemon and connect, then the hello), after which
//! this is an ordinary rmcp client. While the turn runs, a spinner on stderr
//! shows the elapsed time and the latest progress line (only on a terminal);
//! the answer goes to stdout. A `🔐 Codex paused` result is put to the user
//! on the terminal and answered with `permit` until Codex answers; without a
//! terminal, at end of input or on Ctrl-C at that question, the command
//! stops there, the turn stays paused, and it says how to resume. Ctrl-C
//! while Codex works cancels the running call with an MCP cancellation.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codex_fusion_client::connect::Connector;
use codex_fusion_protocol::tools::ToolName;
use codex_fusion_protocol::{Channel, PauseMeta, Role};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ClientRequest, Implementation,
    ProgressNotificationParam, Request, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{Map, Value};

use crate::args::{Decision, Source, Tool};
use crate::fail;
use crate::output::{note, say};

/// Exit code after Ctrl-C, as shells report a SIGINT.
const INTERRUPTED: u8 = 130;

/// How often the spinner redraws (its elapsed time ticks with it).
const SPINNER_TICK: Duration = Duration::from_millis(120);

pub async fn run(socket: PathBuf, workspace: PathBuf, tool: Tool) -> ExitCode {
    let arguments = match tool.arguments(&mut read_source) {
        Ok(arguments) => arguments,
        Err(error) => return fail(format_args!("{error:#}")),
    };
    let hello = codex_fusion_client::hello(Role::Cli, Channel::Mcp, Some(workspace));
    // The connector blocks (it may start the daemon and poll its socket).
    let connected = tokio::task::spawn_blocking(move || Connector::new(socket, hello).connect_or_start()).await;
    let connection = match connected {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => return fail(error),
        Err(error) => return fail(format_args!("connecting to codex-fusiond failed: {error}")),
    };
    if !connection.reader.buffer().is_empty() {
        return fail("codex-fusiond sent data before the MCP session started; restart it with `codex-fusion stop`");
    }
    let stream = match into_tokio(connection.reader.into_inner()) {
        Ok(stream) => stream,
        Err(error) => return fail(format_args!("cannot use the connection to codex-fusiond: {error}")),
    };
    let spinner = Spinner::new(std::io::stderr().is_terminal());
    let handler = ProgressHandler {
        spinner: spinner.clone(),
    };
    let service = match handler.serve(stream.into_split()).await {
        Ok(service) => service,
        Err(error) => return fail(format_args!("MCP session with codex-fusiond failed to start: {error}")),
    };
    let code = converse(&service, &spinner, tool.name(), arguments).await;
    let _ = service.cancel().await;
    code
}

/// Calls the tool, then `permit` for every pause the user answers.
async fn converse(
    service: &RunningService<RoleClient, ProgressHandler>,
    spinner: &Spinner,
    tool: &'static str,
    arguments: Map<String, Value>,
) -> ExitCode {
    let interactive = std::io::stdin().is_terminal();
    let (mut tool, mut arguments) = (tool, arguments);
    loop {
        let result = match call(service, spinner, tool, arguments).await {
            Called::Result(result) => result,
            Called::Failed(message) => return fail(message),
            Called::Interrupted => {
                note!("codex-fusion: cancelled {tool}");
                return ExitCode::from(INTERRUPTED);
            }
        };
        let text = result_text(&result);
        if result.is_error == Some(true) {
            return fail(format_args!("{tool} failed: {text}"));
        }
        let Some(pause) = pause_of(&result) else {
            say!("{text}");
            return ExitCode::SUCCESS;
        };
        // The id the daemon gave this pause: the permit below answers this
        // pause and no other (a second window may have answered it already).
        let id = pause.id;
        let agent = pause.agent;
        let hint = resume_hint(id.as_deref(), agent.as_deref());
        if !interactive {
            say!("{text}");
            return fail(hint);
        }
        note!("{text}\n");
        let (decision, note) = match ask_decision().await {
            Answered::Decision(decision, note) => (decision, note),
            Answered::EndOfInput => return fail(hint),
            // Ctrl-C here leaves the turn paused rather than guessing a
            // decision: the user may want to look before answering.
            Answered::Interrupted => {
                note!("codex-fusion: {hint}");
                return ExitCode::from(INTERRUPTED);
            }
        };
        tool = ToolName::Permit.as_str();
        let permit = Tool::Permit {
            decision,
            note,
            id,
            agent,
        };
        // A note typed at the prompt is taken as typed, `-` included (it
        // names no stdin here).
        arguments = match permit.arguments(&mut |_: Source<'_>| Ok("-".to_owned())) {
            Ok(arguments) => arguments,
            Err(error) => return fail(format_args!("{error:#}")),
        };
    }
}

/// The pause `result` is, if it is one: the daemon marks a pause in the
/// result's `_meta`, whatever the text says (an answer may quote a 🔐).
fn pause_of(result: &CallToolResult) -> Option<PauseMeta> {
    PauseMeta::read(&result.meta.as_ref()?.0)
}

/// What to run after a pause left unanswered.
fn resume_hint(id: Option<&str>, agent: Option<&str>) -> String {
    let mut id = id.map(|id| format!(" --id {id}")).unwrap_or_default();
    if let Some(agent) = agent.filter(|agent| *agent != codex_fusion_protocol::agents::DEFAULT_AGENT) {
        id.push_str(&format!(" --agent {agent}"));
    }
    let who =
        codex_fusion_protocol::agents::display_name(agent.unwrap_or(codex_fusion_protocol::agents::DEFAULT_AGENT));
    format!(
        "{who} is waiting for a decision; resume the turn with `codex-fusion ask permit allow{id}` or `codex-fusion ask permit deny{id} --note \"…\"`"
    )
}

enum Called {
    Result(CallToolResult),
    Failed(String),
    Interrupted,
}

/// One tool call with the spinner running; Ctrl-C cancels it.
async fn call(
    service: &RunningService<RoleClient, ProgressHandler>,
    spinner: &Spinner,
    tool: &'static str,
    arguments: Map<String, Value>,
) -> Called {
    let params = CallToolRequestParams::new(tool).with_arguments(arguments);
    let request = ClientRequest::CallToolRequest(Request::new(params));
    let mut handle = match service
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
    {
        Ok(handle) => handle,
        Err(error) => return Called::Failed(format!("cannot send {tool} to codex-fusiond: {error}")),
    };
    spinner.start(format!("Codex is working on {tool}…"));
    let response = tokio::select! {
        response = &mut handle.rx => response,
        _ = tokio::signal::ctrl_c() => {
            spinner.stop();
            let _ = handle.cancel(Some("cancelled from the shell (Ctrl-C)".into())).await;
            return Called::Interrupted;
        }
    };
    spinner.stop();
    match response {
        Ok(Ok(ServerResult::CallToolResult(result))) => Called::Result(result),
        Ok(Ok(other)) => Called::Failed(format!("codex-fusiond answered {tool} with {other:?}")),
        // The daemon's message names the argument ("question: must not be
        // empty"), and the tool only when it is not about one argument.
        Ok(Err(rmcp::ServiceError::McpError(error))) if error.message.starts_with(&format!("{tool}:")) => {
            Called::Failed(error.message.into_owned())
        }
        Ok(Err(rmcp::ServiceError::McpError(error))) => Called::Failed(format!("{tool}: {}", error.message)),
        Ok(Err(error)) => Called::Failed(format!("{tool} failed: {error}")),
        Err(_) => Called::Failed(format!(
            "codex-fusiond closed the connection during {tool}; see `codex-fusion status` and its log"
        )),
    }
}

/// How the user answered the permission question.
enum Answered {
    Decision(Decision, Option<String>),
    EndOfInput,
    Interrupted,
}

/// Asks allow/deny and an optional note on the terminal.
async fn ask_decision() -> Answered {
    let decision = loop {
        let answer = match prompt("Allow Codex to do this? [a]llow / [d]eny: ").await {
            Prompted::Line(answer) => answer,
            Prompted::EndOfInput => return Answered::EndOfInput,
            Prompted::Interrupted => return Answered::Interrupted,
        };
        match answer.trim().to_ascii_lowercase().as_str() {
            "a" | "allow" | "y" | "yes" => break Decision::Allow,
            "d" | "deny" | "n" | "no" => break Decision::Deny,
            _ => note!("Please answer `allow` or `deny`."),
        }
    };
    let note = match prompt("Note for Codex (optional, Enter to skip): ").await {
        Prompted::Line(note) => note,
        Prompted::EndOfInput => String::new(),
        Prompted::Interrupted => return Answered::Interrupted,
    };
    let note = note.trim();
    Answered::Decision(decision, (!note.is_empty()).then(|| note.to_owned()))
}

enum Prompted {
    Line(String),
    EndOfInput,
    Interrupted,
}

/// Prints `question` on stderr and reads one line from stdin. The read runs
/// on its own thread because a blocking read cannot be cancelled: on Ctrl-C
/// we stop waiting for it, and process exit ends it.
async fn prompt(question: &str) -> Prompted {
    {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(question.as_bytes());
        let _ = stderr.flush();
    }
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::stdin().read_line(&mut line);
        let _ = sender.send(matches!(read, Ok(count) if count > 0).then_some(line));
    });
    tokio::select! {
        line = receiver => match line.ok().flatten() {
            Some(line) => Prompted::Line(line),
            None => Prompted::EndOfInput,
        },
        _ = tokio::signal::ctrl_c() => {
            note!("");
            Prompted::Interrupted
        }
    }
}

/// Text for an argument given as `-` (stdin) or a `--diff` file.
fn read_source(source: Source<'_>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    /// The longest argument a tool call can carry (the daemon's MCP line limit).
    const STDIN_MAX_BYTES: u64 = codex_fusion_protocol::limits::MCP_MAX_LINE_BYTES as u64;
    match source {
        Source::Stdin => {
            let bytes = crate::input::read_stdin(STDIN_MAX_BYTES).context("reading the argument from stdin")?;
            if bytes.len() as u64 > STDIN_MAX_BYTES {
                anyhow::bail!("stdin holds more than {STDIN_MAX_BYTES} bytes, more than one tool call can carry");
            }
            String::from_utf8(bytes).context("reading the argument from stdin: it is not UTF-8")
        }
        Source::File(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
    }
}

fn into_tokio(stream: std::os::unix::net::UnixStream) -> std::io::Result<tokio::net::UnixStream> {
    stream.set_read_timeout(None)?;
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

fn result_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The MCP client: it only listens for progress, which feeds the spinner.
struct ProgressHandler {
    spinner: Spinner,
}

impl ClientHandler for ProgressHandler {
    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        if let Some(message) = params.message.as_deref().and_then(latest_line) {
            self.spinner.message(message);
        }
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("codex-fusion", codex_fusion_protocol::PACKAGE_VERSION),
        )
    }
}

/// The last non-empty line of a progress message.
pub fn latest_line(message: &str) -> Option<String> {
    message
        .lines()
        .map(str::trim)
        .rev()
        .find(|line| !line.is_empty())
        .map(str::to_owned)
}

/// The spinner on stderr; does nothing when stderr is not a terminal.
#[derive(Clone)]
struct Spinner {
    enabled: bool,
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Spinner {
    fn new(enabled: bool) -> Spinner {
        Spinner {
            enabled,
            bar: Arc::new(Mutex::new(None)),
        }
    }

    fn start(&self, message: String) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}") {
            bar.set_style(style);
        }
        bar.set_message(message);
        bar.enable_steady_tick(SPINNER_TICK);
        *self.lock() = Some(bar);
    }

    fn message(&self, message: String) {
        if let Some(bar) = self.lock().as_ref() {
            bar.set_message(message);
        }
    }

    fn stop(&self) {
        if let Some(bar) = self.lock().take() {
            bar.finish_and_clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        // A panic while holding this lock cannot leave the bar inconsistent.
        self.bar.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spinner_shows_the_last_line_of_a_progress_message() {
        assert_eq!(latest_line("💭 thinking"), Some("💭 thinking".into()));
        assert_eq!(latest_line("first\nsecond  \n\n"), Some("second".into()));
        assert_eq!(latest_line(" \n "), None);
    }

    fn result(text: &str, pause: Option<PauseMeta>) -> CallToolResult {
        let mut result = CallToolResult::success(vec![rmcp::model::ContentBlock::text(text)]);
        if let Some(pause) = pause {
            let mut meta = rmcp::model::MetaObject::default();
            pause.insert_into(&mut meta.0);
            result.meta = Some(meta);
        }
        result
    }

    /// A pause is what the daemon marks as one, not what the text looks like.
    #[test]
    fn a_pause_is_told_by_its_meta_not_by_its_text() {
        let marked = result("Codex wants to run `make`", Some(PauseMeta::new("p3f9a", "codex")));
        assert_eq!(pause_of(&marked), Some(PauseMeta::new("p3f9a", "codex")));
        let quoted = result(
            &format!(
                "{}: it wants to run a command.\n(quoted by Codex in its answer)",
                codex_fusion_protocol::PAUSE_PREFIX
            ),
            None,
        );
        assert_eq!(
            pause_of(&quoted),
            None,
            "an answer that starts like a pause is an answer"
        );
        assert_eq!(pause_of(&result("VERDICT: CONSENSUS", None)), None);
    }
}
