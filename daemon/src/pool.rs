//! The agent pool: agent processes shared by every workspace that would
//! start them the same way.
//!
//! A process is keyed by what makes two agents different ([`AgentKey`]): the
//! whole agent command (hidden values included), the variables the client
//! forwarded for it (credentials, `CODEX_HOME`) and what its permission
//! profile grants ([`ProfileChoice`]). A workspace asks for a key and gets a
//! [`Lease`] on a live process with that key and room for one more session,
//! or on a new one; a different key never shares a process, so credentials
//! never cross. Each workspace opens its own ACP session on the process and
//! registers it in the process's [`Routes`].
//!
//! A process lives while it is used: a watcher stops it once none of its
//! sessions has been used for the idle limit, and removes it from the pool
//! when it is gone for any reason. Starting a key is serialised (the second
//! workspace waits for the first one's start and shares it), different keys
//! start side by side. No lock here is held across an await except the
//! per-key start gate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use codex_fusion_protocol::control::AgentProcessStatus;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use crate::acp::{AgentFailure, AgentInfo};
use crate::agent::{Agent, Routes, StderrTail, StopMode};
use crate::config::AcpCommand;
use crate::confine::{HomeStores, ProfileChoice};

/// Sessions one agent process carries by default before a second process
/// with the same key starts.
pub const DEFAULT_MAX_SESSIONS: usize = 16;
/// Overrides [`DEFAULT_MAX_SESSIONS`] (the daemon's own setting).
pub const MAX_SESSIONS_ENV: &str = "CODEX_FUSION_AGENT_MAX_SESSIONS";

/// What makes two agent processes different.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentKey {
    /// The agent's name in `CODEX_FUSION_AGENTS`: two names never share a
    /// process, even with one command (each is put in its own asking mode).
    pub agent: String,
    /// The whole command: two that differ only in a hidden value
    /// (`--api-key=…`) are different agents.
    pub command: AcpCommand,
    /// The variables forwarded for the agent, sorted.
    pub env: Vec<(String, String)>,
    pub choice: ProfileChoice,
    /// The home's credential files its profile masks by exact path.
    pub stores: HomeStores,
}

impl AgentKey {
    pub fn new(
        agent: &str,
        command: AcpCommand,
        env: &[(String, String)],
        choice: ProfileChoice,
        stores: HomeStores,
    ) -> AgentKey {
        let mut env = env.to_vec();
        env.sort();
        AgentKey {
            agent: agent.to_owned(),
            command,
            env,
            choice,
            stores,
        }
    }

    /// The key for people: the command as displayed, the names (never the
    /// values) of the forwarded variables, and what the profile grants.
    pub fn describe(&self) -> String {
        let mut text = self.command.display.clone();
        if !self.env.is_empty() {
            let names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
            text.push_str(&format!(" with {}", names.join(", ")));
        }
        let mut grants = Vec::new();
        if self.choice.web_search {
            grants.push("web search");
        }
        if self.choice.codex_config {
            grants.push("the user's Codex config");
        }
        if !grants.is_empty() {
            text.push_str(&format!("; allows {}", grants.join(" and ")));
        }
        text
    }
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What a start hands the pool: a spawned, initialized agent and what is
/// known about it.
pub struct HostParts {
    pub agent: Agent,
    pub info: AgentInfo,
    /// The modes its sessions are put in, best first.
    pub modes: Vec<&'static str>,
    /// Whether its environment carries an API key.
    pub api_key: bool,
    /// Why it runs without the permission profile, if it does.
    pub unconfined: Option<String>,
    /// Its Codex home, as resolved when it started.
    pub codex_home: Option<PathBuf>,
    pub stderr: StderrTail,
}

/// One live agent process of the pool: what its start handed over (read
/// through `Deref`), its key and routes, and who holds it.
pub struct Host {
    pub id: u64,
    pub key: AgentKey,
    parts: HostParts,
    pub routes: Routes,
    started: Instant,
    usage: Mutex<Usage>,
    /// Wakes the watcher when the usage changed.
    changed: Notify,
}

/// Who holds the process and since when nobody used it.
struct Usage {
    holders: BTreeMap<u64, Holder>,
    last_used: Instant,
    /// Set once the process is being stopped: no new leases.
    retiring: Option<String>,
    /// Set when the process should stop once no turn runs on it (it lost its
    /// authentication): no new leases meanwhile.
    draining: Option<String>,
}

struct Holder {
    workspace: Arc<Path>,
    /// A turn of this workspace runs (or waits for a permission).
    busy: bool,
}

impl std::ops::Deref for Host {
    type Target = HostParts;

    fn deref(&self) -> &HostParts {
        &self.parts
    }
}

impl Host {
    /// Stops the process (`why` goes to the log); every workspace on it
    /// learns of the exit through its route.
    pub fn retire(&self, why: &str, mode: StopMode) {
        let first = {
            let mut usage = self.usage();
            let first = usage.retiring.is_none();
            usage.retiring.get_or_insert_with(|| why.to_owned());
            first
        };
        if first {
            tracing::info!(pid = ?self.agent.pid, why, "stopping a codex-acp process");
        }
        self.agent.stop_because(mode, why);
        self.changed.notify_one();
    }

    /// Takes no new sessions, and stops once no turn runs on it.
    pub fn drain(&self, why: &str) {
        tracing::info!(pid = ?self.agent.pid, why, "draining a codex-acp process");
        self.usage().draining.get_or_insert_with(|| why.to_owned());
        self.changed.notify_one();
    }

    /// Whether it still takes sessions.
    pub fn usable(&self) -> bool {
        let usage = self.usage();
        usage.retiring.is_none() && usage.draining.is_none() && !self.agent.is_ending()
    }

    /// The workspaces holding it, in the order they came.
    pub fn workspaces(&self) -> Vec<Arc<Path>> {
        self.usage()
            .holders
            .values()
            .map(|holder| holder.workspace.clone())
            .collect()
    }

    fn lease(self: &Arc<Self>, id: u64, workspace: &Arc<Path>) -> Lease {
        self.usage().holders.insert(
            id,
            Holder {
                workspace: workspace.clone(),
                busy: false,
            },
        );
        self.changed.notify_one();
        Lease { host: self.clone(), id }
    }

    /// When the process falls idle: `None` while a turn runs on it; now
    /// when it drains and no turn runs.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        let usage = self.usage();
        if usage.retiring.is_some() || usage.holders.values().any(|holder| holder.busy) {
            return None;
        }
        match usage.draining {
            Some(_) => Some(usage.last_used),
            None => Some(usage.last_used + idle),
        }
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn status(&self) -> AgentProcessStatus {
        let usage = self.usage();
        AgentProcessStatus {
            pid: self.agent.pid,
            agent: self.key.describe(),
            workspaces: usage
                .holders
                .values()
                .map(|holder| holder.workspace.to_path_buf())
                .collect(),
            busy: usage.holders.values().filter(|holder| holder.busy).count(),
            started_secs_ago: self.started.elapsed().as_secs(),
            idle_secs: usage.last_used.elapsed().as_secs(),
            rss_kb: self.agent.pid.and_then(codex_fusion_protocol::procfs::tree_rss_kb),
            stopping: usage.retiring.clone().or_else(|| usage.draining.clone()),
            unconfined: self.unconfined.clone(),
        }
    }
}

/// One workspace's hold on a process. Its id tags the workspace's routes;
/// dropping it forgets them and lets the process fall idle.
pub struct Lease {
    host: Arc<Host>,
    id: u64,
}

impl Lease {
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }

    /// The tag of this workspace's routes on the process.
    pub fn tag(&self) -> u64 {
        self.id
    }

    /// A turn of this workspace starts (`true`) or ends on the process.
    pub fn set_busy(&self, busy: bool) {
        {
            let mut usage = self.host.usage();
            usage.last_used = Instant::now();
            if let Some(holder) = usage.holders.get_mut(&self.id) {
                holder.busy = busy;
            }
        }
        self.host.changed.notify_one();
    }

    /// The other workspaces on the same process.
    pub fn shared_with(&self) -> Vec<PathBuf> {
        self.host
            .usage()
            .holders
            .iter()
            .filter(|(id, _)| **id != self.id)
            .map(|(_, holder)| holder.workspace.to_path_buf())
            .collect()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.host.routes.remove_tag(self.id);
        {
            let mut usage = self.host.usage();
            usage.holders.remove(&self.id);
            usage.last_used = Instant::now();
        }
        self.host.changed.notify_one();
    }
}

/// Every agent process of the daemon.
pub struct Pool {
    hosts: Mutex<Vec<Arc<Host>>>,
    /// One start at a time per key.
    gates: Mutex<Vec<(AgentKey, Arc<tokio::sync::Mutex<()>>)>>,
    next_id: AtomicU64,
    max_sessions: usize,
    idle: Duration,
    tasks: TaskTracker,
}

impl Pool {
    pub fn new(max_sessions: usize, idle: Duration, tasks: TaskTracker) -> Arc<Pool> {
        Arc::new(Pool {
            hosts: Mutex::new(Vec::new()),
            gates: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            max_sessions: max_sessions.max(1),
            idle,
            tasks,
        })
    }

    /// A fresh tag for a route that belongs to no lease (never reused).
    pub fn next_tag(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A lease for `workspace` on a process with `key`: a live one with room,
    /// or one `start` spawns (given the routes the process will use). Two
    /// workspaces asking for a new key at once share one start.
    pub async fn attach<F, Fut>(
        self: &Arc<Self>,
        key: &AgentKey,
        workspace: &Arc<Path>,
        start: F,
    ) -> Result<Lease, AgentFailure>
    where
        F: FnOnce(Routes) -> Fut,
        Fut: Future<Output = Result<HostParts, AgentFailure>>,
    {
        if let Some(lease) = self.lease_existing(key, workspace) {
            return Ok(lease);
        }
        let gate = self.gate(key);
        let _starting = gate.lock().await;
        if let Some(lease) = self.lease_existing(key, workspace) {
            return Ok(lease);
        }
        let routes = Routes::default();
        let parts = start(routes.clone()).await?;
        let host = Arc::new(Host {
            id: self.next_tag(),
            key: key.clone(),
            parts,
            routes,
            started: Instant::now(),
            usage: Mutex::new(Usage {
                holders: BTreeMap::new(),
                last_used: Instant::now(),
                retiring: None,
                draining: None,
            }),
            changed: Notify::new(),
        });
        let lease = host.lease(self.next_tag(), workspace);
        self.lock().push(host.clone());
        self.tasks.spawn(self.clone().watch(host));
        Ok(lease)
    }

    /// A lease on a running process with `key` and room, never a new one.
    pub fn lease_running(&self, key: &AgentKey, workspace: &Arc<Path>) -> Option<Lease> {
        self.lease_existing(key, workspace)
    }

    /// Whether no agent process runs.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lease_existing(&self, key: &AgentKey, workspace: &Arc<Path>) -> Option<Lease> {
        let hosts = self.lock();
        let host = hosts
            .iter()
            .find(|host| host.key == *key && host.usable() && host.usage().holders.len() < self.max_sessions)?;
        Some(host.lease(self.next_tag(), workspace))
    }

    fn gate(&self, key: &AgentKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, gate)) = gates.iter().find(|(known, _)| known == key) {
            return gate.clone();
        }
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        gates.push((key.clone(), gate.clone()));
        gate
    }

    /// Stops a process once none of its sessions has been used for the idle
    /// limit, and forgets it once it is gone.
    async fn watch(self: Arc<Self>, host: Arc<Host>) {
        let mut exit = host.agent.exit_signal();
        loop {
            let deadline = host.idle_deadline(self.idle);
            tokio::select! {
                _ = exit.wait_for(Option::is_some) => break,
                _ = host.changed.notified() => {}
                _ = sleep_until(deadline) => {
                    if host.idle_deadline(self.idle).is_some_and(|deadline| Instant::now() >= deadline) {
                        let draining = host.usage().draining.clone();
                        match draining {
                            Some(why) => host.retire(&why, StopMode::Graceful),
                            None => {
                                tracing::info!(idle_secs = self.idle.as_secs(), "no session of this codex-acp was used for the idle limit");
                                host.retire("idle", StopMode::Graceful);
                            }
                        }
                    }
                }
            }
        }
        self.lock().retain(|known| !Arc::ptr_eq(known, &host));
        let mut gates = self.gates.lock().unwrap_or_else(|poison| poison.into_inner());
        let hosts = self.lock();
        gates.retain(|(key, _)| hosts.iter().any(|host| host.key == *key));
    }

    /// Every process, for `status`.
    pub fn status(&self) -> Vec<AgentProcessStatus> {
        self.lock().iter().map(|host| host.status()).collect()
    }

    /// Stops every process gracefully (daemon shutdown).
    pub fn stop_all(&self) {
        for host in self.lock().iter() {
            host.retire("codex-fusiond is stopping", StopMode::Graceful);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Host>>> {
        self.hosts.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Sleeps until `deadline`, or for ever without one.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
