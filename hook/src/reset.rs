//! `codex-fusion reset`: drop Codex's session for a workspace, as the `reset`
//! tool and the hook on `/clear` do. Without a daemon the session is dropped
//! from the daemon's state file, so the next daemon does not restore it.

use std::path::Path;
use std::process::ExitCode;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};

use crate::link::{self, LinkError};
use crate::output::say;
use crate::{CONTROL_REPLY_WAIT, fail};

/// Resets `workspace`'s session, in the daemon or, if none runs, in its
/// state file.
pub async fn run(socket: &Path, workspace: &Path) -> ExitCode {
    let request = ControlRequest::Reset {
        workspace: workspace.to_path_buf(),
    };
    let answer = link::exchange(socket, Role::Cli, &request, CONTROL_REPLY_WAIT, "the reset").await;
    match answer.map(|answer| answer.response) {
        Ok(ControlResponse::Reset {
            workspace,
            had_session: true,
        }) => {
            say!(
                "Reset Codex's session for {}; its next tool call starts fresh",
                workspace.display()
            );
            ExitCode::SUCCESS
        }
        Ok(ControlResponse::Reset {
            workspace,
            had_session: false,
        }) => {
            say!("No Codex session for {}; nothing to reset", workspace.display());
            ExitCode::SUCCESS
        }
        Ok(ControlResponse::Error { message }) => fail(message),
        Ok(other) => fail(format_args!("codex-fusiond answered the reset with {other:?}")),
        Err(LinkError::NotRunning { .. }) => {
            let done = crate::state_dir()
                .map_err(|error| format!("codex-fusiond is not running, and {error:#}; nothing was reset"))
                .and_then(|state_dir| crate::offline::reset(&state_dir, workspace));
            match done {
                Ok(message) => {
                    say!("{message}");
                    ExitCode::SUCCESS
                }
                Err(message) => fail(message),
            }
        }
        Err(error) => fail(error),
    }
}
