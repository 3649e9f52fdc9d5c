//! A minimal ACP client, the baseline of figures 3, 5, 7 and 8: it starts an
//! agent (the fake or the real codex-acp), opens sessions set up the way
//! the daemon sets them up (authenticate when asked, the same mode), and
//! sends prompts straight to them, with no shim and no daemon in between.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    AuthenticateRequest, ContentBlock, ContentChunk, Implementation, InitializeRequest, NewSessionRequest,
    PromptRequest, RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse, SessionConfigKind,
    SessionConfigOptionValue, SessionId, SessionNotification, SessionUpdate, SetSessionConfigOptionRequest, StopReason,
};
use agent_client_protocol::{Agent, ByteStreams, Client, on_receive_notification, on_receive_request, v1};
use anyhow::{Context as _, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio_util::compat::{TokioAsyncReadCompatExt as _, TokioAsyncWriteCompatExt as _};

/// How to start the agent.
pub struct AgentCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// How to set the session up, mirroring the daemon's `acp::open_session`.
pub struct Setup {
    /// Authenticate with the `api-key` method first (the daemon does when a
    /// key is at hand).
    pub authenticate: bool,
    /// The mode to set with `session/set_config_option`.
    pub mode: &'static str,
}

/// What one prompt produced.
pub struct Prompted {
    pub took: Duration,
    pub text: String,
    pub updates: u64,
    pub first_update: Option<Instant>,
    pub last_update: Option<Instant>,
}

#[derive(Default)]
struct Seen {
    updates: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    text: String,
}

/// An open session on the agent.
pub struct Session {
    cx: v1::ConnectionTo<Agent>,
    id: SessionId,
    seen: Arc<Mutex<Seen>>,
}

impl Session {
    /// Sends `text` as one prompt and waits for its response.
    pub async fn prompt(&self, text: &str) -> anyhow::Result<Prompted> {
        *lock(&self.seen) = Seen::default();
        let request = PromptRequest::new(self.id.clone(), vec![ContentBlock::from(text.to_owned())]);
        let started = Instant::now();
        let response = self
            .cx
            .send_request(request)
            .block_task()
            .await
            .map_err(|error| anyhow!("session/prompt: {error:?}"))?;
        let took = started.elapsed();
        if response.stop_reason != StopReason::EndTurn {
            bail!("the prompt ended {:?}", response.stop_reason);
        }
        let seen = std::mem::take(&mut *lock(&self.seen));
        Ok(Prompted {
            took,
            text: seen.text,
            updates: seen.updates,
            first_update: seen.first,
            last_update: seen.last,
        })
    }
}

/// What opening one session took, step by step, as the daemon's
/// `acp::open_session` does them.
pub struct Opened {
    /// `authenticate`, when the setup asks for it.
    pub authenticate: Option<Duration>,
    pub session_new: Duration,
    /// `session/set_config_option` to the setup's mode, checked.
    pub set_mode: Duration,
}

impl Opened {
    /// `session/new` and setting the mode: the agent's own cost of a new
    /// session once it runs and is authenticated.
    pub fn new_and_mode(&self) -> Duration {
        self.session_new + self.set_mode
    }
}

/// A started, initialized agent, on which sessions are opened.
pub struct Connection {
    cx: v1::ConnectionTo<Agent>,
    seen: Arc<Mutex<Seen>>,
    authenticate: bool,
    mode: &'static str,
}

impl Connection {
    /// Opens a session in `cwd` as the daemon does: authenticate (when the
    /// setup says so), `session/new`, then the mode, checked; each timed.
    pub async fn open_session(&self, cwd: &Path) -> anyhow::Result<(Session, Opened)> {
        let acp = |what: &'static str| move |error: agent_client_protocol::Error| anyhow!("{what}: {error:?}");
        let cx = &self.cx;
        let authenticate = if self.authenticate {
            let started = Instant::now();
            cx.send_request(AuthenticateRequest::new("api-key"))
                .block_task()
                .await
                .map_err(acp("authenticate"))?;
            Some(started.elapsed())
        } else {
            None
        };
        let started = Instant::now();
        let created = cx
            .send_request(NewSessionRequest::new(cwd.to_path_buf()))
            .block_task()
            .await
            .map_err(acp("session/new"))?;
        let session_new = started.elapsed();
        let id = created.session_id;
        let started = Instant::now();
        let options = cx
            .send_request(SetSessionConfigOptionRequest::new(
                id.clone(),
                "mode",
                SessionConfigOptionValue::value_id(self.mode),
            ))
            .block_task()
            .await
            .map_err(acp("session/set_config_option"))?
            .config_options;
        let set_mode = started.elapsed();
        let mode = options
            .iter()
            .find(|option| &*option.id.0 == "mode")
            .and_then(|option| match &option.kind {
                SessionConfigKind::Select(select) => Some(select.current_value.0.to_string()),
                _ => None,
            });
        if mode.as_deref() != Some(self.mode) {
            bail!("the agent did not switch to mode {} (it reports {mode:?})", self.mode);
        }
        let session = Session {
            cx: cx.clone(),
            id,
            seen: self.seen.clone(),
        };
        Ok((
            session,
            Opened {
                authenticate,
                session_new,
                set_mode,
            },
        ))
    }
}

/// Starts the agent, opens a session in its working directory, runs `body`
/// with it, then stops the agent's whole process group.
pub async fn with_session<T>(
    command: &AgentCommand,
    setup: &Setup,
    body: impl AsyncFnOnce(&Session) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    with_agent(command, setup, async move |agent: &Connection| {
        let (session, _) = agent.open_session(&command.cwd).await?;
        body(&session).await
    })
    .await
}

/// Starts the agent, initializes it, runs `body` with the connection, then
/// stops the agent's whole process group.
pub async fn with_agent<T>(
    command: &AgentCommand,
    setup: &Setup,
    body: impl AsyncFnOnce(&Connection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut child = tokio::process::Command::new(&command.program)
        .args(&command.args)
        .envs(command.env.iter().map(|(key, value)| (key, value)))
        .current_dir(&command.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", command.program.display()))?;
    let group = child.id().map(|pid| Pid::from_raw(pid as i32));
    let stdin = child.stdin.take().context("agent stdin")?;
    let stdout = child.stdout.take().context("agent stdout")?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let on_update = {
        let seen = seen.clone();
        async move |notification: SessionNotification, _cx| {
            let now = Instant::now();
            let mut seen = lock(&seen);
            seen.updates += 1;
            seen.first.get_or_insert(now);
            seen.last = Some(now);
            if let SessionUpdate::AgentMessageChunk(ContentChunk {
                content: ContentBlock::Text(text),
                ..
            }) = notification.update
            {
                seen.text.push_str(&text.text);
            }
            Ok(())
        }
    };
    // Nothing the figures send asks permission; refuse anything that does.
    let on_permission =
        async move |_request: RequestPermissionRequest, responder: v1::Responder<RequestPermissionResponse>, _cx| {
            responder.respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled))
        };
    let result = Client
        .v1()
        .name("codex-fusion-bench")
        .on_receive_notification(on_update, on_receive_notification!())
        .on_receive_request(on_permission, on_receive_request!())
        .connect_with(ByteStreams::new(stdin.compat_write(), stdout.compat()), async |cx| {
            Ok(initialize_and_run(cx, setup, seen, body).await)
        })
        .await
        .map_err(|error| anyhow!("ACP connection: {error:?}"))
        .and_then(|result| result);
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGKILL);
    }
    let _ = child.wait().await;
    result
}

async fn initialize_and_run<T>(
    cx: v1::ConnectionTo<Agent>,
    setup: &Setup,
    seen: Arc<Mutex<Seen>>,
    body: impl AsyncFnOnce(&Connection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    cx.send_request(
        InitializeRequest::new(ProtocolVersion::V1).client_info(Implementation::new("codex-fusion-bench", "0")),
    )
    .block_task()
    .await
    .map_err(|error| anyhow!("initialize: {error:?}"))?;
    let connection = Connection {
        cx,
        seen,
        authenticate: setup.authenticate,
        mode: setup.mode,
    };
    body(&connection).await
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poison| poison.into_inner())
}
