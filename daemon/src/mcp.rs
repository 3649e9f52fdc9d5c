//! The MCP server one connection talks to: the nine tools, each turned into
//! a command for the workspace's session and its outcome rendered as text.

use std::path::Path;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::daemon::Daemon;
use crate::progress;
use crate::session::{Command, TurnRequest, WorkspaceHandle};
use crate::tools::{self, ToolCall};
use crate::turn::{TurnOutcome, Waiter};
use crate::{prompts, render};
use codex_fusion_protocol::tools::ToolName;

const INSTRUCTIONS: &str = "codex-fusion lets you consult Codex (OpenAI) as a second, independent reviewer. \
Use consult, review_plan, review_diff, brainstorm or explore, then continue with reply until Codex's VERDICT \
line says CONSENSUS. Codex keeps its context per workspace across calls. When a result starts with \
`🔐 Codex paused`, decide with permit (allow or deny).";

/// One MCP connection's server: which workspace it serves and with which
/// settings.
#[derive(Clone)]
pub struct McpService {
    daemon: Arc<Daemon>,
    workspace: Arc<Path>,
    settings: Arc<Settings>,
    /// Variables for codex-acp if a call of this connection has to start it.
    agent_env: Arc<Vec<(String, String)>>,
    /// Fires when the client's side of the connection ends.
    client_gone: CancellationToken,
}

impl McpService {
    pub fn new(
        daemon: Arc<Daemon>,
        workspace: Arc<Path>,
        settings: Settings,
        agent_env: Vec<(String, String)>,
        client_gone: CancellationToken,
    ) -> McpService {
        // The workspace shows in `status` from its first connection on.
        daemon.session(&workspace);
        McpService {
            daemon,
            workspace,
            settings: Arc::new(settings),
            agent_env: Arc::new(agent_env),
            client_gone,
        }
    }

    /// The workspace's actor, asked for at each call: one that failed is
    /// replaced by the daemon.
    fn session(&self) -> WorkspaceHandle {
        self.daemon.session(&self.workspace)
    }

    async fn run_tool(&self, call: ToolCall, context: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        match call {
            ToolCall::Turn(tool) => {
                let prompt = prompts::build(&tool, &self.workspace);
                let name = tool.name();
                let choice = tool.choice();
                self.wait_on_session(context, name, |waiter| {
                    Command::Turn(TurnRequest {
                        tool: name,
                        prompt,
                        choice,
                        settings: self.settings.clone(),
                        agent_env: self.agent_env.as_ref().clone(),
                        waiter,
                    })
                })
                .await
            }
            ToolCall::Permit(args) => {
                self.wait_on_session(context, ToolName::Permit.as_str(), |waiter| Command::Permit {
                    decision: args.decision,
                    note: args.note,
                    id: args.id,
                    waiter,
                })
                .await
            }
            ToolCall::Reset => {
                let had_session = self.session().reset().await.map_err(internal)?;
                let text = if had_session {
                    "Codex's session for this workspace was dropped; the next call starts a fresh one."
                } else {
                    "There was no Codex session for this workspace; the next call starts a fresh one."
                };
                Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
            }
            ToolCall::Status => {
                let daemon = self.daemon.status(Some(&self.workspace)).await;
                let mut workspace = self.session().status().await.map_err(internal)?;
                // Show the settings of this connection, which the next call uses.
                workspace.guardian = codex_fusion_protocol::control::GuardianFlags {
                    allow_external_reads: self.settings.policy.allow_external_reads,
                    allow_writes: self.settings.policy.allow_writes,
                    allow_commands: self.settings.policy.allow_commands,
                };
                let text = render::status(&daemon, &workspace);
                Ok(CallToolResult::success(vec![ContentBlock::text(render::fit(
                    text,
                    self.settings.max_result_chars,
                ))]))
            }
        }
    }

    /// Sends the command built by `make` and waits for its outcome, forwarding
    /// progress, and cancelling the call if the client does. `tool` names
    /// the call in the recent answers.
    async fn wait_on_session(
        &self,
        context: RequestContext<RoleServer>,
        tool: &'static str,
        make: impl FnOnce(Waiter) -> Command,
    ) -> Result<CallToolResult, ErrorData> {
        let call = self.daemon.next_call_id();
        let token = context.meta.get_progress_token();
        let (sink, forwarder) = progress::start(context.peer.clone(), token);
        let (waiter, outcome) = Waiter::new(call, sink);
        let session = self.session();
        session.send(make(waiter)).await.map_err(internal)?;
        tokio::select! {
            outcome = outcome => {
                // A pause nobody can see would park the workspace for good:
                // if the client left before it arrived, drop that turn.
                if matches!(outcome, Ok(TurnOutcome::Paused(_)))
                    && (self.client_gone.is_cancelled() || context.ct.is_cancelled())
                {
                    forwarder.abort().await;
                    session.try_send(Command::Cancel { call });
                    return Err(ErrorData::internal_error("the client left", None));
                }
                // All progress goes out before the result, and none after it.
                forwarder.finish().await;
                match outcome {
                    Ok(TurnOutcome::Invalid(message)) => Err(ErrorData::invalid_params(message, None)),
                    Ok(outcome) => Ok(self.result_of(tool, outcome).await),
                    Err(_) => Err(internal(session.gone())),
                }
            }
            _ = self.client_gone.cancelled() => {
                forwarder.abort().await;
                session.try_send(Command::Cancel { call });
                Err(ErrorData::internal_error("the client left", None))
            }
            _ = context.ct.cancelled() => {
                forwarder.abort().await;
                session.try_send(Command::Cancel { call });
                // rmcp drops the response of a cancelled request; this value
                // never reaches the client.
                Err(ErrorData::internal_error("cancelled by the client", None))
            }
        }
    }
}

impl McpService {
    /// The tool result of a turn; no result exceeds the result budget. The
    /// whole outcome is kept in the recent answers first: a client that
    /// puts a long call in the background may never show it
    /// (`codex-fusion log` then does).
    async fn result_of(&self, tool: &str, outcome: TurnOutcome) -> CallToolResult {
        let limit = self.settings.max_result_chars;
        let recent = &self.daemon.recent;
        let text = match &outcome {
            TurnOutcome::Answer(answer) => {
                let whole = render::answer(answer);
                let fits = render::cost(&whole) <= limit;
                let entry = recent.entry(&self.workspace, tool, &outcome, &answer.text);
                if fits {
                    // Whole in the result: kept while it goes out.
                    if let Some(entry) = entry {
                        recent.keep_while_sent(entry, &self.daemon.tasks).await;
                    }
                    whole
                } else {
                    let kept = match entry {
                        Some(mut entry) => {
                            entry.record.cut = true;
                            recent.keep(entry).await
                        }
                        None => None,
                    };
                    // The kept file holds the full answer; only if it could
                    // not be kept is it saved on its own.
                    let saved = match kept {
                        Some(record) => Some(record.file),
                        None => save_private(&self.daemon.state_dir, "answers", &answer.text),
                    };
                    render::answer_within(answer, limit, saved.as_deref())
                }
            }
            TurnOutcome::Paused(pause) => {
                let whole = render::pause(pause);
                if let Some(entry) = recent.entry(&self.workspace, tool, &outcome, &render::pause_to_save(pause)) {
                    recent.keep_while_sent(entry, &self.daemon.tasks).await;
                }
                let text = if render::cost(&whole) <= limit {
                    whole
                } else {
                    // A command is never shown cut: what does not fit is
                    // saved whole and the pause names the file.
                    let saved = save_private(&self.daemon.state_dir, "pauses", &render::pause_to_save(pause));
                    render::pause_within(pause, limit, saved.as_deref())
                };
                let mut meta = rmcp::model::MetaObject::default();
                codex_fusion_protocol::PauseMeta::new(pause.id.clone()).insert_into(&mut meta.0);
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.meta = Some(meta);
                return result;
            }
            TurnOutcome::Failed(message) | TurnOutcome::Refused(message) | TurnOutcome::Invalid(message) => {
                if let Some(entry) = recent.entry(&self.workspace, tool, &outcome, message) {
                    recent.keep_while_sent(entry, &self.daemon.tasks).await;
                }
                return CallToolResult::error(vec![ContentBlock::text(render::fit(message.clone(), limit))]);
            }
        };
        CallToolResult::success(vec![ContentBlock::text(text)])
    }
}

/// Writes a text too long for a tool result (an answer, a pause) to
/// `state_dir/<kind>/<time>-<pid>-<n>.md`, private to the user (0600 in a
/// 0700 directory); its path.
fn save_private(state_dir: &Path, kind: &str, text: &str) -> Option<std::path::PathBuf> {
    use codex_fusion_protocol::private;
    use std::io::Write as _;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = state_dir.join(kind);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let sequence = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{stamp}-{}-{sequence}.md", std::process::id()));
    let written = private::own_dir(&dir)
        .and_then(|()| private::open(&path, private::Access::CreateNew))
        .map_err(|error| error.to_string())
        .and_then(|mut file| {
            file.write_all(text.as_bytes())
                .map_err(|error| format!("{}: {error}", path.display()))
        });
    match written {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot save a long result");
            None
        }
    }
}

/// A tool's hints as MCP annotations; a hint left `None` is left out.
fn annotations(hints: tools::Hints) -> ToolAnnotations {
    let mut annotations = ToolAnnotations::with_title(hints.title);
    annotations.read_only_hint = hints.read_only;
    annotations.destructive_hint = hints.destructive;
    annotations.idempotent_hint = hints.idempotent;
    annotations
}

fn internal(error: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(error.to_string(), None)
}

impl ServerHandler for McpService {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "codex-fusion",
                codex_fusion_protocol::PACKAGE_VERSION,
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // The schemas are constants; generating them took most of a
        // tools/list round trip (docs/PERFORMANCE.md, figure 1).
        static TOOLS: std::sync::LazyLock<Vec<Tool>> = std::sync::LazyLock::new(|| {
            tools::definitions()
                .into_iter()
                .map(|(name, description, schema)| {
                    let tool = Tool::new(name, description, Arc::new(schema));
                    match codex_fusion_protocol::tools::ToolName::parse(name) {
                        Some(known) => {
                            let hints = tools::hints(known);
                            tool.with_title(hints.title).with_annotations(annotations(hints))
                        }
                        None => tool,
                    }
                })
                .collect()
        });
        Ok(ListToolsResult::with_all_items(TOOLS.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = tools::parse_call(&request.name, request.arguments)
            .map_err(|error| ErrorData::invalid_params(error.to_string(), None))?;
        let span = tracing::info_span!("call", tool = %request.name, request_id = ?context.id);
        tracing::Instrument::instrument(self.run_tool(call, context), span)
            .await
            .map(CallToolResponse::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_long_answer_is_saved_privately() {
        let temp = tempfile::tempdir().expect("tempdir");
        let path = save_private(temp.path(), "answers", "the whole answer").expect("saved");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "the whole answer");
        let mode = |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
    }

    /// Issue 13: an `answers` directory that belongs to another user (made
    /// ahead of the daemon, world-writable) was written into. Needs root.
    #[test]
    fn a_long_answer_is_never_saved_into_another_users_directory() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to chown a directory to another user");
            return;
        }
        let temp = tempfile::tempdir().expect("tempdir");
        let answers = temp.path().join("answers");
        std::fs::create_dir(&answers).expect("mkdir");
        std::fs::set_permissions(&answers, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        nix::unistd::chown(&answers, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
        assert_eq!(save_private(temp.path(), "answers", "the whole answer"), None);
        assert_eq!(std::fs::read_dir(&answers).expect("list").count(), 0);
    }
}
