//! What `codex-fusion watch` follows: the events of a workspace's turns, as
//! the daemon streams them on a control connection that asked
//! [`crate::control::ControlRequest::Watch`].
//!
//! Wire form: the request is answered by one
//! [`crate::control::ControlResponse::Watching`] line, then one
//! [`WatchEvent`] per line until either side closes. A watcher that reads
//! too slowly is sent [`WatchEvent::Dropped`] in place of what it missed:
//! the turn never waits for a watcher.

use serde::{Deserialize, Serialize};

/// One thing that happened in a workspace's turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// A turn began (`turn` counts the workspace actor's turns; `tool` is
    /// the MCP tool).
    TurnStarted { turn: u64, tool: String },
    /// A turn was already under way when the watcher connected; what it did
    /// before is not shown.
    Running { tool: String },
    /// The latest tail of Codex's reasoning (what Claude sees after 💭).
    Thought { tail: String },
    /// One step Codex took (what Claude sees after ↳).
    Activity { line: String },
    /// The latest tail of Codex's answer text.
    Text { tail: String },
    /// The turn waits for `permit`: the pause id, one line on what Codex
    /// wants and why, and the whole 🔐 text Claude received.
    Paused { id: String, summary: String, text: String },
    /// The turn ended with an answer: its verdict if it has one, and the
    /// answer's footer line.
    Answered {
        turn: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<String>,
        footer: String,
    },
    /// The turn ended without an answer (failed, cancelled, timed out).
    Failed { turn: u64, message: String },
    /// The watcher was too slow: this many events were not sent to it.
    Dropped { count: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_wire_form_is_stable() {
        let json = |event: &WatchEvent| {
            let text = serde_json::to_string(event).expect("serializes");
            assert_eq!(&serde_json::from_str::<WatchEvent>(&text).expect("parses"), event);
            text
        };
        assert_eq!(
            json(&WatchEvent::TurnStarted {
                turn: 2,
                tool: "consult".into(),
            }),
            r#"{"event":"turn_started","turn":2,"tool":"consult"}"#
        );
        assert_eq!(
            json(&WatchEvent::Dropped { count: 12 }),
            r#"{"event":"dropped","count":12}"#
        );
        assert_eq!(
            json(&WatchEvent::Answered {
                turn: 2,
                verdict: None,
                footer: "— f".into()
            }),
            r#"{"event":"answered","turn":2,"footer":"— f"}"#
        );
    }
}
