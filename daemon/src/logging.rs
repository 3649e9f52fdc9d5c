//! Tracing setup: human-readable to stderr, and a daily-rotating file in the
//! per-user state directory. `RUST_LOG` (or `CODEX_FUSION_DAEMON_LOG`) filters.

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Set by the shim when it starts the daemon: stderr gets warnings only.
pub const QUIET_STDERR_ENV: &str = "CODEX_FUSION_DAEMON_QUIET_STDERR";

/// What the daemon's log files are called (`codex-fusiond.<date>.log`).
const LOG_FILE_PREFIX: &str = "codex-fusiond";
/// Log files kept before the oldest is deleted.
const LOG_FILES_KEPT: usize = 7;

/// Installs the global subscriber. The file is written synchronously: the
/// daemon logs little, and a non-blocking writer's guard costs up to a
/// second at every exit waiting for its worker thread.
pub fn init(state_dir: &Path) {
    let filter = || {
        std::env::var("CODEX_FUSION_DAEMON_LOG")
            .ok()
            .and_then(|value| EnvFilter::try_new(value).ok())
            .or_else(|| EnvFilter::try_from_default_env().ok())
            .unwrap_or_else(|| EnvFilter::new("info,rmcp=warn,agent_client_protocol=warn"))
    };
    // A daemon the shim started writes stderr to a start log that nothing
    // rotates: only problems go there (the full log is in the state dir).
    let quiet = std::env::var_os(QUIET_STDERR_ENV).is_some_and(|value| !value.is_empty() && value != "0");
    let stderr_filter = if quiet { EnvFilter::new("warn") } else { filter() };
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(stderr_filter);
    let log_dir = codex_fusion_protocol::paths::log_dir(state_dir);
    // Logs name workspaces and commands: private to the user whatever the
    // umask, and never a directory of someone else's.
    let file = codex_fusion_protocol::private::own_dir(&log_dir)
        .map_err(|error| error.to_string())
        .and_then(|()| {
            tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix(LOG_FILE_PREFIX)
                .filename_suffix("log")
                .max_log_files(LOG_FILES_KEPT)
                .build(&log_dir)
                .map_err(|error| error.to_string())
        });
    // The appender creates its files with the umask's mode; the 0700
    // directory keeps them private, and today's file (and older ones) are
    // narrowed too. A file it creates at a later rotation keeps the umask's
    // mode until the next start.
    codex_fusion_protocol::private::narrow_files(&log_dir, LOG_FILE_PREFIX);
    match file {
        Ok(appender) => {
            let file_layer = tracing_subscriber::fmt::layer()
                .with_writer(appender)
                .with_ansi(false)
                .with_filter(filter());
            let _ = tracing_subscriber::registry()
                .with(stderr_layer)
                .with(file_layer)
                .try_init();
        }
        Err(error) => {
            let _ = tracing_subscriber::registry().with(stderr_layer).try_init();
            tracing::warn!(dir = %log_dir.display(), %error, "cannot write log files; logging to stderr only");
        }
    }
}
