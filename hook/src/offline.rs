//! What `reset` and the hook do while no daemon runs: they write the change
//! into the daemon's state file (`sessions.json`, through
//! `codex_fusion_protocol::pairing::PairingStore`), so the next daemon does
//! not restore a session the user or Claude has dropped. Only called after a
//! connect found nobody listening; a running daemon owns the file.
//!
//! The SessionStart rules are the daemon's, `pairing::session_start`: here a
//! fresh session is no current Codex session (the next daemon starts one), a
//! restored one is the current one; `reset` is a fresh session too.

use std::path::{Path, PathBuf};

use codex_fusion_protocol::control::SessionSource;
use codex_fusion_protocol::pairing::{self, Continuation, PairingStore};

/// Drops `workspace`'s current session of every agent from the state file.
/// The text says what was done; an error says why nothing was.
pub fn reset(state_dir: &Path, workspace: &Path) -> Result<String, String> {
    let (store, file, problem) = load(state_dir);
    let mut removed = Vec::new();
    for agent in store.agents_of(workspace) {
        let record = store.get(workspace, &agent);
        let Some(session) = record.codex_session_id else {
            continue;
        };
        store
            .set_current(workspace, &agent, None, record.claude_session_id.as_deref())
            .map_err(|error| format!("codex-fusiond is not running, and {error}; nothing was reset"))?;
        removed.push(if agent == pairing_default() {
            format!("Codex session {session}")
        } else {
            format!("{agent}'s session {session}")
        });
    }
    if removed.is_empty() {
        return Ok(format!(
            "codex-fusiond is not running and no Codex session is recorded for {}; nothing to reset{}",
            workspace.display(),
            aside(problem.as_deref())
        ));
    }
    Ok(format!(
        "codex-fusiond is not running; removed {} for {} from {}, so its next tool call starts fresh{}",
        removed.join(" and "),
        workspace.display(),
        file.display(),
        aside(problem.as_deref())
    ))
}

/// Applies a SessionStart to the state file, for every agent with a
/// record here (Codex always). The text says what was done; an error says
/// why nothing was.
pub fn session_start(
    state_dir: &Path,
    workspace: &Path,
    claude: Option<&str>,
    source: SessionSource,
) -> Result<String, String> {
    let (store, file, problem) = load(state_dir);
    let mut agents = store.agents_of(workspace);
    if !agents.iter().any(|agent| agent == pairing_default()) {
        agents.insert(0, pairing_default().to_owned());
    }
    let mut actions = Vec::new();
    let mut changed = false;
    for agent in &agents {
        let record = store.get(workspace, agent);
        let rule = pairing::session_start(source, claude, &record, record.codex_session_id.as_deref());
        let named = |action: &str| match agent.as_str() {
            agent if agent == pairing_default() => action.to_owned(),
            other => format!("{other}: {action}"),
        };
        let current = match rule.continuation {
            Continuation::Keep => {
                actions.push(named(&rule.action));
                continue;
            }
            Continuation::Reset | Continuation::Fresh => None,
            Continuation::Restore(session) => Some(session),
        };
        store
            .set_current(workspace, agent, current.as_deref(), claude)
            .map_err(|error| format!("codex-fusiond is not running, and {error}; nothing done"))?;
        changed = true;
        actions.push(named(&rule.action));
    }
    if !changed {
        return Ok(format!(
            "codex-fusiond is not running; nothing to change, {}{}",
            actions.join("; "),
            aside(problem.as_deref())
        ));
    }
    Ok(format!(
        "codex-fusiond is not running; recorded in {} that {}{}",
        file.display(),
        actions.join("; "),
        aside(problem.as_deref())
    ))
}

/// The agent whose records sit where a daemon before the council kept them.
fn pairing_default() -> &'static str {
    codex_fusion_protocol::agents::DEFAULT_AGENT
}

fn load(state_dir: &Path) -> (PairingStore, PathBuf, Option<String>) {
    let (store, problem) = PairingStore::load(state_dir);
    (store, pairing::file(state_dir), problem)
}

/// A problem loading the file, appended to the one-line message.
fn aside(problem: Option<&str>) -> String {
    problem.map(|problem| format!(" ({problem})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = "/w";

    fn record(state_dir: &Path) -> codex_fusion_protocol::pairing::WorkspaceRecord {
        PairingStore::load(state_dir).0.get(Path::new(WORKSPACE), "codex")
    }

    #[test]
    fn reset_drops_the_current_session_and_keeps_the_pairs() {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = Path::new(WORKSPACE);
        let message = reset(temp.path(), workspace).expect("nothing to do");
        assert!(message.contains("nothing to reset"), "{message}");
        assert!(!pairing::file(temp.path()).exists(), "nothing written for nothing");
        let (store, _) = PairingStore::load(temp.path());
        store
            .set_current(workspace, "codex", Some("codex-1"), Some("claude-a"))
            .expect("saved");
        let message = reset(temp.path(), workspace).expect("reset");
        assert!(message.contains("removed Codex session codex-1"), "{message}");
        let after = record(temp.path());
        assert_eq!(after.codex_session_id, None);
        assert_eq!(after.claude_session_id.as_deref(), Some("claude-a"));
        assert_eq!(
            PairingStore::load(temp.path())
                .0
                .paired(workspace, "codex", "claude-a")
                .as_deref(),
            Some("codex-1"),
            "a later resume of claude-a still finds its session"
        );
    }

    #[test]
    fn session_starts_follow_the_daemons_rules() {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = Path::new(WORKSPACE);
        let (store, _) = PairingStore::load(temp.path());
        store
            .set_current(workspace, "codex", Some("codex-a"), Some("claude-a"))
            .expect("saved");

        let message = session_start(temp.path(), workspace, Some("claude-a"), SessionSource::Compact).expect("kept");
        assert!(message.contains("nothing to change"), "{message}");
        assert_eq!(record(temp.path()).codex_session_id.as_deref(), Some("codex-a"));

        let message = session_start(temp.path(), workspace, Some("claude-b"), SessionSource::Clear).expect("cleared");
        assert!(message.contains("fresh Codex session (Claude cleared"), "{message}");
        let after = record(temp.path());
        assert_eq!(after.codex_session_id, None);
        assert_eq!(after.claude_session_id.as_deref(), Some("claude-b"));

        let message = session_start(temp.path(), workspace, Some("claude-a"), SessionSource::Resume).expect("resumed");
        assert!(message.contains("re-attaches Codex session codex-a"), "{message}");
        let after = record(temp.path());
        assert_eq!(after.codex_session_id.as_deref(), Some("codex-a"));
        assert_eq!(after.claude_session_id.as_deref(), Some("claude-a"));

        let message = session_start(temp.path(), workspace, Some("claude-a"), SessionSource::Resume).expect("resumed");
        assert!(
            message.contains("Codex session codex-a is kept"),
            "resumed into it again: {message}"
        );
        assert_eq!(record(temp.path()).codex_session_id.as_deref(), Some("codex-a"));

        let message = session_start(temp.path(), workspace, Some("claude-c"), SessionSource::Resume).expect("resumed");
        assert!(message.contains("had none"), "{message}");
        assert_eq!(record(temp.path()).codex_session_id, None);

        session_start(temp.path(), workspace, Some("claude-a"), SessionSource::Resume).expect("resumed");
        let message = session_start(temp.path(), workspace, Some("claude-d"), SessionSource::Startup).expect("started");
        assert!(message.contains("for the new Claude session"), "{message}");
        let after = record(temp.path());
        assert_eq!(after.codex_session_id, None);
        assert_eq!(after.claude_session_id.as_deref(), Some("claude-d"));
    }
}
