//! One codex-acp child process and its ACP connection.
//!
//! [`Agent::spawn`] starts the child in its own process group and runs the
//! ACP client connection in a task that owns the child. One agent serves
//! several workspaces, each on its own ACP session: what the agent sends
//! about a session (updates, permission requests) goes to the workspace that
//! registered that session in the agent's [`Routes`], tagged with that
//! workspace's attachment, so messages for a session it has left can be
//! recognised and dropped; the agent's exit goes to every registered
//! workspace. Dropping the [`Agent`] kills the whole process group (`npx` →
//! node → codex → git); what left the group (sandbox helpers, codex's login
//! shell) is killed after it by [`crate::reap`].

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{RequestPermissionRequest, SessionNotification};
use agent_client_protocol::{Agent as AcpPeer, Client, Lines};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use codex_fusion_protocol::command::is_secret_name;

use crate::acp::{PermissionAsk, Update};
use crate::config::AcpCommand;

/// Lines of codex-acp stderr kept for `status` and error messages.
const STDERR_TAIL_LINES: usize = 40;
/// Longest stderr line kept, in characters (codex prints long stack traces).
const STDERR_LINE_CHARS: usize = 400;
/// Longest line accepted from the agent's stdout. A `session/load` replay or
/// a large tool output can be several megabytes; beyond this the agent is
/// considered broken.
const AGENT_LINE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// After SIGTERM on a graceful stop, how long the group gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(1000);

/// What the agent sent or did, for the workspace whose session it concerns.
pub enum AgentEvent {
    /// What it said about the session (`session/update`).
    Update {
        session: String,
        update: Update,
    },
    Permission(PermissionAsk),
    /// A line on stdout that is not JSON-RPC; the agent is stopped after it.
    Garbage(String),
    /// The child is gone (exited, killed, or its pipes closed).
    Exited {
        reason: String,
        /// codex-fusion stopped it (idle, a wedged process, shutdown), so
        /// the reason is not an error worth keeping for `status`.
        requested: bool,
    },
}

/// An [`AgentEvent`] with the tag of the route it went through.
pub struct AgentMessage {
    pub tag: u64,
    pub event: AgentEvent,
}

/// Where one workspace wants its messages: its channel, and the tag that
/// tells its current attachment from an earlier one.
#[derive(Clone)]
pub struct Route {
    pub tag: u64,
    pub sender: mpsc::Sender<AgentMessage>,
}

/// The agent's ACP sessions and the workspace each belongs to. A message
/// about a session nobody registered is dropped (a permission request for
/// it is answered `cancelled`).
#[derive(Clone, Default)]
pub struct Routes(Arc<Mutex<HashMap<String, Route>>>);

impl Routes {
    /// Sends what the agent says about `session` to `route`.
    pub fn add(&self, session: &str, route: Route) {
        self.lock().insert(session.to_owned(), route);
    }

    /// Forgets `session`, if it is still `tag`'s.
    pub fn remove(&self, session: &str, tag: u64) {
        let mut routes = self.lock();
        if routes.get(session).is_some_and(|route| route.tag == tag) {
            routes.remove(session);
        }
    }

    /// Forgets every session of `tag`.
    pub fn remove_tag(&self, tag: u64) {
        self.lock().retain(|_, route| route.tag != tag);
    }

    fn get(&self, session: &str) -> Option<Route> {
        self.lock().get(session).cloned()
    }

    /// One route per workspace (a workspace may have several sessions).
    fn distinct(&self) -> Vec<Route> {
        let mut routes: Vec<Route> = Vec::new();
        for route in self.lock().values() {
            if !routes.iter().any(|known| known.tag == route.tag) {
                routes.push(route.clone());
            }
        }
        routes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// How [`Agent`] stops its child when it is dropped or stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StopMode {
    /// SIGKILL the group at once (a wedged turn, a reset mid-turn).
    Kill,
    /// SIGTERM, then SIGKILL after [`TERM_GRACE`] (daemon shutdown).
    Graceful,
}

/// A running codex-acp child with its ACP connection.
pub struct Agent {
    pub pid: Option<u32>,
    /// The command it was started with; show only its `display`.
    pub command: AcpCommand,
    pub connection: ConnectionTo<AcpPeer>,
    stop: CancellationToken,
    stop_mode: Arc<Mutex<(StopMode, Option<String>)>>,
    /// Set to the reason once the child is gone and reaped.
    exited: watch::Receiver<Option<String>>,
    /// Cancelled as soon as its connection ended, before the exit is
    /// reported.
    ending: CancellationToken,
    secrets: Secrets,
}

/// The last lines the agent wrote to stderr.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// The last `count` lines joined for an error message, or "" if none.
    pub fn summary(&self, count: usize) -> String {
        let lines = self.lines();
        let start = lines.len().saturating_sub(count);
        lines[start..].join(" | ")
    }

    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if lines.len() == STDERR_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

/// Why the agent could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "codex-acp is not installed: `{program}` {where_}. Install it with `npm install -g @agentclientprotocol/codex-acp`, or set CODEX_FUSION_ACP_COMMAND to how it is started (for example `npx -y @agentclientprotocol/codex-acp`)",
        where_ = if program.contains('/') { "does not exist" } else { "was not found on PATH" }
    )]
    NotFound { program: String },
    #[error("cannot start codex-acp (`{command}`): {source}")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("codex-acp (`{command}`) exited before its connection was ready")]
    Closed { command: String },
    #[error("codex-acp exited while starting: {reason}")]
    ExitedEarly { reason: String },
}

impl Agent {
    /// Starts `command` in the directory `cwd` with exactly the environment
    /// `env` (nothing of the daemon's own: see [`crate::environment`]) and
    /// connects to it; what it says about a session goes where `routes`
    /// says. Its stderr lines are appended to `stderr_tail` (kept by the
    /// workspaces, so a crash stays visible after the respawn).
    pub async fn spawn(
        command: &AcpCommand,
        cwd: &Path,
        env: &[(String, String)],
        routes: Routes,
        stderr_tail: StderrTail,
        tasks: &TaskTracker,
    ) -> Result<Agent, SpawnError> {
        let mut child_command = Command::new(&command.program);
        child_command
            .args(&command.args)
            .env_clear()
            .envs(env.iter().map(|(key, value)| (key, value)))
            // Not the workspace: a hostile repository's `node_modules` or
            // `.npmrc` must not decide what `npx` runs.
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so one signal reaches npx, node, codex and git.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = child_command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                SpawnError::NotFound {
                    program: command.program.clone(),
                }
            } else {
                SpawnError::Io {
                    command: command.display.clone(),
                    source,
                }
            }
        })?;
        let pid = child.id();
        if let Some(pid) = pid {
            crate::reap::reaper().track(pid);
        }
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SpawnError::Closed {
                command: command.display.clone(),
            });
        };
        // What the agent prints is quoted in `status`, errors and logs; an
        // agent that echoes its arguments or environment must not put a key
        // there.
        let secrets = Secrets::of(command, env);
        let stderr_reader = tasks.spawn(read_stderr(stderr, stderr_tail.clone(), pid, secrets.clone()));
        let pipes = Pipes {
            child: Some(child),
            pid,
            stdout: BufReader::new(stdout),
            stdin,
            stderr_reader,
        };
        Agent::connect(command, secrets, pipes, routes, stderr_tail, tasks).await
    }

    /// An agent that runs in this process, connected by `stdout`/`stdin`
    /// (the unit tests' fake).
    #[cfg(test)]
    pub async fn in_process<R, W>(
        command: &AcpCommand,
        stdout: R,
        stdin: W,
        routes: Routes,
        tasks: &TaskTracker,
    ) -> Result<Agent, SpawnError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let pipes = Pipes {
            child: None,
            pid: None,
            stdout: BufReader::new(stdout),
            stdin,
            stderr_reader: tasks.spawn(async {}),
        };
        Agent::connect(command, Secrets::default(), pipes, routes, StderrTail::default(), tasks).await
    }

    /// Runs the ACP connection over `pipes` in a task that owns the child.
    async fn connect<R, W>(
        command: &AcpCommand,
        secrets: Secrets,
        pipes: Pipes<R, W>,
        routes: Routes,
        stderr_tail: StderrTail,
        tasks: &TaskTracker,
    ) -> Result<Agent, SpawnError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Pipes {
            child,
            pid,
            stdout,
            stdin,
            stderr_reader,
        } = pipes;
        let (garbage_tx, garbage_rx) = oneshot::channel();
        let incoming = agent_lines(stdout, garbage_tx, secrets.clone());
        let outgoing = futures::sink::unfold(stdin, |mut stdin, line: String| async move {
            use tokio::io::AsyncWriteExt;
            // One write per message: the agent wakes once, to a whole line.
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            stdin.write_all(&bytes).await?;
            stdin.flush().await?;
            Ok::<_, std::io::Error>(stdin)
        });

        let stop = CancellationToken::new();
        let stop_mode = Arc::new(Mutex::new((StopMode::Kill, None)));
        let (connection_tx, connection_rx) = oneshot::channel();
        let (exited_tx, exited) = watch::channel(None);
        let ending = CancellationToken::new();
        tasks.spawn(run(
            child,
            Lines::new(Box::pin(outgoing), incoming),
            RunContext {
                routes,
                stop: stop.clone(),
                stop_mode: stop_mode.clone(),
                connection_tx,
                garbage_rx,
                stderr: stderr_tail.clone(),
                stderr_reader,
                exited: exited_tx,
                ending: ending.clone(),
            },
        ));
        let connection = match connection_rx.await {
            Ok(connection) => connection,
            // The child died before the connection came up; say how.
            Err(_) => {
                return Err(match wait_exit(exited.clone(), Duration::from_secs(2)).await {
                    Some(reason) => SpawnError::ExitedEarly { reason },
                    None => SpawnError::Closed {
                        command: command.display.clone(),
                    },
                });
            }
        };
        Ok(Agent {
            pid,
            command: command.clone(),
            connection,
            stop,
            stop_mode,
            exited,
            ending,
            secrets,
        })
    }

    /// `text` (an error the agent answered, say) without the credential
    /// values this agent runs with.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text).into_owned()
    }

    /// Why the child is gone, once it is.
    pub fn is_ending(&self) -> bool {
        self.ending.is_cancelled()
    }

    pub fn exit_reason(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// Waits up to `timeout` for the child to be gone; its reason if it is.
    pub async fn wait_exit(&self, timeout: Duration) -> Option<String> {
        wait_exit(self.exit_signal(), timeout).await
    }

    /// A handle that learns the exit reason, for tasks that outlive a borrow.
    pub fn exit_signal(&self) -> watch::Receiver<Option<String>> {
        self.exited.clone()
    }
}

/// The ends of an agent: its child (none for one in this process), its
/// stdout and stdin, the task reading its stderr.
struct Pipes<R, W> {
    child: Option<Child>,
    pid: Option<u32>,
    stdout: BufReader<R>,
    stdin: W,
    stderr_reader: tokio::task::JoinHandle<()>,
}

/// Waits for `child` to exit; never, for an agent without one.
async fn wait_child(child: &mut Option<Child>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

/// Waits up to `timeout` for an exit reason on `exited`.
pub async fn wait_exit(mut exited: watch::Receiver<Option<String>>, timeout: Duration) -> Option<String> {
    let gone = tokio::time::timeout(timeout, exited.wait_for(Option::is_some)).await;
    match gone {
        Ok(Ok(reason)) => reason.clone(),
        _ => None,
    }
}

impl Agent {
    /// Stops the child in the given way; the exit is reported as usual.
    pub fn stop(&self, mode: StopMode) {
        self.stop_mode.lock().unwrap_or_else(|poison| poison.into_inner()).0 = mode;
        self.stop.cancel();
    }

    /// Stops the child, saying why in the exit reason every workspace on
    /// it receives.
    pub fn stop_because(&self, mode: StopMode, why: &str) {
        self.stop_mode.lock().unwrap_or_else(|poison| poison.into_inner()).1 = Some(why.to_owned());
        self.stop(mode);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct RunContext {
    routes: Routes,
    stop: CancellationToken,
    stop_mode: Arc<Mutex<(StopMode, Option<String>)>>,
    connection_tx: oneshot::Sender<ConnectionTo<AcpPeer>>,
    garbage_rx: oneshot::Receiver<String>,
    stderr: StderrTail,
    stderr_reader: tokio::task::JoinHandle<()>,
    exited: watch::Sender<Option<String>>,
    ending: CancellationToken,
}

/// Owns the child: runs the ACP connection until the child exits, its stdout
/// closes, or the owner stops it; then makes sure the whole group is dead and
/// reports the exit.
async fn run<O, I>(mut child: Option<Child>, transport: Lines<O, I>, context: RunContext)
where
    O: futures::Sink<String, Error = std::io::Error> + Send + Unpin + 'static,
    I: futures::Stream<Item = std::io::Result<String>> + Send + Unpin + 'static,
{
    let RunContext {
        routes,
        stop,
        stop_mode,
        connection_tx,
        mut garbage_rx,
        stderr,
        stderr_reader,
        exited,
        ending,
    } = context;
    let group = child
        .as_ref()
        .and_then(Child::id)
        .map(|pid| GroupGuard(Pid::from_raw(pid as i32)));
    let notifications = routes.clone();
    let permissions = routes.clone();
    let connection_stop = stop.clone();
    let connection = Client
        .v1()
        .name("codex-fusion")
        .on_receive_notification(
            async move |notification: SessionNotification, _connection| {
                // Awaiting here applies back-pressure to a flooding agent; a
                // workspace drains its channel in every state, so it never
                // deadlocks.
                if let Some(route) = notifications.get(&notification.session_id.0) {
                    let event = AgentEvent::Update {
                        session: notification.session_id.0.to_string(),
                        update: Update::of(notification.update),
                    };
                    let _ = route.sender.send(AgentMessage { tag: route.tag, event }).await;
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |request: RequestPermissionRequest, responder, _connection| {
                // Hand the responder to the workspace and return at once: the
                // answer may take as long as Claude needs to decide.
                match permissions.get(&request.session_id.0) {
                    Some(route) => {
                        let message = AgentMessage {
                            tag: route.tag,
                            event: AgentEvent::Permission(PermissionAsk::new(request, responder)),
                        };
                        if let Err(mpsc::error::SendError(message)) = route.sender.send(message).await
                            && let AgentEvent::Permission(ask) = message.event
                        {
                            ask.cancel();
                        }
                    }
                    None => {
                        tracing::info!(session = %request.session_id.0, "a permission request for a session nobody holds; answered cancelled");
                        PermissionAsk::new(request, responder).cancel();
                    }
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async move |connection: ConnectionTo<AcpPeer>| {
            let _ = connection_tx.send(connection.clone());
            tokio::select! {
                _ = connection_stop.cancelled() => {}
                _ = connection.incoming_closed() => {}
            }
            Ok(())
        });

    let stopped = || match &stop_mode.lock().unwrap_or_else(|poison| poison.into_inner()).1 {
        Some(why) => format!("stopped by codex-fusion ({why})"),
        None => "stopped by codex-fusion".to_owned(),
    };
    let reason = tokio::select! {
        result = connection => match result {
            Ok(()) if stop.is_cancelled() => stopped(),
            Ok(()) => "its stdout closed".to_owned(),
            Err(error) => format!("its ACP connection failed: {error}"),
        },
        status = wait_child(&mut child) => match status {
            Ok(status) => format!("it exited ({status})"),
            Err(error) => format!("waiting for it failed: {error}"),
        },
        line = &mut garbage_rx => match line {
            Ok(line) => {
                for route in routes.distinct() {
                    let _ = route.sender.send(AgentMessage { tag: route.tag, event: AgentEvent::Garbage(line.clone()) }).await;
                }
                format!("it wrote something that is not ACP on stdout: {line}")
            }
            Err(_) => "its stdout closed".to_owned(),
        },
        _ = stop.cancelled() => stopped(),
    };

    // From here on the agent is going, though its exit is reported only once
    // its tree is swept: nobody may open a session on it meanwhile.
    ending.cancel();
    let mode = stop_mode.lock().unwrap_or_else(|poison| poison.into_inner()).0;
    if let Some(group) = &group {
        // What it started since the last look, before the group dies and
        // its helpers are orphaned.
        crate::reap::reaper().update(group.0.as_raw() as u32);
        if mode == StopMode::Graceful && stop.is_cancelled() {
            group.signal(Signal::SIGTERM);
            let _ = tokio::time::timeout(TERM_GRACE, wait_child(&mut child)).await;
        }
        group.signal(Signal::SIGKILL);
    }
    // Reap the child; SIGKILL makes this quick.
    let status = match child.is_some() {
        true => tokio::time::timeout(Duration::from_secs(5), wait_child(&mut child)).await,
        false => Ok(Err(std::io::Error::other("no child"))),
    };
    if let Some(group) = &group {
        // What left the group (sandbox helpers, a login shell: issue 17).
        crate::reap::reaper().finish(group.0.as_raw() as u32).await;
    }
    let reason = match status {
        Ok(Ok(status)) if !reason.starts_with("it exited") && !stop.is_cancelled() => {
            format!("{reason}; it exited ({status})")
        }
        _ => reason,
    };
    // The stderr pipe closes with the group; let the reader take the last
    // lines so they can be quoted.
    let _ = tokio::time::timeout(Duration::from_millis(300), stderr_reader).await;
    let tail = stderr.summary(3);
    let reason = if tail.is_empty() || stop.is_cancelled() {
        reason
    } else {
        format!("{reason}; last stderr: {tail}")
    };
    tracing::debug!(pid = ?group.as_ref().map(|group| group.0), %reason, "codex-acp stopped");
    let _ = exited.send(Some(reason.clone()));
    let requested = stop.is_cancelled();
    for route in routes.distinct() {
        let event = AgentEvent::Exited {
            reason: reason.clone(),
            requested,
        };
        let _ = route.sender.send(AgentMessage { tag: route.tag, event }).await;
    }
}

/// `text` without the credential values an agent started with `command`
/// and `extra_env` would run with (see [`Secrets`]), for messages about an
/// agent that is not (or no longer) running.
pub fn scrub_credentials(text: &str, command: &AcpCommand, extra_env: &[(String, String)]) -> String {
    Secrets::of(command, extra_env).scrub(text).into_owned()
}

/// Credential values the agent was started with: the values its command
/// hides, and the variables with secret names that it gets from us or
/// inherits from the daemon. Scrubbed from everything it prints before that
/// is kept or logged.
#[derive(Clone, Default)]
struct Secrets(Arc<Vec<String>>);

impl Secrets {
    fn of(command: &AcpCommand, env: &[(String, String)]) -> Secrets {
        let secret_valued = |(name, value): (String, String)| is_secret_name(&name).then_some(value);
        let mut values: Vec<String> = command.secrets().map(str::to_owned).collect();
        values.extend(env.iter().cloned().filter_map(secret_valued));
        values.extend(std::env::vars().filter_map(secret_valued));
        values.retain(|value| !value.is_empty());
        values.sort();
        values.dedup();
        // Longest first, so a key that contains another is replaced whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        Secrets(Arc::new(values))
    }

    fn scrub<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        codex_fusion_protocol::command::scrub(text, &self.0)
    }
}

/// Kills a process group when dropped, so even a task aborted at runtime
/// shutdown leaves no process behind.
pub(crate) struct GroupGuard(pub(crate) Pid);

impl GroupGuard {
    pub(crate) fn signal(&self, signal: Signal) {
        // ESRCH (the group is already gone) is the normal case on exit.
        let _ = killpg(self.0, signal);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// The agent's stdout as JSON-RPC lines. A line that is not valid UTF-8, is
/// too long, or is plainly not a JSON object ends the stream and is reported
/// through `garbage`, so the session restarts the agent instead of parsing
/// noise.
fn agent_lines<R>(
    reader: R,
    garbage: oneshot::Sender<String>,
    secrets: Secrets,
) -> std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<String>> + Send>>
where
    R: AsyncBufRead + AsyncRead + Unpin + Send + 'static,
{
    let state = (reader, Some(garbage), secrets);
    Box::pin(futures::stream::unfold(
        state,
        |(mut reader, mut garbage, secrets)| async move {
            loop {
                let line = codex_fusion_protocol::frame::read_line_async(&mut reader, AGENT_LINE_MAX_BYTES).await;
                let bad = match line {
                    Ok(None) => return None,
                    Ok(Some(bytes)) => match String::from_utf8(bytes) {
                        Ok(text) => {
                            let trimmed = text.trim();
                            if trimmed.is_empty() {
                                continue;
                            }
                            if trimmed.starts_with('{') && trimmed.ends_with('}') {
                                // Let the tasks this line wakes (the session, a
                                // progress forwarder) run before the next line: a
                                // flooding agent otherwise starves them for a whole
                                // scheduling budget, and progress reaches the client
                                // in rare bursts (docs/PERFORMANCE.md, figure 3).
                                tokio::task::yield_now().await;
                                // The agent is working: what it starts now
                                // must be known if the daemon is killed.
                                crate::reap::reaper().poke();
                                return Some((Ok(text), (reader, garbage, secrets)));
                            }
                            // Scrubbed before it is cut, so no part of a key is left.
                            secrets.scrub(trimmed).chars().take(120).collect::<String>()
                        }
                        Err(error) => format!(
                            "{} (not UTF-8)",
                            secrets
                                .scrub(&String::from_utf8_lossy(error.as_bytes()))
                                .chars()
                                .take(120)
                                .collect::<String>()
                        ),
                    },
                    Err(codex_fusion_protocol::frame::FrameError::Io(error)) => {
                        return Some((Err(error), (reader, garbage, secrets)));
                    }
                    Err(error) => error.to_string(),
                };
                tracing::warn!(line = %bad, "codex-acp wrote a line that is not JSON-RPC; stopping it");
                if let Some(garbage) = garbage.take() {
                    let _ = garbage.send(bad);
                }
                return None;
            }
        },
    ))
}

async fn read_stderr(stderr: tokio::process::ChildStderr, tail: StderrTail, pid: Option<u32>, secrets: Secrets) {
    use tokio::io::AsyncBufReadExt;
    // Bytes kept of one line; a child printing megabytes without a newline
    // costs no more than this.
    const LINE_BYTES: usize = STDERR_LINE_CHARS * 4;
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::with_capacity(256);
    loop {
        let (consumed, complete) = match reader.fill_buf().await {
            Ok([]) | Err(_) => {
                flush_stderr_line(&line, &tail, pid, &secrets);
                return;
            }
            Ok(available) => {
                let newline = available.iter().position(|byte| *byte == b'\n');
                let take = newline.unwrap_or(available.len());
                let room = LINE_BYTES.saturating_sub(line.len());
                line.extend_from_slice(&available[..take.min(room)]);
                (newline.map_or(take, |index| index + 1), newline.is_some())
            }
        };
        reader.consume(consumed);
        if complete {
            flush_stderr_line(&line, &tail, pid, &secrets);
            line.clear();
        }
    }
}

fn flush_stderr_line(line: &[u8], tail: &StderrTail, pid: Option<u32>, secrets: &Secrets) {
    let text = String::from_utf8_lossy(line);
    let text = secrets.scrub(text.trim_end());
    let text = text.as_ref();
    if text.is_empty() {
        return;
    }
    tracing::debug!(target: "codex_acp::stderr", pid, "{text}");
    tail.push(text.chars().take(STDERR_LINE_CHARS).collect());
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;

    #[tokio::test]
    async fn garbage_on_stdout_ends_the_stream_and_is_reported() {
        let input: &[u8] = b"{\"jsonrpc\":\"2.0\"}\n\n this is not json\n{\"later\":1}\n";
        let (tx, rx) = oneshot::channel();
        let mut lines = agent_lines(BufReader::new(input), tx, Secrets::default());
        assert_eq!(
            lines.next().await.expect("a line").expect("ok"),
            "{\"jsonrpc\":\"2.0\"}"
        );
        assert!(lines.next().await.is_none());
        assert_eq!(rx.await.expect("reported"), "this is not json");
    }

    #[tokio::test]
    async fn invalid_utf8_is_garbage() {
        let input: &[u8] = b"\xff\xfe{}\n";
        let (tx, rx) = oneshot::channel();
        let mut lines = agent_lines(BufReader::new(input), tx, Secrets::default());
        assert!(lines.next().await.is_none());
        assert!(rx.await.expect("reported").contains("not UTF-8"));
    }

    /// Issue 13: an agent that prints its key (an error quoting it, a
    /// debug dump of its argv or environment) does not put it in `status`,
    /// an error or the daemon's log.
    #[tokio::test]
    async fn what_the_agent_prints_is_scrubbed_of_its_credentials() {
        let command =
            AcpCommand::parse("env OPENAI_API_KEY=sk-planted-123 codex-acp --token tok-planted-456").expect("parses");
        let secrets = Secrets::of(&command, &[("CODEX_API_KEY".into(), "sk-forwarded-789".into())]);
        let tail = StderrTail::default();
        let line = b"argv: OPENAI_API_KEY=sk-planted-123 --token tok-planted-456, env CODEX_API_KEY=sk-forwarded-789";
        flush_stderr_line(line, &tail, None, &secrets);
        assert_eq!(tail.lines(), ["argv: OPENAI_API_KEY=… --token …, env CODEX_API_KEY=…"]);
        let input: &[u8] = b"not json sk-planted-123\n";
        let (tx, rx) = oneshot::channel();
        let mut lines = agent_lines(BufReader::new(input), tx, secrets);
        assert!(lines.next().await.is_none());
        assert_eq!(rx.await.expect("reported"), "not json …");
    }

    #[test]
    fn stderr_tail_is_bounded() {
        let tail = StderrTail::default();
        for index in 0..100 {
            tail.push(format!("line {index}"));
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), STDERR_TAIL_LINES);
        assert_eq!(lines.last().map(String::as_str), Some("line 99"));
        assert_eq!(tail.summary(2), "line 98 | line 99");
    }
}
