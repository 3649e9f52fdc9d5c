//! Daemon-wide state: the workspace sessions, the task tree, counters, and
//! the facts `status` reports. Shared by every connection behind an `Arc`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use codex_fusion_protocol::control::DaemonStatus;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::confine::ConfinementCache;
use crate::pool::Pool;
use crate::session::FirstStarts;
use crate::session::{WorkspaceContext, WorkspaceHandle};
use crate::turn::CallId;
use codex_fusion_protocol::pairing::PairingStore;

/// What every connection shares.
pub struct Daemon {
    pub started: Instant,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// Every task the daemon starts (connections, sessions, agents) lives
    /// here, so shutdown can wait for all of them.
    pub tasks: TaskTracker,
    /// Cancelled when the daemon stops; connections and sessions watch it.
    pub shutdown: CancellationToken,
    /// Cancelled once every session has stopped and answered its waiting
    /// calls: a connection stays open until then, so those answers ("the
    /// daemon is shutting down") reach their callers.
    pub sessions_stopped: CancellationToken,
    /// One actor per workspace and agent (`codex`, or another agent of a
    /// council).
    sessions: Mutex<HashMap<(PathBuf, String), WorkspaceHandle>>,
    /// The agents each workspace's last turn went to: where `reply` goes.
    last_agents: Mutex<HashMap<PathBuf, Vec<String>>>,
    session_context: Arc<WorkspaceContext>,
    pool: Arc<Pool>,
    connections: AtomicUsize,
    next_call: AtomicU64,
    /// Every workspace's recent answers, kept whole (`codex-fusion log`).
    pub recent: Arc<crate::recent::Recent>,
}

impl Daemon {
    pub fn new(
        socket: PathBuf,
        state_dir: PathBuf,
        agent_idle: std::time::Duration,
        max_sessions: usize,
    ) -> Arc<Daemon> {
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let pool = Pool::new(max_sessions, agent_idle, tasks.clone());
        let session_context = Arc::new(WorkspaceContext {
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
            state_dir: state_dir.clone(),
            confinement: ConfinementCache::default(),
            first_starts: FirstStarts::default(),
            pairings: {
                let (pairings, problem) = PairingStore::load(&state_dir);
                if let Some(problem) = problem {
                    tracing::warn!("{problem}");
                }
                pairings
            },
            pool: pool.clone(),
            launcher: crate::session::Launcher::Spawn,
            pause_ids: crate::turn::PauseIds::new(),
        });
        let recent = crate::recent::Recent::new(state_dir.clone(), Default::default());
        Arc::new(Daemon {
            started: Instant::now(),
            socket,
            state_dir,
            recent,
            tasks,
            shutdown,
            sessions_stopped: CancellationToken::new(),
            sessions: Mutex::new(HashMap::new()),
            last_agents: Mutex::new(HashMap::new()),
            session_context,
            pool,
            connections: AtomicUsize::new(0),
            next_call: AtomicU64::new(1),
        })
    }

    /// The actor of agent `agent` in `workspace` (canonical), started on
    /// first use, and started afresh if the one before it failed.
    pub fn session(&self, workspace: &Path, agent: &str) -> WorkspaceHandle {
        let mut sessions = self.sessions.lock().unwrap_or_else(|poison| poison.into_inner());
        let spawn = || WorkspaceHandle::spawn(Arc::from(workspace), Arc::from(agent), self.session_context.clone());
        let handle = sessions
            .entry((workspace.to_path_buf(), agent.to_owned()))
            .or_insert_with(spawn);
        if handle.is_closed() && !self.shutdown.is_cancelled() {
            tracing::warn!(workspace = %workspace.display(), agent, "replacing the workspace's failed actor");
            *handle = spawn();
        }
        handle.clone()
    }

    /// Every actor `workspace` has, by agent name, in name order with
    /// `codex` first.
    pub fn sessions_of(&self, workspace: &Path) -> Vec<(String, WorkspaceHandle)> {
        let sessions = self.sessions.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut found: Vec<(String, WorkspaceHandle)> = sessions
            .iter()
            .filter(|((path, _), _)| path == workspace)
            .map(|((_, agent), handle)| (agent.clone(), handle.clone()))
            .collect();
        found.sort_by(|a, b| agent_order(&a.0, &b.0));
        found
    }

    /// The agents whose sessions in `workspace` this daemon knows of: its
    /// live actors and those remembered on disk.
    pub fn agents_of(&self, workspace: &Path) -> Vec<String> {
        let mut agents: Vec<String> = self
            .sessions_of(workspace)
            .into_iter()
            .map(|(agent, _)| agent)
            .collect();
        for agent in self.session_context.pairings.agents_of(workspace) {
            if !agents.contains(&agent) {
                agents.push(agent);
            }
        }
        agents.sort_by(|a, b| agent_order(a, b));
        agents
    }

    /// Where `reply` goes in `workspace`: the agents of its last turn.
    pub fn last_agents(&self, workspace: &Path) -> Option<Vec<String>> {
        let last = self.last_agents.lock().unwrap_or_else(|poison| poison.into_inner());
        last.get(workspace).cloned()
    }

    pub fn set_last_agents(&self, workspace: &Path, agents: &[String]) {
        let mut last = self.last_agents.lock().unwrap_or_else(|poison| poison.into_inner());
        last.insert(workspace.to_path_buf(), agents.to_vec());
    }

    fn all_sessions(&self) -> Vec<(PathBuf, String, WorkspaceHandle)> {
        let sessions = self.sessions.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut all: Vec<_> = sessions
            .iter()
            .map(|((path, agent), handle)| (path.clone(), agent.clone(), handle.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| agent_order(&a.1, &b.1)));
        all
    }

    pub fn next_call_id(&self) -> CallId {
        self.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a connection for as long as the guard lives.
    pub fn connection_guard(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    /// Daemon health and every session's (or only `only`'s) status.
    pub async fn status(&self, only: Option<&Path>) -> DaemonStatus {
        let mut workspaces = Vec::new();
        let mut last_answers = Vec::new();
        // Every answer already delivered is in `last_answers`.
        self.recent.settled().await;
        let mut listed: Option<PathBuf> = None;
        for (path, _, handle) in self.all_sessions() {
            if only.is_some_and(|only| only != path) {
                continue;
            }
            if let Ok(status) = handle.status().await {
                workspaces.push(status);
            }
            if listed.as_ref() != Some(&path) {
                last_answers.extend(self.recent.last(&path));
                listed = Some(path);
            }
        }
        DaemonStatus {
            daemon_version: codex_fusion_protocol::PACKAGE_VERSION.to_owned(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            socket: self.socket.clone(),
            state_dir: self.state_dir.clone(),
            connections: self.connections.load(Ordering::Relaxed),
            workspaces,
            agents: self.pool.status(),
            last_answers,
        }
    }

    /// Stops every workspace actor (answering their waiting calls), then
    /// every agent process (SIGTERM, then SIGKILL).
    pub async fn stop_sessions(&self) {
        let sessions = self.all_sessions();
        futures::future::join_all(sessions.iter().map(|(_, _, handle)| handle.shutdown())).await;
        self.pool.stop_all();
        self.sessions_stopped.cancel();
    }
}

/// `codex` first, then the other agents by name.
fn agent_order(a: &str, b: &str) -> std::cmp::Ordering {
    let codex = codex_fusion_protocol::agents::DEFAULT_AGENT;
    (a != codex).cmp(&(b != codex)).then_with(|| a.cmp(b))
}

/// Decrements the connection count when dropped.
pub struct ConnectionGuard(Arc<Daemon>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}
