//! Which Codex session belongs to which Claude session, per workspace, kept
//! on disk so it survives daemon restarts and reboots.
//!
//! [`session_start`] is Claude Code's SessionStart rule: which Codex session
//! a workspace continues when Claude starts, resumes, clears or compacts a
//! session there. The daemon applies it to its live session, the CLI to this
//! file while no daemon runs.
//!
//! The daemon owns the file (`sessions.json` in the state directory); the
//! CLI and the hook write to it only while no daemon runs, so a reset or a
//! new Claude session is not lost to the next daemon's restore. It is
//! rewritten whole, to a private temporary file renamed over the old one
//! (`private::write_atomically`), on every change; changes are rare. A missing or corrupt file is reported to the
//! caller (to log) and treated as empty, never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::control::SessionSource;

/// Pairs remembered per workspace; the least recently used go first.
const PAIRS_KEPT: usize = 64;

const FILE_NAME: &str = "sessions.json";
const FORMAT_VERSION: u32 = 1;

/// What is remembered about one workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceRecord {
    /// The Codex session the workspace used last; its next turn continues it.
    pub codex_session_id: Option<String>,
    /// The Claude session the current Codex session is paired with.
    pub claude_session_id: Option<String>,
    /// Claude session id → its Codex session.
    pub pairs: BTreeMap<String, Pair>,
}

impl WorkspaceRecord {
    /// The Codex session paired with Claude session `claude`, if any.
    pub fn paired(&self, claude: &str) -> Option<&str> {
        self.pairs.get(claude).map(|pair| pair.codex_session_id.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pair {
    pub codex_session_id: String,
    /// Milliseconds since the Unix epoch; strictly increasing per workspace,
    /// so the oldest pair is always well defined.
    pub last_used_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct File {
    version: u32,
    /// Codex's records (the agent named `codex`), as before the council.
    workspaces: BTreeMap<PathBuf, WorkspaceRecord>,
    /// Every other agent's records, by agent name. A daemon older than the
    /// council ignores this and keeps Codex's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    agents: BTreeMap<String, BTreeMap<PathBuf, WorkspaceRecord>>,
}

impl File {
    fn records(&self, agent: &str) -> Option<&BTreeMap<PathBuf, WorkspaceRecord>> {
        match agent {
            crate::agents::DEFAULT_AGENT => Some(&self.workspaces),
            other => self.agents.get(other),
        }
    }

    fn records_mut(&mut self, agent: &str) -> &mut BTreeMap<PathBuf, WorkspaceRecord> {
        match agent {
            crate::agents::DEFAULT_AGENT => &mut self.workspaces,
            other => self.agents.entry(other.to_owned()).or_default(),
        }
    }
}

/// The pairings, in memory and on disk.
pub struct PairingStore {
    path: Option<PathBuf>,
    file: Mutex<File>,
}

impl PairingStore {
    /// Loads `state_dir/sessions.json`. A missing file is an empty store; an
    /// unreadable, corrupt or foreign one is an empty store plus a message
    /// saying so, for the caller to log.
    pub fn load(state_dir: &Path) -> (PairingStore, Option<String>) {
        let path = file(state_dir);
        let (file, problem) = match crate::private::read(&path) {
            Ok(Some(bytes)) => match serde_json::from_slice::<File>(&bytes) {
                Ok(file) if file.version == FORMAT_VERSION => (file, None),
                Ok(file) => (
                    File::default(),
                    Some(format!(
                        "unknown session file version {} in {}; starting with no pairings",
                        file.version,
                        path.display()
                    )),
                ),
                Err(error) => (
                    File::default(),
                    Some(format!(
                        "the session file is corrupt ({error}): {}; starting with no pairings",
                        path.display()
                    )),
                ),
            },
            Ok(None) => (File::default(), None),
            // A symlink or another user's file is not read; the next save
            // replaces it with a file of ours.
            Err(error) => (
                File::default(),
                Some(format!(
                    "cannot read the session file: {error}; starting with no pairings"
                )),
            ),
        };
        (
            PairingStore {
                path: Some(path),
                file: Mutex::new(file),
            },
            problem,
        )
    }

    /// A store that never touches the disk (tests).
    pub fn in_memory() -> PairingStore {
        PairingStore {
            path: None,
            file: Mutex::new(File::default()),
        }
    }

    /// What is remembered of agent `agent`'s sessions in `workspace`.
    pub fn get(&self, workspace: &Path, agent: &str) -> WorkspaceRecord {
        self.lock()
            .records(agent)
            .and_then(|records| records.get(workspace))
            .cloned()
            .unwrap_or_default()
    }

    /// The agents with anything remembered for `workspace`, `codex` first
    /// when it has.
    pub fn agents_of(&self, workspace: &Path) -> Vec<String> {
        let file = self.lock();
        let codex = file
            .workspaces
            .contains_key(workspace)
            .then(|| crate::agents::DEFAULT_AGENT.to_owned());
        codex
            .into_iter()
            .chain(
                file.agents
                    .iter()
                    .filter(|(_, records)| records.contains_key(workspace))
                    .map(|(agent, _)| agent.clone()),
            )
            .collect()
    }

    /// The agent session paired with Claude session `claude`, if any.
    pub fn paired(&self, workspace: &Path, agent: &str, claude: &str) -> Option<String> {
        self.lock()
            .records(agent)
            .and_then(|records| records.get(workspace))
            .and_then(|record| record.paired(claude))
            .map(str::to_owned)
    }

    /// Records that agent `agent` in `workspace` now uses session `codex`
    /// (or none), paired with `claude` (if known), and saves; an error says
    /// why it was not saved (the change is kept in memory).
    pub fn set_current(
        &self,
        workspace: &Path,
        agent: &str,
        codex: Option<&str>,
        claude: Option<&str>,
    ) -> Result<(), String> {
        self.update(workspace, agent, |record| {
            record.codex_session_id = codex.map(str::to_owned);
            record.claude_session_id = claude.map(str::to_owned);
            if let (Some(codex), Some(claude)) = (codex, claude) {
                let latest = record.pairs.values().map(|pair| pair.last_used_ms).max().unwrap_or(0);
                record.pairs.insert(
                    claude.to_owned(),
                    Pair {
                        codex_session_id: codex.to_owned(),
                        last_used_ms: now_ms().max(latest + 1),
                    },
                );
                trim(&mut record.pairs);
            }
        })
    }

    fn update(&self, workspace: &Path, agent: &str, change: impl FnOnce(&mut WorkspaceRecord)) -> Result<(), String> {
        let mut file = self.lock();
        file.version = FORMAT_VERSION;
        let record = file.records_mut(agent).entry(workspace.to_path_buf()).or_default();
        let before = record.clone();
        change(record);
        if *record == before {
            return Ok(());
        }
        if let Some(path) = &self.path {
            save(path, &file)
                .map_err(|error| format!("cannot save the session file: {error}; pairings are kept in memory only"))?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, File> {
        self.file.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The pairings' file in `state_dir`.
pub fn file(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Which Codex session a workspace continues after a SessionStart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    /// The one it is on; nothing changes.
    Keep,
    /// As `reset`: the session, and a turn running on it, are dropped now;
    /// the next call starts a fresh one.
    Reset,
    /// A fresh session from the next call on; a turn already running (for
    /// another Claude session on the same workspace) ends first.
    Fresh,
    /// Codex session `.0`, paired with the resumed Claude session.
    Restore(String),
}

/// What a SessionStart means for a workspace's Codex session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStartRule {
    pub continuation: Continuation,
    /// The same for a person, one clause: "the next call starts a fresh
    /// Codex session (Claude cleared its context)".
    pub action: String,
}

/// Claude Code's SessionStart rules: `compact` keeps the session, `clear`
/// resets it, `startup` starts a fresh one for the new Claude session,
/// `resume` restores the one `record` pairs with the resumed Claude session
/// `claude` (a fresh one if it has none). `current` is the Codex session the
/// workspace is on now; only the wording depends on it (resuming into it
/// keeps it). Afterwards the workspace is paired with `claude`.
pub fn session_start(
    source: SessionSource,
    claude: Option<&str>,
    record: &WorkspaceRecord,
    current: Option<&str>,
) -> SessionStartRule {
    let (continuation, action) = match source {
        SessionSource::Compact => (
            Continuation::Keep,
            "Codex's session is kept (Claude compacted its context)".to_owned(),
        ),
        SessionSource::Clear => (
            Continuation::Reset,
            "the next call starts a fresh Codex session (Claude cleared its context)".to_owned(),
        ),
        SessionSource::Startup => (
            Continuation::Fresh,
            "the next call starts a fresh Codex session for the new Claude session".to_owned(),
        ),
        SessionSource::Resume => match claude.and_then(|claude| record.paired(claude)) {
            Some(codex) if current == Some(codex) => (
                Continuation::Restore(codex.to_owned()),
                format!("Codex session {codex} is kept, paired with the resumed Claude session"),
            ),
            Some(codex) => (
                Continuation::Restore(codex.to_owned()),
                format!("the next call re-attaches Codex session {codex}, paired with the resumed Claude session"),
            ),
            None => (
                Continuation::Fresh,
                "the next call starts a fresh Codex session (the resumed Claude session had none)".to_owned(),
            ),
        },
    };
    SessionStartRule { continuation, action }
}

/// Writes `file` atomically and privately (0600, in a 0700 directory, a
/// symlink at its name replaced rather than followed).
fn save(path: &Path, file: &File) -> Result<(), crate::private::PrivateError> {
    let bytes = serde_json::to_vec_pretty(file).map_err(|error| crate::private::PrivateError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(error),
    })?;
    crate::private::write_atomically(path, &bytes)
}

fn trim(pairs: &mut BTreeMap<String, Pair>) {
    while pairs.len() > PAIRS_KEPT {
        let oldest = pairs
            .iter()
            .min_by_key(|(_, pair)| pair.last_used_ms)
            .map(|(claude, _)| claude.clone());
        match oldest {
            Some(claude) => pairs.remove(&claude),
            None => break,
        };
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairings_survive_a_reload() {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = Path::new("/w");
        let (store, _) = PairingStore::load(temp.path());
        store
            .set_current(workspace, "codex", Some("codex-1"), Some("claude-a"))
            .expect("saved");
        store
            .set_current(workspace, "codex", Some("codex-2"), Some("claude-b"))
            .expect("saved");
        let (reloaded, _) = PairingStore::load(temp.path());
        let record = reloaded.get(workspace, "codex");
        assert_eq!(record.codex_session_id.as_deref(), Some("codex-2"));
        assert_eq!(record.claude_session_id.as_deref(), Some("claude-b"));
        assert_eq!(
            reloaded.paired(workspace, "codex", "claude-a").as_deref(),
            Some("codex-1")
        );
        assert_eq!(
            reloaded.paired(workspace, "codex", "claude-b").as_deref(),
            Some("codex-2")
        );
        assert_eq!(reloaded.paired(workspace, "codex", "claude-c"), None);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(temp.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(FILE_NAME)]);
    }

    /// Issue 15: each agent of a council has its own sessions and pairs in
    /// a workspace; Codex's stay where a daemon older than the council
    /// reads them.
    #[test]
    fn every_agent_has_its_own_records_and_codex_keeps_the_old_place() {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = Path::new("/w");
        let (store, _) = PairingStore::load(temp.path());
        store
            .set_current(workspace, "codex", Some("codex-1"), Some("claude-a"))
            .expect("saved");
        store
            .set_current(workspace, "claude", Some("claude-acp-1"), Some("claude-a"))
            .expect("saved");
        let (reloaded, problem) = PairingStore::load(temp.path());
        assert_eq!(problem, None);
        assert_eq!(
            reloaded.get(workspace, "codex").codex_session_id.as_deref(),
            Some("codex-1")
        );
        assert_eq!(
            reloaded.get(workspace, "claude").codex_session_id.as_deref(),
            Some("claude-acp-1")
        );
        assert_eq!(
            reloaded.paired(workspace, "claude", "claude-a").as_deref(),
            Some("claude-acp-1")
        );
        assert_eq!(reloaded.get(workspace, "gemini"), WorkspaceRecord::default());
        assert_eq!(reloaded.agents_of(workspace), ["codex", "claude"]);
        assert!(reloaded.agents_of(Path::new("/v")).is_empty());
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file(temp.path())).expect("read")).expect("json");
        assert_eq!(raw["workspaces"]["/w"]["codex_session_id"], "codex-1");
        assert_eq!(raw["agents"]["claude"]["/w"]["codex_session_id"], "claude-acp-1");
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_an_empty_store() {
        let temp = tempfile::tempdir().expect("tempdir");
        std::fs::write(temp.path().join(FILE_NAME), b"{not json").expect("write");
        let (store, problem) = PairingStore::load(temp.path());
        assert_eq!(store.get(Path::new("/w"), "codex"), WorkspaceRecord::default());
        assert!(problem.expect("reported").contains("corrupt"));
        std::fs::write(temp.path().join(FILE_NAME), br#"{"version": 99, "workspaces": {}}"#).expect("write");
        let (store, problem) = PairingStore::load(temp.path());
        assert_eq!(store.get(Path::new("/w"), "codex"), WorkspaceRecord::default());
        assert!(problem.expect("reported").contains("version 99"));
        // And it is replaced by a good one on the next change.
        store
            .set_current(Path::new("/w"), "codex", Some("codex-1"), None)
            .expect("saved");
        let (reloaded, problem) = PairingStore::load(temp.path());
        assert_eq!(problem, None);
        assert_eq!(
            reloaded.get(Path::new("/w"), "codex").codex_session_id.as_deref(),
            Some("codex-1")
        );
    }

    /// Issue 13: the file and its directory are private, and a symlink
    /// planted at its name is neither read nor written through.
    #[test]
    fn the_session_file_is_private_and_never_follows_a_symlink() {
        use std::os::unix::fs::PermissionsExt as _;
        let temp = tempfile::tempdir().expect("tempdir");
        let state = temp.path().join("state");
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let (store, _) = PairingStore::load(&state);
        let saved = store.set_current(Path::new("/w"), "codex", Some("codex-1"), None);
        nix::sys::stat::umask(old);
        saved.expect("saved");
        let mode = |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join(FILE_NAME)), 0o600);

        let victim = temp.path().join("victim.json");
        std::fs::write(
            &victim,
            br#"{"version": 1, "workspaces": {"/v": {"codex_session_id": "planted"}}}"#,
        )
        .expect("write");
        std::fs::remove_file(state.join(FILE_NAME)).expect("rm");
        std::os::unix::fs::symlink(&victim, state.join(FILE_NAME)).expect("symlink");
        let (store, problem) = PairingStore::load(&state);
        let problem = problem.expect("reported");
        assert!(problem.contains("symbolic link"), "{problem}");
        assert!(
            problem.contains(&state.join(FILE_NAME).display().to_string()),
            "{problem}"
        );
        assert_eq!(
            store.get(Path::new("/v"), "codex"),
            WorkspaceRecord::default(),
            "not read through the link"
        );
        store
            .set_current(Path::new("/w"), "codex", Some("codex-2"), None)
            .expect("saved");
        assert!(
            std::fs::read_to_string(&victim).expect("read").contains("planted"),
            "the link's target is untouched"
        );
        assert!(
            !std::fs::symlink_metadata(state.join(FILE_NAME))
                .expect("meta")
                .is_symlink()
        );
    }

    fn paired_record() -> WorkspaceRecord {
        let store = PairingStore::in_memory();
        store
            .set_current(Path::new("/w"), "codex", Some("codex-a"), Some("claude-a"))
            .expect("in memory");
        store
            .set_current(Path::new("/w"), "codex", Some("codex-b"), Some("claude-b"))
            .expect("in memory");
        store.get(Path::new("/w"), "codex")
    }

    /// The rule for `source` from Claude session `claude`, on a workspace
    /// that is on codex-b and pairs claude-a → codex-a, claude-b → codex-b.
    fn rule_for(source: SessionSource, claude: Option<&str>) -> SessionStartRule {
        session_start(source, claude, &paired_record(), Some("codex-b"))
    }

    #[test]
    fn compact_keeps_the_session() {
        let rule = rule_for(SessionSource::Compact, Some("claude-b"));
        assert_eq!(rule.continuation, Continuation::Keep);
        assert_eq!(rule.action, "Codex's session is kept (Claude compacted its context)");
        let rule = session_start(SessionSource::Compact, None, &WorkspaceRecord::default(), None);
        assert_eq!(rule.continuation, Continuation::Keep, "whatever is known");
    }

    #[test]
    fn clear_resets_even_a_paired_session() {
        let rule = rule_for(SessionSource::Clear, Some("claude-b"));
        assert_eq!(rule.continuation, Continuation::Reset);
        assert_eq!(
            rule.action,
            "the next call starts a fresh Codex session (Claude cleared its context)"
        );
    }

    #[test]
    fn startup_starts_fresh_even_for_a_known_claude_session() {
        let rule = rule_for(SessionSource::Startup, Some("claude-a"));
        assert_eq!(rule.continuation, Continuation::Fresh);
        assert_eq!(
            rule.action,
            "the next call starts a fresh Codex session for the new Claude session"
        );
    }

    #[test]
    fn resume_restores_the_paired_session_or_starts_fresh() {
        let rule = rule_for(SessionSource::Resume, Some("claude-a"));
        assert_eq!(rule.continuation, Continuation::Restore("codex-a".into()));
        assert_eq!(
            rule.action,
            "the next call re-attaches Codex session codex-a, paired with the resumed Claude session"
        );
        let rule = rule_for(SessionSource::Resume, Some("claude-b"));
        assert_eq!(
            rule.continuation,
            Continuation::Restore("codex-b".into()),
            "restoring the session it is on is still a restore (a switch asked for earlier is moot)"
        );
        assert_eq!(
            rule.action,
            "Codex session codex-b is kept, paired with the resumed Claude session"
        );
        for claude in [Some("claude-z"), None] {
            let rule = rule_for(SessionSource::Resume, claude);
            assert_eq!(rule.continuation, Continuation::Fresh, "{claude:?}");
            assert_eq!(
                rule.action,
                "the next call starts a fresh Codex session (the resumed Claude session had none)"
            );
        }
    }

    #[test]
    fn old_pairs_are_dropped_beyond_the_limit() {
        let store = PairingStore::in_memory();
        for index in 0..(PAIRS_KEPT + 10) {
            store
                .set_current(
                    Path::new("/w"),
                    "codex",
                    Some(&format!("codex-{index}")),
                    Some(&format!("claude-{index}")),
                )
                .expect("in memory");
        }
        let record = store.get(Path::new("/w"), "codex");
        assert_eq!(record.pairs.len(), PAIRS_KEPT);
        let newest = format!("claude-{}", PAIRS_KEPT + 9);
        assert!(record.pairs.contains_key(&newest), "the newest pair is kept");
        assert!(!record.pairs.contains_key("claude-0"), "the oldest pair went first");
    }
}
