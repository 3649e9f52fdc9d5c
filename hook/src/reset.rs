//! `codex-fusion reset`: drop Codex's session for a workspace, as the `reset`
//! tool and the hook on `/clear` do.

use std::path::Path;
use std::process::ExitCode;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};

use crate::link::{ControlLink, LinkError, timed};
use crate::{CONTROL_REPLY_WAIT, fail};

/// Resets `workspace`'s session. A daemon that is not running holds no
/// session, so that is a success too.
pub async fn run(socket: &Path, workspace: &Path) -> ExitCode {
    let request = ControlRequest::Reset {
        workspace: workspace.to_path_buf(),
    };
    let answer = timed(CONTROL_REPLY_WAIT, "the reset", async {
        let mut link = ControlLink::connect(socket, Role::Cli).await?;
        link.request(&request).await
    })
    .await;
    match answer {
        Ok(ControlResponse::Reset {
            workspace,
            had_session: true,
        }) => {
            println!(
                "Reset Codex's session for {}; its next tool call starts fresh",
                workspace.display()
            );
            ExitCode::SUCCESS
        }
        Ok(ControlResponse::Reset {
            workspace,
            had_session: false,
        }) => {
            println!("No Codex session for {}; nothing to reset", workspace.display());
            ExitCode::SUCCESS
        }
        Ok(ControlResponse::Error { message }) => fail(message),
        Ok(other) => fail(format_args!("codex-fusiond answered the reset with {other:?}")),
        Err(LinkError::NotRunning { .. }) => {
            println!("codex-fusiond is not running, so there is no Codex session to reset");
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}
