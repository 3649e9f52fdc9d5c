//! The `codex-fusion` shell CLI and Claude Code's SessionStart hook: one
//! function per subcommand, arguments in, exit code out (0 success, 1
//! failure; clap gives 2 for usage errors).
//!
//! Control commands (`reset`, `status`, `hook`, `log`, `stop`) talk to a
//! running daemon over `link`; when none runs, `reset` and `hook` write the
//! daemon's state file (`offline`) and `log` reads the kept answers itself; `ask` speaks MCP to it through the shim's
//! connector; `install` and `doctor` mostly look at files and other
//! programs. Nothing here panics on a closed stdout or stderr (`output`).

mod args;
mod ask;
mod claude;
mod dirs;
mod doctor;
mod hook;
mod input;
mod install;
mod link;
mod locate;
mod log;
mod offline;
mod output;
mod reset;
mod service;
mod status;
mod stop;
mod watch;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub use args::Cli;
use args::Command;
use codex_fusion_protocol::paths::{self, PathError};
use output::note;

/// How long a control request may take from connect to answer. A reset waits
/// for a running turn to be cancelled (a grace of 1.5 s, then a kill), so
/// this is generous; a daemon that does not answer within it is wedged.
pub const CONTROL_REPLY_WAIT: Duration = Duration::from_secs(10);

/// Runs one command to completion.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            let message = format!("cannot start the async runtime: {error}");
            return match cli.command {
                // The hook never fails Claude Code's session start.
                Command::Hook => {
                    note!("codex-fusion hook: {message}");
                    ExitCode::SUCCESS
                }
                _ => fail(message),
            };
        }
    };
    match cli.command {
        Command::Hook => run_hook(&runtime),
        Command::Reset(workspace) => match (socket(), workspace_of(workspace.workspace.as_deref())) {
            (Ok(socket), Ok(workspace)) => runtime.block_on(reset::run(&socket, &workspace)),
            (Err(error), _) | (_, Err(error)) => fail(format_args!("{error:#}")),
        },
        Command::Status { workspace, json } => {
            let only = match workspace
                .workspace
                .as_deref()
                .map(|dir| workspace_of(Some(dir)))
                .transpose()
            {
                Ok(only) => only,
                Err(error) => return fail(format_args!("{error:#}")),
            };
            // The current directory's workspace, if it has one: the report
            // names other workspaces in its hints.
            let here = workspace_of(None).ok();
            match socket() {
                Ok(socket) => runtime.block_on(status::run(&socket, only.as_deref(), here.as_deref(), json)),
                Err(error) => fail(format_args!("{error:#}")),
            }
        }
        Command::Doctor => runtime.block_on(doctor::run()),
        Command::Install { claude, dry_run } => runtime.block_on(install::run(claude, dry_run)),
        Command::Ask(ask) => match (socket(), workspace_of(ask.workspace.workspace.as_deref())) {
            (Ok(socket), Ok(workspace)) => runtime.block_on(ask::run(socket, workspace, ask.tool)),
            (Err(error), _) | (_, Err(error)) => fail(format_args!("{error:#}")),
        },
        Command::Log { workspace, count, json } => match workspace_of(workspace.workspace.as_deref()) {
            Ok(workspace) => runtime.block_on(log::run(&workspace, usize::from(count), json)),
            Err(error) => fail(format_args!("{error:#}")),
        },
        Command::Watch { workspace, json } => match (socket(), workspace_of(workspace.workspace.as_deref())) {
            (Ok(socket), Ok(workspace)) => runtime.block_on(watch::run(&socket, &workspace, json)),
            (Err(error), _) | (_, Err(error)) => fail(format_args!("{error:#}")),
        },
        Command::Stop => match socket() {
            Ok(socket) => runtime.block_on(stop::run(&socket)),
            Err(error) => fail(format_args!("{error:#}")),
        },
    }
}

/// The hook, shielded so that not even a bug makes it fail Claude Code's
/// session start or print more than a line. The panic hook writes with
/// `note!`, which cannot panic: a panic inside a panic hook aborts.
fn run_hook(runtime: &tokio::runtime::Runtime) -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string().replace('\n', " ");
        note!("codex-fusion hook: internal error, nothing done ({message})");
    }));
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(hook::run())));
    ExitCode::SUCCESS
}

/// Prints `message` as the command's error and returns exit code 1.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    note!("codex-fusion: {message}");
    ExitCode::FAILURE
}

/// A variable of the process environment.
pub fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The daemon's socket, as every side resolves it.
pub fn socket() -> anyhow::Result<PathBuf> {
    Ok(paths::socket_path(env_var)?)
}

/// The daemon's state directory as this environment resolves it; the daemon
/// reads `CODEX_FUSION_STATE_DIR` from its own environment, which for a
/// daemon started on demand is the shim's.
pub fn state_dir() -> anyhow::Result<PathBuf> {
    Ok(paths::state_dir(env_var)?)
}

/// The workspace a command acts on: `--workspace DIR`, else
/// `CODEX_FUSION_WORKSPACE`, else the current directory; canonical.
pub fn workspace_of(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    match flag {
        Some(dir) => paths::canonical_directory(dir).map_err(|error| match error {
            PathError::Workspace { path, reason } => anyhow::anyhow!("--workspace {path}: {reason}"),
            other => other.into(),
        }),
        None => Ok(paths::resolve_workspace(env_var, std::env::current_dir)?),
    }
}
