//! codex-fusiond: the per-user daemon. It listens on a Unix socket, serves
//! MCP to shims and control requests to the CLI, and owns one codex-acp child
//! and one Codex session per workspace.
//!
//! Read top-down: [`run`] binds and accepts → [`connection::serve`] per
//! connection → [`mcp::McpService`] per MCP client → [`session`] per
//! workspace → [`agent`] per codex-acp child.

pub mod acp;
pub mod agent;
pub mod config;
pub mod confine;
pub mod connection;
pub mod control;
pub mod daemon;
pub mod diff;
pub mod environment;
pub mod flow;
pub mod guardian;
pub mod instructions;
pub mod listener;
pub mod logging;
pub mod mcp;
pub mod models;
pub mod pool;
pub mod progress;
pub mod prompts;
pub mod reap;
pub mod recent;
pub mod render;
pub mod resolve;
pub mod sensitive;
pub mod session;
pub mod tools;
pub mod turn;
pub mod turnlog;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::daemon::Daemon;

/// How long shutdown waits for connections and children before giving up.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// How long an agent may sit idle before it is stopped, by default.
pub const DEFAULT_AGENT_IDLE: Duration = Duration::from_secs(30 * 60);
/// Overrides [`DEFAULT_AGENT_IDLE`], in seconds (the daemon's own setting).
pub const AGENT_IDLE_ENV: &str = "CODEX_FUSION_AGENT_IDLE_SECS";

/// Where the daemon lives and how it behaves, from its own environment.
#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    /// The socket's directory is the daemon's own (not one the user named
    /// with CODEX_FUSION_SOCKET), so it may be made private.
    pub dedicated_socket_dir: bool,
    pub state_dir: PathBuf,
    pub agent_idle: Duration,
    /// Sessions one agent process carries before another one starts.
    pub max_sessions: usize,
}

/// The most sessions one agent process may be given.
const MAX_SESSIONS_LIMIT: usize = 256;

/// The longest idle limit accepted (a month); longer is a typo.
const MAX_AGENT_IDLE_SECS: u64 = 30 * 24 * 3600;

impl Options {
    pub fn from_env() -> anyhow::Result<Options> {
        let env = |name: &str| std::env::var_os(name);
        let agent_idle = match std::env::var(AGENT_IDLE_ENV) {
            Ok(value) if !value.is_empty() => match value.trim().parse::<u64>() {
                Ok(secs) if secs > 0 && secs <= MAX_AGENT_IDLE_SECS => Duration::from_secs(secs),
                _ => {
                    anyhow::bail!(
                        "{AGENT_IDLE_ENV}: expected a whole number of seconds from 1 to {MAX_AGENT_IDLE_SECS}, got `{value}`"
                    )
                }
            },
            _ => DEFAULT_AGENT_IDLE,
        };
        let max_sessions = match std::env::var(pool::MAX_SESSIONS_ENV) {
            Ok(value) if !value.is_empty() => match value.trim().parse::<usize>() {
                Ok(count) if (1..=MAX_SESSIONS_LIMIT).contains(&count) => count,
                _ => anyhow::bail!(
                    "{}: expected a whole number of sessions from 1 to {MAX_SESSIONS_LIMIT}, got `{value}`",
                    pool::MAX_SESSIONS_ENV
                ),
            },
            _ => pool::DEFAULT_MAX_SESSIONS,
        };
        let overridden = env(codex_fusion_protocol::paths::SOCKET_ENV).is_some_and(|value| !value.is_empty());
        Ok(Options {
            socket: codex_fusion_protocol::paths::socket_path(env)?,
            dedicated_socket_dir: !overridden,
            state_dir: codex_fusion_protocol::paths::state_dir(env)?,
            agent_idle,
            max_sessions,
        })
    }
}

/// Runs the daemon until SIGTERM, SIGINT, SIGHUP, a `stop` request, or the
/// loss of its socket file ([`listener::Bound::lost`]).
pub async fn run(options: Options) -> anyhow::Result<()> {
    let bound = listener::bind(&options.socket, options.dedicated_socket_dir)?;
    // Holding the lock: no other daemon's agents run now, so what the
    // record lists is an earlier daemon's leftovers.
    reap::init(&options.state_dir);
    let daemon = Daemon::new(
        options.socket.clone(),
        options.state_dir.clone(),
        options.agent_idle,
        options.max_sessions,
    );
    tracing::info!(
        socket = %options.socket.display(),
        state_dir = %options.state_dir.display(),
        pid = std::process::id(),
        version = codex_fusion_protocol::PACKAGE_VERSION,
        "codex-fusiond listening"
    );
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // A daemon run by hand in a terminal that closes stops cleanly.
    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let me = codex_fusion_protocol::peer::own_uid();
    let lost = bound.lost();
    tokio::pin!(lost);
    let reason = loop {
        tokio::select! {
            () = &mut lost => {
                tracing::warn!(
                    socket = %options.socket.display(),
                    "the socket file was removed or replaced: no client can reach this daemon any more"
                );
                break "its socket file is gone";
            }
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => break "SIGHUP",
            _ = daemon.shutdown.cancelled() => break "a stop request",
            accepted = bound.listener.accept() => match accepted {
                Ok((stream, _)) => accept(&daemon, stream, me),
                Err(error) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    };
    tracing::info!(reason, "shutting down");
    // Stop accepting first, so no new work arrives while we drain; keep the
    // lock until the children are gone, so a new daemon (started by a shim
    // that lost us) waits for them instead of racing them.
    let _instance = bound.stop_listening();
    daemon.shutdown.cancel();
    daemon.stop_sessions().await;
    daemon.tasks.close();
    if tokio::time::timeout(SHUTDOWN_DRAIN, daemon.tasks.wait()).await.is_err() {
        tracing::warn!(
            "some tasks did not finish within {} s; exiting anyway",
            SHUTDOWN_DRAIN.as_secs()
        );
    }
    tracing::info!("stopped");
    Ok(())
}

fn accept(daemon: &Arc<Daemon>, stream: tokio::net::UnixStream, me: u32) {
    match codex_fusion_protocol::peer::peer_uid(&stream) {
        Ok(uid) if uid == me => {
            daemon.tasks.spawn(connection::serve(daemon.clone(), stream));
        }
        Ok(uid) => {
            tracing::warn!(peer_uid = uid, "refused a connection from another user");
        }
        Err(error) => {
            tracing::warn!(%error, "refused a connection whose peer cannot be identified");
        }
    }
}
