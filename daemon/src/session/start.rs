//! Starting codex-acp and opening Codex sessions. The slow work (finding the
//! codex binary for read confinement, spawning, initialize, authenticate,
//! `session/new` or `session/load`, setting the mode) runs in a task; the
//! actor stays responsive and learns the outcome as [`Internal::Started`].

use super::turns;
use super::*;
use crate::acp::{API_KEY_VARS, READ_ONLY_MODE};
use crate::confine::{PROFILE_MODE, ProfileChoice, ProfileFacts};
use crate::environment;
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

impl SessionActor {
    /// Spawns codex-acp with `agent_env` (credentials forwarded by the client
    /// that needs it) and opens a session on it, in a task.
    pub(super) fn start_agent(&mut self, settings: Arc<Settings>, agent_env: Vec<(String, String)>) {
        self.generation += 1;
        self.starting = true;
        let generation = self.generation;
        self.pending_agent_env = turns::sorted(&agent_env);
        self.pending_choice = profile_choice(&settings);
        let context = self.context.clone();
        let workspace = self.workspace.clone();
        let resume = self.resume_id.clone();
        let events = self.agent_tx.clone();
        let stderr = self.stderr.clone();
        let internal = self.internal_tx.clone();
        let shutdown = context.shutdown.clone();
        let work = async move {
            let cwd = agent_directory(&context.state_dir).map_err(|error| {
                AgentFailure::Other(format!(
                    "cannot prepare codex-acp's working directory: {error}; the state directory must be yours (set CODEX_FUSION_STATE_DIR to one that is, and restart the daemon with `codex-fusion stop`)"
                ))
            })?;
            let daemon_env = environment::daemon_environment();
            let command_env = &settings.acp_command.env;
            let base = environment::agent_environment(daemon_env.clone(), &agent_env, command_env, &[]);
            let facts = profile_facts(&base, &context.state_dir, profile_choice(&settings));
            let codex_home = facts.codex_home.clone();
            let confinement = context
                .confinement
                .get(&settings.acp_command, &base, &cwd, &facts)
                .await;
            if confinement.is_ok() {
                // Codex would load the workspace's own `.codex/` config.
                refuse_project_config(&workspace, facts.choice, facts.codex_home.as_deref())?;
            }
            let modes = match &confinement {
                // The profile or nothing: plain read-only mode lets
                // sandboxed commands read the whole disk.
                Ok(_) => vec![PROFILE_MODE],
                Err(_) => vec![READ_ONLY_MODE],
            };
            // A second line of defence: codex-acp starts (and reloads)
            // sessions in this mode even before we set it.
            let mut ours = vec![("INITIAL_AGENT_MODE".to_owned(), modes[0].to_owned())];
            if let Ok(confinement) = &confinement {
                ours.push(("CODEX_PATH".into(), confinement.wrapper.display().to_string()));
            }
            let env = environment::agent_environment(daemon_env, &agent_env, command_env, &ours);
            let api_key = API_KEY_VARS
                .iter()
                .any(|name| env.iter().any(|(key, value)| key == name && !value.is_empty()));
            let unconfined = confinement.as_ref().err().map(ToString::to_string);
            // Held until this start has succeeded or failed, if it is the
            // first on this home (not across the session's life).
            let mut first_start = match &codex_home {
                Some(home) => context.first_starts.enter(home).await,
                None => None,
            };
            let agent = Agent::spawn(
                &settings.acp_command,
                &cwd,
                &env,
                generation,
                events,
                stderr,
                &context.tasks,
            )
            .await
            .map_err(|error| AgentFailure::Other(error.to_string()))?;
            tracing::info!(pid = ?agent.pid, generation, command = %agent.command.display, confined = confinement.is_ok(), "codex-acp started");
            let connection = agent.connection.clone();
            let setup = async {
                let info = acp::initialize(&connection).await?;
                if let (Some(reason), true) = (&unconfined, info.is_codex_acp()) {
                    return Err(AgentFailure::Unconfined(reason.clone()));
                }
                let opened =
                    acp::open_session(&connection, &info, &workspace, resume.as_deref(), api_key, &modes).await?;
                Ok::<_, AgentFailure>((info, opened))
            };
            match tokio::time::timeout(settings.startup_timeout, setup).await {
                Ok(Ok((info, opened))) => {
                    if let Some(first) = first_start.as_mut() {
                        **first = true;
                    }
                    Ok(Box::new(Started {
                        agent: Some(agent),
                        info,
                        opened,
                        modes,
                        api_key,
                        unconfined,
                        codex_home,
                    }))
                }
                // The agent's own words may quote its key.
                Ok(Err(failure)) => Err(explain_start_failure(&agent, failure)
                    .await
                    .map_text(|text| agent.scrub(text))),
                Err(_) => Err(too_slow(settings.startup_timeout)),
            }
        };
        self.context.tasks.spawn(
            async move {
                let result = tokio::select! {
                    result = work => result,
                    _ = shutdown.cancelled() => Err(AgentFailure::Other("codex-fusiond is shutting down".into())),
                };
                let _ = internal.send(Internal::Started { generation, result });
            }
            .in_current_span(),
        );
    }

    /// Opens a session (fresh, or `resume_id` restored) on the live,
    /// initialized agent.
    pub(super) fn open_session(&mut self, settings: &Settings) {
        let (Some(agent), Some(info)) = (self.agent.as_ref(), self.agent_info.clone()) else {
            return;
        };
        self.starting = true;
        let connection = agent.connection.clone();
        let workspace = self.workspace.clone();
        let resume = self.resume_id.clone();
        let timeout = settings.startup_timeout;
        let generation = self.generation;
        let api_key = self.agent_has_api_key;
        let unconfined = self.agent_unconfined.clone();
        let codex_home = self.agent_codex_home.clone();
        let choice = self.agent_choice;
        let modes = self.agent_modes.clone();
        let internal = self.internal_tx.clone();
        self.context.tasks.spawn(
            async move {
                // The workspace may have gained a project config since the
                // agent started.
                let checked = match unconfined {
                    None => refuse_project_config(&workspace, choice, codex_home.as_deref()),
                    Some(_) => Ok(()),
                };
                let setup = async {
                    checked?;
                    acp::open_session(&connection, &info, &workspace, resume.as_deref(), api_key, &modes).await
                };
                let result = match tokio::time::timeout(timeout, setup).await {
                    Ok(Ok(opened)) => Ok(Box::new(Started {
                        agent: None,
                        info,
                        opened,
                        modes,
                        api_key,
                        unconfined,
                        codex_home,
                    })),
                    Ok(Err(failure)) => Err(failure),
                    Err(_) => Err(too_slow(timeout)),
                };
                let _ = internal.send(Internal::Started { generation, result });
            }
            .in_current_span(),
        );
    }

    pub(super) fn on_started(&mut self, generation: u64, result: Result<Box<Started>, AgentFailure>) {
        // History a `session/load` replayed may still be queued; it must be
        // gone before the session exists and a turn could take it for its
        // own answer.
        while let Ok(message) = self.agent_rx.try_recv() {
            self.on_agent(message);
        }
        if generation != self.generation || !self.starting {
            // A start overtaken by a reset or a newer start; dropping its
            // agent kills it.
            return;
        }
        self.starting = false;
        let result = result.and_then(|started| match started.agent.as_ref().and_then(Agent::exit_reason) {
            Some(reason) => Err(AgentFailure::Other(format!(
                "codex-acp stopped right after starting: {reason}"
            ))),
            None => Ok(started),
        });
        match result {
            Ok(started) => {
                let Started {
                    agent,
                    info,
                    opened,
                    modes,
                    api_key,
                    unconfined,
                    codex_home,
                } = *started;
                tracing::info!(
                    session_id = %opened.session_id,
                    loaded = opened.loaded,
                    mode = ?opened.mode,
                    "Codex session ready"
                );
                if let Some(agent) = agent {
                    self.agent = Some(agent);
                    self.agent_env = std::mem::take(&mut self.pending_agent_env);
                    self.agent_choice = self.pending_choice;
                }
                self.idle_since = Instant::now();
                self.start_retried = false;
                self.agent_info = Some(info);
                self.agent_modes = modes;
                self.agent_has_api_key = api_key;
                self.agent_unconfined = unconfined;
                self.agent_codex_home = codex_home;
                if let Some(note) = opened.note {
                    self.pending_note = Some(note);
                }
                if !opened.loaded {
                    // A fresh session starts with Codex's own model.
                    self.sticky_choice = ModelChoice::default();
                }
                self.resume_id = None;
                self.last_error = None;
                self.remember(Some(&opened.session_id));
                self.session = Some(Session {
                    id: opened.session_id,
                    loaded: opened.loaded,
                    mode: opened.mode,
                    models: opened.models,
                    turns: 0,
                    usage: UsageTotals::default(),
                });
            }
            Err(failure) if fresh_home_race(&failure) && !self.start_retried && self.turn.is_some() => {
                // Another codex (outside this daemon, or one not serialised
                // with this one) was creating the home's state at the same
                // moment: once more, as a new generation.
                tracing::warn!(%failure, "codex-acp failed initialising a fresh Codex home; starting it once more");
                self.start_retried = true;
                if let Some(agent) = self.agent.take() {
                    agent.stop(StopMode::Kill);
                }
                self.agent_info = None;
                if let Some(turn) = self.turn.as_ref() {
                    let (settings, agent_env) = (turn.settings.clone(), turn.agent_env.clone());
                    self.start_agent(settings, agent_env);
                }
            }
            Err(failure) => {
                self.start_retried = false;
                // A failure on a live agent (opening a session on it) may
                // quote its key; one from a fresh start is scrubbed already.
                let message = match &self.agent {
                    Some(agent) => agent.scrub(&failure.to_string()),
                    None => failure.to_string(),
                };
                tracing::warn!(%message, "starting the Codex session failed");
                // The next call starts from a clean process.
                if let Some(agent) = self.agent.take() {
                    agent.stop(StopMode::Kill);
                }
                self.agent_info = None;
                self.last_error = Some(message.clone());
                if let Some(turn) = self.turn.take() {
                    self.finish(turn, Err(("failed", message)));
                }
            }
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
fn profile_facts(env: &[(String, String)], state_dir: &Path, choice: ProfileChoice) -> ProfileFacts {
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
    ProfileFacts {
        home: home.map(canonical),
        user_mcp_servers: codex_home
            .as_deref()
            .map(crate::confine::user_mcp_servers)
            .unwrap_or_default(),
        codex_home,
        state_dir: canonical(state_dir.to_path_buf()),
        choice,
    }
}

/// A failure while starting, with the child's exit and stderr when it died.
async fn explain_start_failure(agent: &Agent, failure: AgentFailure) -> AgentFailure {
    if !matches!(failure, AgentFailure::Other(_)) {
        return failure;
    }
    match agent.wait_exit(EXIT_REPORT_WAIT).await {
        Some(reason) => AgentFailure::Other(format!("codex-acp exited while starting: {reason}")),
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
