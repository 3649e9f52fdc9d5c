//! Running turns: the agent's messages (updates, permission requests, its
//! exit), prompt completions, finishing a turn, deadlines and cancellation.

use super::*;
use codex_fusion_protocol::watch::WatchEvent;

/// After a failed prompt, how long to wait for the child's exit so the
/// error can say how it died.
const PROMPT_EXIT_WAIT: Duration = Duration::from_millis(1000);

impl WorkspaceActor {
    pub(super) fn on_agent(&mut self, message: AgentMessage) {
        let current = self
            .attached()
            .is_some_and(|attached| attached.lease.tag() == message.tag);
        if !current {
            // About a session this workspace has left, or one a start in
            // flight is loading (its replayed history): never part of a
            // turn. An open permission still gets an answer.
            match message.event {
                AgentEvent::Permission(ask) => ask.cancel(),
                AgentEvent::Update {
                    session,
                    update: Update::Prompted,
                } if matches!(self.link, AgentLink::Starting { .. })
                    && self.resume_id.as_deref() == Some(session.as_str()) =>
                {
                    self.replayed_prompt = true;
                }
                _ => {}
            }
            return;
        }
        match message.event {
            AgentEvent::Update { session, update } => {
                if self.session().is_some_and(|open| open.id == session) {
                    self.on_update(update);
                }
            }
            AgentEvent::Permission(ask) => self.on_permission(ask),
            AgentEvent::Garbage(line) => {
                self.agent_gone(
                    format!("codex-acp wrote something that is not ACP on stdout ({line})"),
                    false,
                );
            }
            AgentEvent::Exited { reason, requested } => {
                self.agent_gone(format!("codex-acp stopped: {reason}"), requested)
            }
        }
    }

    pub(super) fn on_update(&mut self, update: Update) {
        if let Update::Usage { used, size } = &update
            && let Some(attached) = self.attached_mut()
        {
            attached.session.usage.context_used = Some(*used);
            attached.session.usage.context_size = Some(*size);
        }
        // Updates outside a prompt (the history a `session/load` replays,
        // late chunks) are never forwarded.
        let Some(turn) = self
            .turn
            .as_mut()
            .filter(|turn| !matches!(turn.phase, Phase::WaitingForSession))
        else {
            return;
        };
        turn.last_activity = Instant::now();
        let progress = turn
            .waiter
            .as_ref()
            .map(|waiter| waiter.progress.clone())
            .unwrap_or_default();
        match update {
            Update::Text(text) => {
                turn.text.push_str(&text);
                turn.thought.clear();
                let tail = progress::tail(&turn.text);
                self.watch.text(&tail);
                progress.text(tail);
            }
            Update::Thought(text) => {
                turn.thought.push_str(&text);
                let tail = progress::tail(&turn.thought);
                self.watch.thought(&tail);
                progress.thought(&tail);
            }
            Update::ToolCall { id, info } => {
                let mut info = *info;
                info.outside = outside_paths(&self.workspace, &info);
                let mut line = info.activity();
                if !info.outside.is_empty() && info.reads() {
                    tracing::warn!(paths = ?info.outside, title = ?info.title, "Codex read outside the workspace without asking");
                    line = format!("{line} (outside the workspace: {})", info.outside.join(", "));
                }
                progress.activity(&line);
                self.watch.activity(&line);
                turn.tool_calls.insert(id, info);
            }
            Update::ToolCallChanged { id, change } => {
                let info = turn.tool_calls.entry(id).or_default();
                let was = info.status.clone();
                info.apply(&change);
                if info.status.as_deref() == Some("failed") && was.as_deref() != Some("failed") {
                    let line = format!("{} (failed)", info.activity());
                    progress.activity(&line);
                    self.watch.activity(&line);
                }
            }
            Update::Plan { steps } => {
                let line = format!("plan with {steps} steps");
                progress.activity(&line);
                self.watch.activity(&line);
            }
            Update::Usage { .. } | Update::Prompted | Update::Other => {}
        }
    }

    pub(super) fn on_permission(&mut self, ask: PermissionAsk) {
        let boundary = self.boundary();
        let session_matches = self.session().is_some_and(|session| session.id == ask.session_id());
        let Some(turn) = self
            .turn
            .as_mut()
            .filter(|turn| matches!(turn.phase, Phase::Prompting | Phase::Paused(_)) && session_matches)
        else {
            tracing::info!("permission request outside a running turn; answering cancelled");
            ask.cancel();
            return;
        };
        turn.last_activity = Instant::now();
        if turn.pause().is_some() {
            // One pause at a time: Claude answers the one it was shown; this
            // one is judged when that is resolved.
            turn.waiting_permissions.push_back(ask);
            return;
        }
        let known = turn.tool_calls.get(&ask.tool_call_id());
        let translated = ask.judge(known, &boundary);
        let mut decision = guardian::decide(&translated, &turn.settings.policy);
        if decision == Decision::Allow && !ask.can_allow() {
            decision = Decision::Ask("codex-acp offered no allow-once option".into());
        }
        let progress = turn
            .waiter
            .as_ref()
            .map(|waiter| waiter.progress.clone())
            .unwrap_or_default();
        let (label, reason) = match &decision {
            Decision::Allow => ("allow", None),
            Decision::Ask(reason) => ("ask", Some(reason.clone())),
        };
        tracing::info!(
            kind = translated.kind.label(),
            title = %translated.title,
            command = ?translated.command,
            decision = label,
            reason = ?reason,
            "guardian decision"
        );
        turn.record.guardian.push(GuardianEntry {
            kind: translated.kind.label().to_owned(),
            title: translated.title.clone(),
            command: translated.command.clone(),
            paths: translated
                .paths
                .iter()
                .map(|path| path.resolved.display().to_string())
                .collect(),
            decision: label.to_owned(),
            reason: reason.clone(),
        });
        match decision {
            Decision::Allow => {
                let line = format!("allowed: {}", translated.title);
                progress.activity(&line);
                self.watch.activity(&line);
                ask.answer(true);
            }
            Decision::Ask(why) => {
                let id = self.context.pause_ids.next();
                tracing::info!(pause = %id, "turn paused for permission");
                let pause = Pause {
                    id: id.clone(),
                    agent: self.agent.clone(),
                    request: translated.clone(),
                    why: why.clone(),
                };
                self.watch.send(|| WatchEvent::Paused {
                    id: pause.id.clone(),
                    summary: format!(
                        "{} ({}): {}",
                        pause.request.title,
                        pause.request.kind.label(),
                        pause.why
                    ),
                    text: crate::render::pause(&pause),
                });
                let waiter = turn.waiter.take();
                if waiter.is_none() {
                    // Only after a `permit` whose call has gone; the pause
                    // stays for `permit` from any connection.
                    tracing::info!("turn paused with no caller waiting");
                }
                turn.phase = Phase::Paused(Box::new(PendingPermission {
                    id,
                    request: translated,
                    ask,
                    why,
                    shown_to: waiter.as_ref().map(|waiter| waiter.call),
                }));
                if let Some(waiter) = waiter {
                    waiter.send(TurnOutcome::Paused(pause));
                }
            }
        }
    }

    /// What the paths of a permission request are judged against: the
    /// workspace, and as credential stores the daemon's state directory and
    /// every CODEX_HOME the agent may use (the live agent's, the running
    /// turn's client's, the daemon's own).
    fn boundary(&self) -> crate::resolve::Boundary {
        let codex_home = |env: &[(String, String)]| {
            env.iter()
                .find(|(name, _)| name == "CODEX_HOME")
                .map(|(_, value)| PathBuf::from(value))
        };
        let stores = [
            Some(self.context.state_dir.clone()),
            // The live agent's, as resolved when it started (forwarded, the
            // daemon's own, or `~/.codex`).
            self.attached()
                .and_then(|attached| attached.lease.host().codex_home.clone()),
            self.turn.as_ref().and_then(|turn| codex_home(&turn.agent_env)),
            std::env::var_os("CODEX_HOME")
                .filter(|home| !home.is_empty())
                .map(PathBuf::from),
        ];
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from);
        crate::resolve::Boundary::new(&self.workspace, stores.into_iter().flatten(), home)
    }

    /// The workspace's agent process is gone (exit, crash, garbage, a kill,
    /// an idle stop): the Codex session is remembered so that the next
    /// start restores it, and the running turn fails with `reason`.
    /// `requested` stops (idle, a drained process) are no error.
    pub(super) fn agent_gone(&mut self, reason: String, requested: bool) {
        let Some(leaving) = self.detach() else { return };
        let restorable = leaving.lease.host().info.load_session;
        self.resume_id = Some(leaving.session);
        drop(leaving.lease);
        if requested {
            tracing::info!(%reason, "the workspace's codex-acp was stopped");
        } else {
            tracing::warn!(%reason, "codex-acp is gone");
            self.last_error = Some(reason.clone());
        }
        if let Some(turn) = self.turn.take() {
            let kept = match restorable {
                true => {
                    "The next call starts it again and restores this session with session/load: Codex's context was kept"
                }
                false => "The next call starts it again (this agent cannot restore sessions, so Codex starts fresh)",
            };
            let message = format!("{reason} in the middle of this turn. {kept}");
            self.finish(turn, Err(("failed", message)));
        }
    }

    /// Kills the workspace's agent process (it ignored a cancel and a
    /// close): every workspace on it loses the process, none its context.
    pub(super) fn kill_process(&mut self, why: &str) {
        if let Some(attached) = self.attached() {
            attached.lease.host().retire(why, StopMode::Kill);
        }
        self.agent_gone(format!("codex-acp was stopped ({why})"), false);
    }

    /// Asks the agent to stop the turn of `session` and close the session,
    /// in the background; a process that does not let it go takes no new
    /// sessions and stops once no turn runs on it.
    pub(super) fn cancel_on_agent(&mut self, session: &str) {
        let Some(attached) = self.attached() else { return };
        let host = attached.lease.host().clone();
        let session = session.to_owned();
        acp::cancel(&host.agent.connection, &session);
        self.context.tasks.spawn(async move {
            let closed = host.info.close_session
                && tokio::time::timeout(
                    CANCEL_GRACE + CLOSE_GRACE,
                    acp::close_session(&host.agent.connection, &session),
                )
                .await
                .is_ok_and(|closed| closed.is_ok());
            if !closed {
                host.drain("a session it was asked to drop did not close");
            }
        });
    }

    /// A prompt of the running turn came back.
    pub(super) fn on_prompt_done(&mut self, turn: u64, result: PromptResult, exit: Option<String>) {
        let PromptResult { applied, outcome, took } = result;
        // The agent sends a turn's updates before its response, and
        // they are queued before the response reaches us; take them
        // first so the answer is complete.
        while let Ok(message) = self.agent_rx.try_recv() {
            self.on_agent(message);
        }
        let Some(mut turn) = self.turn.take_if(|active| active.id == turn) else {
            return;
        };
        turn.record.agent_ms += took.as_secs_f64() * 1e3;
        // The model and effort stick once the agent accepted them; its own
        // report of the options is the truth.
        if let Some(options) = applied {
            if let Some(wanted) = turn.wanted_choice.take() {
                self.sticky_choice = wanted;
            }
            if let (Some(options), Some(attached)) = (options, self.attached_mut()) {
                attached.session.models = options;
            }
        }
        if let Phase::Cancelling { closing, .. } = turn.phase {
            if closing {
                // The session was closed to end the turn; the next call
                // loads it again.
                self.leave_closed_session();
            }
            self.finish(turn, Err(("cancelled", "the turn was cancelled".into())));
            return;
        }
        let denied = match std::mem::replace(&mut turn.phase, Phase::Prompting) {
            Phase::Denied { note } => Some(note),
            _ => None,
        };
        match (outcome, denied) {
            (Ok(prompted), Some(note)) if prompted.stop == Stop::Cancelled => {
                // Codex ends the whole turn when an action is denied;
                // tell it why and let it answer without the action.
                match self.send_prompt(&mut turn, note, Vec::new()) {
                    Ok(()) => self.turn = Some(turn),
                    Err(message) => self.finish(turn, Err(("failed", message))),
                }
            }
            (Ok(prompted), _) => {
                if prompted.usage.is_some() {
                    turn.usage = prompted.usage;
                }
                self.finish_with_response(turn, prompted.stop);
            }
            (Err(_), _) if exit.is_some() => {
                let reason = format!("codex-acp stopped: {}", exit.unwrap_or_default());
                self.turn = Some(turn);
                self.agent_gone(reason, false);
            }
            (Err(failed), _) => {
                let failure = failed.failure;
                self.finish(turn, Err(("failed", failure.to_string())));
                if matches!(failure, AgentFailure::AuthRequired(_))
                    && let Some(attached) = self.attached()
                {
                    // A fresh process picks up a new login or key: this one
                    // takes no new sessions and stops once its turns are done;
                    // the next call moves the session over by load.
                    attached.lease.host().drain("Codex lost its authentication");
                }
            }
        }
    }

    pub(super) fn finish_with_response(&mut self, mut turn: ActiveTurn, stop_reason: Stop) {
        let label = stop_reason.label();
        match stop_reason {
            Stop::MaxTokens => turn.notes.push("answer cut short: Codex hit its token limit".into()),
            Stop::MaxTurnRequests => turn.notes.push("answer cut short: Codex hit its step limit".into()),
            Stop::Refusal => turn.notes.push("Codex refused to continue".into()),
            _ => {}
        }
        // codex reports rate limits and server errors as answer text, with
        // no usage; a real answer always has usage.
        if turn.usage.is_none()
            && stop_reason == Stop::EndTurn
            && let Some(failure) = crate::acp::failure_in_text(&turn.text)
        {
            self.finish(turn, Err(("failed", failure.to_string())));
            return;
        }
        if turn.text.trim().is_empty() {
            let message = match stop_reason {
                Stop::Cancelled => "Codex stopped the turn without answering (stop reason: cancelled). Call again, or check `status` for codex-acp errors".to_owned(),
                _ => format!("Codex ended the turn without any text (stop reason: {label})"),
            };
            self.finish(turn, Err((label, message)));
            return;
        }
        self.finish(turn, Ok(label));
    }

    /// Ends `turn`: delivers the outcome, counts it, logs it.
    pub(super) fn finish(&mut self, mut turn: ActiveTurn, outcome: Result<&'static str, (&'static str, String)>) {
        // Every failure of a turn ends here; an agent's error may quote the
        // key it runs with, which must not reach the result or the log.
        let host = self.attached().map(|attached| attached.lease.host().clone());
        if let Some(attached) = self.attached() {
            attached.lease.set_busy(false);
        }
        let outcome = outcome.map_err(|(stop_reason, message)| {
            let message = match &host {
                Some(host) => host.agent.scrub(&message),
                None => message,
            };
            let live_env = host.as_ref().map(|host| host.key.env.as_slice()).unwrap_or_default();
            let forwarded: Vec<(String, String)> = turn.agent_env.iter().chain(live_env).cloned().collect();
            (
                stop_reason,
                crate::agent::scrub_credentials(&message, &turn.settings.acp_command, &forwarded),
            )
        });
        let elapsed = turn.started.elapsed();
        self.last_used = Some(Instant::now());
        if let (Some(pending), Err((_, why))) = (turn.pause(), &outcome) {
            self.lost_pause = Some(format!("the paused turn ({}) ended: {why}", pending.request.title));
        }
        // A finished turn leaves no question open with the agent.
        turn.answer_open_permissions();
        let (stop_reason, result) = match outcome {
            Ok(stop_reason) => {
                if let Some(session) = self.attached_mut().map(|attached| &mut attached.session) {
                    session.turns += 1;
                    if let Some(usage) = turn.usage {
                        session.usage.input_tokens += usage.input_tokens;
                        session.usage.output_tokens += usage.output_tokens;
                        session.usage.reasoning_tokens += usage.reasoning_tokens;
                    }
                }
                let mut notes = std::mem::take(&mut turn.notes);
                if let Some(note) = self.pending_note.take() {
                    notes.insert(0, note);
                }
                let text = turn.text.trim().to_owned();
                (
                    stop_reason,
                    TurnOutcome::Answer(Answer {
                        verdict: Verdict::parse(&text),
                        text,
                        elapsed,
                        usage: turn.usage,
                        notes,
                        stop_reason,
                    }),
                )
            }
            Err((stop_reason, message)) => {
                turn.record.error = Some(message.clone());
                (stop_reason, TurnOutcome::Failed(message))
            }
        };
        self.watch.send(|| match &result {
            TurnOutcome::Answer(answer) => WatchEvent::Answered {
                turn: turn.id,
                verdict: answer.verdict.as_ref().map(|verdict| verdict.label().to_owned()),
                footer: crate::render::footer(answer),
            },
            TurnOutcome::Failed(message) => WatchEvent::Failed {
                turn: turn.id,
                message: message.clone(),
            },
            _ => WatchEvent::Failed {
                turn: turn.id,
                message: stop_reason.to_owned(),
            },
        });
        // The caller gets its answer first; the logs can wait. (Its task
        // runs only once this handler returns, when it shares this worker
        // thread, so what follows must not block: the turn log is written
        // by a blocking task.)
        if let Some(waiter) = turn.waiter.take() {
            waiter.send(result);
        }
        tracing::info!(
            turn = turn.id,
            tool = turn.tool,
            stop_reason,
            elapsed_ms = elapsed.as_millis() as u64,
            "turn finished"
        );
        if let Some(path) = &turn.settings.log_path {
            let mut record = std::mem::take(&mut turn.record);
            record.finished_at = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64());
            record.workspace = self.workspace.display().to_string();
            record.tool = turn.tool.to_owned();
            record.turn = turn.id;
            record.session_id = self.session().map(|session| session.id.clone());
            record.duration_ms = elapsed.as_millis() as u64;
            record.stop_reason = stop_reason.to_owned();
            record.usage = turn.usage;
            record.text = turn.text.clone();
            record.tool_calls = turn
                .tool_calls
                .iter()
                .map(|(id, info)| ToolCallEntry {
                    id: id.clone(),
                    kind: info.kind_label().to_owned(),
                    title: info.title.clone().unwrap_or_default(),
                    status: info.status.clone(),
                    locations: info.locations.iter().map(|path| path.display().to_string()).collect(),
                    outside_workspace: !info.outside.is_empty(),
                })
                .collect();
            let path = path.clone();
            self.context
                .tasks
                .spawn_blocking(move || turnlog::append(&path, &record));
        }
    }

    /// The next deadline of the running turn (idle processes are the
    /// pool's to stop).
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.turn.as_ref().and_then(ActiveTurn::due).map(|(at, _)| at)
    }

    pub(super) fn on_deadline(&mut self) {
        let now = Instant::now();
        let Some((at, due)) = self.turn.as_ref().and_then(ActiveTurn::due) else {
            return;
        };
        if now < at {
            return;
        }
        match due {
            Due::CancelGrace(reason) => {
                let close = self
                    .attached()
                    .filter(|attached| attached.lease.host().info.close_session)
                    .map(|attached| (attached.lease.host().clone(), attached.session.id.clone()));
                let Some((host, session)) = close else {
                    tracing::warn!(?reason, "Codex did not stop within the cancel grace; killing codex-acp");
                    self.kill_process("it did not stop within 1.5 s of a cancel");
                    return;
                };
                // Harder than a cancel, and it touches only this session.
                tracing::warn!(
                    ?reason,
                    "Codex did not stop within the cancel grace; closing its session"
                );
                let Some(turn) = self.turn.as_mut() else { return };
                turn.phase = Phase::Cancelling {
                    since: now,
                    reason,
                    closing: true,
                };
                let (internal, turn_id) = (self.internal_tx.clone(), turn.id);
                self.context.tasks.spawn(async move {
                    let closed = acp::close_session(&host.agent.connection, &session).await.is_ok();
                    let _ = internal.send(Internal::Closed { turn: turn_id, closed });
                });
            }
            Due::CloseGrace(reason) => {
                tracing::warn!(
                    ?reason,
                    "codex-acp answered neither the cancel nor the close; killing it"
                );
                self.kill_process("it answered neither a cancel nor a session/close within 3 s");
            }
            Due::Timeout(timeout) => {
                tracing::warn!(timeout_ms = timeout.as_millis() as u64, "turn idle timeout");
                self.begin_cancel(CancelReason::Idle);
            }
        }
    }

    /// The close sent for a turn that ignored its cancel came back: the
    /// turn is over, and the session is loaded again by the next call.
    pub(super) fn on_closed(&mut self, turn: u64, closed: bool) {
        let closing =
            |active: &ActiveTurn| active.id == turn && matches!(active.phase, Phase::Cancelling { closing: true, .. });
        if !closed || !self.turn.as_ref().is_some_and(closing) {
            // A failed close is settled by the close grace (the kill).
            return;
        }
        let Some(turn) = self.turn.take() else { return };
        self.leave_closed_session();
        let message = "Codex did not stop within 1.5 s of the cancel, so its session was closed (the agent process and other workspaces were not touched). Codex's context was kept: the next call restores the session";
        self.finish(turn, Err(("cancelled", message.to_owned())));
    }

    /// The Codex session was closed on its process: the workspace lets the
    /// process go and the next start loads the session again.
    fn leave_closed_session(&mut self) {
        if let Some(leaving) = self.detach() {
            self.resume_id = Some(leaving.session);
        }
    }

    pub(super) fn begin_cancel(&mut self, reason: CancelReason) {
        let session_id = self.session().map(|session| session.id.clone());
        let Some(turn) = self.turn.as_mut() else { return };
        turn.phase = Phase::Cancelling {
            since: Instant::now(),
            reason,
            closing: false,
        };
        // codex-acp does not withdraw an open permission on cancel; it must
        // be answered.
        turn.answer_open_permissions();
        if reason == CancelReason::Idle
            && let Some(waiter) = turn.waiter.take()
        {
            let timeout = turn.settings.turn_timeout;
            waiter.send(TurnOutcome::Failed(format!(
                    "Codex showed no activity for {} s, so the turn was aborted (CODEX_FUSION_TURN_TIMEOUT_MS={}). Call again, or raise the limit",
                    timeout.as_secs(),
                    timeout.as_millis()
                )));
        }
        if let (Some(attached), Some(session_id)) = (self.attached(), session_id) {
            acp::cancel(&attached.lease.host().agent.connection, &session_id);
        }
    }

    /// Starts the next turn, the agent or the prompt, whichever is due; a
    /// queued call that cannot run is answered and the next one tried, so
    /// the queue never waits on nothing.
    pub(super) fn advance(&mut self) {
        while self.advance_once() {}
    }

    /// One step of [`Self::advance`]; `true` when a queued call was answered
    /// without starting a turn and the next one should be tried.
    fn advance_once(&mut self) -> bool {
        if self.turn.is_none() {
            if let Some(target) = self.deferred_target.take() {
                self.retarget(target);
            }
            let Some(request) = self.queue.pop_front() else {
                return false;
            };
            if request.waiter.reply.is_closed() {
                return true;
            }
            let id = self.next_turn_id;
            self.next_turn_id += 1;
            let now = Instant::now();
            tracing::info!(turn = id, tool = request.tool, "turn starts");
            self.watch.send(|| WatchEvent::TurnStarted {
                turn: id,
                tool: request.tool.to_owned(),
            });
            self.last_settings = Some(request.settings.clone());
            self.last_agent_env = request.agent_env.clone();
            self.turn = Some(ActiveTurn {
                id,
                tool: request.tool,
                settings: request.settings,
                agent_env: request.agent_env,
                choice: request.choice,
                wanted_choice: None,
                waiter: Some(request.waiter),
                started: now,
                last_activity: now,
                phase: Phase::WaitingForSession,
                prompt: request.prompt,
                text: String::new(),
                thought: String::new(),
                usage: None,
                tool_calls: HashMap::new(),
                waiting_permissions: VecDeque::new(),
                notes: Vec::new(),
                record: TurnRecord::default(),
            });
        }
        let Some(turn) = self.turn.as_ref() else { return false };
        if !matches!(turn.phase, Phase::WaitingForSession) || matches!(self.link, AgentLink::Starting { .. }) {
            return false;
        }
        let (settings, agent_env) = (turn.settings.clone(), turn.agent_env.clone());
        // A client that runs codex-acp differently (another command, other
        // credentials, another profile) belongs on another process; so does
        // a session whose process is draining. The session moves over:
        // closed there, loaded on the new one.
        let moving = self.attached().and_then(|attached| {
            let host = attached.lease.host();
            let key = &host.key;
            if !host.usable() {
                Some("its codex-acp takes no new turns")
            } else if key.command != settings.acp_command {
                // The whole command, values included: two commands that
                // differ only in a hidden value (`--api-key=…`) show the same.
                Some("a client asked for another CODEX_FUSION_ACP_COMMAND")
            } else if !agent_env.is_empty() && sorted(&agent_env) != key.env {
                Some("a client brought other credentials or CODEX_HOME")
            } else if super::start::profile_choice(&settings) != key.choice {
                // Web search and the user's Codex extensions are part of the
                // agent's profile: a client that allows them gets them, and
                // one that does not never inherits them.
                Some("a client with another CODEX_FUSION_ALLOW_EXTERNAL_READS or CODEX_FUSION_ALLOW_CODEX_CONFIG")
            } else if key.stores.changed() {
                // Its profile masks the home's credential files by exact
                // path: one created since it started is not masked there.
                Some("the credential files at the top of the home directory changed since its codex-acp started")
            } else {
                None
            }
        });
        if let Some(why) = moving {
            tracing::info!(why, "moving the Codex session to another codex-acp");
            let leaving = self.detach();
            if let Some(leaving) = &leaving {
                self.resume_id = Some(leaving.session.clone());
            }
            // Credentials the client did not bring are those of the process
            // the session was on.
            let agent_env = match (&leaving, agent_env.is_empty()) {
                (Some(leaving), true) => leaving.lease.host().key.env.clone(),
                _ => agent_env,
            };
            self.start(settings, agent_env, leaving);
            return false;
        }
        let Some(models) = self.session().map(|session| session.models.clone()) else {
            self.start(settings, agent_env, None);
            return false;
        };
        let Some(mut turn) = self.turn.take() else { return false };
        let (wanted, changes) = match self.plan_choice(&models, &turn.choice) {
            Ok(plan) => {
                turn.notes.extend(plan.note);
                (plan.wanted, plan.changes)
            }
            Err(message) => {
                // The plan's words name Codex; another agent's name its own.
                let message = match &*self.agent {
                    codex_fusion_protocol::agents::DEFAULT_AGENT => message,
                    other => message.replace("Codex", &codex_fusion_protocol::agents::display_name(other)),
                };
                tracing::info!(%message, "refusing a model or effort the agent does not offer");
                if let Some(waiter) = turn.waiter.take() {
                    waiter.send(TurnOutcome::Invalid(message));
                }
                return true;
            }
        };
        // Committed when the agent has accepted it (see `on_prompt_done`).
        turn.wanted_choice = Some(wanted);
        turn.phase = Phase::Prompting;
        turn.last_activity = Instant::now();
        let prompt = turn.prompt.clone();
        let sent = self.send_prompt(&mut turn, prompt, changes);
        if let Err(message) = sent {
            self.finish(turn, Err(("failed", message)));
            return true;
        }
        self.turn = Some(turn);
        false
    }

    /// The model and effort a call gets: its own, over what the session chose
    /// before. A new model without an effort does not inherit the old effort
    /// by name (the plan keeps it where the new model offers it). When the
    /// session's earlier choice is no longer offered (another agent after a
    /// restart), it is dropped with a note rather than failing every call.
    fn plan_choice(&self, models: &crate::models::ModelOptions, choice: &ModelChoice) -> Result<ChoicePlan, String> {
        let wanted = match &choice.model {
            Some(_) => choice.clone(),
            None => ModelChoice {
                model: self.sticky_choice.model.clone(),
                effort: choice.effort.clone().or_else(|| self.sticky_choice.effort.clone()),
            },
        };
        match crate::models::plan(models, &wanted) {
            Ok(changes) => Ok(ChoicePlan {
                wanted,
                changes,
                note: None,
            }),
            Err(_) if wanted != *choice => {
                let changes = crate::models::plan(models, choice)?;
                let note = format!(
                    "the session's earlier model choice ({}) is not offered any more; Codex's own is used",
                    [wanted.model.as_deref(), wanted.effort.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Ok(ChoicePlan {
                    wanted: choice.clone(),
                    changes,
                    note: Some(note),
                })
            }
            Err(message) => Err(message),
        }
    }

    /// Sends `text` as a prompt of `turn`; the response comes back as
    /// [`Internal::PromptDone`].
    pub(super) fn send_prompt(
        &mut self,
        turn: &mut ActiveTurn,
        text: String,
        changes: Vec<(String, String)>,
    ) -> Result<(), String> {
        let Some(attached) = self.attached_mut() else {
            return Err("codex-acp is not running".into());
        };
        let instructions = attached.session.instructions.take();
        let agent = &attached.lease.host().agent;
        let connection = agent.connection.clone();
        let session_id = attached.session.id.clone();
        let exit_signal = agent.exit_signal();
        // The process does not fall idle while this turn runs.
        attached.lease.set_busy(true);
        let internal = self.internal_tx.clone();
        let turn_id = turn.id;
        // Awaited in its own task: dropping a pending request would send
        // `$/cancel_request` to Codex.
        self.context.tasks.spawn(async move {
            // Model and effort first, so this prompt already uses them.
            let result = acp::prompt(&connection, &session_id, instructions, text, &changes).await;
            // A prompt that failed because the child died reports how it
            // died (exit status, stderr) rather than "connection closed".
            let exit = match &result.outcome {
                Err(failed) if failed.connection_lost => crate::agent::wait_exit(exit_signal, PROMPT_EXIT_WAIT).await,
                _ => None,
            };
            let _ = internal.send(Internal::PromptDone {
                turn: turn_id,
                result,
                exit,
            });
        });
        Ok(())
    }
}

/// `env` in a canonical order, to compare the environments of two clients.
pub(super) fn sorted(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.sort();
    env
}

/// What [`WorkspaceActor::plan_choice`] settled for one turn.
struct ChoicePlan {
    /// The model and effort the turn runs with (committed once accepted).
    wanted: ModelChoice,
    /// `session/set_config_option` calls to make before the prompt.
    changes: Vec<(String, String)>,
    /// One line for the footer when an earlier choice had to be dropped.
    note: Option<String>,
}

/// What a turn's next deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// No activity for the turn timeout (this long).
    Timeout(Duration),
    /// The cancel went unheeded: close the session.
    CancelGrace(CancelReason),
    /// The close went unheeded too: kill the process.
    CloseGrace(CancelReason),
}

impl ActiveTurn {
    /// The turn's next deadline and what it is for: none while it waits for
    /// its session or for Claude.
    pub(super) fn due(&self) -> Option<(Instant, Due)> {
        match &self.phase {
            phase if phase.active() => Some((
                self.last_activity + self.settings.turn_timeout,
                Due::Timeout(self.settings.turn_timeout),
            )),
            Phase::Cancelling {
                since,
                reason,
                closing: false,
            } => Some((*since + CANCEL_GRACE, Due::CancelGrace(*reason))),
            Phase::Cancelling {
                since,
                reason,
                closing: true,
            } => Some((*since + CLOSE_GRACE, Due::CloseGrace(*reason))),
            _ => None,
        }
    }
}
