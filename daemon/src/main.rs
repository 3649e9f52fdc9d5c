//! `codex-fusiond`: parse the command line, set up logging, run the daemon.

use std::process::ExitCode;

const HELP: &str = "codex-fusiond — the codex-fusion daemon

Owns every codex-acp child (shared by workspaces whose agent command and
credentials match) and one persistent Codex session per workspace, and serves
MCP (for codex-fusion-mcp) and control requests (for codex-fusion) on a
Unix socket. Runs in the foreground; a service manager or codex-fusion-mcp
starts it.

USAGE:
    codex-fusiond [--help] [--version]

ENVIRONMENT:
    CODEX_FUSION_SOCKET      socket path (default: $XDG_RUNTIME_DIR/codex-fusion/daemon.sock)
    CODEX_FUSION_STATE_DIR   logs and state (default: $XDG_STATE_HOME/codex-fusion)
    CODEX_FUSION_DAEMON_LOG  log filter, e.g. `debug` (default: info; RUST_LOG also works)
    CODEX_FUSION_AGENT_IDLE_SECS  stop a codex-acp none of whose sessions was used for this
                             long; the sessions are restored on the next call (default: 1800)
    CODEX_FUSION_AGENT_MAX_SESSIONS  workspaces one codex-acp carries before another one
                             starts (default: 16)

Stop it with `codex-fusion stop`, SIGTERM, SIGINT or SIGHUP. Exit status 3
means another codex-fusiond already serves the socket.";

/// Exit status when another daemon already serves the socket
/// (`RestartPreventExitStatus=` in the systemd unit).
const ALREADY_RUNNING: u8 = 3;

fn main() -> ExitCode {
    if let Some(exit) = codex_fusion_protocol::flags::handle("codex-fusiond", HELP) {
        return exit;
    }
    let options = match codex_fusiond::Options::from_env() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("codex-fusiond: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    codex_fusiond::logging::init(&options.state_dir);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("codex-fusiond: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(codex_fusiond::run(options));
    // Children are already reaped; do not wait for stray blocking tasks.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("codex-fusiond: {error:#}");
            // A distinct status for "another daemon serves this socket", so
            // a service manager can tell it from a crash and not restart.
            let already_running = matches!(
                error.downcast_ref::<codex_fusiond::listener::BindError>(),
                Some(codex_fusiond::listener::BindError::AlreadyRunning { .. })
            );
            if already_running {
                ExitCode::from(ALREADY_RUNNING)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
