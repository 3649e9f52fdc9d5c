//! The workspace session: an actor that owns one workspace's codex-acp child
//! and its Codex session, and runs that workspace's turns one at a time.
//!
//! [`SessionHandle`] is the cloneable front; [`SessionActor::run`] is the one
//! task behind it. Everything that can wake the actor arrives on one of three
//! channels (commands from tool calls and the CLI, messages from the agent,
//! completions of its own ACP requests) or as a deadline (idle timeout, cancel
//! grace); no lock is held across an await. A turn paused on a permission
//! keeps its ACP responder here until `permit` answers it.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use agent_client_protocol::v1::Responder;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, PromptRequest, PromptResponse, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, SelectedPermissionOutcome, SessionUpdate, StopReason,
    TextContent, ToolKind,
};
use codex_fusion_protocol::control::{GuardianFlags, UsageTotals, WorkspaceStatus};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::acp::{self, AgentFailure, AgentInfo, OpenedSession, ToolCallInfo};
use crate::agent::{Agent, AgentEvent, AgentMessage, StderrTail, StopMode};
use crate::config::Settings;
use crate::guardian::{self, Decision, PermissionRequest};
use crate::progress;
use crate::prompts::{self, Verdict};
use crate::tools::PermitDecision;
use crate::turn::{Answer, CallId, Pause, TurnOutcome, TurnUsage, Waiter};
use crate::turnlog::{self, GuardianEntry, ToolCallEntry, TurnRecord};

/// After `session/cancel`, how long Codex gets to stop before its process
/// group is killed and the agent respawned.
pub const CANCEL_GRACE: Duration = Duration::from_millis(1500);

/// Commands queued for one session before senders wait. Tool calls are few;
/// this only bounds a misbehaving client.
const COMMAND_QUEUE: usize = 64;

/// Agent messages buffered before the agent's connection is back-pressured.
/// Large enough to absorb a burst of streamed chunks, small enough that a
/// flooding agent cannot make the daemon hold much.
const AGENT_QUEUE: usize = 256;

/// A cloneable handle to one workspace's session actor.
#[derive(Clone)]
pub struct SessionHandle {
    commands: mpsc::Sender<Command>,
}

/// Everything a tool call or the CLI can ask of a session.
pub enum Command {
    Turn(TurnRequest),
    Permit {
        decision: PermitDecision,
        note: Option<String>,
        waiter: Waiter,
    },
    /// The client cancelled call `call` (or went away).
    Cancel { call: CallId },
    /// Drop the Codex session; the reply says whether there was one.
    Reset { reply: oneshot::Sender<bool> },
    Status { reply: oneshot::Sender<WorkspaceStatus> },
    /// Stop everything and end the actor.
    Shutdown { reply: oneshot::Sender<()> },
}

/// A turn to run: the prompt and where its outcome goes.
pub struct TurnRequest {
    pub tool: &'static str,
    pub prompt: String,
    pub settings: Arc<Settings>,
    /// Environment for codex-acp if this turn has to start it (API keys,
    /// CODEX_HOME forwarded by the client).
    pub agent_env: Vec<(String, String)>,
    pub waiter: Waiter,
}

/// The actor is gone (the daemon is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("codex-fusiond is shutting down; call again once it has restarted")]
pub struct SessionGone;

impl SessionHandle {
    /// Starts the actor for `workspace` (which must be canonical) on `tasks`.
    pub fn spawn(workspace: Arc<Path>, tasks: TaskTracker) -> SessionHandle {
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (agent_tx, agent_rx) = mpsc::channel(AGENT_QUEUE);
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let span = tracing::info_span!("session", workspace = %workspace.display());
        let actor = SessionActor {
            workspace,
            commands,
            agent_tx,
            agent_rx,
            internal_tx,
            internal_rx,
            tasks: tasks.clone(),
            agent: None,
            agent_info: None,
            generation: 0,
            starting: false,
            session: None,
            resume_id: None,
            pending_note: None,
            queue: VecDeque::new(),
            turn: None,
            next_turn_id: 1,
            last_error: None,
            last_command: None,
            last_policy: Default::default(),
            last_used: None,
            stderr: StderrTail::default(),
            agent_has_api_key: false,
        };
        tasks.spawn(actor.run().instrument(span));
        SessionHandle { commands: commands_tx }
    }

    pub async fn send(&self, command: Command) -> Result<(), SessionGone> {
        self.commands.send(command).await.map_err(|_| SessionGone)
    }

    /// Best effort, without waiting (used from drop paths).
    pub fn try_send(&self, command: Command) {
        let _ = self.commands.try_send(command);
    }

    pub async fn status(&self) -> Result<WorkspaceStatus, SessionGone> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Status { reply }).await?;
        receiver.await.map_err(|_| SessionGone)
    }

    pub async fn reset(&self) -> Result<bool, SessionGone> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Reset { reply }).await?;
        receiver.await.map_err(|_| SessionGone)
    }

    pub async fn shutdown(&self) {
        let (reply, receiver) = oneshot::channel();
        if self.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = receiver.await;
        }
    }
}

/// Completions of the actor's own ACP work.
enum Internal {
    Started {
        generation: u64,
        result: Result<(AgentInfo, OpenedSession), AgentFailure>,
    },
    PromptDone {
        generation: u64,
        turn: u64,
        result: Result<PromptResponse, agent_client_protocol::Error>,
    },
}

/// The Codex session open on the live agent.
struct Session {
    id: String,
    loaded: bool,
    model: Option<String>,
    available_models: Vec<String>,
    turns: u64,
    usage: UsageTotals,
}

struct ActiveTurn {
    id: u64,
    tool: &'static str,
    settings: Arc<Settings>,
    waiter: Option<Waiter>,
    started: Instant,
    last_activity: Instant,
    phase: Phase,
    prompt: String,
    text: String,
    thought: String,
    usage: Option<TurnUsage>,
    tool_calls: HashMap<String, ToolCallInfo>,
    pending: Option<PendingPermission>,
    /// The note to send Codex once the turn the deny ended comes back.
    denied: Option<String>,
    notes: Vec<String>,
    record: TurnRecord,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// The agent or its session is being started.
    WaitingForSession,
    Prompting,
    Cancelling { since: Instant, reason: CancelReason },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CancelReason {
    /// The client cancelled the call or went away.
    Client,
    /// No activity for the turn timeout.
    Idle,
}

/// A permission Codex is waiting on, held until `permit` answers it.
struct PendingPermission {
    request: PermissionRequest,
    acp: Box<RequestPermissionRequest>,
    responder: Responder<RequestPermissionResponse>,
    why: String,
}

struct SessionActor {
    workspace: Arc<Path>,
    commands: mpsc::Receiver<Command>,
    agent_tx: mpsc::Sender<AgentMessage>,
    agent_rx: mpsc::Receiver<AgentMessage>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    tasks: TaskTracker,
    agent: Option<Agent>,
    /// What `initialize` said, once the live agent answered it.
    agent_info: Option<AgentInfo>,
    generation: u64,
    starting: bool,
    session: Option<Session>,
    /// The Codex session to restore on the next start (after a crash or a
    /// hard stop killed the agent that held it).
    resume_id: Option<String>,
    /// A one-line note for the next answer's footer.
    pending_note: Option<String>,
    queue: VecDeque<TurnRequest>,
    turn: Option<ActiveTurn>,
    next_turn_id: u64,
    last_error: Option<String>,
    last_command: Option<String>,
    last_policy: guardian::Policy,
    last_used: Option<Instant>,
    /// The stderr tail of this workspace's agents, across restarts.
    stderr: StderrTail,
    /// Whether the live agent's environment carries an API key.
    agent_has_api_key: bool,
}

impl SessionActor {
    async fn run(mut self) {
        loop {
            let deadline = self.deadline();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        self.shut_down();
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        self.shut_down();
                        return;
                    }
                },
                Some(message) = self.agent_rx.recv() => self.on_agent(message),
                Some(internal) = self.internal_rx.recv() => self.on_internal(internal),
                _ = sleep_until(deadline) => self.on_deadline(),
            }
            self.advance().await;
        }
    }

    // ----- commands -------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Turn(request) => {
                self.last_policy = request.settings.policy;
                self.last_command = Some(request.settings.acp_command.display.clone());
                if let Some(pending) = self.turn.as_ref().and_then(|turn| turn.pending.as_ref()) {
                    let message = format!(
                        "Codex is paused waiting for your decision on: {}. Call `permit` with `allow` or `deny` first (or `reset` to drop that turn).",
                        pending.request.title
                    );
                    request.waiter.send(TurnOutcome::Refused(message));
                    return;
                }
                self.queue.push_back(request);
            }
            Command::Permit { decision, note, waiter } => self.on_permit(decision, note, waiter),
            Command::Cancel { call } => self.on_cancel(call),
            Command::Reset { reply } => {
                let had_session = self.reset();
                let _ = reply.send(had_session);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    fn on_permit(&mut self, decision: PermitDecision, note: Option<String>, waiter: Waiter) {
        let Some(turn) = self.turn.as_mut().filter(|turn| turn.pending.is_some()) else {
            waiter.send(TurnOutcome::Refused(
                "Nothing is waiting for permission in this workspace: no Codex turn is paused. Start one with consult, review_plan, review_diff, brainstorm, explore or reply.".into(),
            ));
            return;
        };
        let pending = turn.pending.take().expect("checked above");
        let allow = decision == PermitDecision::Allow;
        let option = acp::choose_option(&pending.acp, allow);
        let outcome = match &option {
            Some(option) => {
                RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option.clone()))
            }
            None => RequestPermissionOutcome::Cancelled,
        };
        let label = if allow { "permit allow" } else { "permit deny" };
        tracing::info!(decision = label, title = %pending.request.title, option = ?option, "permission resolved by Claude");
        if let Some(entry) = turn.record.guardian.last_mut() {
            entry.decision = format!("ask → {label}");
        }
        if let Err(error) = pending.responder.respond(RequestPermissionResponse::new(outcome)) {
            tracing::warn!(%error, "could not answer the permission request");
        }
        if !allow {
            turn.denied = Some(prompts::denied(&describe(&pending.request), note.as_deref()));
        }
        waiter.progress.activity(&format!("{label}: {}", pending.request.title));
        turn.waiter = Some(waiter);
        turn.last_activity = Instant::now();
    }

    fn on_cancel(&mut self, call: CallId) {
        if let Some(index) = self.queue.iter().position(|request| request.waiter.call == call) {
            self.queue.remove(index);
            return;
        }
        let Some(turn) = self.turn.as_mut() else { return };
        if turn.waiter.as_ref().is_none_or(|waiter| waiter.call != call) {
            return;
        }
        tracing::info!(turn = turn.id, "the client cancelled the call");
        turn.waiter = None;
        if turn.phase == Phase::WaitingForSession {
            // Nothing was sent to Codex yet; the start goes on for the next call.
            self.turn = None;
            return;
        }
        self.begin_cancel(CancelReason::Client);
    }

    fn reset(&mut self) -> bool {
        let had_session = self.session.is_some() || self.turn.is_some() || self.resume_id.is_some();
        if let Some(mut turn) = self.turn.take() {
            if let Some(pending) = turn.pending.take() {
                let _ = pending
                    .responder
                    .respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled));
            }
            if let Some(waiter) = turn.waiter.take() {
                waiter.send(TurnOutcome::Failed(
                    "Codex's session for this workspace was reset while this turn ran; the turn was dropped".into(),
                ));
            }
            // The agent may still be busy with the old turn; only a fresh
            // process guarantees nothing of it leaks into the next one.
            self.kill_agent("reset mid-turn");
        }
        self.session = None;
        self.resume_id = None;
        self.pending_note = None;
        tracing::info!(had_session, "session reset");
        had_session
    }

    fn status(&self) -> WorkspaceStatus {
        let agent_state = match (&self.agent, self.starting, &self.session) {
            (Some(_), true, _) => "starting",
            (Some(_), false, Some(_)) => "ready",
            (Some(_), false, None) => "idle",
            (None, _, _) if self.last_error.is_some() => "failed",
            (None, _, _) => "stopped",
        };
        let session = self.session.as_ref();
        WorkspaceStatus {
            workspace: self.workspace.to_path_buf(),
            agent_state: agent_state.to_owned(),
            agent_pid: self.agent.as_ref().and_then(|agent| agent.pid),
            agent_command: self.last_command.clone(),
            last_error: self.last_error.clone(),
            session_id: session.map(|session| session.id.clone()).or_else(|| self.resume_id.clone()),
            claude_session_id: None,
            session_origin: session.map(|session| if session.loaded { "loaded" } else { "fresh" }.to_owned()),
            turns: session.map_or(0, |session| session.turns),
            running_turn: self.turn.as_ref().map(|turn| {
                format!("{} for {:.0} s", turn.tool, turn.started.elapsed().as_secs_f64())
            }),
            queued_turns: self.queue.len(),
            pending_permission: self
                .turn
                .as_ref()
                .and_then(|turn| turn.pending.as_ref())
                .map(|pending| {
                    format!("{} ({}; asked because {})", pending.request.title, pending.request.kind.label(), pending.why)
                }),
            last_used_secs_ago: self.last_used.map(|used| used.elapsed().as_secs()),
            guardian: GuardianFlags {
                allow_external_reads: self.last_policy.allow_external_reads,
                allow_writes: self.last_policy.allow_writes,
                allow_commands: self.last_policy.allow_commands,
            },
            usage: session.map(|session| session.usage).unwrap_or_default(),
            model: session.and_then(|session| session.model.clone()),
            available_models: session.map(|session| session.available_models.clone()).unwrap_or_default(),
            stderr_tail: self.stderr.lines(),
        }
    }

    fn shut_down(&mut self) {
        const MESSAGE: &str = "codex-fusiond is shutting down; call again once it has restarted";
        for request in self.queue.drain(..) {
            request.waiter.send(TurnOutcome::Failed(MESSAGE.into()));
        }
        if let Some(mut turn) = self.turn.take() {
            if let Some(pending) = turn.pending.take() {
                let _ = pending
                    .responder
                    .respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled));
            }
            if let Some(waiter) = turn.waiter.take() {
                waiter.send(TurnOutcome::Failed(MESSAGE.into()));
            }
        }
        if let Some(agent) = self.agent.take() {
            agent.stop(StopMode::Graceful);
        }
    }

    // ----- the agent ------------------------------------------------------

    fn on_agent(&mut self, message: AgentMessage) {
        if message.generation != self.generation || self.agent.is_none() {
            // From a child that was replaced or stopped: never part of a
            // current turn. An open permission still gets an answer.
            if let AgentEvent::Permission(_, responder) = message.event {
                let _ = responder.respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled));
            }
            return;
        }
        match message.event {
            AgentEvent::Notification(notification) => {
                let for_session = self
                    .session
                    .as_ref()
                    .is_some_and(|session| *session.id == *notification.session_id.0);
                if for_session {
                    self.on_update(notification.update);
                }
            }
            AgentEvent::Permission(request, responder) => self.on_permission(request, responder),
            AgentEvent::Garbage(line) => {
                self.agent_gone(format!("codex-acp wrote something that is not ACP on stdout ({line})"));
            }
            AgentEvent::Exited(reason) => self.agent_gone(format!("codex-acp stopped: {reason}")),
        }
    }

    fn on_update(&mut self, update: SessionUpdate) {
        if let SessionUpdate::UsageUpdate(usage) = &update {
            if let Some(session) = self.session.as_mut() {
                session.usage.context_used = Some(usage.used);
                session.usage.context_size = Some(usage.size);
            }
        }
        // Updates outside a prompt (the history a `session/load` replays,
        // late chunks) are never forwarded.
        let Some(turn) = self.turn.as_mut().filter(|turn| turn.phase != Phase::WaitingForSession) else {
            return;
        };
        turn.last_activity = Instant::now();
        let progress = turn.waiter.as_ref().map(|waiter| waiter.progress.clone()).unwrap_or_default();
        match update {
            SessionUpdate::AgentMessageChunk(chunk) => {
                if let ContentBlock::Text(text) = chunk.content {
                    turn.text.push_str(&text.text);
                    turn.thought.clear();
                    progress.text(progress::tail(&turn.text));
                }
            }
            SessionUpdate::AgentThoughtChunk(chunk) => {
                if let ContentBlock::Text(text) = chunk.content {
                    turn.thought.push_str(&text.text);
                    progress.thought(&progress::tail(&turn.thought));
                }
            }
            SessionUpdate::ToolCall(call) => {
                let info = ToolCallInfo::from_call(&call);
                let outside = outside_paths(&self.workspace, &info);
                let mut line = info.activity();
                if !outside.is_empty() && matches!(info.kind, Some(ToolKind::Read | ToolKind::Search)) {
                    tracing::warn!(paths = ?outside, title = ?info.title, "Codex read outside the workspace without asking");
                    line = format!("{line} (outside the workspace: {})", outside.join(", "));
                }
                progress.activity(&line);
                turn.tool_calls.insert(call.tool_call_id.to_string(), info);
            }
            SessionUpdate::ToolCallUpdate(update) => {
                let info = turn.tool_calls.entry(update.tool_call_id.to_string()).or_default();
                let was = info.status.clone();
                info.merge(&update.fields);
                if info.status.as_deref() == Some("failed") && was.as_deref() != Some("failed") {
                    progress.activity(&format!("{} (failed)", info.activity()));
                }
            }
            SessionUpdate::Plan(plan) => {
                progress.activity(&format!("plan with {} steps", plan.entries.len()));
            }
            _ => {}
        }
    }

    fn on_permission(
        &mut self,
        request: Box<RequestPermissionRequest>,
        responder: Responder<RequestPermissionResponse>,
    ) {
        let workspace = self.workspace.clone();
        let session_matches = self
            .session
            .as_ref()
            .is_some_and(|session| *session.id == *request.session_id.0);
        let Some(turn) = self
            .turn
            .as_mut()
            .filter(|turn| turn.phase == Phase::Prompting && session_matches)
        else {
            tracing::info!("permission request outside a running turn; answering cancelled");
            let _ = responder.respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled));
            return;
        };
        turn.last_activity = Instant::now();
        let known = turn.tool_calls.get(&request.tool_call.tool_call_id.to_string());
        let translated = acp::permission_request(&request, known, &workspace);
        let mut decision = guardian::decide(&translated, &turn.settings.policy);
        let allow_option = acp::choose_option(&request, true);
        if decision == Decision::Allow && allow_option.is_none() {
            decision = Decision::Ask("codex-acp offered no allow-once option".into());
        }
        let progress = turn.waiter.as_ref().map(|waiter| waiter.progress.clone()).unwrap_or_default();
        let (label, reason) = match &decision {
            Decision::Allow => ("allow", None),
            Decision::Ask(reason) => ("ask", Some(reason.clone())),
        };
        tracing::info!(
            kind = translated.kind.label(),
            title = %translated.title,
            command = ?translated.command,
            decision = label,
            reason = ?reason,
            "guardian decision"
        );
        turn.record.guardian.push(GuardianEntry {
            kind: translated.kind.label().to_owned(),
            title: translated.title.clone(),
            command: translated.command.clone(),
            paths: translated.paths.iter().map(|path| path.resolved.display().to_string()).collect(),
            decision: label.to_owned(),
            reason: reason.clone(),
        });
        match decision {
            Decision::Allow => {
                progress.activity(&format!("allowed: {}", translated.title));
                let option = allow_option.expect("checked above");
                let outcome = RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option));
                let _ = responder.respond(RequestPermissionResponse::new(outcome));
            }
            Decision::Ask(why) => {
                let pause = Pause {
                    request: translated.clone(),
                    why: why.clone(),
                };
                turn.pending = Some(PendingPermission {
                    request: translated,
                    acp: request,
                    responder,
                    why,
                });
                match turn.waiter.take() {
                    Some(waiter) => waiter.send(TurnOutcome::Paused(pause)),
                    // The call that would have shown the pause is gone; the
                    // pause stays for `permit` from any connection.
                    None => tracing::info!("turn paused with no caller waiting"),
                }
            }
        }
    }

    /// The live agent is gone (exit, crash, garbage, hard stop). Idempotent.
    fn agent_gone(&mut self, reason: String) {
        let Some(agent) = self.agent.take() else { return };
        drop(agent);
        tracing::warn!(%reason, "codex-acp is gone");
        self.agent_info = None;
        if let Some(session) = self.session.take() {
            self.resume_id = Some(session.id);
        }
        self.starting = false;
        self.last_error = Some(reason.clone());
        if let Some(turn) = self.turn.take() {
            let message = match turn.phase {
                Phase::WaitingForSession => format!("{reason}. It is started again on the next call"),
                _ => format!("{reason} in the middle of this turn. The next call starts it again"),
            };
            self.finish(turn, Err(("failed", message)));
        }
    }

    fn kill_agent(&mut self, why: &str) {
        if let Some(agent) = self.agent.as_ref() {
            agent.stop(StopMode::Kill);
        }
        self.agent_gone(format!("codex-acp was stopped ({why})"));
    }

    // ----- our own requests -----------------------------------------------

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Started { generation, result } => {
                if generation != self.generation || self.agent.is_none() {
                    return;
                }
                self.starting = false;
                match result {
                    Ok((info, opened)) => {
                        tracing::info!(
                            session_id = %opened.session_id,
                            loaded = opened.loaded,
                            mode = ?opened.mode,
                            "Codex session ready"
                        );
                        self.agent_info = Some(info);
                        if let Some(note) = opened.note {
                            self.pending_note = Some(note);
                        }
                        self.resume_id = None;
                        self.last_error = None;
                        self.session = Some(Session {
                            id: opened.session_id,
                            loaded: opened.loaded,
                            model: opened.model,
                            available_models: opened.available_models,
                            turns: 0,
                            usage: UsageTotals::default(),
                        });
                    }
                    Err(failure) => {
                        let message = failure.to_string();
                        tracing::warn!(%message, "starting the Codex session failed");
                        if let Some(agent) = self.agent.as_ref() {
                            agent.stop(StopMode::Kill);
                        }
                        self.agent = None;
                        self.agent_info = None;
                        self.last_error = Some(message.clone());
                        if let Some(turn) = self.turn.take() {
                            self.finish(turn, Err(("failed", message)));
                        }
                    }
                }
            }
            Internal::PromptDone {
                generation,
                turn,
                result,
            } => {
                // The agent sends a turn's updates before its response, and
                // they are queued before the response reaches us; take them
                // first so the answer is complete.
                while let Ok(message) = self.agent_rx.try_recv() {
                    self.on_agent(message);
                }
                if generation != self.generation || self.turn.as_ref().is_none_or(|active| active.id != turn) {
                    return;
                }
                let mut turn = self.turn.take().expect("checked above");
                if let Phase::Cancelling { .. } = turn.phase {
                    self.finish(turn, Err(("cancelled", "the turn was cancelled".into())));
                    return;
                }
                match result {
                    Ok(response) if response.stop_reason == StopReason::Cancelled && turn.denied.is_some() => {
                        // Codex ends the whole turn when an action is denied;
                        // tell it why and let it answer without the action.
                        let note = turn.denied.take().expect("checked above");
                        let send = self.send_prompt(&mut turn, note);
                        self.turn = Some(turn);
                        if let Err(message) = send {
                            let turn = self.turn.take().expect("just set");
                            self.finish(turn, Err(("failed", message)));
                        }
                    }
                    Ok(response) => {
                        if let Some(usage) = response.usage {
                            turn.usage = Some(TurnUsage {
                                input_tokens: usage.input_tokens,
                                output_tokens: usage.output_tokens,
                                reasoning_tokens: usage.thought_tokens.unwrap_or(0),
                            });
                        }
                        self.finish_with_response(turn, response.stop_reason);
                    }
                    Err(error) => {
                        let failure = AgentFailure::classify(&error);
                        self.finish(turn, Err(("failed", failure.to_string())));
                    }
                }
            }
        }
    }

    fn finish_with_response(&mut self, mut turn: ActiveTurn, stop_reason: StopReason) {
        let label = match stop_reason {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::MaxTurnRequests => "max_turn_requests",
            StopReason::Refusal => "refusal",
            StopReason::Cancelled => "cancelled",
            _ => "other",
        };
        match stop_reason {
            StopReason::MaxTokens => turn.notes.push("answer cut short: Codex hit its token limit".into()),
            StopReason::MaxTurnRequests => turn.notes.push("answer cut short: Codex hit its step limit".into()),
            StopReason::Refusal => turn.notes.push("Codex refused to continue".into()),
            _ => {}
        }
        if turn.text.trim().is_empty() {
            let message = match stop_reason {
                StopReason::Cancelled => "Codex stopped the turn without answering (stop reason: cancelled). Call again, or check `status` for codex-acp errors".to_owned(),
                _ => format!("Codex ended the turn without any text (stop reason: {label})"),
            };
            self.finish(turn, Err((label, message)));
            return;
        }
        self.finish(turn, Ok(label));
    }

    /// Ends `turn`: delivers the outcome, counts it, logs it.
    fn finish(&mut self, mut turn: ActiveTurn, outcome: Result<&'static str, (&'static str, String)>) {
        let elapsed = turn.started.elapsed();
        self.last_used = Some(Instant::now());
        let (stop_reason, result) = match outcome {
            Ok(stop_reason) => {
                if let Some(session) = self.session.as_mut() {
                    session.turns += 1;
                    if let Some(usage) = turn.usage {
                        session.usage.input_tokens += usage.input_tokens;
                        session.usage.output_tokens += usage.output_tokens;
                        session.usage.reasoning_tokens += usage.reasoning_tokens;
                    }
                }
                let mut notes = std::mem::take(&mut turn.notes);
                if let Some(note) = self.pending_note.take() {
                    notes.insert(0, note);
                }
                let text = turn.text.trim().to_owned();
                (
                    stop_reason,
                    TurnOutcome::Answer(Answer {
                        verdict: Verdict::parse(&text),
                        text,
                        elapsed,
                        usage: turn.usage,
                        notes,
                    }),
                )
            }
            Err((stop_reason, message)) => {
                turn.record.error = Some(message.clone());
                (stop_reason, TurnOutcome::Failed(message))
            }
        };
        tracing::info!(turn = turn.id, tool = turn.tool, stop_reason, elapsed_ms = elapsed.as_millis() as u64, "turn finished");
        if let Some(path) = &turn.settings.log_path {
            let mut record = std::mem::take(&mut turn.record);
            record.finished_at = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64());
            record.workspace = self.workspace.display().to_string();
            record.tool = turn.tool.to_owned();
            record.turn = turn.id;
            record.session_id = self.session.as_ref().map(|session| session.id.clone());
            record.duration_ms = elapsed.as_millis() as u64;
            record.stop_reason = stop_reason.to_owned();
            record.usage = turn.usage;
            record.text = turn.text.clone();
            record.tool_calls = turn
                .tool_calls
                .iter()
                .map(|(id, info)| ToolCallEntry {
                    id: id.clone(),
                    kind: info.kind.map(acp::action_kind).unwrap_or(guardian::ActionKind::Other).label().to_owned(),
                    title: info.title.clone().unwrap_or_default(),
                    status: info.status.clone(),
                    locations: info.locations.iter().map(|path| path.display().to_string()).collect(),
                    outside_workspace: !outside_paths(&self.workspace, info).is_empty(),
                })
                .collect();
            turnlog::append(path, &record);
        }
        if let Some(waiter) = turn.waiter.take() {
            waiter.send(result);
        }
    }

    // ----- deadlines --------------------------------------------------------

    fn deadline(&self) -> Option<Instant> {
        let turn = self.turn.as_ref()?;
        match turn.phase {
            Phase::Prompting if turn.pending.is_none() => Some(turn.last_activity + turn.settings.turn_timeout),
            Phase::Cancelling { since, .. } => Some(since + CANCEL_GRACE),
            _ => None,
        }
    }

    fn on_deadline(&mut self) {
        let Some(turn) = self.turn.as_ref() else { return };
        let now = Instant::now();
        match turn.phase {
            Phase::Cancelling { since, reason } if now >= since + CANCEL_GRACE => {
                tracing::warn!(?reason, "Codex did not stop within the cancel grace; killing codex-acp");
                self.kill_agent("it did not stop within 1.5 s of a cancel");
            }
            Phase::Prompting if turn.pending.is_none() && now >= turn.last_activity + turn.settings.turn_timeout => {
                tracing::warn!(timeout_ms = turn.settings.turn_timeout.as_millis() as u64, "turn idle timeout");
                self.begin_cancel(CancelReason::Idle);
            }
            _ => {}
        }
    }

    fn begin_cancel(&mut self, reason: CancelReason) {
        let session_id = self.session.as_ref().map(|session| session.id.clone());
        let Some(turn) = self.turn.as_mut() else { return };
        turn.phase = Phase::Cancelling {
            since: Instant::now(),
            reason,
        };
        if let Some(pending) = turn.pending.take() {
            // codex-acp does not withdraw an open permission on cancel; it
            // must be answered.
            let _ = pending
                .responder
                .respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled));
        }
        if reason == CancelReason::Idle {
            if let Some(waiter) = turn.waiter.take() {
                let timeout = turn.settings.turn_timeout;
                waiter.send(TurnOutcome::Failed(format!(
                    "Codex showed no activity for {} s, so the turn was aborted (CODEX_FUSION_TURN_TIMEOUT_MS={}). Call again, or raise the limit",
                    timeout.as_secs(),
                    timeout.as_millis()
                )));
            }
        }
        if let (Some(agent), Some(session_id)) = (self.agent.as_ref(), session_id) {
            if let Err(error) = agent.connection.send_notification(CancelNotification::new(session_id)) {
                tracing::warn!(%error, "could not send session/cancel");
            }
        }
    }

    // ----- moving forward ---------------------------------------------------

    /// Starts the next turn, the agent or the prompt, whichever is due.
    async fn advance(&mut self) {
        if self.turn.is_none() {
            let Some(request) = self.queue.pop_front() else { return };
            if request.waiter.reply.is_closed() {
                return;
            }
            let id = self.next_turn_id;
            self.next_turn_id += 1;
            let now = Instant::now();
            tracing::info!(turn = id, tool = request.tool, "turn starts");
            self.turn = Some(ActiveTurn {
                id,
                tool: request.tool,
                settings: request.settings,
                waiter: Some(request.waiter),
                started: now,
                last_activity: now,
                phase: Phase::WaitingForSession,
                prompt: request.prompt,
                text: String::new(),
                thought: String::new(),
                usage: None,
                tool_calls: HashMap::new(),
                pending: None,
                denied: None,
                notes: Vec::new(),
                record: TurnRecord::default(),
            });
            if self.agent.is_none() {
                self.start_agent(&request.agent_env).await;
            }
        }
        let Some(turn) = self.turn.as_ref() else { return };
        if turn.phase != Phase::WaitingForSession {
            return;
        }
        if self.session.is_some() {
            let mut turn = self.turn.take().expect("checked above");
            turn.phase = Phase::Prompting;
            turn.last_activity = Instant::now();
            let prompt = turn.prompt.clone();
            let sent = self.send_prompt(&mut turn, prompt);
            self.turn = Some(turn);
            if let Err(message) = sent {
                let turn = self.turn.take().expect("just set");
                self.finish(turn, Err(("failed", message)));
            }
        } else if !self.starting {
            if self.agent.is_none() {
                self.start_agent(&[]).await;
            } else {
                self.open_session();
            }
        }
    }

    async fn start_agent(&mut self, agent_env: &[(String, String)]) {
        let Some(turn) = self.turn.as_ref() else { return };
        let settings = turn.settings.clone();
        self.generation += 1;
        let mut env = agent_env.to_vec();
        // A second line of defence: codex-acp starts sessions read-only even
        // before we set the mode.
        env.push(("INITIAL_AGENT_MODE".into(), acp::READ_ONLY_MODE.into()));
        match Agent::spawn(
            &settings.acp_command,
            &self.workspace,
            &env,
            self.generation,
            self.agent_tx.clone(),
            self.stderr.clone(),
            &self.tasks,
        )
        .await
        {
            Ok(agent) => {
                tracing::info!(pid = ?agent.pid, generation = self.generation, command = %agent.command, "codex-acp started");
                self.agent_has_api_key = acp::API_KEY_VARS.iter().any(|name| {
                    env.iter().any(|(key, value)| key == name && !value.is_empty())
                        || std::env::var_os(name).is_some_and(|value| !value.is_empty())
                });
                self.agent = Some(agent);
                self.agent_info = None;
                self.open_session();
            }
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(%message, "cannot start codex-acp");
                self.last_error = Some(message.clone());
                if let Some(turn) = self.turn.take() {
                    self.finish(turn, Err(("failed", message)));
                }
            }
        }
    }

    /// Runs initialize (if needed) and session setup in a task; the result
    /// comes back as [`Internal::Started`].
    fn open_session(&mut self) {
        let (Some(agent), Some(turn)) = (self.agent.as_ref(), self.turn.as_ref()) else {
            return;
        };
        self.starting = true;
        let connection = agent.connection.clone();
        let known_info = self.agent_info.clone();
        let workspace = self.workspace.clone();
        let resume = self.resume_id.clone();
        let timeout = turn.settings.startup_timeout;
        let generation = self.generation;
        let api_key = self.agent_has_api_key;
        let internal = self.internal_tx.clone();
        self.tasks.spawn(
            async move {
                let setup = async {
                    let info = match known_info {
                        Some(info) => info,
                        None => acp::initialize(&connection).await?,
                    };
                    let opened = acp::open_session(&connection, &info, &workspace, resume.as_deref(), api_key).await?;
                    Ok((info, opened))
                };
                let result = match tokio::time::timeout(timeout, setup).await {
                    Ok(result) => result,
                    Err(_) => Err(AgentFailure::Other(format!(
                        "codex-acp did not finish starting within {} s (initialize and session setup); it was stopped and the next call tries again (CODEX_FUSION_STARTUP_TIMEOUT_MS raises the limit)",
                        timeout.as_secs()
                    ))),
                };
                let _ = internal.send(Internal::Started { generation, result });
            }
            .in_current_span(),
        );
    }

    /// Sends `text` as a prompt of `turn`; the response comes back as
    /// [`Internal::PromptDone`].
    fn send_prompt(&mut self, turn: &mut ActiveTurn, text: String) -> Result<(), String> {
        let (Some(agent), Some(session)) = (self.agent.as_ref(), self.session.as_ref()) else {
            return Err("codex-acp is not running".into());
        };
        let request = PromptRequest::new(session.id.clone(), vec![ContentBlock::Text(TextContent::new(text))]);
        let sent = agent.connection.send_request(request);
        let internal = self.internal_tx.clone();
        let generation = self.generation;
        let turn_id = turn.id;
        // Awaited in its own task: dropping a pending request would send
        // `$/cancel_request` to Codex.
        self.tasks.spawn(async move {
            let result = sent.block_task().await;
            let _ = internal.send(Internal::PromptDone {
                generation,
                turn: turn_id,
                result,
            });
        });
        Ok(())
    }
}

/// The paths of a tool call that lie outside the workspace.
fn outside_paths(workspace: &Path, info: &ToolCallInfo) -> Vec<String> {
    info.locations
        .iter()
        .map(|path| crate::resolve::resolve(workspace, workspace, path))
        .filter(|resolved| !resolved.inside_workspace)
        .map(|resolved| resolved.resolved.display().to_string())
        .collect()
}

/// A short description of a denied action for Codex.
fn describe(request: &PermissionRequest) -> String {
    match (&request.command, request.paths.first(), &request.url) {
        (Some(command), _, _) => format!("run `{command}`"),
        (None, Some(path), _) => format!("{} `{}`", request.kind.label(), path.raw.display()),
        (None, None, Some(url)) => format!("fetch {url}"),
        _ => format!("{} ({})", request.title, request.kind.label()),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
