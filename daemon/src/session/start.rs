//! Starting codex-acp and opening Codex sessions. The slow work (finding the
//! codex binary for read confinement, spawning, initialize, authenticate,
//! `session/new` or `session/load`, setting the mode) runs in a task; the
//! actor stays responsive and learns the outcome as [`Internal::Started`].

use super::turns;
use super::*;
use crate::acp::{API_KEY_VARS, READ_ONLY_MODE};
use crate::confine::PROFILE_MODE;

/// How long a failed start waits for the child's exit, so the error can
/// quote its stderr instead of a bare "connection closed".
const EXIT_REPORT_WAIT: Duration = Duration::from_millis(500);

impl SessionActor {
    /// Spawns codex-acp with `agent_env` (credentials forwarded by the client
    /// that needs it) and opens a session on it, in a task.
    pub(super) fn start_agent(&mut self, settings: Arc<Settings>, agent_env: Vec<(String, String)>) {
        self.generation += 1;
        self.starting = true;
        let generation = self.generation;
        self.pending_agent_env = turns::sorted(&agent_env);
        let context = self.context.clone();
        let workspace = self.workspace.clone();
        let resume = self.resume_id.clone();
        let events = self.agent_tx.clone();
        let stderr = self.stderr.clone();
        let internal = self.internal_tx.clone();
        let shutdown = context.shutdown.clone();
        let work = async move {
            let confinement = context.confinement.get(&settings.acp_command, &context.state_dir).await;
            let modes = match &confinement {
                Some(_) => vec![PROFILE_MODE, READ_ONLY_MODE],
                None => vec![READ_ONLY_MODE],
            };
            let mut env = agent_env;
            // A second line of defence: codex-acp starts (and reloads)
            // sessions in this mode even before we set it.
            env.push(("INITIAL_AGENT_MODE".into(), modes[0].into()));
            if let Some(confinement) = &confinement {
                env.push(("CODEX_PATH".into(), confinement.wrapper.display().to_string()));
            }
            let api_key = API_KEY_VARS.iter().any(|name| {
                env.iter().any(|(key, value)| key == name && !value.is_empty())
                    || settings
                        .acp_command
                        .env
                        .iter()
                        .any(|(key, value)| key == name && !value.is_empty())
                    || std::env::var_os(name).is_some_and(|value| !value.is_empty())
            });
            let agent = Agent::spawn(
                &settings.acp_command,
                &workspace,
                &env,
                generation,
                events,
                stderr,
                &context.tasks,
            )
            .await
            .map_err(|error| AgentFailure::Other(error.to_string()))?;
            tracing::info!(pid = ?agent.pid, generation, command = %agent.command.display, confined = confinement.is_some(), "codex-acp started");
            let connection = agent.connection.clone();
            let setup = async {
                let info = acp::initialize(&connection).await?;
                let opened =
                    acp::open_session(&connection, &info, &workspace, resume.as_deref(), api_key, &modes).await?;
                Ok::<_, AgentFailure>((info, opened))
            };
            match tokio::time::timeout(settings.startup_timeout, setup).await {
                Ok(Ok((info, opened))) => Ok(Box::new(Started {
                    agent: Some(agent),
                    info,
                    opened,
                    modes,
                    api_key,
                })),
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
        let modes = self.agent_modes.clone();
        let internal = self.internal_tx.clone();
        self.context.tasks.spawn(
            async move {
                let setup = acp::open_session(&connection, &info, &workspace, resume.as_deref(), api_key, &modes);
                let result = match tokio::time::timeout(timeout, setup).await {
                    Ok(Ok(opened)) => Ok(Box::new(Started {
                        agent: None,
                        info,
                        opened,
                        modes,
                        api_key,
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
                }
                self.idle_since = Instant::now();
                self.agent_info = Some(info);
                self.agent_modes = modes;
                self.agent_has_api_key = api_key;
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
            Err(failure) => {
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
