//! The way every client reaches the daemon, in one place: resolve the
//! socket, connect or start the daemon ([`connect::Connector`]), check that
//! the socket is served by our own user ([`check_peer`]), build the hello
//! ([`hello`]) and read its reply ([`read_reply`]).
//!
//! The shim uses [`connect::Connector`] as it is (std, blocking). The CLI's
//! control requests keep their own async connect and single write under one
//! deadline, but decide nothing themselves: the hello, the peer rule and the
//! reply's meaning are the functions here.

pub mod connect;

use std::os::fd::AsFd;
use std::path::PathBuf;

use codex_fusion_protocol::frame::{self, FrameError};
use codex_fusion_protocol::{Channel, Hello, HelloReply, Role, paths, peer};

/// Why the daemon could not be reached. The text is one line.
#[derive(Debug)]
pub enum Error {
    /// This side's setup is wrong (no socket path, a hello too large, …).
    Config(String),
    /// Nobody could be reached, or the connection broke during the hello:
    /// worth another try.
    Connect(String),
    /// The daemon (or the socket's owner) said no: another try gets the same.
    Refused(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(message) | Error::Connect(message) | Error::Refused(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// The daemon's socket, as every side resolves it.
pub fn socket() -> Result<PathBuf, Error> {
    paths::socket_path(|name| std::env::var_os(name)).map_err(|error| Error::Config(error.to_string()))
}

/// The hello a client sends: its role and channel, the workspace it acts
/// in (an MCP session has one), and the forwarded variables of this process.
pub fn hello(role: Role, channel: Channel, workspace: Option<PathBuf>) -> Hello {
    let hello = Hello::new(role, channel);
    match workspace {
        Some(workspace) => hello.with_workspace(workspace),
        None => hello,
    }
    .with_process_env()
}

/// Why the socket's peer is not one to send a hello to.
#[derive(Debug)]
pub enum PeerError {
    /// Another user listens on it: our hello (API keys included) is not
    /// theirs to read.
    Stranger { uid: u32, own: u32 },
    /// The kernel would not say who listens.
    Unknown(std::io::Error),
}

/// Checks, before anything is sent, that the socket `stream` is connected
/// to is served by our own user.
pub fn check_peer(stream: &impl AsFd) -> Result<(), PeerError> {
    check_peer_as(stream, peer::own_uid())
}

fn check_peer_as(stream: &impl AsFd, own: u32) -> Result<(), PeerError> {
    match peer::peer_uid(stream) {
        Ok(uid) if uid == own => Ok(()),
        Ok(uid) => Err(PeerError::Stranger { uid, own }),
        Err(error) => Err(PeerError::Unknown(error)),
    }
}

/// What an accepted hello tells the client.
#[derive(Debug)]
pub struct Accepted {
    pub pid: u32,
    pub daemon_version: String,
}

/// Why a hello reply is not an acceptance.
#[derive(Debug)]
pub enum ReplyError {
    /// The line is not a hello reply.
    Unreadable(FrameError),
    /// The daemon refused the hello; its one-line reason.
    Refused(String),
}

/// Reads the daemon's answer to the hello.
pub fn read_reply(line: &[u8]) -> Result<Accepted, ReplyError> {
    match frame::decode::<HelloReply>(line).map_err(ReplyError::Unreadable)? {
        HelloReply::Accepted {
            pid, daemon_version, ..
        } => Ok(Accepted { pid, daemon_version }),
        HelloReply::Refused { error, .. } => Err(ReplyError::Refused(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_of_another_user_is_a_stranger() {
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        check_peer(&ours).expect("our own user passes");
        let own = peer::own_uid();
        let error = check_peer_as(&ours, own.wrapping_add(1)).expect_err("refused");
        assert!(
            matches!(error, PeerError::Stranger { uid, .. } if uid == own),
            "{error:?}"
        );
    }

    #[test]
    fn a_reply_is_an_acceptance_or_the_daemons_reason() {
        let accepted = read_reply(&frame::encode(&HelloReply::accepted(42))).expect("accepted");
        assert_eq!(accepted.pid, 42);
        let refused = read_reply(&frame::encode(&HelloReply::refused("too old"))).expect_err("refused");
        assert!(
            matches!(&refused, ReplyError::Refused(message) if message == "too old"),
            "{refused:?}"
        );
        assert!(matches!(read_reply(b"{}\n"), Err(ReplyError::Unreadable(_))));
    }

    #[test]
    fn the_hello_carries_role_channel_and_workspace() {
        let hello = hello(Role::Cli, Channel::Mcp, Some(PathBuf::from("/w")));
        assert_eq!(hello.workspace.as_deref(), Some(std::path::Path::new("/w")));
        assert!(hello.check_compatible().is_ok());
    }
}
