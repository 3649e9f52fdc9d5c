//! The hello that opens every connection to the daemon, and the daemon's answer.
//!
//! Wire form: one JSON object on one line from the client, then one JSON object
//! on one line from the daemon. After a successful answer the connection carries
//! either MCP (newline-delimited JSON-RPC) or control messages, as the hello said.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{PACKAGE_VERSION, PROTOCOL_NAME, PROTOCOL_VERSION};

/// Who is connecting. The daemon logs it and uses it to word its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `codex-fusion-mcp`, on behalf of Claude Code.
    Shim,
    /// `codex-fusion hook`, the SessionStart hook.
    Hook,
    /// `codex-fusion` run from a shell.
    Cli,
}

impl Role {
    /// The binary a person would restart or upgrade for this role.
    pub fn binary(self) -> &'static str {
        match self {
            Role::Shim => "codex-fusion-mcp",
            Role::Hook | Role::Cli => "codex-fusion",
        }
    }
}

/// What the connection carries after the hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// MCP JSON-RPC, one message per line, served by the daemon's MCP server.
    Mcp,
    /// [`crate::control`] requests and responses, one per line.
    Control,
}

/// First line a client sends.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`PROTOCOL_NAME`].
    pub protocol: String,
    /// The client's [`PROTOCOL_VERSION`].
    pub version: u32,
    pub role: Role,
    pub channel: Channel,
    /// The client's package version, for logs and mismatch messages.
    pub client_version: String,
    /// Canonical absolute workspace path; required for [`Channel::Mcp`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
    /// The client's forwarded variables, verbatim: `CODEX_FUSION_*` and
    /// [`crate::AGENT_ENV_VARS`]. Never logged (it may carry an API key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl std::fmt::Debug for Hello {
    /// Shows the names of the forwarded variables, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("protocol", &self.protocol)
            .field("version", &self.version)
            .field("role", &self.role)
            .field("channel", &self.channel)
            .field("client_version", &self.client_version)
            .field("workspace", &self.workspace)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Hello {
    /// A hello of this build for `role` and `channel`.
    pub fn new(role: Role, channel: Channel) -> Self {
        Hello {
            protocol: PROTOCOL_NAME.to_owned(),
            version: PROTOCOL_VERSION,
            role,
            channel,
            client_version: PACKAGE_VERSION.to_owned(),
            workspace: None,
            env: BTreeMap::new(),
        }
    }

    pub fn with_workspace(mut self, workspace: PathBuf) -> Self {
        self.workspace = Some(workspace);
        self
    }

    /// Adds every forwarded variable from `vars` (`CODEX_FUSION_*` and
    /// [`crate::AGENT_ENV_VARS`]).
    pub fn with_env<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (key, value) in vars {
            let key = key.into();
            if crate::is_forwarded(&key) {
                self.env.insert(key, value.into());
            }
        }
        self
    }

    /// Adds the forwarded variables of this process's environment, the one
    /// way the shim and the CLI send them: the daemon uses them for the
    /// settings and credentials of a turn, and of an agent it warms on
    /// SessionStart.
    pub fn with_process_env(self) -> Self {
        self.with_os_env(std::env::vars_os())
    }

    /// Adds the forwarded variables of `vars`: a name that is not UTF-8 is
    /// never forwarded, a value that is not is sent lossily.
    pub fn with_os_env(self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        self.with_env(
            vars.into_iter()
                .filter_map(|(name, value)| Some((name.into_string().ok()?, value.to_string_lossy().into_owned()))),
        )
    }

    /// Checks name and version; the error says which side to upgrade.
    pub fn check_compatible(&self) -> Result<(), HelloError> {
        if self.protocol != PROTOCOL_NAME {
            return Err(HelloError::NotOurs {
                protocol: self.protocol.clone(),
            });
        }
        if self.version != PROTOCOL_VERSION {
            return Err(HelloError::VersionMismatch {
                client: self.version,
                client_package: self.client_version.clone(),
                daemon: PROTOCOL_VERSION,
                binary: self.role.binary(),
            });
        }
        Ok(())
    }
}

/// Why a hello was refused. The `Display` text is meant for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("this socket speaks `{PROTOCOL_NAME}`, the client spoke `{protocol}`")]
    NotOurs { protocol: String },
    /// Built by the daemon: `daemon` and [`PACKAGE_VERSION`] are its own.
    #[error(
        "protocol version mismatch: {binary} {client_package} speaks version {client}, the running codex-fusiond {PACKAGE_VERSION} speaks version {daemon}; {}",
        mismatch_advice(*.client, *.daemon, .binary)
    )]
    VersionMismatch {
        client: u32,
        client_package: String,
        daemon: u32,
        binary: &'static str,
    },
}

/// Which side of a protocol mismatch to change: the older one.
fn mismatch_advice(client: u32, daemon: u32, binary: &str) -> String {
    if client < daemon {
        format!(
            "{binary} is older than the daemon: upgrade it (reinstall codex-fusion with `scripts/install.sh`, or point Claude Code at the new {binary})"
        )
    } else {
        "the daemon is older: stop it (`codex-fusion stop`) so the next call starts the installed codex-fusiond"
            .to_owned()
    }
}

/// The daemon's answer to a hello: accepted, or refused with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum HelloReply {
    Accepted {
        protocol: String,
        version: u32,
        daemon_version: String,
        pid: u32,
    },
    Refused {
        protocol: String,
        version: u32,
        /// A one-line message that says what is wrong and what to do.
        error: String,
    },
}

impl HelloReply {
    pub fn accepted(pid: u32) -> Self {
        HelloReply::Accepted {
            protocol: PROTOCOL_NAME.to_owned(),
            version: PROTOCOL_VERSION,
            daemon_version: PACKAGE_VERSION.to_owned(),
            pid,
        }
    }

    pub fn refused(error: impl Into<String>) -> Self {
        HelloReply::Refused {
            protocol: PROTOCOL_NAME.to_owned(),
            version: PROTOCOL_VERSION,
            error: error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_wire_form_is_stable() {
        let hello = Hello::new(Role::Shim, Channel::Mcp)
            .with_workspace(PathBuf::from("/w"))
            .with_env([
                ("CODEX_FUSION_ALLOW_WRITES", "1"),
                ("HOME", "/root"),
                ("CODEX_HOME", "/c"),
            ]);
        let json = serde_json::to_string(&hello).expect("serializes");
        assert_eq!(
            json,
            format!(
                r#"{{"protocol":"codex-fusion","version":1,"role":"shim","channel":"mcp","client_version":"{PACKAGE_VERSION}","workspace":"/w","env":{{"CODEX_FUSION_ALLOW_WRITES":"1","CODEX_HOME":"/c"}}}}"#
            )
        );
        let back: Hello = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, hello);
    }

    #[test]
    fn an_environment_forwards_only_its_forwarded_utf8_names() {
        use std::os::unix::ffi::OsStringExt as _;
        let hello = Hello::new(Role::Cli, Channel::Mcp).with_os_env([
            (
                OsString::from("CODEX_FUSION_LOG"),
                OsString::from_vec(b"/tmp/\xff.jsonl".to_vec()),
            ),
            (OsString::from("OPENAI_API_KEY"), OsString::from("sk-x")),
            (OsString::from("PATH"), OsString::from("/bin")),
            (OsString::from_vec(b"CODEX_FUSION_\xff".to_vec()), OsString::from("1")),
        ]);
        let names: Vec<&str> = hello.env.keys().map(String::as_str).collect();
        assert_eq!(names, ["CODEX_FUSION_LOG", "OPENAI_API_KEY"]);
        assert_eq!(hello.env["CODEX_FUSION_LOG"], "/tmp/\u{fffd}.jsonl");
    }

    #[test]
    fn debug_output_never_shows_variable_values() {
        let hello = Hello::new(Role::Shim, Channel::Mcp).with_env([("OPENAI_API_KEY", "sk-secret")]);
        let shown = format!("{hello:?}");
        assert!(shown.contains("OPENAI_API_KEY"), "{shown}");
        assert!(!shown.contains("sk-secret"), "{shown}");
    }

    #[test]
    fn reply_wire_form_is_stable() {
        let json = serde_json::to_string(&HelloReply::refused("nope")).expect("serializes");
        assert_eq!(
            json,
            r#"{"status":"refused","protocol":"codex-fusion","version":1,"error":"nope"}"#
        );
        let json = serde_json::to_string(&HelloReply::accepted(7)).expect("serializes");
        assert_eq!(
            json,
            format!(
                r#"{{"status":"accepted","protocol":"codex-fusion","version":1,"daemon_version":"{PACKAGE_VERSION}","pid":7}}"#
            )
        );
    }

    #[test]
    fn version_mismatch_names_both_versions_and_the_fix() {
        let mut hello = Hello::new(Role::Shim, Channel::Mcp);
        hello.version = 99;
        let message = hello.check_compatible().expect_err("must refuse").to_string();
        assert!(message.contains("version 99"), "{message}");
        assert!(message.contains(&format!("version {PROTOCOL_VERSION}")), "{message}");
        assert!(message.contains("codex-fusion-mcp"), "{message}");
        assert!(message.contains("codex-fusion stop"), "{message}");
        assert!(
            !message.contains("install.sh"),
            "a newer client needs no reinstall: {message}"
        );
    }

    /// r9: an older client is told to upgrade itself, not to restart the
    /// (newer) daemon.
    #[test]
    fn an_older_client_is_told_to_upgrade_itself() {
        let mut hello = Hello::new(Role::Shim, Channel::Mcp);
        hello.version = 0;
        let message = hello.check_compatible().expect_err("must refuse").to_string();
        assert!(
            message.contains("codex-fusion-mcp is older than the daemon"),
            "{message}"
        );
        assert!(message.contains("scripts/install.sh"), "{message}");
        assert!(!message.contains("codex-fusion stop"), "{message}");
        let mut hello = Hello::new(Role::Cli, Channel::Control);
        hello.version = 0;
        let message = hello.check_compatible().expect_err("must refuse").to_string();
        assert!(message.contains("codex-fusion is older than the daemon"), "{message}");
    }

    #[test]
    fn foreign_protocol_is_refused() {
        let mut hello = Hello::new(Role::Cli, Channel::Control);
        hello.protocol = "http".into();
        assert!(matches!(hello.check_compatible(), Err(HelloError::NotOurs { .. })));
    }
}
