//! The shim: a hello carrying its workspace and settings, then MCP bytes
//! pumped both ways between stdio and the daemon's socket.
//!
//! It reads just enough of each message to know which requests are in flight
//! ([`tracking`]), so that when the daemon goes away it can answer them with
//! an error, reconnect (starting the daemon if needed), replay the client's
//! recorded `initialize`, and carry on. It never rewrites a message.
//! Reaching the daemon (connect or start it, the hello) is
//! `codex_fusion_client`'s, shared with the CLI.

pub mod pump;
pub mod tracking;

use codex_fusion_client::connect::Connector;
use codex_fusion_protocol::{Channel, Role, paths};

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

impl From<codex_fusion_client::Error> for ShimError {
    fn from(error: codex_fusion_client::Error) -> ShimError {
        match error {
            codex_fusion_client::Error::Config(message) => ShimError::Config(message),
            codex_fusion_client::Error::Connect(message) => ShimError::Connect(message),
            codex_fusion_client::Error::Refused(message) => ShimError::Refused(message),
        }
    }
}

/// Connects (starting the daemon if needed) and pumps until stdin closes.
pub fn run() -> Result<(), ShimError> {
    let socket = codex_fusion_client::socket()?;
    let workspace = paths::resolve_workspace(|name| std::env::var_os(name), std::env::current_dir)
        .map_err(|error| ShimError::Config(error.to_string()))?;
    let hello = codex_fusion_client::hello(Role::Shim, Channel::Mcp, Some(workspace));
    let connector = Connector::new(socket, hello);
    let connection = connector.connect_or_start()?;
    pump::run(connector, connection)
}
