//! Control requests from the CLI and the hook: ping, status, reset,
//! session start, log, watch (a stream: `crate::watch`), stop.

use std::sync::Arc;

use codex_fusion_protocol::Hello;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::config::Settings;
use crate::connection::{agent_env, canonical_workspace, control_requests};
use crate::daemon::Daemon;

pub async fn serve(daemon: Arc<Daemon>, hello: &Hello, reader: BufReader<OwnedReadHalf>, write: OwnedWriteHalf) {
    // The client's settings matter only for warming an agent on SessionStart;
    // a malformed one falls back to the defaults there (the hook must never
    // fail Claude), and the MCP connection reports it properly.
    let settings = Arc::new(
        Settings::from_env(&hello.env)
            .map(|(settings, _)| settings)
            .unwrap_or_default(),
    );
    let agent_env = agent_env(hello);
    let watch = control_requests(reader, write, daemon.shutdown.clone(), |request| {
        let daemon = daemon.clone();
        let settings = settings.clone();
        let agent_env = agent_env.clone();
        async move { handle(&daemon, request, settings, agent_env).await }
    })
    .await;
    if let Some((reader, write, workspace)) = watch {
        crate::watch::stream(daemon, workspace, reader, write).await;
    }
}

/// Answers one request; the flag says whether to close the connection.
async fn handle(
    daemon: &Arc<Daemon>,
    request: ControlRequest,
    settings: Arc<Settings>,
    agent_env: Vec<(String, String)>,
) -> (ControlResponse, bool) {
    match request {
        ControlRequest::Ping => (
            ControlResponse::Pong {
                daemon_version: codex_fusion_protocol::PACKAGE_VERSION.to_owned(),
                pid: std::process::id(),
            },
            false,
        ),
        ControlRequest::Status { workspace } => {
            let only = match workspace.as_deref().map(canonical_workspace).transpose() {
                Ok(only) => only,
                Err(message) => return (ControlResponse::Error { message }, false),
            };
            (ControlResponse::Status(daemon.status(only.as_deref()).await), false)
        }
        ControlRequest::Reset { workspace } => match canonical_workspace(&workspace) {
            Ok(workspace) => {
                // Every agent's session here: the live ones and those only
                // remembered on disk.
                let mut had_session = false;
                for agent in daemon.agents_of(&workspace) {
                    had_session |= daemon.session(&workspace, &agent).reset().await.unwrap_or(false);
                }
                (ControlResponse::Reset { workspace, had_session }, false)
            }
            Err(message) => (ControlResponse::Error { message }, false),
        },
        ControlRequest::SessionStart {
            workspace,
            claude_session_id,
            source,
        } => match canonical_workspace(&workspace) {
            Ok(workspace) => {
                // The rules apply to each agent's session here: the default
                // agent's, and every other agent's this workspace has used.
                let mut agents = daemon.agents_of(&workspace);
                let default = settings.default_agent().to_owned();
                if !agents.contains(&default) {
                    agents.insert(0, default);
                }
                let mut actions = Vec::new();
                for agent in &agents {
                    let session = daemon.session(&workspace, agent);
                    // An agent the hook's settings do not offer is warmed only
                    // as its MCP client last started it.
                    let agent_settings = settings.for_agent(agent).map(Arc::new);
                    match session
                        .session_start(source, claude_session_id.clone(), agent_settings, agent_env.clone())
                        .await
                    {
                        Ok(action) => actions.push((agent.clone(), action)),
                        Err(error) => {
                            return (
                                ControlResponse::Error {
                                    message: error.to_string(),
                                },
                                false,
                            );
                        }
                    }
                }
                let action = match actions.as_slice() {
                    [(_, action)] => action.clone(),
                    several => several
                        .iter()
                        .map(|(agent, action)| format!("{agent}: {action}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                };
                (ControlResponse::SessionStarted { action }, false)
            }
            Err(message) => (ControlResponse::Error { message }, false),
        },
        ControlRequest::Log { workspace, limit } => match canonical_workspace(&workspace) {
            Ok(workspace) => match daemon.recent.list(&workspace, limit).await {
                Ok(answers) => (
                    ControlResponse::Log {
                        workspace,
                        state_dir: daemon.recent.state_dir().to_path_buf(),
                        answers,
                    },
                    false,
                ),
                Err(message) => (ControlResponse::Error { message }, false),
            },
            Err(message) => (ControlResponse::Error { message }, false),
        },
        ControlRequest::Watch { workspace } => match canonical_workspace(&workspace) {
            Ok(workspace) => (ControlResponse::Watching { workspace }, false),
            Err(message) => (ControlResponse::Error { message }, false),
        },
        ControlRequest::Stop => {
            tracing::info!("stop requested over the socket");
            daemon.shutdown.cancel();
            (ControlResponse::Stopping, true)
        }
    }
}
