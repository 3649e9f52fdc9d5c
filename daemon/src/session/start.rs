//! Attaching a workspace to a pooled codex-acp and opening its Codex
//! session. The slow work (finding the codex binary for read confinement,
//! spawning and initializing a process if no process with the key has room,
//! authenticate, `session/new` or `session/load`, setting the mode) runs in
//! a task; the actor stays responsive and learns the outcome as
//! [`Internal::Started`].

use super::*;
use crate::acp::API_KEY_VARS;
use crate::agent::{Route, Routes};
use crate::confine::{HomeStores, PROFILE_MODE, ProfileChoice, ProfileFacts};
use crate::environment;
use crate::pool::{AgentKey, HostParts, Lease};
use std::collections::HashMap;

/// How long a failed start waits for the child's exit, so the error can
/// quote its stderr instead of a bare "connection closed".
const EXIT_REPORT_WAIT: Duration = Duration::from_millis(500);

/// The Codex homes an agent has started on since the daemon started, and
/// one lock per home for the first start. Codex creates its state database
/// when it first runs on a home; two codex processes doing that at once fail
/// one of them ("failed to initialize sqlite state runtime"), so the first
/// start on a home waits for any other first start on it. Later starts run
/// side by side.
#[derive(Default)]
pub struct FirstStarts {
    homes: std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<bool>>>>,
}

impl FirstStarts {
    /// Waits until no other first start on `home` runs. The guard is `Some`
    /// while this is the first start (set it to `true` once it succeeded),
    /// `None` when the home has been started on before.
    async fn enter(&self, home: &Path) -> Option<tokio::sync::OwnedMutexGuard<bool>> {
        let lock = {
            let mut homes = self.homes.lock().unwrap_or_else(|poison| poison.into_inner());
            homes.entry(home.to_path_buf()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        (!*guard).then_some(guard)
    }
}

/// Whether a start failed the way two first starts on one fresh Codex home
/// do; such a start is tried once more.
fn fresh_home_race(failure: &AgentFailure) -> bool {
    failure
        .to_string()
        .contains("failed to initialize sqlite state runtime")
}

/// What a start needs from the actor: everything is owned, so the slow part
/// runs in a task while the actor goes on.
pub(super) struct StartPlan {
    /// The agent of `CODEX_FUSION_AGENTS` to start.
    pub agent: Arc<str>,
    pub settings: Arc<Settings>,
    pub agent_env: Vec<(String, String)>,
    /// The Codex session to restore, if any.
    pub resume: Option<String>,
    /// The session to close first: it moves to another process, and Codex
    /// lets only one process hold a session.
    pub leaving: Option<Leaving>,
    pub spawning: Spawning,
}

/// Whether a start may spawn an agent process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spawning {
    Allowed,
    /// Only a session on a process that already runs with this key (a
    /// workspace warmed before it ever used Codex costs a session, never a
    /// process); without one the start ends with nothing.
    ShareOnly,
}

/// A session left on a process, closed before anything else happens.
pub(super) struct Leaving {
    pub lease: Lease,
    pub session: String,
}

impl Leaving {
    /// Closes the session (where the agent can) and lets the lease go.
    /// `false` if the agent did not answer in time.
    pub async fn close(self) -> bool {
        let host = self.lease.host().clone();
        let closed = match host.info.close_session {
            true => tokio::time::timeout(CLOSE_GRACE, acp::close_session(&host.agent.connection, &self.session))
                .await
                .is_ok(),
            false => true,
        };
        drop(self.lease);
        closed
    }
}

impl WorkspaceActor {
    /// Attaches to a pooled agent (started if none with this key runs) and
    /// opens a session on it, in a task; the outcome comes back as
    /// [`Internal::Started`].
    pub(super) fn start(
        &mut self,
        settings: Arc<Settings>,
        agent_env: Vec<(String, String)>,
        leaving: Option<Leaving>,
    ) {
        self.start_with(settings, agent_env, leaving, Spawning::Allowed);
    }

    pub(super) fn start_with(
        &mut self,
        settings: Arc<Settings>,
        agent_env: Vec<(String, String)>,
        leaving: Option<Leaving>,
        spawning: Spawning,
    ) {
        self.attempt += 1;
        self.replayed_prompt = false;
        let attempt = self.attempt;
        self.link = AgentLink::Starting { attempt };
        let plan = StartPlan {
            agent: self.agent.clone(),
            settings,
            agent_env,
            resume: self.resume_id.clone(),
            leaving,
            spawning,
        };
        let context = self.context.clone();
        let workspace = self.workspace.clone();
        let sender = self.agent_tx.clone();
        let stderr = self.stderr.clone();
        let internal = self.internal_tx.clone();
        let shutdown = context.shutdown.clone();
        self.context.tasks.spawn(
            async move {
                let result = tokio::select! {
                    result = start(&context, &workspace, plan, sender, stderr) => result.map(|started| started.map(Box::new)),
                    _ = shutdown.cancelled() => Err(AgentFailure::Other("codex-fusiond is shutting down".into())),
                };
                let _ = internal.send(Internal::Started { attempt, result });
            }
            .in_current_span(),
        );
    }

    pub(super) fn on_started(&mut self, attempt: u64, result: Result<Option<Box<Started>>, AgentFailure>) {
        // History a `session/load` replayed may still be queued; it must be
        // gone before the session exists and a turn could take it for its
        // own answer.
        while let Ok(message) = self.agent_rx.try_recv() {
            self.on_agent(message);
        }
        if !matches!(self.link, AgentLink::Starting { attempt: current } if current == attempt) {
            // Overtaken by a reset or a newer start: the session it opened is
            // nobody's.
            if let Ok(Some(started)) = result {
                let Started { lease, opened, .. } = *started;
                self.context.tasks.spawn(
                    Leaving {
                        lease,
                        session: opened.session_id,
                    }
                    .close(),
                );
            }
            return;
        }
        match result {
            Ok(None) => {
                tracing::debug!("no codex-acp with this workspace's key runs: not warmed");
                self.link = AgentLink::Detached;
            }
            Ok(Some(started)) => {
                let Started {
                    lease,
                    opened,
                    instructions,
                } = *started;
                tracing::info!(
                    session_id = %opened.session_id,
                    loaded = opened.loaded,
                    mode = ?opened.mode,
                    pid = ?lease.host().agent.pid,
                    shared_with = lease.shared_with().len(),
                    "Codex session ready"
                );
                self.stderr = lease.host().stderr.clone();
                if let Some(note) = opened.note {
                    self.pending_note = Some(note);
                }
                if !opened.loaded {
                    // A fresh session starts with Codex's own model.
                    self.sticky_choice = ModelChoice::default();
                }
                // A restored session that had a prompt has its AGENTS.md.
                let instructions = instructions.filter(|_| !(opened.loaded && self.replayed_prompt));
                self.resume_id = None;
                self.last_error = None;
                self.remember(Some(&opened.session_id));
                self.link = AgentLink::Ready(Box::new(Attached {
                    lease,
                    session: Session {
                        id: opened.session_id,
                        loaded: opened.loaded,
                        mode: opened.mode,
                        models: opened.models,
                        turns: 0,
                        usage: UsageTotals::default(),
                        instructions,
                    },
                }));
            }
            Err(failure) => {
                let message = failure.to_string();
                tracing::warn!(%message, "starting the Codex session failed");
                self.link = AgentLink::Detached;
                self.last_error = Some(message.clone());
                if let Some(turn) = self.turn.take() {
                    self.finish(turn, Err(("failed", message)));
                }
            }
        }
    }
}

/// A lease on a pooled agent with this workspace's session open on it.
pub(super) struct Started {
    pub lease: Lease,
    pub opened: OpenedSession,
    /// The workspace's AGENTS.md, framed, for the session's first prompt.
    pub instructions: Option<String>,
}

/// The whole start: the agent's environment and confinement, the project
/// config check, a lease from the pool (spawning only if no process with
/// this key has room), then the session, restored where there is one.
async fn start(
    context: &WorkspaceContext,
    workspace: &Arc<Path>,
    plan: StartPlan,
    sender: mpsc::Sender<AgentMessage>,
    stderr: StderrTail,
) -> Result<Option<Started>, AgentFailure> {
    let StartPlan {
        agent,
        settings,
        agent_env,
        resume,
        leaving,
        spawning,
    } = plan;
    if spawning == Spawning::ShareOnly && context.pool.is_empty() {
        return Ok(None);
    }
    // Only this agent's own credentials: they are its pool key too, so no
    // other agent's key reaches its process.
    let agent_env = environment::forwarded_for(&agent, &agent_env);
    if let Some(leaving) = leaving {
        // Codex lets one process hold a session at a time.
        leaving.close().await;
    }
    let cwd = agent_directory(&context.state_dir).map_err(|error| {
        AgentFailure::Other(format!(
            "cannot prepare codex-acp's working directory: {error}; the state directory must be yours (set CODEX_FUSION_STATE_DIR to one that is, and restart the daemon with `codex-fusion stop`)"
        ))
    })?;
    let daemon_env = environment::daemon_environment();
    let command_env = &settings.acp_command.env;
    let base = environment::agent_environment(&agent, daemon_env.clone(), &agent_env, command_env, &[]);
    let choice = profile_choice(&settings);
    let (facts, docs) = profile_facts(&base, &context.state_dir, choice);
    // The read-confining profile is Codex's; another agent of a council is
    // never asked `cli doctor` (it would take the words for its own).
    let confinement = if *agent == *codex_fusion_protocol::agents::DEFAULT_AGENT {
        context
            .confinement
            .get(&settings.acp_command, &base, &cwd, &facts)
            .await
    } else {
        Err(crate::confine::Unconfined::NotCodex(format!(
            "`{agent}` is not Codex: it has no read-confining profile, and asks before acting in its own mode"
        )))
    };
    if confinement.is_ok() {
        // Codex would load the workspace's own `.codex/` config.
        refuse_project_config(workspace, facts.choice, facts.codex_home.as_deref())?;
    }
    // An agent's exact masks are those of its start: only confined agents
    // have any, and only theirs go stale.
    let stores = match &confinement {
        Ok(_) => facts.home_stores.clone(),
        Err(_) => HomeStores::default(),
    };
    let key = AgentKey::new(&agent, settings.acp_command.clone(), &agent_env, choice, stores);
    let spawn = Spawn {
        agent: &agent,
        context,
        settings: &settings,
        cwd: &cwd,
        daemon_env,
        agent_env: &agent_env,
        confinement,
        codex_home: facts.codex_home.clone(),
        stderr,
    };
    let lease = match spawning {
        Spawning::Allowed => context.pool.attach(&key, workspace, |routes| spawn.run(routes)).await?,
        Spawning::ShareOnly => match context.pool.lease_running(&key, workspace) {
            Some(lease) => lease,
            None => return Ok(None),
        },
    };
    let host = lease.host().clone();
    let route = Route {
        tag: lease.tag(),
        sender,
    };
    if let Some(id) = &resume {
        // Before the load, so the history it replays comes here.
        host.routes.add(id, route.clone());
    }
    let open = acp::open_session(
        &host.agent.connection,
        &agent,
        &host.info,
        workspace,
        resume.as_deref(),
        host.api_key,
        &host.modes,
    );
    let opened = match tokio::time::timeout(settings.startup_timeout, open).await {
        Ok(Ok(opened)) => opened,
        // The agent's own words may quote its key.
        Ok(Err(failure)) => {
            let failure = failure.map_text(|text| host.agent.scrub(text));
            if matches!(failure, AgentFailure::AuthRequired(_)) {
                // A new process picks up a new login or key.
                host.drain("Codex lost its authentication");
            }
            return Err(failure);
        }
        Err(_) => return Err(too_slow(settings.startup_timeout)),
    };
    if let Some(id) = &resume
        && *id != opened.session_id
    {
        host.routes.remove(id, lease.tag());
    }
    host.routes.add(&opened.session_id, route);
    // A confined Codex does not look for the workspace's AGENTS.md itself
    // (its wrapper turns that off): its session's first prompt carries it.
    // A restored session that already had a prompt has it in its
    // transcript; the actor knows that from the replay (`on_started`).
    let instructions = match &host.unconfined {
        Some(_) => None,
        None => {
            let mut stores = vec![facts.state_dir.as_path()];
            stores.extend(facts.codex_home.as_deref());
            crate::instructions::read(workspace, &docs, &stores).map(|doc| crate::instructions::frame(workspace, &doc))
        }
    };
    Ok(Some(Started {
        lease,
        opened,
        instructions,
    }))
}

/// Spawning a new agent process for the pool.
struct Spawn<'a> {
    agent: &'a str,
    context: &'a WorkspaceContext,
    settings: &'a Settings,
    cwd: &'a Path,
    daemon_env: Vec<(String, String)>,
    agent_env: &'a [(String, String)],
    confinement: Result<Arc<crate::confine::Confinement>, crate::confine::Unconfined>,
    codex_home: Option<PathBuf>,
    stderr: StderrTail,
}

impl Spawn<'_> {
    /// Spawns and initializes the agent; a first start that failed the way
    /// two first starts on one fresh Codex home do is tried once more.
    async fn run(self, routes: Routes) -> Result<HostParts, AgentFailure> {
        // Held until this start has succeeded or failed, if it is the first
        // on this home (not across the agent's life).
        let mut first_start = match &self.codex_home {
            Some(home) => self.context.first_starts.enter(home).await,
            None => None,
        };
        let result = match self.once(routes.clone()).await {
            Err(failure) if fresh_home_race(&failure) => {
                // Another codex (outside this daemon) was creating the home's
                // state at the same moment: once more.
                tracing::warn!(%failure, "codex-acp failed initialising a fresh Codex home; starting it once more");
                self.once(routes).await
            }
            other => other,
        };
        if let (Ok(_), Some(first)) = (&result, first_start.as_mut()) {
            **first = true;
        }
        result
    }

    async fn once(&self, routes: Routes) -> Result<HostParts, AgentFailure> {
        let modes = match &self.confinement {
            // The profile or nothing: plain read-only mode lets sandboxed
            // commands read the whole disk.
            Ok(_) => vec![PROFILE_MODE],
            Err(_) => acp::asking_modes(self.agent).to_vec(),
        };
        // A second line of defence: codex-acp starts (and reloads) sessions
        // in this mode even before we set it.
        let mut ours = vec![("INITIAL_AGENT_MODE".to_owned(), modes[0].to_owned())];
        if let Ok(confinement) = &self.confinement {
            ours.push(("CODEX_PATH".into(), confinement.wrapper.display().to_string()));
        }
        let command = &self.settings.acp_command;
        let env =
            environment::agent_environment(self.agent, self.daemon_env.clone(), self.agent_env, &command.env, &ours);
        let api_key = API_KEY_VARS
            .iter()
            .any(|name| env.iter().any(|(key, value)| key == name && !value.is_empty()));
        let unconfined = self.confinement.as_ref().err().map(ToString::to_string);
        let agent = match &self.context.launcher {
            super::Launcher::Spawn => Agent::spawn(
                command,
                self.cwd,
                &env,
                routes,
                self.stderr.clone(),
                &self.context.tasks,
            )
            .await
            .map_err(|error| match error {
                // Codex's own words name codex-acp's package; another agent
                // is told its own.
                crate::agent::SpawnError::NotFound { program }
                    if self.agent != codex_fusion_protocol::agents::DEFAULT_AGENT =>
                {
                    AgentFailure::Other(codex_fusion_protocol::agents::not_installed(self.agent, &program))
                }
                other => AgentFailure::Other(other.to_string()),
            })?,
            #[cfg(test)]
            super::Launcher::InProcess(make) => make(routes).await,
        };
        tracing::info!(pid = ?agent.pid, command = %agent.command.display, confined = self.confinement.is_ok(), "codex-acp started");
        let initialized = async {
            let info = acp::initialize(&agent.connection).await?;
            if let (Some(reason), true) = (&unconfined, info.is_codex_acp()) {
                return Err(AgentFailure::Unconfined(reason.clone()));
            }
            Ok(info)
        };
        match tokio::time::timeout(self.settings.startup_timeout, initialized).await {
            Ok(Ok(info)) => Ok(HostParts {
                agent,
                info,
                modes,
                api_key,
                unconfined,
                codex_home: self.codex_home.clone(),
                stderr: self.stderr.clone(),
            }),
            // The agent's own words may quote its key.
            Ok(Err(failure)) => Err(explain_start_failure(self.agent, &agent, failure)
                .await
                .map_text(|text| agent.scrub(text))),
            Err(_) => Err(too_slow(self.settings.startup_timeout)),
        }
    }
}

/// The directory agents start in: empty and the user's own, so that
/// nothing a workspace holds (`node_modules`, `.npmrc`, a `.codex/`) can
/// change what `npx` or codex-acp runs. Sessions get their workspace in
/// `session/new`.
fn agent_directory(state_dir: &Path) -> Result<PathBuf, codex_fusion_protocol::private::PrivateError> {
    let dir = state_dir.join("agent-cwd");
    codex_fusion_protocol::private::own_dir(&dir)?;
    Ok(dir)
}

/// What of a connection's settings goes into an agent's profile.
pub(super) fn profile_choice(settings: &Settings) -> ProfileChoice {
    ProfileChoice {
        web_search: settings.policy.allow_external_reads,
        codex_config: settings.allow_codex_config,
    }
}

/// Refuses a workspace whose own Codex configuration Codex would load and
/// act on without asking (codex-acp trusts every session root).
fn refuse_project_config(
    workspace: &Path,
    choice: ProfileChoice,
    codex_home: Option<&Path>,
) -> Result<(), AgentFailure> {
    if choice.codex_config {
        return Ok(());
    }
    match crate::confine::project_codex_config(workspace, codex_home) {
        None => Ok(()),
        Some(found) => Err(AgentFailure::Other(format!(
            "{} is a Codex project configuration, which Codex would load and act on without asking: its MCP servers and hooks run outside the sandbox and its rules let commands run unapproved. codex-fusion does not open a Codex session here. Remove or rename it, or, if you trust this repository, set {}=1 in the MCP server's environment",
            found.display(),
            crate::config::ALLOW_CODEX_CONFIG_ENV
        ))),
    }
}

/// What the permission profile masks and allows, from the agent's own
/// environment (its home, its Codex home) and the connection's choice.
/// With them, what the user's Codex config says of project instructions
/// (the config is read once for both).
fn profile_facts(
    env: &[(String, String)],
    state_dir: &Path,
    choice: ProfileChoice,
) -> (ProfileFacts, crate::instructions::DocSettings) {
    let get = |name: &str| {
        env.iter()
            .find(|(key, value)| key == name && value.starts_with('/'))
            .map(|(_, value)| PathBuf::from(value))
    };
    let home = get("HOME");
    let codex_home = get("CODEX_HOME").or_else(|| home.as_ref().map(|home| home.join(".codex")));
    // Resolved the way the sandbox sees them: through symlinks.
    let canonical = |path: PathBuf| std::fs::canonicalize(&path).unwrap_or(path);
    let codex_home = codex_home.map(canonical);
    let home = home.map(canonical);
    let config = codex_home.as_deref().and_then(crate::confine::codex_config);
    let facts = ProfileFacts {
        home_stores: HomeStores::now(home.as_deref()),
        home,
        user_mcp_servers: config.as_ref().map(crate::confine::mcp_servers_in).unwrap_or_default(),
        codex_home,
        state_dir: canonical(state_dir.to_path_buf()),
        choice,
    };
    let docs = config
        .as_ref()
        .map(crate::instructions::DocSettings::from_config)
        .unwrap_or_default();
    (facts, docs)
}

/// A failure while starting, with the child's exit and stderr when it died.
async fn explain_start_failure(name: &str, agent: &Agent, failure: AgentFailure) -> AgentFailure {
    if !matches!(failure, AgentFailure::Other(_)) {
        return failure;
    }
    let program = match name {
        codex_fusion_protocol::agents::DEFAULT_AGENT => "codex-acp",
        other => other,
    };
    match agent.wait_exit(EXIT_REPORT_WAIT).await {
        Some(reason) => AgentFailure::Other(format!("{program} exited while starting: {reason}")),
        None => failure,
    }
}

/// A start (spawn, initialize, session setup) that took longer than allowed.
fn too_slow(limit: Duration) -> AgentFailure {
    AgentFailure::Other(format!(
        "codex-acp did not finish starting within {} s (initialize and session setup); it was stopped and the next call tries again (CODEX_FUSION_STARTUP_TIMEOUT_MS raises the limit)",
        limit.as_secs()
    ))
}
