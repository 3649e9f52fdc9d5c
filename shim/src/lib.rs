//! The shim: a hello carrying its workspace and settings, then MCP bytes
//! pumped both ways between stdio and the daemon's socket.
//!
//! It reads just enough of each message to know which requests are in flight
//! ([`tracking`]), so that when the daemon goes away it can answer them with
//! an error, reconnect (starting the daemon if needed), replay the client's
//! recorded `initialize`, and carry on. It never rewrites a message.

pub mod connect;
pub mod pump;
pub mod tracking;

use codex_fusion_protocol::{Channel, Hello, Role, paths};

/// Why the shim stopped. The text is one line for Claude Code's log.
#[derive(Debug)]
pub enum ShimError {
    Config(String),
    Connect(String),
    Refused(String),
    Lost(String),
}

impl std::fmt::Display for ShimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShimError::Config(message)
            | ShimError::Connect(message)
            | ShimError::Refused(message)
            | ShimError::Lost(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ShimError {}

/// Connects (starting the daemon if needed) and pumps until stdin closes.
pub fn run() -> Result<(), ShimError> {
    let env = |name: &str| std::env::var_os(name);
    let socket = paths::socket_path(env).map_err(|error| ShimError::Config(error.to_string()))?;
    let workspace =
        paths::resolve_workspace(env, std::env::current_dir).map_err(|error| ShimError::Config(error.to_string()))?;
    let hello = Hello::new(Role::Shim, Channel::Mcp)
        .with_workspace(workspace)
        .with_process_env();
    let connector = connect::Connector::new(socket, hello);
    let connection = connector.connect_or_start()?;
    pump::run(connector, connection)
}
