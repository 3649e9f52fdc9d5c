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
    pub request: PermissionRequest,
    pub why: String,
}
