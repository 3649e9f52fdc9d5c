//! Control requests from the CLI and the hook: ping, status, reset,
//! session start, stop.

use std::sync::Arc;

use codex_fusion_protocol::control::{ControlRequest, ControlResponse, SessionSource};
use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::connection::{canonical_workspace, control_requests};
use crate::daemon::Daemon;

pub async fn serve(daemon: Arc<Daemon>, reader: BufReader<OwnedReadHalf>, write: OwnedWriteHalf) {
    control_requests(reader, write, |request| {
        let daemon = daemon.clone();
        async move { handle(&daemon, request).await }
    })
    .await;
}

/// Answers one request; the flag says whether to close the connection.
async fn handle(daemon: &Arc<Daemon>, request: ControlRequest) -> (ControlResponse, bool) {
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
                let had_session = match daemon.existing_session(&workspace) {
                    Some(session) => session.reset().await.unwrap_or(false),
                    None => false,
                };
                (ControlResponse::Reset { workspace, had_session }, false)
            }
            Err(message) => (ControlResponse::Error { message }, false),
        },
        ControlRequest::SessionStart {
            workspace, source, ..
        } => match canonical_workspace(&workspace) {
            Ok(workspace) => {
                let action = match source {
                    SessionSource::Clear => {
                        let had = match daemon.existing_session(&workspace) {
                            Some(session) => session.reset().await.unwrap_or(false),
                            None => false,
                        };
                        if had {
                            "reset Codex's session (Claude cleared its context)"
                        } else {
                            "nothing to reset"
                        }
                    }
                    SessionSource::Startup | SessionSource::Resume | SessionSource::Compact => "kept Codex's session",
                };
                (
                    ControlResponse::SessionStarted {
                        action: action.to_owned(),
                    },
                    false,
                )
            }
            Err(message) => (ControlResponse::Error { message }, false),
        },
        ControlRequest::Stop => {
            tracing::info!("stop requested over the socket");
            daemon.shutdown.cancel();
            (ControlResponse::Stopping, true)
        }
    }
}
