//! `codex-fusion stop`: ask the daemon to shut down, then wait until its
//! socket is gone, so that a `start` right after finds the way clear.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::link::{ControlLink, LinkError, timed};
use crate::{CONTROL_REPLY_WAIT, fail};

/// How long the daemon gets to cancel its turns, stop its codex-acp children
/// and remove its socket. It caps its own drain at 5 s; this leaves margin.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// How often the socket is checked while the daemon shuts down.
const STOP_POLL: Duration = Duration::from_millis(20);

/// Stops the daemon on `socket`. One that is not running is already stopped.
pub async fn run(socket: &Path) -> ExitCode {
    let answer = timed(CONTROL_REPLY_WAIT, "the stop request", async {
        let mut link = ControlLink::connect(socket, Role::Cli).await?;
        let response = link.request(&ControlRequest::Stop).await?;
        Ok((link.pid, response))
    })
    .await;
    let pid = match answer {
        Ok((pid, ControlResponse::Stopping)) => pid,
        Ok((_, ControlResponse::Error { message })) => return fail(message),
        Ok((_, other)) => return fail(format_args!("codex-fusiond answered the stop request with {other:?}")),
        Err(LinkError::NotRunning { .. }) => {
            println!("codex-fusiond is not running; nothing to stop");
            return ExitCode::SUCCESS;
        }
        // A daemon of another protocol version refuses our hello, and its
        // message tells the user to stop it: do that with a signal instead.
        Err(LinkError::Refused { message }) => match signal_locked_daemon(socket) {
            Some(pid) => {
                eprintln!("codex-fusion: codex-fusiond refused the stop request ({message}); sent it SIGTERM");
                pid
            }
            None => return fail(format_args!("codex-fusiond refused the stop request: {message}")),
        },
        Err(error) => return fail(error),
    };
    let deadline = Instant::now() + STOP_WAIT;
    while socket.symlink_metadata().is_ok() {
        if Instant::now() >= deadline {
            return fail(format_args!(
                "codex-fusiond (pid {pid}) is still shutting down after {} s ({} still exists); if it does not exit, `kill {pid}`",
                STOP_WAIT.as_secs(),
                socket.display()
            ));
        }
        tokio::time::sleep(STOP_POLL).await;
    }
    println!("Stopped codex-fusiond (pid {pid})");
    ExitCode::SUCCESS
}

/// Sends SIGTERM to the daemon that holds `socket`'s lock file, if its pid
/// still names a codex-fusiond. Returns the pid it signalled.
fn signal_locked_daemon(socket: &Path) -> Option<u32> {
    let mut lock = socket.as_os_str().to_owned();
    lock.push(".lock");
    let pid: u32 = std::fs::read_to_string(lock).ok()?.trim().parse().ok()?;
    // A pid in a stale lock file may since belong to anything: check its name
    // where the system lets us.
    let comm = Path::new("/proc").join(pid.to_string()).join("comm");
    if Path::new("/proc/self").exists() {
        let name = std::fs::read_to_string(comm).ok()?;
        if name.trim() != "codex-fusiond" {
            return None;
        }
    }
    kill(Pid::from_raw(i32::try_from(pid).ok()?), Signal::SIGTERM).ok()?;
    Some(pid)
}
