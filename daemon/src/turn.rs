//! What a turn gives back to the tool call waiting on it, and the waiter
//! itself. Built by the session actor, rendered by [`crate::render`].

use std::time::Duration;

use tokio::sync::oneshot;

use crate::guardian::PermissionRequest;
use crate::progress::ProgressSink;
use crate::prompts::Verdict;

/// Identifies one MCP tool call across the daemon (for cancellation).
pub type CallId = u64;

/// The tool call waiting on a turn: where its outcome and progress go.
pub struct Waiter {
    pub call: CallId,
    pub reply: oneshot::Sender<TurnOutcome>,
    pub progress: ProgressSink,
}

impl Waiter {
    pub fn new(call: CallId, progress: ProgressSink) -> (Waiter, oneshot::Receiver<TurnOutcome>) {
        let (reply, receiver) = oneshot::channel();
        (Waiter { call, reply, progress }, receiver)
    }

    /// Delivers the outcome; a caller that has gone away is not an error.
    pub fn send(self, outcome: TurnOutcome) {
        let _ = self.reply.send(outcome);
    }
}

/// How a tool call that waited on a turn ends.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnOutcome {
    /// Codex answered.
    Answer(Answer),
    /// Codex wants something the guardian did not allow; `permit` resumes.
    Paused(Pause),
    /// The turn failed; the text says why and what to do.
    Failed(String),
    /// The call was not accepted in the session's current state (e.g.
    /// `permit` with nothing pending); the text says so.
    Refused(String),
    /// An argument only the agent can judge (model, effort) is not valid;
    /// the text lists the valid values. An MCP error, like other bad
    /// arguments.
    Invalid(String),
}

/// Codex's answer and the facts for its footer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub elapsed: Duration,
    pub usage: Option<TurnUsage>,
    pub verdict: Option<Verdict>,
    /// One-line remarks for the footer (a lost context, a cut answer).
    pub notes: Vec<String>,
    /// Why the agent ended the turn (`end_turn`, `max_tokens`, …).
    pub stop_reason: &'static str,
}

/// Tokens one turn used, as the agent reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TurnUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
}

/// What Codex is waiting for, and why the guardian did not allow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    /// Names this pause for `permit` (unique for the daemon's life).
    pub id: String,
    /// The agent that paused (`codex`, or another of a council).
    pub agent: std::sync::Arc<str>,
    pub request: PermissionRequest,
    pub why: String,
}

/// Hands out pause ids such as `p3f9a`: a counter, so unique for the
/// daemon's life, that starts at a value taken from the start time, so a
/// permit kept from an earlier daemon is unlikely to name a new pause.
#[derive(Debug)]
pub struct PauseIds {
    next: std::sync::atomic::AtomicU64,
}

impl PauseIds {
    pub fn new() -> PauseIds {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        // At least four hex digits; the counter adds more as it grows.
        let start = 0x1000 + u64::from(nanos % 0xe000);
        PauseIds {
            next: std::sync::atomic::AtomicU64::new(start),
        }
    }

    pub fn next(&self) -> String {
        let value = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("p{value:x}")
    }
}

impl Default for PauseIds {
    fn default() -> Self {
        PauseIds::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_ids_are_short_and_never_repeat() {
        let ids = PauseIds::new();
        let taken: Vec<String> = (0..70_000).map(|_| ids.next()).collect();
        assert!(
            taken
                .iter()
                .all(|id| id.starts_with('p') && id.len() >= 5 && id.len() <= 7),
            "{:?}",
            &taken[..3]
        );
        let unique: std::collections::HashSet<&String> = taken.iter().collect();
        assert_eq!(unique.len(), taken.len());
    }
}
