//! `codex-fusion stop`: ask the daemon to shut down, then wait until its
//! process is gone (it removes its socket first and lets go of its lock
//! last), so that a start right after finds the way clear. A daemon that
//! refuses the request (another protocol version) or does not answer it
//! (wedged) gets SIGTERM instead, once its lock file confirms which process
//! it is.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::fail;
use crate::link::{self, Answer, LinkError};
use crate::output::{note, say};

/// How long the daemon gets to answer the stop request. A healthy daemon
/// answers at once; one that does not is signalled, which stops it just as
/// gracefully, so there is no reason to wait long.
const STOP_REPLY_WAIT: Duration = Duration::from_secs(3);

/// How long the daemon gets to cancel its turns, stop its codex-acp children
/// and remove its socket. It caps its own drain at 5 s; this leaves margin.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// How often the process is checked while the daemon shuts down.
const STOP_POLL: Duration = Duration::from_millis(20);

/// The daemon's binary name, as the process table shows it.
const DAEMON_NAME: &str = "codex-fusiond";

/// Stops the daemon on `socket`. One that is not running is already stopped.
pub async fn run(socket: &Path) -> ExitCode {
    let answer = link::exchange(
        socket,
        Role::Cli,
        &ControlRequest::Stop,
        STOP_REPLY_WAIT,
        "the stop request",
    )
    .await;
    let (pid, signalled) = match answer {
        Ok(Answer {
            pid,
            response: ControlResponse::Stopping,
        }) => (pid, false),
        Ok(Answer {
            response: ControlResponse::Error { message },
            ..
        }) => return fail(message),
        Ok(Answer { response, .. }) => {
            return fail(format_args!(
                "codex-fusiond answered the stop request with {response:?}"
            ));
        }
        Err(LinkError::NotRunning { .. }) => {
            say!("codex-fusiond is not running; nothing to stop");
            return ExitCode::SUCCESS;
        }
        // A daemon of another protocol version refuses our hello, and its
        // message tells the user to stop it; a wedged one never answers.
        // Either way, a signal does what the request would have.
        Err(LinkError::Refused { message }) => {
            match signal(socket, &format!("it refused the stop request ({message})")) {
                Ok(pid) => (pid, true),
                Err(code) => return code,
            }
        }
        Err(LinkError::NotAnswering { .. }) => {
            let why = format!(
                "a daemon holds {} but did not answer the stop request within {} s",
                socket.display(),
                STOP_REPLY_WAIT.as_secs()
            );
            match signal(socket, &why) {
                Ok(pid) => (pid, true),
                Err(code) => return code,
            }
        }
        Err(error) => return fail(error),
    };
    let deadline = Instant::now() + STOP_WAIT;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            let advice = if signalled {
                format!("end it with `kill -9 {pid}`")
            } else {
                format!("if it does not exit, `kill {pid}`, then `kill -9 {pid}`")
            };
            return fail(format_args!(
                "codex-fusiond (pid {pid}) is still running {} s after it was asked to stop; {advice}",
                STOP_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(STOP_POLL).await;
    }
    say!("Stopped codex-fusiond (pid {pid})");
    ExitCode::SUCCESS
}

/// Sends SIGTERM to the daemon that holds `socket`'s lock file, saying
/// `why` on stderr; on failure, prints why no signal was sent.
fn signal(socket: &Path, why: &str) -> Result<u32, ExitCode> {
    match signal_locked_daemon(socket) {
        Ok(pid) => {
            note!("codex-fusion: codex-fusiond is not stopping by request: {why}; sent it SIGTERM (pid {pid})");
            Ok(pid)
        }
        Err(reason) => Err(fail(format_args!(
            "cannot stop codex-fusiond: {why}, and {reason}; find it with `pgrep -u \"$USER\" -x {DAEMON_NAME}` and `kill` it"
        ))),
    }
}

/// Sends SIGTERM to the daemon that holds `socket`'s lock file, if its pid
/// still names a codex-fusiond. Returns the pid it signalled, or why it
/// signalled nothing.
fn signal_locked_daemon(socket: &Path) -> Result<u32, String> {
    let lock = codex_fusion_protocol::paths::lock_path(socket);
    let text = std::fs::read_to_string(&lock)
        .map_err(|error| format!("its lock file {} cannot be read ({error})", lock.display()))?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("its lock file {} holds no pid", lock.display()))?;
    let raw = i32::try_from(pid).map_err(|_| format!("its lock file {} holds no pid", lock.display()))?;
    // A pid in a stale lock file may since belong to anything: signal it only
    // if it still runs our daemon.
    match process_name(pid) {
        Some(name) if name == DAEMON_NAME => {}
        Some(name) => {
            return Err(format!(
                "pid {pid} from {} is `{name}` now, not {DAEMON_NAME}",
                lock.display()
            ));
        }
        None => return Err(format!("pid {pid} from {} is not running", lock.display())),
    }
    kill(Pid::from_raw(raw), Signal::SIGTERM).map_err(|error| format!("SIGTERM to pid {pid} failed ({error})"))?;
    Ok(pid)
}

/// The name of process `pid` (its executable's file name), if it runs.
fn process_name(pid: u32) -> Option<String> {
    if Path::new("/proc/self/comm").exists() {
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        return Some(name.trim().to_owned());
    }
    // Systems without procfs (macOS): ask ps, which prints the command's path.
    let output = std::process::Command::new("ps")
        .args(["-o", "comm=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let command = text.trim();
    if !output.status.success() || command.is_empty() {
        return None;
    }
    Path::new(command)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
}

/// Whether `pid` still runs (a zombie, exited but not yet reaped by its
/// parent, does not).
fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if kill(Pid::from_raw(raw), None).is_err() {
        return false;
    }
    let zombie = if Path::new("/proc/self/stat").exists() {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    } else {
        std::process::Command::new("ps")
            .args(["-o", "stat=", "-p", &pid.to_string()])
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim_start().starts_with('Z'))
    };
    !zombie
}
