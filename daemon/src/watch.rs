//! `codex-fusion watch`: each workspace actor publishes what its turns do on
//! a [`tokio::sync::broadcast`] channel ([`Watch`]); a control connection
//! that asked `ControlRequest::Watch` streams it as lines ([`stream`]).
//!
//! Publishing never waits: the channel keeps the last [`WATCH_BACKLOG`]
//! events, and a watcher that falls further behind (it, or its socket, does
//! not keep up) skips what it missed and is told how much
//! (`WatchEvent::Dropped`). With nobody watching, publishing costs a check.

use std::path::PathBuf;
use std::sync::Arc;

use codex_fusion_protocol::control::ControlResponse;
use codex_fusion_protocol::frame;
use codex_fusion_protocol::watch::WatchEvent;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::broadcast;

use crate::daemon::Daemon;

/// Events kept for a watcher that has not read them yet.
pub const WATCH_BACKLOG: usize = 256;

/// The publishing side, owned by the workspace actor; dropped with it, which
/// ends every subscription.
pub struct Watch {
    sender: broadcast::Sender<WatchEvent>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            sender: broadcast::channel(WATCH_BACKLOG).0,
        }
    }
}

impl Watch {
    /// What the actor's handle keeps to subscribe without keeping the
    /// channel open.
    pub fn weak(&self) -> broadcast::WeakSender<WatchEvent> {
        self.sender.downgrade()
    }

    /// Publishes the event `make` builds, if anyone watches.
    pub fn send(&self, make: impl FnOnce() -> WatchEvent) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(make());
        }
    }

    pub fn thought(&self, tail: &str) {
        self.send(|| WatchEvent::Thought { tail: tail.to_owned() });
    }

    pub fn text(&self, tail: &str) {
        self.send(|| WatchEvent::Text { tail: tail.to_owned() });
    }

    pub fn activity(&self, line: &str) {
        self.send(|| WatchEvent::Activity { line: line.to_owned() });
    }
}

/// Streams `workspace`'s events to the connection until the client closes
/// it or the daemon stops: first `ControlResponse::Watching`, then a
/// `Running` event if a turn is under way, then every event as a line. A
/// workspace actor that is replaced (it failed) is followed to the new one.
pub async fn stream(
    daemon: Arc<Daemon>,
    workspace: PathBuf,
    mut reader: BufReader<OwnedReadHalf>,
    mut write: OwnedWriteHalf,
) {
    let shutdown = daemon.shutdown.clone();
    let Some((mut events, running)) = subscribe(&daemon, &workspace).await else {
        return;
    };
    let mut lines = frame::encode(&ControlResponse::Watching {
        workspace: workspace.clone(),
    });
    if let Some(tool) = running {
        lines.extend(frame::encode(&WatchEvent::Running { tool }));
    }
    let mut unread = [0u8; 64];
    loop {
        // A write that blocks (the watcher does not read) holds up only
        // this task; the actor goes on publishing into the ring.
        let written = async {
            write.write_all(&lines).await?;
            write.flush().await
        };
        tokio::select! {
            written = written => if written.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        lines.clear();
        let event = tokio::select! {
            event = events.recv() => event,
            // The client sends nothing after its request: EOF (or anything)
            // means it is gone.
            _ = reader.read(&mut unread) => return,
            _ = shutdown.cancelled() => return,
        };
        let event = match event {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(count)) => WatchEvent::Dropped { count },
            Err(broadcast::error::RecvError::Closed) => {
                if shutdown.is_cancelled() {
                    return;
                }
                match subscribe(&daemon, &workspace).await {
                    Some((again, _)) => {
                        events = again;
                        continue;
                    }
                    None => return,
                }
            }
        };
        lines = frame::encode(&event);
    }
}

/// A subscription to the workspace's actor (started if it has none), and
/// the tool of the turn it runs now.
async fn subscribe(
    daemon: &Daemon,
    workspace: &std::path::Path,
) -> Option<(broadcast::Receiver<WatchEvent>, Option<String>)> {
    for _ in 0..2 {
        if daemon.shutdown.is_cancelled() {
            return None;
        }
        let handle = daemon.session(workspace, codex_fusion_protocol::agents::DEFAULT_AGENT);
        if let Some(events) = handle.watch() {
            let running = handle.status().await.ok().and_then(|status| status.running_turn);
            return Some((events, running));
        }
    }
    None
}
