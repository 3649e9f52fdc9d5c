//! The workspace actor: one per workspace, holding that workspace's Codex
//! session on a pooled codex-acp process ([`crate::pool`]) and running the
//! workspace's turns one at a time.
//!
//! [`WorkspaceHandle`] is the cloneable front; [`WorkspaceActor::run`] is the one
//! task behind it. Everything that can wake the actor arrives on one of three
//! channels (commands from tool calls and the CLI, messages the agent sent
//! about this workspace's session, completions of its own ACP requests) or
//! as a deadline (turn timeout, cancel grace); no lock is held across an
//! await. A turn paused on a permission keeps its ACP responder here until
//! `permit` answers it.
//!
//! The words: a *workspace actor* is this; a *Codex session* is the ACP
//! session on the agent (`Session`); a *Claude session* is Claude Code's,
//! paired with a Codex session by the SessionStart rules.
//!
//! This file holds the handle, the state and the commands; `start.rs`
//! attaches to an agent and opens Codex sessions; `turns.rs` runs turns.

mod start;
#[cfg(test)]
mod tests;
mod turns;

pub use start::FirstStarts;
use start::Spawning;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

// tokio's clock, so that the unit tests can pause it.
use tokio::time::Instant;

use codex_fusion_protocol::control::{GuardianFlags, UsageTotals, WorkspaceStatus};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::acp::{self, AgentFailure, OpenedSession, PermissionAsk, PromptResult, Stop, ToolCallInfo, Update};
use crate::agent::{Agent, AgentEvent, AgentMessage, StderrTail, StopMode};
use crate::config::Settings;
use crate::confine::ConfinementCache;
use crate::guardian::{self, Decision, PermissionRequest};
use crate::models::ModelOptions;
use crate::pool::{Lease, Pool};
use crate::progress;
use crate::prompts::{self, Verdict};
use crate::tools::ModelChoice;
use crate::tools::PermitDecision;
use crate::turn::{Answer, CallId, Pause, PauseIds, TurnOutcome, TurnUsage, Waiter};
use crate::turnlog::{self, GuardianEntry, ToolCallEntry, TurnRecord};
use codex_fusion_protocol::control::SessionSource;
use codex_fusion_protocol::pairing::{Continuation, PairingStore};

/// After `session/cancel`, how long Codex gets to stop before its session is
/// closed (`session/close`); after that, how long the close gets before the
/// process is killed (it no longer answers anyone).
pub const CANCEL_GRACE: Duration = Duration::from_millis(1500);
pub const CLOSE_GRACE: Duration = Duration::from_millis(1500);

/// Commands queued for one session before senders wait. Tool calls are few;
/// this only bounds a misbehaving client.
const COMMAND_QUEUE: usize = 64;

/// Agent messages buffered before the agent's connection is back-pressured.
/// Large enough to absorb a burst of streamed chunks, small enough that a
/// flooding agent cannot make the daemon hold much.
const AGENT_QUEUE: usize = 256;

/// A cloneable handle to one workspace's actor.
#[derive(Clone)]
pub struct WorkspaceHandle {
    commands: mpsc::Sender<Command>,
    /// Set if the actor panicked (the daemon then replaces it).
    failed: Arc<std::sync::atomic::AtomicBool>,
    /// Subscribes watchers without keeping the actor's channel open.
    watch: tokio::sync::broadcast::WeakSender<codex_fusion_protocol::watch::WatchEvent>,
}

/// Everything a tool call or the CLI can ask of a session.
pub enum Command {
    Turn(TurnRequest),
    Permit {
        decision: PermitDecision,
        note: Option<String>,
        /// The pause this permit answers, if the caller named one; any other
        /// pause is left waiting.
        id: Option<String>,
        waiter: Waiter,
    },
    /// The client cancelled call `call` (or went away). If that call had
    /// just been handed a pause, the client never saw it, and the paused
    /// turn is cancelled instead of waiting for a `permit` nobody will send.
    Cancel {
        call: CallId,
    },
    /// Drop the Codex session; the reply says whether there was one.
    Reset {
        reply: oneshot::Sender<bool>,
    },
    /// Claude Code started, resumed, cleared or compacted a session here;
    /// the reply says what was done about it.
    SessionStart {
        source: SessionSource,
        claude_session_id: Option<String>,
        /// The hook's settings for this agent, used to warm it when no MCP
        /// client has run a turn here yet; `None` if the hook's settings do
        /// not offer this agent.
        settings: Option<Arc<Settings>>,
        agent_env: Vec<(String, String)>,
        reply: oneshot::Sender<String>,
    },
    Status {
        reply: oneshot::Sender<WorkspaceStatus>,
    },
    /// Stop everything and end the actor.
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A turn to run: the prompt and where its outcome goes.
pub struct TurnRequest {
    pub tool: &'static str,
    pub prompt: String,
    /// The model and effort the call asks for.
    pub choice: ModelChoice,
    pub settings: Arc<Settings>,
    /// Environment for codex-acp if this turn has to start it (API keys,
    /// CODEX_HOME forwarded by the client).
    pub agent_env: Vec<(String, String)>,
    pub waiter: Waiter,
}

/// What every session shares with the daemon.
pub struct WorkspaceContext {
    /// Where every task of the session (and its agents) is tracked.
    pub tasks: TaskTracker,
    /// Cancelled when the daemon stops: an agent still starting gives up.
    pub shutdown: CancellationToken,
    pub state_dir: PathBuf,
    pub confinement: ConfinementCache,
    /// Serialises the first start on each Codex home.
    pub first_starts: FirstStarts,
    /// Claude ↔ Codex session pairings, persisted.
    pub pairings: PairingStore,
    /// The agent processes every workspace attaches to.
    pub pool: Arc<Pool>,
    /// How a new agent process comes to be.
    pub launcher: Launcher,
    /// Ids for pauses, unique across every workspace of the daemon.
    pub pause_ids: PauseIds,
}

/// How agent processes are started: always spawned, except in the unit
/// tests, whose fake agent runs in this process.
pub enum Launcher {
    Spawn,
    #[cfg(test)]
    InProcess(Box<dyn Fn(crate::agent::Routes) -> futures::future::BoxFuture<'static, Agent> + Send + Sync>),
}

/// The actor is gone: the daemon is shutting down, or the actor failed.
#[derive(Debug, thiserror::Error)]
pub enum ActorGone {
    #[error("codex-fusiond is shutting down; call again once it has restarted")]
    ShuttingDown,
    #[error(
        "codex-fusion's actor for this workspace failed (a bug: the daemon's log says where) and was replaced; call again. Codex's context is kept: the next call restores the workspace's Codex session"
    )]
    Failed,
}

impl WorkspaceHandle {
    /// Starts the actor for `workspace` (which must be canonical).
    pub fn spawn(workspace: Arc<Path>, agent: Arc<str>, context: Arc<WorkspaceContext>) -> WorkspaceHandle {
        let tasks = context.tasks.clone();
        let span = tracing::info_span!("session", workspace = %workspace.display(), agent = %agent);
        let (actor, handle) = WorkspaceActor::new(workspace, agent, context);
        tasks.spawn(
            async move {
                use futures::FutureExt as _;
                if let Err(panic) = std::panic::AssertUnwindSafe(actor.run()).catch_unwind().await {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|text| (*text).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(panic = %what, "the workspace actor panicked; the next call gets a new one");
                }
            }
            .instrument(span),
        );
        handle
    }
}

impl WorkspaceActor {
    /// The actor of `workspace` (not yet running) and its handle.
    fn new(workspace: Arc<Path>, agent: Arc<str>, context: Arc<WorkspaceContext>) -> (WorkspaceActor, WorkspaceHandle) {
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (agent_tx, agent_rx) = mpsc::channel(AGENT_QUEUE);
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        // After a daemon restart, the workspace continues its last session.
        let remembered = context.pairings.get(&workspace, &agent);
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watch = crate::watch::Watch::default();
        let handle = WorkspaceHandle {
            commands: commands_tx,
            failed: failed.clone(),
            watch: watch.weak(),
        };
        let actor = WorkspaceActor {
            watch,
            _failed: PanicFlag(failed.clone()),
            workspace,
            agent,
            commands,
            agent_tx,
            agent_rx,
            internal_tx,
            internal_rx,
            context,
            link: AgentLink::Detached,
            attempt: 0,
            replayed_prompt: false,
            resume_id: remembered.codex_session_id,
            claude_session_id: remembered.claude_session_id,
            deferred_target: None,
            last_settings: None,
            last_agent_env: Vec::new(),
            sticky_choice: ModelChoice::default(),
            lost_pause: None,
            pending_note: None,
            queue: VecDeque::new(),
            turn: None,
            next_turn_id: 1,
            last_error: None,
            last_command: None,
            last_policy: Default::default(),
            last_used: None,
            stderr: StderrTail::default(),
        };
        (actor, handle)
    }
}

impl WorkspaceHandle {
    /// Whether the actor is gone (panicked, or ended with the daemon).
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Why the actor is no longer there.
    pub fn gone(&self) -> ActorGone {
        match self.failed.load(std::sync::atomic::Ordering::SeqCst) {
            true => ActorGone::Failed,
            false => ActorGone::ShuttingDown,
        }
    }

    pub async fn send(&self, command: Command) -> Result<(), ActorGone> {
        self.commands.send(command).await.map_err(|_| self.gone())
    }

    /// Follows what the workspace's turns do (`codex-fusion watch`); `None`
    /// once the actor is gone.
    pub fn watch(&self) -> Option<tokio::sync::broadcast::Receiver<codex_fusion_protocol::watch::WatchEvent>> {
        self.watch.upgrade().map(|sender| sender.subscribe())
    }

    /// Best effort, without waiting (used from drop paths).
    pub fn try_send(&self, command: Command) {
        let _ = self.commands.try_send(command);
    }

    pub async fn status(&self) -> Result<WorkspaceStatus, ActorGone> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Status { reply }).await?;
        receiver.await.map_err(|_| self.gone())
    }

    pub async fn session_start(
        &self,
        source: SessionSource,
        claude_session_id: Option<String>,
        settings: Option<Arc<Settings>>,
        agent_env: Vec<(String, String)>,
    ) -> Result<String, ActorGone> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::SessionStart {
            source,
            claude_session_id,
            settings,
            agent_env,
            reply,
        })
        .await?;
        receiver.await.map_err(|_| self.gone())
    }

    pub async fn reset(&self) -> Result<bool, ActorGone> {
        let (reply, receiver) = oneshot::channel();
        self.send(Command::Reset { reply }).await?;
        receiver.await.map_err(|_| self.gone())
    }

    pub async fn shutdown(&self) {
        let (reply, receiver) = oneshot::channel();
        if self.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = receiver.await;
        }
    }
}

/// Completions of the actor's own ACP work.
// A few per turn; the size of a prompt response does not matter here.
#[allow(clippy::large_enum_variant)]
enum Internal {
    Started {
        attempt: u64,
        result: Result<Option<Box<start::Started>>, AgentFailure>,
    },
    PromptDone {
        turn: u64,
        result: PromptResult,
        /// Why the agent is gone, when the prompt failed because it died.
        exit: Option<String>,
    },
    /// The `session/close` sent for a turn that ignored its cancel came
    /// back (`closed`) or failed.
    Closed { turn: u64, closed: bool },
}

/// What wakes the actor.
enum Event {
    Command(Command),
    /// Every handle is gone (the daemon dropped the actor).
    HandlesGone,
    Agent(AgentMessage),
    Internal(Internal),
    /// The running turn's deadline passed (see `ActiveTurn::due`).
    Deadline,
}

/// How the workspace is attached to an agent process.
enum AgentLink {
    /// Not attached: no process yet, or it stopped (`resume_id` then says
    /// which Codex session the next start restores).
    Detached,
    /// A start (attach to a pooled process, open the session) is in flight.
    Starting { attempt: u64 },
    /// The Codex session is open on a pooled process.
    Ready(Box<Attached>),
}

/// The workspace's hold on a process and its Codex session there.
struct Attached {
    lease: Lease,
    session: Session,
}

/// The Codex session open on the agent.
struct Session {
    id: String,
    loaded: bool,
    /// The mode the agent reported after we set it.
    mode: Option<String>,
    /// The model and effort selects, with their current values.
    models: ModelOptions,
    turns: u64,
    usage: UsageTotals,
    /// Sent before the session's first prompt, then gone.
    instructions: Option<String>,
}

struct ActiveTurn {
    id: u64,
    tool: &'static str,
    settings: Arc<Settings>,
    /// Forwarded credentials, should this turn have to start codex-acp.
    agent_env: Vec<(String, String)>,
    choice: ModelChoice,
    /// The model/effort this turn asked the agent for, committed to the
    /// session's choice once the agent accepted it.
    wanted_choice: Option<ModelChoice>,
    waiter: Option<Waiter>,
    started: Instant,
    last_activity: Instant,
    phase: Phase,
    prompt: String,
    text: String,
    thought: String,
    usage: Option<TurnUsage>,
    tool_calls: HashMap<String, ToolCallInfo>,
    /// Permission requests that arrived while another one was paused.
    waiting_permissions: VecDeque<PermissionAsk>,
    notes: Vec<String>,
    record: TurnRecord,
}

impl ActiveTurn {
    /// Answers the paused permission and any waiting ones `cancelled`; a
    /// paused turn goes back to prompting (its caller sets what is next).
    fn answer_open_permissions(&mut self) {
        if let Phase::Paused(_) = &self.phase
            && let Phase::Paused(pending) = std::mem::replace(&mut self.phase, Phase::Prompting)
        {
            pending.ask.cancel();
        }
        for ask in self.waiting_permissions.drain(..) {
            ask.cancel();
        }
    }

    /// The permission Codex waits on, if the turn is paused.
    fn pause(&self) -> Option<&PendingPermission> {
        match &self.phase {
            Phase::Paused(pending) => Some(pending),
            _ => None,
        }
    }
}

/// Where a turn is. Queued turns are `TurnRequest`s in the actor's queue;
/// this is the one that runs.
#[derive(Debug)]
enum Phase {
    /// The agent or its session is being started.
    WaitingForSession,
    /// The prompt is with the agent.
    Prompting,
    /// Codex waits on a permission; `permit` answers it.
    Paused(Box<PendingPermission>),
    /// Claude denied an action, which ends Codex's turn; once the prompt
    /// comes back, `note` goes to Codex as the next prompt so it still
    /// answers.
    Denied { note: String },
    Cancelling {
        since: Instant,
        reason: CancelReason,
        /// `session/close` was sent after the cancel went unheeded.
        closing: bool,
    },
}

impl Phase {
    /// The prompt is with the agent and nothing waits on Claude: the turn
    /// timeout runs.
    fn active(&self) -> bool {
        matches!(self, Phase::Prompting | Phase::Denied { .. })
    }
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
    /// The id its 🔐 showed.
    id: String,
    request: PermissionRequest,
    ask: PermissionAsk,
    why: String,
    /// The call the pause was delivered to, if it reached one.
    shown_to: Option<CallId>,
}

impl std::fmt::Debug for PendingPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPermission")
            .field("id", &self.id)
            .field("title", &self.request.title)
            .finish_non_exhaustive()
    }
}

/// Marks the handle failed when the actor unwinds. The actor's first field,
/// so it is dropped before the waiters the actor holds: a caller whose
/// answer is dropped already reads why.
struct PanicFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for PanicFlag {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

struct WorkspaceActor {
    _failed: PanicFlag,
    workspace: Arc<Path>,
    /// Which agent of `CODEX_FUSION_AGENTS` this actor consults.
    agent: Arc<str>,
    commands: mpsc::Receiver<Command>,
    agent_tx: mpsc::Sender<AgentMessage>,
    agent_rx: mpsc::Receiver<AgentMessage>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    context: Arc<WorkspaceContext>,
    link: AgentLink,
    /// Counts starts, so the outcome of one overtaken by a reset is known.
    attempt: u64,
    /// Whether the `session/load` of the start in flight replayed a prompt:
    /// the restored transcript then holds the AGENTS.md its first prompt
    /// carried (a session opened ahead of need and never prompted holds
    /// none).
    replayed_prompt: bool,
    /// The Codex session to restore on the next start (after a crash, a hard
    /// stop, a daemon restart, or a Claude resume).
    resume_id: Option<String>,
    /// The Claude session the current Codex session is (to be) paired with.
    claude_session_id: Option<String>,
    /// A session switch asked for while a turn ran, applied when it ends:
    /// `Some(None)` a fresh session, `Some(Some(id))` restore `id`.
    deferred_target: Option<Option<String>>,
    /// The settings and forwarded variables of the last turn, for warming
    /// the agent as the MCP client would start it.
    last_settings: Option<Arc<Settings>>,
    last_agent_env: Vec<(String, String)>,
    /// The model and effort chosen for this session; re-applied after a
    /// restore, cleared with the session.
    sticky_choice: ModelChoice,
    /// Why the last pause ended without a `permit`, told to the next one.
    lost_pause: Option<String>,
    /// A one-line note for the next answer's footer.
    pending_note: Option<String>,
    queue: VecDeque<TurnRequest>,
    turn: Option<ActiveTurn>,
    next_turn_id: u64,
    last_error: Option<String>,
    last_command: Option<String>,
    last_policy: guardian::Policy,
    last_used: Option<Instant>,
    /// The stderr tail of the agent this workspace last used, kept after
    /// it stopped.
    stderr: StderrTail,
    /// What `codex-fusion watch` sees of this workspace's turns.
    watch: crate::watch::Watch,
}

impl WorkspaceActor {
    async fn run(mut self) {
        loop {
            let event = self.next_event().await;
            if !self.handle(event) {
                return;
            }
        }
    }

    /// Waits for whatever wakes the actor next.
    async fn next_event(&mut self) -> Event {
        let deadline = self.deadline();
        tokio::select! {
            command = self.commands.recv() => match command {
                Some(command) => Event::Command(command),
                None => Event::HandlesGone,
            },
            Some(message) = self.agent_rx.recv() => Event::Agent(message),
            Some(internal) = self.internal_rx.recv() => Event::Internal(internal),
            _ = crate::pool::sleep_until(deadline) => Event::Deadline,
        }
    }

    /// The actor's one event handler: synchronous, so the unit tests drive
    /// it directly. `false` once the actor has stopped.
    fn handle(&mut self, event: Event) -> bool {
        match event {
            Event::Command(Command::Shutdown { reply }) => {
                self.shut_down();
                let _ = reply.send(());
                return false;
            }
            Event::HandlesGone => {
                self.shut_down();
                return false;
            }
            Event::Command(command) => self.on_command(command),
            Event::Agent(message) => self.on_agent(message),
            Event::Internal(internal) => self.on_internal(internal),
            Event::Deadline => self.on_deadline(),
        }
        self.advance();
        true
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Turn(mut request) => {
                // This agent's own credentials only, as its process has them.
                request.agent_env = crate::environment::forwarded_for(&self.agent, &request.agent_env);
                // The test suite's way to make an actor fail (debug builds).
                #[cfg(debug_assertions)]
                if let Some(marker) = std::env::var_os("CODEX_FUSION_TEST_PANIC_MARKER")
                    && request.prompt.contains(&*marker.to_string_lossy())
                {
                    panic!("the test panic marker was in the prompt");
                }
                self.last_policy = request.settings.policy;
                self.last_command = Some(request.settings.acp_command.display.clone());
                if let Some(pending) = self.turn.as_ref().and_then(ActiveTurn::pause) {
                    let message = format!(
                        "Codex is paused waiting for your decision on: {} (pause {}). Call `permit` with `allow` or `deny` first (or `reset` to drop that turn).",
                        pending.request.title, pending.id
                    );
                    request.waiter.send(TurnOutcome::Refused(message));
                    return;
                }
                self.queue.push_back(request);
            }
            Command::Permit {
                decision,
                note,
                id,
                waiter,
            } => self.on_permit(decision, note, id, waiter),
            Command::Cancel { call } => self.on_cancel(call),
            Command::Reset { reply } => {
                let had_session = self.reset();
                let _ = reply.send(had_session);
            }
            Command::SessionStart {
                source,
                claude_session_id,
                settings,
                agent_env,
                reply,
            } => {
                let agent_env = crate::environment::forwarded_for(&self.agent, &agent_env);
                let action = self.on_session_start(source, claude_session_id, settings, agent_env);
                let _ = reply.send(action);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Shutdown { reply } => {
                // `handle` ends the actor on this; never reached.
                let _ = reply.send(());
            }
        }
    }

    fn on_permit(&mut self, decision: PermitDecision, note: Option<String>, id: Option<String>, waiter: Waiter) {
        let Some(turn) = self.turn.as_mut().filter(|turn| turn.pause().is_some()) else {
            self.refuse_permit(id.as_deref(), waiter);
            return;
        };
        let Phase::Paused(pending) = std::mem::replace(&mut turn.phase, Phase::Prompting) else {
            return;
        };
        if let Some(asked) = id.as_deref().map(str::trim)
            && asked != pending.id
        {
            let message = format!(
                "This permit names pause `{asked}`, but the pause waiting here is `{}`: {} ({}). Nothing was decided. If that is the one you mean, call `permit` again with id `{}`",
                pending.id,
                pending.request.title,
                pending.request.kind.label(),
                pending.id
            );
            tracing::info!(asked, waiting = %pending.id, "refused a permit naming another pause");
            turn.phase = Phase::Paused(pending);
            waiter.send(TurnOutcome::Refused(message));
            return;
        }
        let allow = decision == PermitDecision::Allow;
        let label = if allow { "permit allow" } else { "permit deny" };
        let PendingPermission {
            id: pause,
            request,
            ask,
            ..
        } = *pending;
        let option = ask.answer(allow);
        tracing::info!(
            decision = label,
            %pause,
            named = id.is_some(),
            title = %request.title,
            option = ?option,
            "permission resolved by Claude"
        );
        if let Some(entry) = turn.record.guardian.last_mut() {
            entry.decision = format!("ask → {label}");
        }
        if !allow {
            // Codex ends the turn on a deny; its other questions go with it.
            turn.answer_open_permissions();
            turn.phase = Phase::Denied {
                note: prompts::denied(&describe(&request), note.as_deref()),
            };
        }
        let line = format!("{label}: {}", request.title);
        waiter.progress.activity(&line);
        self.watch.activity(&line);
        turn.waiter = Some(waiter);
        turn.last_activity = Instant::now();
        // A question that arrived during the pause is judged now; if it asks
        // too, this permit call returns that pause.
        if let Some(ask) = turn.waiting_permissions.pop_front() {
            self.on_permission(ask);
        }
    }

    /// Answers a permit that finds nothing paused, saying why.
    fn refuse_permit(&mut self, id: Option<&str>, waiter: Waiter) {
        let why = self
            .lost_pause
            .take()
            .map(|lost| format!(" ({lost})"))
            .unwrap_or_default();
        let named = id
            .map(|id| format!(" Pause `{id}` is no longer waiting."))
            .unwrap_or_default();
        waiter.send(TurnOutcome::Refused(format!(
            "Nothing is waiting for permission in this workspace: no Codex turn is paused{why}.{named} Start one with consult, review_plan, review_diff, brainstorm, explore or reply."
        )));
    }

    fn on_cancel(&mut self, call: CallId) {
        if let Some(index) = self.queue.iter().position(|request| request.waiter.call == call) {
            self.queue.remove(index);
            return;
        }
        let Some(turn) = self.turn.as_mut() else { return };
        if turn.pause().is_some_and(|pending| pending.shown_to == Some(call)) {
            tracing::info!(turn = turn.id, "the pause never reached a client; cancelling the turn");
            self.begin_cancel(CancelReason::Client);
            return;
        }
        if turn.waiter.as_ref().is_none_or(|waiter| waiter.call != call) {
            return;
        }
        tracing::info!(turn = turn.id, "the client cancelled the call");
        turn.waiter = None;
        if let Phase::WaitingForSession = turn.phase {
            // Nothing was sent to Codex yet; the start goes on for the next call.
            self.turn = None;
            return;
        }
        self.begin_cancel(CancelReason::Client);
    }

    fn reset(&mut self) -> bool {
        let had_session = self.session().is_some() || self.turn.is_some() || self.resume_id.is_some();
        let mid_turn =
            self.drop_turn("Codex's session for this workspace was reset while this turn ran; the turn was dropped");
        if mid_turn && let Some(session) = self.session().map(|session| session.id.clone()) {
            // The old turn must not go on: it is cancelled and its session
            // closed; a process that does not let it go takes no new sessions
            // and stops once the others' turns are done.
            self.cancel_on_agent(&session);
        }
        self.retarget(None);
        self.deferred_target = None;
        self.remember(None);
        tracing::info!(had_session, "session reset");
        had_session
    }

    /// Ends the running turn without an answer: its caller (if any) gets
    /// `why`, open permissions are answered `cancelled`, and a pause nobody
    /// resolved is remembered for the next `permit`. `false` if none ran.
    fn drop_turn(&mut self, why: &str) -> bool {
        let Some(mut turn) = self.turn.take() else { return false };
        if let Some(pending) = turn.pause() {
            self.lost_pause = Some(format!("the paused turn ({}) ended: {why}", pending.request.title));
        }
        turn.answer_open_permissions();
        if let Some(waiter) = turn.waiter.take() {
            waiter.send(TurnOutcome::Failed(why.to_owned()));
        }
        true
    }

    fn status(&self) -> WorkspaceStatus {
        let agent_state = match &self.link {
            AgentLink::Starting { .. } => "starting",
            AgentLink::Ready(_) => "ready",
            AgentLink::Detached if self.last_error.is_some() => "failed",
            AgentLink::Detached => "stopped",
        };
        let session = self.session();
        let host = self.attached().map(|attached| attached.lease.host());
        WorkspaceStatus {
            workspace: self.workspace.to_path_buf(),
            agent: self.agent.to_string(),
            agent_state: agent_state.to_owned(),
            agent_pid: host.and_then(|host| host.agent.pid),
            agent_command: self.last_command.clone(),
            last_error: self.last_error.clone(),
            session_id: session
                .map(|session| session.id.clone())
                .or_else(|| self.resume_id.clone()),
            claude_session_id: self.claude_session_id.clone(),
            session_origin: match session {
                Some(session) => Some(if session.loaded { "loaded" } else { "fresh" }.to_owned()),
                // Remembered from before a restart; the next call loads it.
                None => self.resume_id.as_ref().map(|_| "to restore".to_owned()),
            },
            turns: session.map_or(0, |session| session.turns),
            running_turn: self
                .turn
                .as_ref()
                .map(|turn| format!("{} for {:.0} s", turn.tool, turn.started.elapsed().as_secs_f64())),
            queued_turns: self.queue.len(),
            pending_permission: self.turn.as_ref().and_then(ActiveTurn::pause).map(|pending| {
                format!(
                    "{} ({}; asked because {}; pause {})",
                    pending.request.title,
                    pending.request.kind.label(),
                    pending.why,
                    pending.id
                )
            }),
            pause_id: self
                .turn
                .as_ref()
                .and_then(ActiveTurn::pause)
                .map(|pending| pending.id.clone()),
            last_used_secs_ago: self.last_used.map(|used| used.elapsed().as_secs()),
            guardian: GuardianFlags {
                allow_external_reads: self.last_policy.allow_external_reads,
                allow_writes: self.last_policy.allow_writes,
                allow_commands: self.last_policy.allow_commands,
            },
            usage: session.map(|session| session.usage).unwrap_or_default(),
            mode: session.and_then(|session| session.mode.clone()),
            unconfined: host.and_then(|host| host.unconfined.clone()),
            model: session.and_then(|session| session.models.current_model()),
            effort: session.and_then(|session| session.models.current_effort()),
            available_models: session.map(|session| session.models.model_names()).unwrap_or_default(),
            available_efforts: session.map(|session| session.models.efforts(None)).unwrap_or_default(),
            stderr_tail: self.stderr.lines(),
            shared_with: self
                .attached()
                .map(|attached| attached.lease.shared_with())
                .unwrap_or_default(),
        }
    }

    fn attached(&self) -> Option<&Attached> {
        match &self.link {
            AgentLink::Ready(attached) => Some(attached),
            _ => None,
        }
    }

    fn attached_mut(&mut self) -> Option<&mut Attached> {
        match &mut self.link {
            AgentLink::Ready(attached) => Some(attached),
            _ => None,
        }
    }

    /// The Codex session open on the agent, if one is.
    fn session(&self) -> Option<&Session> {
        self.attached().map(|attached| &attached.session)
    }

    /// Leaves the open Codex session (the process stays in the pool); what
    /// is returned closes it there.
    fn detach(&mut self) -> Option<start::Leaving> {
        match std::mem::replace(&mut self.link, AgentLink::Detached) {
            AgentLink::Ready(attached) => {
                let Attached { lease, session } = *attached;
                Some(start::Leaving {
                    lease,
                    session: session.id,
                })
            }
            other => {
                self.link = other;
                None
            }
        }
    }

    /// Records the workspace's current Codex session (paired with the
    /// current Claude session) in the state file.
    fn remember(&self, codex: Option<&str>) {
        if let Err(error) =
            self.context
                .pairings
                .set_current(&self.workspace, &self.agent, codex, self.claude_session_id.as_deref())
        {
            tracing::warn!("{error}");
        }
    }

    /// Applies Claude Code's SessionStart rules (`pairing::session_start`).
    /// Fresh and resumed sessions are warmed in the background so the first
    /// call does not pay the start.
    fn on_session_start(
        &mut self,
        source: SessionSource,
        claude: Option<String>,
        settings: Option<Arc<Settings>>,
        agent_env: Vec<(String, String)>,
    ) -> String {
        // A workspace that has used Codex is warmed, starting its agent if
        // need be. Any other gets a session only on an agent that already
        // runs with its key: the hook runs for every Claude session
        // anywhere, and a process is a few hundred megabytes where a
        // session on a shared one is a few.
        let record = self.context.pairings.get(&self.workspace, &self.agent);
        let used = record.codex_session_id.is_some() || !record.pairs.is_empty() || self.last_settings.is_some();
        let open = self.session().map(|session| session.id.clone());
        let rule = codex_fusion_protocol::pairing::session_start(source, claude.as_deref(), &record, open.as_deref());
        match rule.continuation {
            Continuation::Keep => {
                if claude.is_some() {
                    self.claude_session_id = claude;
                }
                return rule.action;
            }
            Continuation::Reset => {
                self.reset();
                self.claude_session_id = claude;
            }
            Continuation::Fresh => {
                self.claude_session_id = claude;
                self.switch_to(None);
            }
            Continuation::Restore(codex) => {
                self.claude_session_id = claude;
                if open.as_deref() == Some(codex.as_str()) {
                    // Whatever switch was waiting is moot now.
                    self.deferred_target = None;
                } else {
                    self.switch_to(Some(codex));
                }
            }
        }
        let action = rule.action;
        // Saved now, so a daemon that stops before the new session opens
        // does not restore the old one.
        let next = match &self.deferred_target {
            Some(target) => target.clone(),
            None => self
                .session()
                .map(|session| session.id.clone())
                .or_else(|| self.resume_id.clone()),
        };
        self.remember(next.as_deref());
        self.warm(
            settings,
            agent_env,
            if used { Spawning::Allowed } else { Spawning::ShareOnly },
        );
        action
    }

    /// Switches to a fresh session (`None`) or restores `target`, now if no
    /// turn runs, else once it ends.
    fn switch_to(&mut self, target: Option<String>) {
        if self.turn.is_some() || !self.queue.is_empty() {
            self.deferred_target = Some(target);
        } else {
            self.retarget(target);
        }
    }

    /// Leaves the current Codex session (closing it on its process, which
    /// stays in the pool) and sets what the next start opens.
    fn retarget(&mut self, target: Option<String>) {
        if let Some(leaving) = self.detach() {
            self.context.tasks.spawn(leaving.close());
        }
        if matches!(self.link, AgentLink::Starting { .. }) {
            // The start in flight is ignored when it ends (its attempt is no
            // longer current); a new one opens the target.
            self.link = AgentLink::Detached;
        }
        self.pending_note = None;
        // The choice belongs to the session being left.
        self.sticky_choice = ModelChoice::default();
        self.resume_id = target;
    }

    /// Attaches to an agent and opens the target session with no turn
    /// waiting.
    fn warm(&mut self, settings: Option<Arc<Settings>>, agent_env: Vec<(String, String)>, spawning: Spawning) {
        if self.turn.is_some() || !matches!(self.link, AgentLink::Detached) {
            return;
        }
        // Start it as the MCP client last did (its credentials may live in
        // the MCP server's env, which the hook does not see).
        let (settings, agent_env) = match (&self.last_settings, settings) {
            (Some(last), _) => (last.clone(), self.last_agent_env.clone()),
            (None, Some(settings)) => (settings, agent_env),
            (None, None) => return,
        };
        tracing::info!(?spawning, "warming the Codex session");
        self.start_with(settings, agent_env, None, spawning);
    }

    fn shut_down(&mut self) {
        const MESSAGE: &str = "codex-fusiond is shutting down; call again once it has restarted";
        for request in self.queue.drain(..) {
            request.waiter.send(TurnOutcome::Failed(MESSAGE.into()));
        }
        self.drop_turn(MESSAGE);
        // The process is the pool's: it stops it once every workspace is
        // done. The session is remembered for the next daemon.
        self.link = AgentLink::Detached;
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Started { attempt, result } => self.on_started(attempt, result),
            Internal::PromptDone { turn, result, exit } => self.on_prompt_done(turn, result, exit),
            Internal::Closed { turn, closed } => self.on_closed(turn, closed),
        }
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
