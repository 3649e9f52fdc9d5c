//! One prompt turn: plays the prompt's `Script` (streams, pauses, crashes,
//! permission asks) and answers `session/prompt`. A turn runs in its own task
//! so the connection keeps dispatching (`session/cancel` above all) meanwhile.

use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, PromptResponse, SessionId, SessionNotification, SessionUpdate, StopReason, UsageUpdate,
};
use agent_client_protocol::{Client, Error, ErrorCode, v1};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::markers::{ErrorKind, Script};
use crate::state::{HistoryEntry, Session, Shared, Speaker};
use crate::transport::lock;

/// The line every answer ends with; the daemon's debate reads it.
const VERDICT: &str = "VERDICT: CONSENSUS — fake agrees";
/// Reasoning chunks of `fake:reason`, and the pause between them.
const THOUGHTS: [&str; 3] = ["thinking about it", "weighing the options", "settling on an answer"];
const THOUGHT_PAUSE: Duration = Duration::from_millis(50);
/// Chunk cadence of `fake:think`.
const THINK_TICK: Duration = Duration::from_millis(250);
/// Chunk cadence of `fake:slow` (a turn that keeps streaming).
const SLOW_TICK: Duration = Duration::from_millis(100);
/// Chunk cadence of `fake:wait-cancel` and `fake:ignore-cancel`.
const WAIT_TICK: Duration = Duration::from_millis(200);
/// How long `fake:crash` waits for its last chunk to leave stdout before exiting.
const CRASH_FLUSH_LIMIT: Duration = Duration::from_millis(500);
/// Exit status of `fake:crash`.
const CRASH_STATUS: i32 = 3;
/// The context window reported in `usage_update`.
const CONTEXT_SIZE: u64 = 200_000;
/// Characters per chunk when streaming a `fake:big` answer.
const BIG_CHUNK: usize = 2000;

/// Why a turn stopped before its answer.
pub enum Stop {
    /// `session/cancel`, or the client refused a permission (as codex does).
    Cancelled,
    /// `session/prompt` is answered with this JSON-RPC error.
    Failed(Error),
    /// The connection is gone: nobody to answer.
    Disconnected,
}

pub struct Turn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) session: Arc<Session>,
    pub(crate) session_id: SessionId,
    pub(crate) cx: v1::ConnectionTo<Client>,
    /// Fires on `session/cancel` for this session.
    pub(crate) cancel: CancellationToken,
    /// This prompt's number in the session (1 for the first, across loads).
    pub(crate) number: u64,
    /// Agent message text streamed so far; persisted as the answer.
    streamed: String,
    /// Lines the answer reports about actions (`ran touch x`, `auto-approved …`).
    pub(crate) notes: Vec<String>,
}

impl Turn {
    /// Counts the prompt and records it in the session's persisted history.
    /// Call it from the `session/prompt` handler, before spawning `run`, so
    /// the turn watches the cancellation token current at its arrival.
    pub fn start(shared: Arc<Shared>, session: Arc<Session>, cx: v1::ConnectionTo<Client>, prompt: &str) -> Self {
        let cancel = session.turn_token();
        let (session_id, number, snapshot) = {
            let mut data = lock(&session.data);
            data.prompts_seen += 1;
            data.history.push(HistoryEntry {
                role: Speaker::User,
                text: prompt.to_owned(),
            });
            (
                SessionId::new(data.session_id.as_str()),
                data.prompts_seen,
                data.clone(),
            )
        };
        shared.store.save_or_warn(&snapshot);
        Self {
            shared,
            session,
            session_id,
            cx,
            cancel,
            number,
            streamed: String::new(),
            notes: Vec::new(),
        }
    }

    /// Plays the script and answers the prompt. Never returns an error: an
    /// error from a spawned task would shut the whole connection down.
    pub async fn run(mut self, script: Script, responder: v1::Responder<PromptResponse>) -> Result<(), Error> {
        let response = match self.play(&script).await {
            Ok(()) => Ok(self.finish().await),
            Err(Stop::Cancelled) => Ok(PromptResponse::new(StopReason::Cancelled)),
            Err(Stop::Failed(error)) => Err(error),
            Err(Stop::Disconnected) => return Ok(()),
        };
        if let Err(error) = responder.respond_with_result(response) {
            eprintln!("fake-codex-acp: answering session/prompt failed: {error:?}");
        }
        Ok(())
    }

    async fn play(&mut self, script: &Script) -> Result<(), Stop> {
        for line in &script.stderr {
            eprintln!("{line}");
        }
        for name in &script.stderr_env {
            eprintln!("{name}={}", std::env::var(name).unwrap_or_default());
        }
        if script.garbage {
            let garbage: &[u8] = b"this is not json\n\xff\xfe\n{\"jsonrpc\": \"2.0\", broken\n";
            if let Err(error) = self.shared.output.write_raw(garbage).await {
                eprintln!("fake-codex-acp: writing garbage failed: {error}");
            }
        }
        if let Some(kind) = &script.error {
            return Err(Stop::Failed(agent_error(kind)));
        }
        if script.reason {
            for thought in THOUGHTS {
                self.think(thought)?;
                self.pause(THOUGHT_PAUSE).await?;
            }
        }
        if let Some(millis) = script.think_ms {
            let end = Instant::now() + Duration::from_millis(millis);
            let mut step = 0;
            while Instant::now() < end {
                step += 1;
                self.think(&format!("still thinking ({step})"))?;
                self.pause(THINK_TICK).await?;
            }
        }
        if let Some(millis) = script.silent_ms {
            self.pause(Duration::from_millis(millis)).await?;
        }
        if let Some(millis) = script.slow_ms {
            let end = Instant::now() + Duration::from_millis(millis);
            let mut tick = 0;
            while Instant::now() < end {
                tick += 1;
                self.say(&format!("streaming {tick}\n"))?;
                self.pause(SLOW_TICK).await?;
            }
        }
        if let Some(count) = script.flood {
            for _ in 0..count {
                self.say("x")?;
            }
            self.say("\n")?;
        }
        if script.crash {
            self.crash().await;
        }
        if script.wait_cancel {
            loop {
                self.say(".")?;
                self.pause(WAIT_TICK).await?;
            }
        }
        if script.ignore_cancel {
            if script.ignore_close {
                self.session
                    .deaf_to_close
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            let closed = self.session.closed.clone();
            loop {
                self.say(".")?;
                tokio::select! {
                    () = tokio::time::sleep(WAIT_TICK) => {}
                    () = closed.cancelled(), if !script.ignore_close => return Err(Stop::Cancelled),
                }
            }
        }
        for (index, ask) in script.permissions.iter().enumerate() {
            self.permission(index, ask).await?;
        }
        self.answer(script.big)
    }

    /// Streams the answer: a header naming what the test may check, the
    /// action notes, an optional big body, and the verdict line.
    fn answer(&mut self, big: Option<usize>) -> Result<(), Stop> {
        let data = self.session.snapshot();
        let mut text = format!(
            "fake answer: prompts_seen={} mode={} model={}\n",
            self.number, data.mode, data.model
        );
        for note in &self.notes {
            text.push_str(note);
            text.push('\n');
        }
        if let Some(size) = big {
            self.say(&text)?;
            for chunk in big_body(size).as_bytes().chunks(BIG_CHUNK) {
                // The body is ASCII, so every byte chunk is valid UTF-8.
                self.say(&String::from_utf8_lossy(chunk))?;
            }
            return self.say(&format!("\n{VERDICT}"));
        }
        text.push_str(VERDICT);
        for piece in thirds(&text) {
            self.say(piece)?;
        }
        Ok(())
    }

    /// Persists the answer and builds the `end_turn` response with usage.
    async fn finish(&mut self) -> PromptResponse {
        let snapshot = {
            let mut data = lock(&self.session.data);
            data.history.push(HistoryEntry {
                role: Speaker::Agent,
                text: self.streamed.clone(),
            });
            data.clone()
        };
        self.shared.store.save_or_warn(&snapshot);
        // A cancel that raced the last chunk still ends the turn `cancelled`:
        // ACP requires that stop reason once the client has sent session/cancel.
        if self.cancel.is_cancelled() {
            return PromptResponse::new(StopReason::Cancelled);
        }
        let used = 1000 + 100 * self.number;
        let _ = self.update(SessionUpdate::UsageUpdate(UsageUpdate::new(used, CONTEXT_SIZE)));
        let input = 100 * self.number;
        let (output, thought) = (20, 5);
        let usage = v1::schema::Usage::new(input + output + thought, input, output).thought_tokens(thought);
        PromptResponse::new(StopReason::EndTurn).usage(usage)
    }

    /// Exits the process mid-turn, after its last chunk left stdout.
    async fn crash(&mut self) {
        let before = self.shared.output.lines_written();
        let _ = self.say("about to crash\n");
        self.shared.output.wait_written_past(before, CRASH_FLUSH_LIMIT).await;
        eprintln!("fake-codex-acp: simulated crash");
        std::process::exit(CRASH_STATUS);
    }

    /// Sleeps, unless the turn is cancelled first.
    pub(crate) async fn pause(&self, duration: Duration) -> Result<(), Stop> {
        tokio::select! {
            () = tokio::time::sleep(duration) => Ok(()),
            () = self.cancel.cancelled() => Err(Stop::Cancelled),
            () = self.session.closed.cancelled() => Err(Stop::Cancelled),
        }
    }

    pub(crate) fn say(&mut self, text: &str) -> Result<(), Stop> {
        self.streamed.push_str(text);
        self.update(SessionUpdate::AgentMessageChunk(ContentChunk::new(ContentBlock::from(
            text,
        ))))
    }

    fn think(&self, text: &str) -> Result<(), Stop> {
        self.update(SessionUpdate::AgentThoughtChunk(ContentChunk::new(ContentBlock::from(
            text,
        ))))
    }

    pub(crate) fn update(&self, update: SessionUpdate) -> Result<(), Stop> {
        self.cx
            .send_notification(SessionNotification::new(self.session_id.clone(), update))
            .map_err(|_| Stop::Disconnected)
    }
}

/// The JSON-RPC error codex-acp answers `session/prompt` with when the model
/// call fails.
fn agent_error(kind: &ErrorKind) -> Error {
    match kind {
        ErrorKind::Quota => Error::new(
            ErrorCode::INTERNAL_ERROR,
            "Quota exceeded. Check your plan and billing details.",
        )
        .data(json!({
            "codex_error_info": "usage_limit_exceeded",
            "error": {
                "type": "insufficient_quota",
                "code": "insufficient_quota",
                "message": "You exceeded your current quota, please check your plan and billing details.",
            },
        })),
        ErrorKind::RateLimit => Error::new(
            ErrorCode::INTERNAL_ERROR,
            "Rate limit reached for fake-large on tokens per min (TPM): Limit 30000, Used 30000, \
             Requested 100. Please try again in 20s.",
        )
        .data(json!({
            "error": {
                "type": "rate_limit_exceeded",
                "code": "rate_limit_exceeded",
                "retry_after_seconds": 20,
            },
        })),
        ErrorKind::Auth => Error::new(ErrorCode::AUTH_REQUIRED, "Authentication required"),
        ErrorKind::QuotingEnv(name) => Error::new(
            ErrorCode::INTERNAL_ERROR,
            format!(
                "fake-codex-acp: the server rejected {name}={}",
                std::env::var(name).unwrap_or_default()
            ),
        ),
        ErrorKind::Other(kind) => Error::new(
            ErrorCode::INTERNAL_ERROR,
            format!("fake-codex-acp: simulated error `{kind}`"),
        ),
    }
}

/// `size` characters of prose: lines of about 70 characters, a blank line
/// after every fifth.
fn big_body(size: usize) -> String {
    const WORDS: [&str; 12] = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
        "sed",
        "do",
        "eiusmod",
        "tempor",
    ];
    let mut body = String::with_capacity(size + 80);
    let (mut line, mut lines) = (String::new(), 0);
    let mut words = WORDS.iter().cycle();
    while body.len() < size {
        let word = words.next().copied().unwrap_or("lorem");
        if line.len() + word.len() + 1 > 70 {
            body.push_str(&line);
            body.push('\n');
            line.clear();
            lines += 1;
            if lines % 5 == 0 {
                body.push('\n');
            }
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    body.truncate(size);
    body
}

/// Splits text into three pieces at character boundaries (fewer if short).
fn thirds(text: &str) -> Vec<&str> {
    let boundaries: Vec<usize> = text.char_indices().map(|(index, _)| index).collect();
    let count = boundaries.len();
    if count < 3 {
        return vec![text];
    }
    let (first, second) = (boundaries[count / 3], boundaries[2 * count / 3]);
    vec![&text[..first], &text[first..second], &text[second..]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_body_has_the_asked_size_and_paragraphs() {
        let body = big_body(5000);
        assert_eq!(body.len(), 5000);
        assert!(body.lines().all(|line| line.len() <= 70));
        assert!(body.contains("\n\n"));
    }

    #[test]
    fn thirds_cover_the_text() {
        let text = "fake answer — VERDICT";
        assert_eq!(thirds(text).concat(), text);
        assert_eq!(thirds(text).len(), 3);
    }
}
