//! The workspace actor, driven directly: its one event handler is called
//! with what `next_event` yields, against a fake ACP agent that runs in this
//! process (no child, no socket) on the real pool, with tokio's clock paused
//! so the cancel and close graces pass at once.
//!
//! The fake decides by the prompt's words: `hold-until-close` answers only
//! when its session is closed (a turn that ignores cancel), `ask-after-cancel`
//! asks a permission once it is cancelled, `hold-until-cancel` ends at the
//! cancel, anything else is answered at once with `answer from <session>`.

use std::collections::HashMap;
use std::sync::Mutex;

use agent_client_protocol::v1::schema::{
    AgentCapabilities, CancelNotification, CloseSessionRequest, CloseSessionResponse, ContentChunk, Implementation,
    InitializeRequest, InitializeResponse, LoadSessionRequest, LoadSessionResponse, NewSessionRequest,
    NewSessionResponse, PermissionOption, PermissionOptionKind, PromptRequest, PromptResponse,
    RequestPermissionRequest, SessionCapabilities, SessionCloseCapabilities, SessionMode, SessionModeState,
    SessionNotification, SessionUpdate, SetSessionModeRequest, SetSessionModeResponse, StopReason, TextContent,
    ToolCallUpdate, ToolCallUpdateFields, ToolKind,
};
use agent_client_protocol::v1::{self as acp_v1, ConnectionTo};
use agent_client_protocol::{ByteStreams, Client, on_receive_notification, on_receive_request};
use tokio_util::compat::{TokioAsyncReadCompatExt as _, TokioAsyncWriteCompatExt as _};

use super::*;
use crate::config::AcpCommand;
use crate::progress::ProgressSink;

/// What the fake agent was asked, in order, and the prompts it holds.
#[derive(Default)]
struct Fake {
    log: Mutex<Vec<String>>,
    sessions: std::sync::atomic::AtomicU64,
    /// Prompts waiting for their session's close or cancel, by session.
    held: Mutex<HashMap<String, (String, acp_v1::Responder<PromptResponse>)>>,
    /// How many processes were started.
    starts: std::sync::atomic::AtomicU64,
}

impl Fake {
    fn note(&self, line: String) {
        self.log.lock().expect("the fake's lock").push(line);
    }

    fn saw(&self, prefix: &str) -> Vec<String> {
        let log = self.log.lock().expect("the fake's lock");
        log.iter().filter(|line| line.starts_with(prefix)).cloned().collect()
    }

    fn take_held(&self, session: &str) -> Option<(String, acp_v1::Responder<PromptResponse>)> {
        self.held.lock().expect("the fake's lock").remove(session)
    }

    /// An agent connected to a fake in this process.
    async fn launch(self: Arc<Self>, routes: crate::agent::Routes, tasks: TaskTracker) -> Agent {
        self.starts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (our_read, our_write) = tokio::io::split(ours);
        let (their_read, their_write) = tokio::io::split(theirs);
        tokio::spawn(self.serve(ByteStreams::new(their_write.compat_write(), their_read.compat())));
        let command = AcpCommand::parse("/nonexistent/fake-acp").expect("parses");
        Agent::in_process(&command, our_read, our_write, routes, &tasks)
            .await
            .expect("the in-process agent connects")
    }

    async fn serve(
        self: Arc<Self>,
        transport: impl agent_client_protocol::ConnectTo<agent_client_protocol::Agent> + 'static,
    ) {
        let modes = || SessionModeState::new("read-only", vec![SessionMode::new("read-only", "Read only")]);
        let on_initialize = async move |_: InitializeRequest, responder: acp_v1::Responder<InitializeResponse>, _| {
            responder.respond(
                InitializeResponse::new(agent_client_protocol::schema::ProtocolVersion::V1)
                    .agent_capabilities(
                        AgentCapabilities::new()
                            .load_session(true)
                            .session_capabilities(SessionCapabilities::new().close(SessionCloseCapabilities::new())),
                    )
                    .agent_info(Implementation::new("fake-in-process", "0")),
            )
        };
        let fake = self.clone();
        let on_new = async move |_: NewSessionRequest, responder: acp_v1::Responder<NewSessionResponse>, _| {
            let id = format!(
                "s{}",
                fake.sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
            );
            fake.note(format!("new {id}"));
            responder.respond(NewSessionResponse::new(id).modes(modes()))
        };
        let fake = self.clone();
        let on_load = async move |request: LoadSessionRequest, responder: acp_v1::Responder<LoadSessionResponse>, _| {
            fake.note(format!("load {}", request.session_id.0));
            responder.respond(LoadSessionResponse::new().modes(modes()))
        };
        let on_mode = async move |_: SetSessionModeRequest, responder: acp_v1::Responder<SetSessionModeResponse>, _| {
            responder.respond(SetSessionModeResponse::new())
        };
        let fake = self.clone();
        let on_prompt = async move |request: PromptRequest,
                                    responder: acp_v1::Responder<PromptResponse>,
                                    cx: ConnectionTo<Client>| {
            let session = request.session_id.0.to_string();
            let text: String = request
                .prompt
                .iter()
                .filter_map(|block| match block {
                    agent_client_protocol::v1::schema::ContentBlock::Text(text) => Some(text.text.clone()),
                    _ => None,
                })
                .collect();
            fake.note(format!("prompt {session}"));
            for word in ["hold-until-close", "ask-after-cancel", "hold-until-cancel"] {
                if text.contains(word) {
                    fake.held
                        .lock()
                        .expect("the fake's lock")
                        .insert(session, (word.to_owned(), responder));
                    return Ok(());
                }
            }
            let chunk = SessionUpdate::AgentMessageChunk(ContentChunk::new(
                agent_client_protocol::v1::schema::ContentBlock::Text(TextContent::new(format!(
                    "answer from {session}"
                ))),
            ));
            cx.send_notification(SessionNotification::new(session, chunk))?;
            responder.respond(PromptResponse::new(StopReason::EndTurn))
        };
        let fake = self.clone();
        let on_cancel = async move |notification: CancelNotification, cx: ConnectionTo<Client>| {
            let session = notification.session_id.0.to_string();
            fake.note(format!("cancel {session}"));
            let Some((word, responder)) = fake.take_held(&session) else {
                return Ok(());
            };
            match word.as_str() {
                "hold-until-close" => {
                    // It does not listen: back it goes.
                    fake.held
                        .lock()
                        .expect("the fake's lock")
                        .insert(session, (word, responder));
                }
                "ask-after-cancel" => {
                    let fake = fake.clone();
                    let ask = RequestPermissionRequest::new(
                        session.clone(),
                        ToolCallUpdate::new(
                            "late",
                            ToolCallUpdateFields::new()
                                .title("touch late.txt")
                                .kind(ToolKind::Execute),
                        ),
                        vec![
                            PermissionOption::new("allow", "Allow", PermissionOptionKind::AllowOnce),
                            PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
                        ],
                    );
                    let asked = cx.send_request(ask);
                    cx.spawn(async move {
                        let answer = asked.block_task().await;
                        fake.note(format!("permission answered {:?}", answer.map(|answer| answer.outcome)));
                        responder.respond(PromptResponse::new(StopReason::Cancelled))
                    })?;
                }
                _ => responder.respond(PromptResponse::new(StopReason::Cancelled))?,
            }
            Ok(())
        };
        let fake = self.clone();
        let on_close =
            async move |request: CloseSessionRequest, responder: acp_v1::Responder<CloseSessionResponse>, _| {
                let session = request.session_id.0.to_string();
                fake.note(format!("close {session}"));
                if let Some((_, held)) = fake.take_held(&session) {
                    held.respond(PromptResponse::new(StopReason::Cancelled))?;
                }
                responder.respond(CloseSessionResponse::new())
            };
        let _ = agent_client_protocol::Agent
            .v1()
            .name("fake-in-process")
            .on_receive_request(on_initialize, on_receive_request!())
            .on_receive_request(on_new, on_receive_request!())
            .on_receive_request(on_load, on_receive_request!())
            .on_receive_request(on_mode, on_receive_request!())
            .on_receive_request(on_prompt, on_receive_request!())
            .on_receive_request(on_close, on_receive_request!())
            .on_receive_notification(on_cancel, on_receive_notification!())
            .connect_to(transport)
            .await;
    }
}

/// An actor for a workspace in a temp dir, on a pool whose processes are
/// the fake.
fn actor(fake: &Arc<Fake>, idle: Duration) -> (WorkspaceActor, WorkspaceHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tasks = TaskTracker::new();
    let launch = {
        let (fake, tasks) = (fake.clone(), tasks.clone());
        move |routes| {
            let (fake, tasks) = (fake.clone(), tasks.clone());
            Box::pin(fake.launch(routes, tasks)) as futures::future::BoxFuture<'static, Agent>
        }
    };
    let context = Arc::new(WorkspaceContext {
        tasks: tasks.clone(),
        shutdown: CancellationToken::new(),
        state_dir: dir.path().to_path_buf(),
        confinement: ConfinementCache::default(),
        first_starts: FirstStarts::default(),
        pairings: PairingStore::load(dir.path()).0,
        pool: Pool::new(16, idle, tasks),
        launcher: Launcher::InProcess(Box::new(launch)),
        pause_ids: PauseIds::new(),
    });
    let workspace: Arc<Path> = Arc::from(dir.path().join("workspace").as_path());
    std::fs::create_dir_all(&workspace).expect("workspace");
    let (actor, handle) = WorkspaceActor::new(workspace, Arc::from("codex"), context);
    (actor, handle, dir)
}

fn settings() -> Arc<Settings> {
    Arc::new(Settings {
        acp_command: AcpCommand::parse("/nonexistent/fake-acp").expect("parses"),
        ..Settings::default()
    })
}

/// A turn for `prompt`, and where its outcome arrives.
fn turn(call: CallId, prompt: &str) -> (Command, oneshot::Receiver<TurnOutcome>) {
    let (waiter, outcome) = Waiter::new(call, ProgressSink::disabled());
    let request = TurnRequest {
        tool: "consult",
        prompt: prompt.to_owned(),
        choice: ModelChoice::default(),
        settings: settings(),
        agent_env: Vec::new(),
        waiter,
    };
    (Command::Turn(request), outcome)
}

/// Handles events until `done` holds (at most a minute of paused time).
async fn run_until(actor: &mut WorkspaceActor, what: &str, mut done: impl FnMut(&WorkspaceActor) -> bool) {
    for _ in 0..10_000 {
        if done(actor) {
            return;
        }
        let event = tokio::time::timeout(Duration::from_secs(60), actor.next_event())
            .await
            .unwrap_or_else(|_| panic!("nothing happened while waiting for {what}"));
        actor.handle(event);
    }
    panic!("{what} never happened");
}

fn prompting(actor: &WorkspaceActor) -> bool {
    actor
        .turn
        .as_ref()
        .is_some_and(|turn| matches!(turn.phase, Phase::Prompting))
}

/// Lets the prompt task and the fake run until the fake holds the prompt
/// (a cancel sent earlier would overtake it).
async fn until_the_fake_has_the_prompt(fake: &Fake) {
    for _ in 0..10_000 {
        if !fake.held.lock().expect("the fake's lock").is_empty() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "the fake never got the prompt: {:?}",
        fake.log.lock().expect("the fake's lock")
    );
}

fn answered(outcome: &mut oneshot::Receiver<TurnOutcome>) -> Option<TurnOutcome> {
    outcome.try_recv().ok()
}

#[tokio::test(start_paused = true)]
async fn a_turn_is_answered_on_a_session_of_the_pooled_agent() {
    let fake = Arc::new(Fake::default());
    let (mut actor, _handle, _dir) = actor(&fake, Duration::from_secs(600));
    let (command, mut outcome) = turn(1, "hello");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the answer", |actor| {
        actor.turn.is_none() && actor.session().is_some()
    })
    .await;
    match answered(&mut outcome) {
        Some(TurnOutcome::Answer(answer)) => assert_eq!(answer.text, "answer from s1"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(actor.link, AgentLink::Ready(_)));
    assert_eq!(fake.saw("new"), ["new s1"]);
}

/// Cancel grace: a turn that ignores its cancel has its session closed
/// after 1.5 s, nothing is killed, and the next turn loads the session.
#[tokio::test(start_paused = true)]
async fn a_turn_that_ignores_cancel_is_closed_after_the_grace_and_the_session_loaded_again() {
    let fake = Arc::new(Fake::default());
    let (mut actor, _handle, _dir) = actor(&fake, Duration::from_secs(600));
    let (command, _outcome) = turn(1, "hold-until-close");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the prompt", prompting).await;
    until_the_fake_has_the_prompt(&fake).await;
    let cancelled_at = tokio::time::Instant::now();
    actor.handle(Event::Command(Command::Cancel { call: 1 }));
    assert!(matches!(
        actor.turn.as_ref().map(|turn| &turn.phase),
        Some(Phase::Cancelling { closing: false, .. })
    ));
    run_until(&mut actor, "the turn to end", |actor| actor.turn.is_none()).await;
    let waited = cancelled_at.elapsed();
    assert!(
        waited >= CANCEL_GRACE && waited < CANCEL_GRACE + CLOSE_GRACE,
        "{waited:?}"
    );
    assert_eq!(fake.saw("close"), ["close s1"]);
    assert!(matches!(actor.link, AgentLink::Detached), "the closed session was left");
    assert_eq!(actor.resume_id.as_deref(), Some("s1"), "and is loaded next time");
    let (command, mut outcome) = turn(2, "again");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the next answer", |actor| actor.turn.is_none()).await;
    assert!(matches!(answered(&mut outcome), Some(TurnOutcome::Answer(_))));
    assert_eq!(fake.saw("load"), ["load s1"]);
    assert_eq!(
        fake.starts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the process lived on"
    );
}

/// A permission that arrives after the cancel is answered `cancelled`,
/// never shown to Claude.
#[tokio::test(start_paused = true)]
async fn a_permission_arriving_during_cancel_is_answered_cancelled() {
    let fake = Arc::new(Fake::default());
    let (mut actor, _handle, _dir) = actor(&fake, Duration::from_secs(600));
    let (command, _outcome) = turn(1, "ask-after-cancel");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the prompt", prompting).await;
    until_the_fake_has_the_prompt(&fake).await;
    actor.handle(Event::Command(Command::Cancel { call: 1 }));
    run_until(&mut actor, "the turn to end", |actor| actor.turn.is_none()).await;
    let answers = fake.saw("permission answered");
    assert_eq!(answers.len(), 1, "{:?}", fake.log.lock().expect("the fake's lock"));
    assert!(answers[0].contains("Cancelled"), "{answers:?}");
    assert!(fake.saw("close").is_empty(), "the turn ended at the cancel");
}

/// A new Claude session while a turn runs: the switch waits for the turn,
/// then the old Codex session is closed and the next turn gets a fresh one.
#[tokio::test(start_paused = true)]
async fn a_session_switch_asked_for_during_a_turn_waits_for_it() {
    let fake = Arc::new(Fake::default());
    let (mut actor, _handle, _dir) = actor(&fake, Duration::from_secs(600));
    let (command, _outcome) = turn(1, "hold-until-cancel");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the prompt", prompting).await;
    until_the_fake_has_the_prompt(&fake).await;
    let (reply, mut action) = oneshot::channel();
    actor.handle(Event::Command(Command::SessionStart {
        source: SessionSource::Startup,
        claude_session_id: Some("claude-2".into()),
        settings: Some(settings()),
        agent_env: Vec::new(),
        reply,
    }));
    assert!(action.try_recv().is_ok(), "the hook is answered at once");
    assert_eq!(actor.deferred_target, Some(None), "the switch waits");
    assert!(actor.session().is_some(), "the running turn keeps its session");
    actor.handle(Event::Command(Command::Cancel { call: 1 }));
    run_until(&mut actor, "the switch", |actor| {
        actor.turn.is_none() && actor.deferred_target.is_none()
    })
    .await;
    for _ in 0..10_000 {
        if !fake.saw("close").is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.saw("close"), ["close s1"]);
    assert_eq!(actor.resume_id, None, "a fresh session comes next");
    let (command, mut outcome) = turn(2, "new session please");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the answer", |actor| actor.turn.is_none()).await;
    match answered(&mut outcome) {
        Some(TurnOutcome::Answer(answer)) => assert_eq!(answer.text, "answer from s2"),
        other => panic!("{other:?}"),
    }
}

/// The pool stops a process none of whose sessions was used for the idle
/// limit; the workspace keeps its session id, and its next turn loads it.
#[tokio::test(start_paused = true)]
async fn an_idle_process_stops_and_the_session_is_loaded_on_the_next_turn() {
    let fake = Arc::new(Fake::default());
    let (mut actor, _handle, _dir) = actor(&fake, Duration::from_secs(30));
    let (command, _outcome) = turn(1, "hello");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the answer", |actor| {
        actor.turn.is_none() && actor.session().is_some()
    })
    .await;
    run_until(&mut actor, "the idle stop", |actor| {
        matches!(actor.link, AgentLink::Detached)
    })
    .await;
    assert_eq!(actor.resume_id.as_deref(), Some("s1"));
    assert_eq!(actor.last_error, None, "an idle stop is no error");
    let (command, mut outcome) = turn(2, "again");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the next answer", |actor| actor.turn.is_none()).await;
    assert!(matches!(answered(&mut outcome), Some(TurnOutcome::Answer(_))));
    assert_eq!(fake.saw("load"), ["load s1"]);
    assert_eq!(fake.starts.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// Claude opens a workspace new to Codex with no agent running: the hook's
/// warm finds nothing to share and spawns nothing; a turn that arrives
/// while it looks still gets its agent started and is answered.
#[tokio::test(start_paused = true)]
async fn a_share_only_warm_that_finds_no_agent_starts_none_and_a_turn_still_gets_one() {
    let fake = Arc::new(Fake::default());
    let (mut actor, _handle, _dir) = actor(&fake, Duration::from_secs(600));
    let (reply, _action) = oneshot::channel();
    actor.handle(Event::Command(Command::SessionStart {
        source: SessionSource::Startup,
        claude_session_id: Some("claude-1".into()),
        settings: Some(settings()),
        agent_env: Vec::new(),
        reply,
    }));
    assert!(
        matches!(actor.link, AgentLink::Starting { .. }),
        "the hook looks for an agent to share"
    );
    let (command, mut outcome) = turn(1, "hello");
    actor.handle(Event::Command(command));
    run_until(&mut actor, "the answer", |actor| actor.turn.is_none()).await;
    match answered(&mut outcome) {
        Some(TurnOutcome::Answer(answer)) => assert_eq!(answer.text, "answer from s1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(actor.context.pool.status().len(), 1, "the turn started one agent");
}
