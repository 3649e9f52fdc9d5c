//! What the fake remembers: the process-wide `Shared` state, the in-memory
//! `Session`s, their persisted `SessionData` (one JSON file per session in
//! the state directory, so a new process can `session/load` them), and the
//! `mode` / `model` config options built from it.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use agent_client_protocol::v1;
use agent_client_protocol::v1::schema::{
    CloseSessionResponse, InitializeResponse, SessionConfigOption, SessionConfigOptionCategory,
    SessionConfigSelectOption, SessionMode, SessionModeState,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::transport::{Output, lock};

/// Mode values, like codex-acp's: (id, display name).
pub const MODES: [(&str, &str); 4] = [
    ("read-only", "Read Only"),
    ("workspace-write", "Workspace Write"),
    ("agent", "Agent"),
    ("agent-full-access", "Agent (full access)"),
];
/// The mode a new or loaded session starts in (codex resets to it on load).
pub const DEFAULT_MODE: &str = "agent";
/// The only mode in which the fake asks permission instead of acting.
pub const READ_ONLY_MODE: &str = "read-only";
/// Model values: (id, display name).
pub const MODELS: [(&str, &str); 4] = [
    ("fake-large", "Fake Large"),
    ("fake-large[low]", "Fake Large (low effort)"),
    ("fake-large[high]", "Fake Large (high effort)"),
    ("fake-small", "Fake Small"),
];
pub const DEFAULT_MODEL: &str = "fake-large";

/// Process-wide state shared by every handler and turn.
pub struct Shared {
    pub args: Args,
    pub output: Output,
    pub store: Store,
    pub authenticated: AtomicBool,
    /// `session/load`s still to refuse as held elsewhere (`--busy-loads`).
    pub busy_loads: std::sync::atomic::AtomicU32,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    // `--hang-initialize` keeps the responders here: dropping one would
    // answer the client with an error, and the point is to never answer.
    held_initialize: Mutex<Vec<v1::Responder<InitializeResponse>>>,
    /// `session/close` requests a `fake:ignore-close` turn never answers.
    held_close: Mutex<Vec<v1::Responder<CloseSessionResponse>>>,
}

impl Shared {
    pub fn new(args: Args, output: Output) -> Self {
        let store = Store {
            dir: args.state_dir.clone(),
        };
        let busy_loads = args.busy_loads;
        Self {
            args,
            output,
            store,
            authenticated: AtomicBool::new(false),
            busy_loads: std::sync::atomic::AtomicU32::new(busy_loads),
            sessions: Mutex::new(HashMap::new()),
            held_initialize: Mutex::new(Vec::new()),
            held_close: Mutex::new(Vec::new()),
        }
    }

    /// Whether session requests are allowed (always, without `--require-auth`).
    pub fn is_authenticated(&self) -> bool {
        !self.args.require_auth || self.authenticated.load(Ordering::SeqCst)
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Makes `data` the live state of its session, reusing the in-memory
    /// session (and its running turns) if there is one.
    pub fn install(&self, data: SessionData) -> Arc<Session> {
        let mut sessions = lock(&self.sessions);
        if let Some(session) = sessions.get(&data.session_id) {
            *lock(&session.data) = data;
            return session.clone();
        }
        let session = Arc::new(Session {
            data: Mutex::new(data.clone()),
            cancel: Mutex::new(CancellationToken::new()),
            closed: CancellationToken::new(),
            deaf_to_close: AtomicBool::new(false),
        });
        sessions.insert(data.session_id, session.clone());
        session
    }

    /// Forgets the live session (a later load reads it from disk again).
    pub fn close(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).remove(id)
    }

    /// Keeps a `session/close` unanswered for good (a wedged process).
    pub fn hold_close(&self, responder: v1::Responder<CloseSessionResponse>) {
        lock(&self.held_close).push(responder);
    }

    pub fn hold_initialize(&self, responder: v1::Responder<InitializeResponse>) {
        lock(&self.held_initialize).push(responder);
    }
}

/// One live session. Turns run in their own tasks; `session/cancel` reaches
/// them through the cancellation token they took when they started.
pub struct Session {
    pub data: Mutex<SessionData>,
    // Replaced by a fresh token on every cancel: turns running at the time
    // hold the cancelled one, turns started later get the new one.
    cancel: Mutex<CancellationToken>,
    /// Fires on `session/close`: every turn ends, `ignore-cancel` ones too.
    pub closed: CancellationToken,
    /// A running turn ignores `session/close` (`fake:ignore-close`).
    pub deaf_to_close: AtomicBool,
}

impl Session {
    /// The token a turn starting now must watch.
    pub fn turn_token(&self) -> CancellationToken {
        lock(&self.cancel).clone()
    }

    /// Cancels every turn running now.
    pub fn cancel_turns(&self) {
        let old = std::mem::replace(&mut *lock(&self.cancel), CancellationToken::new());
        old.cancel();
    }

    pub fn snapshot(&self) -> SessionData {
        lock(&self.data).clone()
    }
}

/// A session as persisted in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub session_id: String,
    pub cwd: PathBuf,
    pub mode: String,
    pub model: String,
    /// Prompts this session has received, across processes.
    pub prompts_seen: u64,
    pub history: Vec<HistoryEntry>,
}

impl SessionData {
    pub fn new(cwd: PathBuf) -> Self {
        Self {
            session_id: new_session_id(),
            cwd,
            mode: DEFAULT_MODE.to_owned(),
            model: DEFAULT_MODEL.to_owned(),
            prompts_seen: 0,
            history: Vec::new(),
        }
    }

    /// The full `configOptions` list codex-style clients expect.
    pub fn config_options(&self) -> Vec<SessionConfigOption> {
        vec![
            SessionConfigOption::select("mode", "Approval Preset", self.mode.clone(), select(&MODES))
                .category(SessionConfigOptionCategory::Mode),
            SessionConfigOption::select("model", "Model", self.model.clone(), select(&MODELS))
                .category(SessionConfigOptionCategory::Model),
        ]
    }

    /// The legacy `modes` field, kept in step with the `mode` option.
    pub fn mode_state(&self) -> SessionModeState {
        let modes = MODES.iter().map(|(id, name)| SessionMode::new(*id, *name)).collect();
        SessionModeState::new(self.mode.clone(), modes)
    }
}

fn select(values: &[(&str, &str)]) -> Vec<SessionConfigSelectOption> {
    values
        .iter()
        .map(|(id, name)| SessionConfigSelectOption::new((*id).to_owned(), *name))
        .collect()
}

/// Checks a config value against its option; `None` for an unknown value.
pub fn known_value(values: &[(&str, &str)], value: &str) -> Option<String> {
    values
        .iter()
        .find(|(id, _)| *id == value)
        .map(|(id, _)| (*id).to_owned())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub role: Speaker,
    pub text: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    User,
    Agent,
}

/// The state directory: `<dir>/<session id>.json`.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn save(&self, data: &SessionData) -> std::io::Result<()> {
        let path = self
            .path(&data.session_id)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "session id is not a file name"))?;
        std::fs::create_dir_all(&self.dir)?;
        let json = serde_json::to_vec_pretty(data).map_err(std::io::Error::other)?;
        // Write then rename, so a process killed mid-write never leaves a
        // truncated session behind for the next one to load.
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, json)?;
        std::fs::rename(&partial, &path)
    }

    /// The persisted session, `None` if there is none under that id.
    pub fn load(&self, session_id: &str) -> std::io::Result<Option<SessionData>> {
        let Some(path) = self.path(session_id) else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Saves and reports failure on stderr: persistence problems must not
    /// fail the turn, but a test reading the stderr tail should see them.
    pub fn save_or_warn(&self, data: &SessionData) {
        if let Err(error) = self.save(data) {
            eprintln!(
                "fake-codex-acp: saving session {} in {} failed: {error}",
                data.session_id,
                self.dir.display()
            );
        }
    }

    fn path(&self, session_id: &str) -> Option<PathBuf> {
        let plain = !session_id.is_empty()
            && session_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        plain.then(|| self.dir.join(Path::new(session_id).with_extension("json")))
    }
}

/// A random, UUID-shaped session id. std's `RandomState` is randomly keyed
/// per process, which is all the randomness a fake needs.
fn new_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = std::collections::hash_map::RandomState::new();
    let mut hasher = keys.build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    let high = hasher.finish();
    hasher.write_u64(high);
    let low = hasher.finish();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}
