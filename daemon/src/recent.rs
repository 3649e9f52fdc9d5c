//! The daemon's side of the store of recent answers
//! ([`codex_fusion_protocol::answers`]): every result a turn tool renders is
//! kept here, whole, before it goes to the client, so an answer Claude Code
//! moved to the background (and the model then ignored) is still in
//! `codex-fusion log` and in the file `status` names.
//!
//! Writes happen on the blocking pool, one at a time (a write prunes, and
//! pruning must not remove a text whose record another write is about to
//! add). The newest record of each workspace is also kept in memory, for
//! `status`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use codex_fusion_protocol::answers::{self, AnswerRecord, Limits, Outcome, Tokens};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::turn::TurnOutcome;

/// How long an answer waits to be written to its client before it is kept
/// anyway (a client that does not read).
const SENT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long after its answer was written an answer is kept: past the
/// shim's and the client's reading of it.
const AFTER_SENT: std::time::Duration = std::time::Duration::from_millis(20);

/// The recent answers of every workspace.
pub struct Recent {
    state_dir: PathBuf,
    limits: Limits,
    /// Held for a whole write (text, record, prune).
    writing: Mutex<()>,
    /// Each workspace's newest record, once known (`None`: none on disk).
    newest: Mutex<HashMap<PathBuf, Option<AnswerRecord>>>,
    /// The tool of each workspace's turn that is paused, so the answer a
    /// `permit` brings is recorded under the tool that asked.
    paused_tool: Mutex<HashMap<(PathBuf, String), String>>,
    /// Read-held by every keep still running in the background; readers of
    /// the kept answers (`log`, `status`) take it to write, so they see
    /// every answer already delivered.
    pending: Arc<tokio::sync::RwLock<()>>,
}

/// What a turn's outcome is kept as: the facts of its record and its text.
pub struct Entry {
    pub record: AnswerRecord,
    pub text: String,
    /// When the answer was rendered: its time in the store, whenever it is
    /// written, so answers sort as they were given.
    pub at: SystemTime,
}

impl Recent {
    pub fn new(state_dir: PathBuf, limits: Limits) -> Arc<Recent> {
        Arc::new(Recent {
            state_dir,
            limits,
            writing: Mutex::new(()),
            newest: Mutex::new(HashMap::new()),
            paused_tool: Mutex::new(HashMap::new()),
            pending: Arc::new(tokio::sync::RwLock::new(())),
        })
    }

    /// The entry for `outcome` of a call of `tool` on `workspace`, or `None`
    /// for an outcome that is no turn's end (a refused `permit`, a bad
    /// argument). `text` is what is kept: the answer, the 🔐 text, the
    /// error.
    pub fn entry(&self, workspace: &Path, agent: &str, tool: &str, outcome: &TurnOutcome, text: &str) -> Option<Entry> {
        let after_permit = tool == codex_fusion_protocol::tools::ToolName::Permit.as_str();
        let key = (workspace.to_path_buf(), agent.to_owned());
        let tool = if after_permit {
            lock(&self.paused_tool).remove(&key).unwrap_or_else(|| tool.to_owned())
        } else if agent == codex_fusion_protocol::agents::DEFAULT_AGENT {
            tool.to_owned()
        } else {
            // Another agent of a council: its name goes with the tool.
            format!("{tool} · {agent}")
        };
        let mut record = AnswerRecord {
            workspace: workspace.to_path_buf(),
            after_permit,
            ..AnswerRecord::default()
        };
        match outcome {
            TurnOutcome::Answer(answer) => {
                record.outcome = Outcome::Answer;
                if let Some(verdict) = &answer.verdict {
                    record.verdict = Some(verdict.label().to_owned());
                    let (crate::prompts::Verdict::Consensus(summary) | crate::prompts::Verdict::Open(summary)) =
                        verdict;
                    record.verdict_summary = Some(summary.clone()).filter(|summary| !summary.is_empty());
                }
                record.tokens = answer.usage.map(|usage| Tokens {
                    input: usage.input_tokens,
                    output: usage.output_tokens,
                    reasoning: usage.reasoning_tokens,
                });
                record.duration_ms = Some(u64::try_from(answer.elapsed.as_millis()).unwrap_or(u64::MAX));
                record.stop_reason = Some(answer.stop_reason.to_owned());
            }
            TurnOutcome::Paused(_) => {
                record.outcome = Outcome::Paused;
                // The next `permit` on this workspace resumes this tool's turn.
                lock(&self.paused_tool).insert(key, tool.clone());
            }
            TurnOutcome::Failed(_) => record.outcome = Outcome::Failed,
            TurnOutcome::Refused(_) | TurnOutcome::Invalid(_) => return None,
        }
        record.tool = tool;
        Some(Entry {
            record,
            text: text.to_owned(),
            at: SystemTime::now(),
        })
    }

    /// Saves `entry` (on the blocking pool) and prunes its workspace; the
    /// record as saved, or `None` when it could not be (logged: the answer
    /// still goes to the client).
    pub async fn keep(self: &Arc<Self>, entry: Entry) -> Option<AnswerRecord> {
        let recent = self.clone();
        let workspace = entry.record.workspace.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let _writing = lock(&recent.writing);
            answers::save(&recent.state_dir, recent.limits, entry.record, &entry.text, entry.at)
        })
        .await;
        match saved {
            Ok(Ok(record)) => {
                // One kept late (after its answer went out) may follow a
                // newer one kept at once.
                let mut newest = lock(&self.newest);
                let known = newest.get(&workspace).and_then(Option::as_ref);
                if known.is_none_or(|known| known.finished_at_ms <= record.finished_at_ms) {
                    newest.insert(workspace, Some(record.clone()));
                }
                Some(record)
            }
            Ok(Err(error)) => {
                tracing::warn!(workspace = %workspace.display(), %error, "cannot keep the answer in the recent answers");
                None
            }
            Err(error) => {
                tracing::warn!(%error, "the task keeping an answer failed");
                None
            }
        }
    }

    /// `workspace`'s newest kept answer, if it is still kept.
    pub fn last(&self, workspace: &Path) -> Option<AnswerRecord> {
        let known = lock(&self.newest).get(workspace).cloned();
        let newest = match known {
            Some(newest) => newest,
            None => {
                // Kept by an earlier daemon: read once from disk.
                let newest = answers::list(&self.state_dir, workspace, 1)
                    .ok()
                    .and_then(|mut records| records.pop());
                lock(&self.newest).insert(workspace.to_path_buf(), newest.clone());
                newest
            }
        };
        let oldest_kept = answers::millis_since_epoch(SystemTime::now())
            .saturating_sub(u64::try_from(self.limits.age.as_millis()).unwrap_or(u64::MAX));
        newest.filter(|record| record.finished_at_ms >= oldest_kept)
    }

    /// Keeps `entry` in a task of `tasks` (the daemon waits for them at
    /// shutdown) a moment after `sent` fires, when the answer has been
    /// written to the client (or after [`SENT_WAIT`] if it never is). An
    /// answer whose result does not name its kept file need not wait for a
    /// disk, nor share the machine with one on its way out: the shim and
    /// the client still have to read it once it is written, and creating
    /// and pruning the files right then cost a consult with the real agent
    /// about 0.15 ms on a 2-CPU machine (docs/PERFORMANCE.md, figure 7).
    /// Kept at once when the daemon stops (`stopping`), and in line when a
    /// reader is settling right now.
    pub async fn keep_once_sent(
        self: &Arc<Self>,
        entry: Entry,
        sent: CancellationToken,
        stopping: &CancellationToken,
        tasks: &TaskTracker,
    ) {
        let Ok(pending) = self.pending.clone().try_read_owned() else {
            self.keep(entry).await;
            return;
        };
        let recent = self.clone();
        let stopping = stopping.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = async {
                    let _ = tokio::time::timeout(SENT_WAIT, sent.cancelled()).await;
                    tokio::time::sleep(AFTER_SENT).await;
                } => {}
                () = stopping.cancelled() => {}
            }
            recent.keep(entry).await;
            drop(pending);
        });
    }

    /// Waits until every keep started before now has written its answer.
    pub async fn settled(&self) {
        drop(self.pending.write().await);
    }

    /// `workspace`'s kept answers, newest first, at most `limit`.
    pub async fn list(&self, workspace: &Path, limit: usize) -> Result<Vec<AnswerRecord>, String> {
        self.settled().await;
        let state_dir = self.state_dir.clone();
        let workspace = workspace.to_path_buf();
        tokio::task::spawn_blocking(move || answers::list(&state_dir, &workspace, limit))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::{Answer, TurnUsage};
    use std::time::Duration;

    fn answer(text: &str, notes: &[&str]) -> Answer {
        Answer {
            text: text.to_owned(),
            elapsed: Duration::from_millis(2500),
            usage: Some(TurnUsage {
                input_tokens: 100,
                output_tokens: 20,
                reasoning_tokens: 5,
            }),
            verdict: crate::prompts::Verdict::parse(text),
            notes: notes.iter().map(|note| (*note).to_owned()).collect(),
            stop_reason: "end_turn",
        }
    }

    #[tokio::test]
    async fn an_answer_after_a_permit_is_kept_under_the_tool_that_paused() {
        let temp = tempfile::tempdir().expect("tempdir");
        let recent = Recent::new(temp.path().to_path_buf(), Limits::default());
        let workspace = Path::new("/w");
        assert_eq!(recent.last(workspace), None);
        let pause = TurnOutcome::Refused("stand-in".into());
        assert!(
            recent.entry(workspace, "codex", "permit", &pause, "x").is_none(),
            "no turn ended"
        );
        let paused = TurnOutcome::Paused(crate::turn::Pause {
            id: "p1".into(),
            agent: "codex".into(),
            request: crate::guardian::PermissionRequest::default(),
            why: "a command".into(),
        });
        let entry = recent
            .entry(workspace, "codex", "review_diff", &paused, "🔐 Codex paused")
            .expect("kept");
        assert_eq!(entry.record.outcome, Outcome::Paused);
        recent.keep(entry).await.expect("saved");
        let done = TurnOutcome::Answer(answer("Looks fine.\n\nVERDICT: CONSENSUS — ship it", &[]));
        let entry = recent
            .entry(workspace, "codex", "permit", &done, "Looks fine.")
            .expect("kept");
        let record = recent.keep(entry).await.expect("saved");
        assert_eq!(record.tool, "review_diff");
        assert!(record.after_permit);
        assert_eq!(record.verdict.as_deref(), Some("CONSENSUS"));
        assert_eq!(record.verdict_summary.as_deref(), Some("ship it"));
        assert_eq!(record.duration_ms, Some(2500));
        assert_eq!(record.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(
            record.tokens,
            Some(Tokens {
                input: 100,
                output: 20,
                reasoning: 5
            })
        );
        assert_eq!(recent.last(workspace), Some(record.clone()));
        assert_eq!(recent.list(workspace, 10).await.expect("lists").len(), 2);
        // A new daemon finds it on disk.
        let later = Recent::new(temp.path().to_path_buf(), Limits::default());
        assert_eq!(later.last(workspace), Some(record));
    }
}
