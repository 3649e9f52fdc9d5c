//! Progress for one tool call: the turn pushes text, reasoning and activity
//! into a [`ProgressSink`]; a forwarder task sends them to the MCP client as
//! progress notifications with strictly increasing `progress`.
//!
//! This is the one place that enforces "no late messages": once the call has
//! its final result, or the client cancelled it, the sink is closed and the
//! forwarder is stopped and joined *before* the tool handler returns, so not
//! one more notification for that request can reach the client.
//!
//! Rate limiting is by coalescing, not by a clock: the text tail and the
//! reasoning tail are single slots that keep only their latest value, and
//! activities are a short queue that drops its oldest entry when full. A
//! flood of agent updates therefore costs a bounded amount of memory, and the
//! client receives them as fast as it reads, never more.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Activities waiting to be sent; older ones are dropped beyond this. A
/// client that cannot keep up sees the latest steps, not a backlog.
const ACTIVITY_BACKLOG: usize = 16;

/// Characters of answer text or reasoning shown in one progress message.
pub const TAIL_CHARS: usize = 160;

/// Where a turn sends its progress. Cloneable; every push after the call is
/// finished or cancelled is dropped.
#[derive(Clone, Default)]
pub struct ProgressSink {
    shared: Option<Arc<Shared>>,
    /// Put before every message of this clone: the agent's name, when
    /// several agents of a council share one call's progress.
    label: Option<Arc<str>>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
    /// Set when the forwarder must send what is pending and stop.
    draining: AtomicBool,
    /// Set when nothing more may be sent at all.
    closed: AtomicBool,
}

#[derive(Default)]
struct Pending {
    text: Option<String>,
    thought: Option<String>,
    activities: VecDeque<String>,
}

impl Pending {
    fn take_next(&mut self) -> Option<String> {
        self.activities
            .pop_front()
            .or_else(|| self.thought.take())
            .or_else(|| self.text.take())
    }
}

impl ProgressSink {
    /// A sink that discards everything (the client sent no progress token).
    pub fn disabled() -> Self {
        ProgressSink {
            shared: None,
            label: None,
        }
    }

    /// A sink into the same progress whose messages start with `label`.
    pub fn labelled(&self, label: &str) -> ProgressSink {
        ProgressSink {
            shared: self.shared.clone(),
            label: Some(Arc::from(label)),
        }
    }

    fn with_label(&self, message: String) -> String {
        match &self.label {
            Some(label) => format!("{label}: {message}"),
            None => message,
        }
    }

    /// The latest tail of Codex's answer.
    pub fn text(&self, tail: String) {
        let tail = self.with_label(tail);
        self.update(|pending| pending.text = Some(tail));
    }

    /// The latest tail of Codex's reasoning; shown with `💭`.
    pub fn thought(&self, tail: &str) {
        let message = self.with_label(format!("💭 {tail}"));
        self.update(|pending| pending.thought = Some(message));
    }

    /// One step Codex took; shown with `↳`.
    pub fn activity(&self, line: &str) {
        let message = self.with_label(format!("↳ {line}"));
        self.update(|pending| {
            if pending.activities.len() == ACTIVITY_BACKLOG {
                pending.activities.pop_front();
            }
            pending.activities.push_back(message);
        });
    }

    fn update(&self, change: impl FnOnce(&mut Pending)) {
        let Some(shared) = &self.shared else { return };
        if shared.closed.load(Ordering::Acquire) || shared.draining.load(Ordering::Acquire) {
            return;
        }
        change(&mut shared.pending.lock().unwrap_or_else(|poison| poison.into_inner()));
        shared.wake.notify_one();
    }
}

/// The sending side of one call's progress; owned by the tool handler.
pub struct ProgressForwarder {
    shared: Option<Arc<Shared>>,
    task: Option<JoinHandle<()>>,
}

/// Starts forwarding progress for a request. Without a token, nothing is ever
/// sent.
pub fn start(peer: Peer<RoleServer>, token: Option<ProgressToken>) -> (ProgressSink, ProgressForwarder) {
    let Some(token) = token else {
        return (
            ProgressSink::disabled(),
            ProgressForwarder {
                shared: None,
                task: None,
            },
        );
    };
    let shared = Arc::new(Shared::default());
    let task = tokio::spawn(forward(shared.clone(), peer, token));
    (
        ProgressSink {
            shared: Some(shared.clone()),
            label: None,
        },
        ProgressForwarder {
            shared: Some(shared),
            task: Some(task),
        },
    )
}

impl ProgressForwarder {
    /// Sends what is still pending, then stops; returns once the last
    /// notification is written, so the result goes out after all of them.
    pub async fn finish(mut self) {
        if let Some(shared) = &self.shared {
            shared.draining.store(true, Ordering::Release);
            shared.wake.notify_one();
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.close();
    }

    /// Stops at once, dropping anything pending (the call was cancelled).
    pub async fn abort(mut self) {
        self.close();
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn close(&self) {
        if let Some(shared) = &self.shared {
            shared.closed.store(true, Ordering::Release);
        }
    }
}

impl Drop for ProgressForwarder {
    fn drop(&mut self) {
        // A handler future dropped mid-call (its connection died) must not
        // leave a forwarder behind.
        self.close();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn forward(shared: Arc<Shared>, peer: Peer<RoleServer>, token: ProgressToken) {
    let mut progress = 0u64;
    loop {
        // Register interest before looking, so a push between the look and
        // the wait is not missed.
        let woken = shared.wake.notified();
        let next = shared
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take_next();
        match next {
            Some(message) => {
                if shared.closed.load(Ordering::Acquire) {
                    return;
                }
                progress += 1;
                let notification = ProgressNotificationParam::new(token.clone(), progress as f64).with_message(message);
                if peer.notify_progress(notification).await.is_err() {
                    // The client is gone; nobody is left to tell.
                    return;
                }
            }
            None if shared.draining.load(Ordering::Acquire) || shared.closed.load(Ordering::Acquire) => return,
            None => woken.await,
        }
    }
}

/// The last `TAIL_CHARS` characters of `text` on one line, for a progress
/// message.
pub fn tail(text: &str) -> String {
    let trimmed = text.trim_end();
    let start = trimmed
        .char_indices()
        .rev()
        .nth(TAIL_CHARS - 1)
        .map_or(0, |(index, _)| index);
    let mut line: String = trimmed[start..]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if start > 0 {
        line.insert(0, '…');
    }
    line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink_with_shared() -> (ProgressSink, Arc<Shared>) {
        let shared = Arc::new(Shared::default());
        (
            ProgressSink {
                shared: Some(shared.clone()),
                label: None,
            },
            shared,
        )
    }

    #[test]
    fn text_and_thought_coalesce_to_their_latest_value() {
        let (sink, shared) = sink_with_shared();
        for index in 0..1000 {
            sink.text(format!("text {index}"));
            sink.thought(&format!("thought {index}"));
        }
        sink.activity("ran ls");
        let mut pending = shared.pending.lock().expect("lock");
        assert_eq!(pending.take_next().as_deref(), Some("↳ ran ls"));
        assert_eq!(pending.take_next().as_deref(), Some("💭 thought 999"));
        assert_eq!(pending.take_next().as_deref(), Some("text 999"));
        assert_eq!(pending.take_next(), None);
    }

    #[test]
    fn a_labelled_sink_names_its_agent_in_the_same_progress() {
        let (sink, shared) = sink_with_shared();
        let claude = sink.labelled("claude");
        claude.activity("read src/lib.rs");
        sink.activity("ran ls");
        let mut pending = shared.pending.lock().expect("lock");
        assert_eq!(pending.take_next().as_deref(), Some("claude: ↳ read src/lib.rs"));
        assert_eq!(pending.take_next().as_deref(), Some("↳ ran ls"));
    }

    #[test]
    fn activities_keep_only_a_short_backlog() {
        let (sink, shared) = sink_with_shared();
        for index in 0..100 {
            sink.activity(&format!("step {index}"));
        }
        let pending = shared.pending.lock().expect("lock");
        assert_eq!(pending.activities.len(), ACTIVITY_BACKLOG);
        assert_eq!(pending.activities.front().map(String::as_str), Some("↳ step 84"));
    }

    #[test]
    fn nothing_is_accepted_after_close_or_drain() {
        let (sink, shared) = sink_with_shared();
        shared.closed.store(true, Ordering::Release);
        sink.text("late".into());
        sink.activity("late");
        assert!(shared.pending.lock().expect("lock").take_next().is_none());
        let (sink, shared) = sink_with_shared();
        shared.draining.store(true, Ordering::Release);
        sink.thought("late");
        assert!(shared.pending.lock().expect("lock").take_next().is_none());
    }

    #[test]
    fn tail_keeps_the_end_on_one_line() {
        assert_eq!(tail("short\nanswer\n"), "short answer");
        let long = "a".repeat(500) + "END";
        let tailed = tail(&long);
        assert!(tailed.starts_with('…'));
        assert!(tailed.ends_with("END"));
        assert_eq!(tailed.chars().count(), TAIL_CHARS + 1);
        assert_eq!(tail("é".repeat(400).as_str()).chars().count(), TAIL_CHARS + 1);
    }
}
