//! What the shim, the CLI/hook and the daemon share: where the socket lives, the
//! hello that opens every connection, the control messages, and their limits.
//!
//! Nothing here spawns processes or knows MCP or ACP; the daemon owns those.
//! Files of the daemon's state are opened through [`private`], so every side
//! creates them the same way.

pub mod agents;
pub mod allow;
pub mod answers;
pub mod codex_doctor;
pub mod command;
pub mod control;
pub mod flags;
pub mod frame;
pub mod hello;
pub mod limits;
pub mod pairing;
pub mod paths;
pub mod peer;
pub mod private;
pub mod procfs;
pub mod tools;
pub mod watch;

pub use hello::{Channel, Hello, HelloReply, Role};

/// Name every hello carries, so a stray client of another program is told apart.
pub const PROTOCOL_NAME: &str = "codex-fusion";

/// Version of the socket protocol (hello + control messages). Bump it when either
/// side would misread the other; both sides refuse a mismatch with a message that
/// says which one to restart or upgrade.
pub const PROTOCOL_VERSION: u32 = 1;

/// Version of this build of the codex-fusion binaries.
pub const PACKAGE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Prefix of the environment variables the shim and CLI forward to the daemon.
pub const ENV_PREFIX: &str = "CODEX_FUSION_";

/// The variables that carry an OpenAI API key codex-acp signs in with, in
/// the order they are looked for.
pub const API_KEY_VARS: [&str; 2] = ["CODEX_API_KEY", "OPENAI_API_KEY"];

/// Where Codex keeps its config, login and sessions (`~/.codex` when unset).
pub const CODEX_HOME_VAR: &str = "CODEX_HOME";

/// Variables forwarded for codex-acp itself: a daemon started by a service
/// manager does not see the user's shell environment, so the credentials and
/// Codex home of the client that starts a session travel with its hello.
///
/// Each agent gets only its own ([`agents::credential_vars`]): an
/// OpenAI key never reaches Claude, nor an Anthropic key Codex.
pub const AGENT_ENV_VARS: &[&str] = &[
    API_KEY_VARS[0],
    API_KEY_VARS[1],
    CODEX_HOME_VAR,
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CONFIG_DIR",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
];

/// The `_meta` key of a tool result that is a 🔐 pause; its value is
/// `{"id": "<pause id>"}`, the id `permit` takes ([`PauseMeta`]). Clients (the
/// CLI's `ask`) read the pause from here rather than from the result's text.
pub const PAUSE_META_KEY: &str = "codex-fusion/pause";

/// How the text of a paused turn's result starts (SPEC: "🔐 Codex paused"),
/// for the person reading it; a program tells a pause by [`PauseMeta`].
pub const PAUSE_PREFIX: &str = "🔐 Codex paused";

/// What the `_meta` of a 🔐 pause result says: the daemon writes it with
/// [`PauseMeta::insert_into`], a client reads it with [`PauseMeta::read`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PauseMeta {
    /// The pause's id, which `permit` takes; `None` only from a daemon that
    /// marked the pause without one.
    #[serde(default)]
    pub id: Option<String>,
    /// The agent that paused, which `permit` takes as `agent` when several
    /// agents of a council are paused; `None` from a daemon before the
    /// council.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

impl PauseMeta {
    /// A pause `id` of agent `agent`.
    pub fn new(id: impl Into<String>, agent: impl Into<String>) -> PauseMeta {
        PauseMeta {
            id: Some(id.into()),
            agent: Some(agent.into()),
        }
    }

    /// Marks the result whose `_meta` is `meta` as this pause.
    pub fn insert_into(&self, meta: &mut serde_json::Map<String, serde_json::Value>) {
        meta.insert(PAUSE_META_KEY.to_owned(), serde_json::json!(self));
    }

    /// The pause a result's `_meta` marks, or `None` if it is not a pause
    /// (whatever its text says). A mark whose value is not understood is
    /// still a pause, one without an id.
    pub fn read(meta: &serde_json::Map<String, serde_json::Value>) -> Option<PauseMeta> {
        let value = meta.get(PAUSE_META_KEY)?;
        Some(serde_json::from_value(value.clone()).unwrap_or_default())
    }
}

/// FNV-1a, 64 bits: a stable short name for a file from what it is for,
/// the same across Rust versions (unlike `DefaultHasher`); not a defence
/// against anyone choosing collisions.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether the client forwards variable `name` to the daemon.
pub fn is_forwarded(name: &str) -> bool {
    name.starts_with(ENV_PREFIX) || AGENT_ENV_VARS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_mark_reads_back_and_its_wire_form_is_stable() {
        let mut meta = serde_json::Map::new();
        assert_eq!(PauseMeta::read(&meta), None, "no mark: not a pause");
        PauseMeta::new("p3f9a", "codex").insert_into(&mut meta);
        assert_eq!(
            serde_json::Value::Object(meta.clone()),
            serde_json::json!({"codex-fusion/pause": {"id": "p3f9a", "agent": "codex"}})
        );
        assert_eq!(PauseMeta::read(&meta), Some(PauseMeta::new("p3f9a", "codex")));
        meta.insert(PAUSE_META_KEY.to_owned(), serde_json::json!("garbled"));
        assert_eq!(PauseMeta::read(&meta), Some(PauseMeta::default()));
        // A daemon before the council wrote the id alone.
        meta.insert(PAUSE_META_KEY.to_owned(), serde_json::json!({"id": "p1"}));
        let old = PauseMeta::read(&meta).expect("a pause");
        assert_eq!((old.id.as_deref(), old.agent), (Some("p1"), None));
    }
}
