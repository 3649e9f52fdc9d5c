//! Drives the built `fake-codex-acp` over stdio with the ACP client SDK, the
//! way the daemon does: initialize, new session, read-only mode, prompts,
//! permission asks answered both ways, cancel, then `session/load` in a new
//! process over the same state directory.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, InitializeRequest, LoadSessionRequest, NewSessionRequest, PermissionOptionKind,
    PromptRequest, PromptResponse, RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SelectedPermissionOutcome, SessionConfigKind, SessionConfigOption, SessionConfigOptionValue, SessionId,
    SessionNotification, SessionUpdate, SetSessionConfigOptionRequest, StopReason, ToolKind,
};
use agent_client_protocol::{Agent, ByteStreams, Client, Error, on_receive_notification, on_receive_request, v1};
use tokio_util::compat::{TokioAsyncReadCompatExt as _, TokioAsyncWriteCompatExt as _};

/// How the test client answers `session/request_permission`.
#[derive(Clone, Copy)]
enum Reply {
    Select(&'static str),
    /// Keep the request open (the responder is stored, never answered).
    Hold,
}

/// What the client saw from the fake, shared with its handlers.
#[derive(Clone)]
struct Seen {
    updates: Arc<Mutex<Vec<SessionUpdate>>>,
    permissions: Arc<Mutex<Vec<RequestPermissionRequest>>>,
    held: Arc<Mutex<Vec<v1::Responder<RequestPermissionResponse>>>>,
    reply: Arc<Mutex<Reply>>,
}

impl Seen {
    fn new() -> Self {
        Self {
            updates: Arc::default(),
            permissions: Arc::default(),
            held: Arc::default(),
            reply: Arc::new(Mutex::new(Reply::Select("allow_once"))),
        }
    }

    fn take_updates(&self) -> Vec<SessionUpdate> {
        std::mem::take(&mut *self.updates.lock().expect("updates lock"))
    }

    fn reply_with(&self, reply: Reply) {
        *self.reply.lock().expect("reply lock") = reply;
    }
}

#[tokio::test]
async fn fake_agent_keeps_sessions_and_scripts_turns() {
    let state = tempfile::tempdir().expect("temp dir");
    let workspace = tempfile::tempdir().expect("temp dir");
    let cwd = workspace.path().canonicalize().expect("canonical workspace");
    let log = state.path().join("messages.jsonl");

    let first = Seen::new();
    let session_id = run_fake(state.path(), &log, first.clone(), async |cx| {
        let init = cx
            .send_request(InitializeRequest::new(ProtocolVersion::V1))
            .block_task()
            .await?;
        assert!(init.agent_capabilities.load_session);
        assert_eq!(init.agent_info.map(|info| info.name).as_deref(), Some("fake-codex-acp"));

        let created = cx
            .send_request(NewSessionRequest::new(cwd.clone()))
            .block_task()
            .await?;
        let session_id = created.session_id;
        let options = created.config_options.expect("configOptions on session/new");
        assert_eq!(current(&options, "mode"), "agent");
        assert_eq!(current(&options, "model"), "fake-large");

        let options = set_option(&cx, &session_id, "mode", "read-only").await?;
        assert_eq!(current(&options, "mode"), "read-only");
        set_option(&cx, &session_id, "model", "fake-small").await?;
        let unknown = set_option(&cx, &session_id, "mode", "yolo").await;
        assert_eq!(
            unknown.expect_err("unknown mode value").code,
            agent_client_protocol::ErrorCode::INVALID_PARAMS
        );

        let (response, text) = prompt(&cx, &first, &session_id, "hello").await?;
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert!(
            text.contains("prompts_seen=1 mode=read-only model=fake-small"),
            "{text}"
        );
        assert!(text.ends_with("VERDICT: CONSENSUS — fake agrees"), "{text}");
        let usage = response.usage.expect("usage on end_turn");
        assert_eq!(
            (usage.input_tokens, usage.output_tokens, usage.thought_tokens),
            (100, 20, Some(5))
        );

        let (_, text) = prompt(&cx, &first, &session_id, "again").await?;
        assert!(text.contains("prompts_seen=2"), "{text}");

        // Allowed: the fake announces the tool call, asks, then really acts.
        first.reply_with(Reply::Select("allow_once"));
        let (response, text) = prompt(&cx, &first, &session_id, "go fake:permission:execute:made.txt").await?;
        assert_eq!(response.stop_reason, StopReason::EndTurn);
        assert!(text.contains("ran touch made.txt"), "{text}");
        assert!(cwd.join("made.txt").exists());
        let asked = first
            .permissions
            .lock()
            .expect("permissions lock")
            .pop()
            .expect("a permission request");
        assert_eq!(asked.tool_call.fields.kind, Some(ToolKind::Execute));
        assert_eq!(asked.tool_call.fields.title.as_deref(), Some("touch made.txt"));
        let options: Vec<_> = asked
            .options
            .iter()
            .map(|option| (option.option_id.0.to_string(), option.kind))
            .collect();
        assert_eq!(
            options,
            [
                ("allow_once".to_owned(), PermissionOptionKind::AllowOnce),
                (
                    "accept_execpolicy_amendment".to_owned(),
                    PermissionOptionKind::AllowAlways
                ),
                ("cancel".to_owned(), PermissionOptionKind::RejectOnce),
            ]
        );

        // Refused: like codex, the whole turn ends cancelled, without text.
        first.reply_with(Reply::Select("cancel"));
        let (response, text) = prompt(&cx, &first, &session_id, "go fake:permission:execute:denied.txt").await?;
        assert_eq!(response.stop_reason, StopReason::Cancelled);
        assert!(text.is_empty(), "{text}");
        assert!(!cwd.join("denied.txt").exists());

        // session/cancel reaches a turn that keeps streaming.
        let turn = cx.send_request(PromptRequest::new(session_id.clone(), vec!["fake:wait-cancel".into()]));
        tokio::time::sleep(Duration::from_millis(300)).await;
        cx.send_notification(CancelNotification::new(session_id.clone()))?;
        let response = tokio::time::timeout(Duration::from_secs(1), turn.block_task())
            .await
            .expect("cancelled turn ends promptly")?;
        assert_eq!(response.stop_reason, StopReason::Cancelled);

        // session/cancel while a permission is open: the fake withdraws it.
        first.reply_with(Reply::Hold);
        first.take_updates();
        let turn = cx.send_request(PromptRequest::new(
            session_id.clone(),
            vec!["fake:permission:edit:notes.md".into()],
        ));
        wait_until(|| !first.held.lock().expect("held lock").is_empty()).await;
        cx.send_notification(CancelNotification::new(session_id.clone()))?;
        let response = tokio::time::timeout(Duration::from_secs(1), turn.block_task())
            .await
            .expect("turn with an open permission ends promptly")?;
        assert_eq!(response.stop_reason, StopReason::Cancelled);
        let held = first.held.lock().expect("held lock").pop().expect("held responder");
        wait_until(|| held.cancellation().is_cancelled()).await;
        assert!(!cwd.join("notes.md").exists());
        Ok(session_id)
    })
    .await;

    // The --log file shows what the client sent, responses included.
    let logged: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("message log")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert!(
        logged
            .iter()
            .any(|record| record["method"] == "session/set_config_option"
                && record["params"]["configId"] == "mode"
                && record["params"]["value"] == "read-only")
    );
    assert!(
        logged
            .iter()
            .any(|record| record["responseTo"] == "session/request_permission"
                && record["result"]["outcome"]["optionId"] == "allow_once")
    );

    // A new process loads the session from the state directory.
    let second = Seen::new();
    run_fake(state.path(), &log, second.clone(), async |cx| {
        cx.send_request(InitializeRequest::new(ProtocolVersion::V1))
            .block_task()
            .await?;
        let loaded = cx
            .send_request(LoadSessionRequest::new(session_id.clone(), cwd.clone()))
            .block_task()
            .await?;
        let options = loaded.config_options.expect("configOptions on session/load");
        assert_eq!(current(&options, "mode"), "agent", "codex resets the mode on load");
        assert_eq!(current(&options, "model"), "fake-small");

        // The replay arrived before the response: user prompts and answers.
        let replay = second.take_updates();
        let users: Vec<String> = replay
            .iter()
            .filter_map(|update| match update {
                SessionUpdate::UserMessageChunk(chunk) => Some(text_of(&chunk.content)),
                _ => None,
            })
            .collect();
        assert_eq!(users.first().map(String::as_str), Some("hello"));
        assert_eq!(users.len(), 6);
        assert!(replay.iter().any(|update| matches!(update,
            SessionUpdate::AgentMessageChunk(chunk) if text_of(&chunk.content).contains("prompts_seen=1"))));

        let (_, text) = prompt(&cx, &second, &session_id, "after load").await?;
        assert!(text.contains("prompts_seen=7 mode=agent model=fake-small"), "{text}");

        let missing = cx
            .send_request(LoadSessionRequest::new(SessionId::new("no-such-session"), cwd.clone()))
            .block_task()
            .await
            .expect_err("unknown session id");
        assert_eq!(missing.message, "no rollout found for thread id no-such-session");
        Ok(())
    })
    .await;
}

/// Spawns the fake, runs `body` as an ACP client over its stdio, then checks
/// that the fake exits 0 soon after its stdin closes.
async fn run_fake<R>(
    state_dir: &Path,
    log: &Path,
    seen: Seen,
    body: impl AsyncFnOnce(v1::ConnectionTo<Agent>) -> Result<R, Error>,
) -> R {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-codex-acp"))
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--log")
        .arg(log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fake-codex-acp (cargo build -p codex-fusion-testkit --bin fake-codex-acp)");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let on_update = {
        let seen = seen.clone();
        async move |notification: SessionNotification, _cx| {
            seen.updates.lock().expect("updates lock").push(notification.update);
            Ok(())
        }
    };
    let on_permission = {
        let seen = seen.clone();
        async move |request: RequestPermissionRequest, responder: v1::Responder<RequestPermissionResponse>, _cx| {
            seen.permissions.lock().expect("permissions lock").push(request);
            let reply = *seen.reply.lock().expect("reply lock");
            match reply {
                Reply::Select(option) => responder.respond(RequestPermissionResponse::new(
                    RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option)),
                )),
                Reply::Hold => {
                    seen.held.lock().expect("held lock").push(responder);
                    Ok(())
                }
            }
        }
    };
    let result = Client
        .v1()
        .name("fake-agent-test")
        .on_receive_notification(on_update, on_receive_notification!())
        .on_receive_request(on_permission, on_receive_request!())
        .connect_with(ByteStreams::new(stdin.compat_write(), stdout.compat()), body)
        .await
        .expect("client session with the fake");
    // Held responders would answer with an error when dropped; the
    // connection is gone by now, so drop them quietly first.
    seen.held.lock().expect("held lock").clear();
    let status = tokio::time::timeout(Duration::from_secs(2), child.wait())
        .await
        .expect("fake exits after stdin EOF")
        .expect("wait for fake");
    assert!(status.success(), "fake exit status: {status}");
    result
}

/// Sends a prompt and returns its response and the agent text streamed for it.
async fn prompt(
    cx: &v1::ConnectionTo<Agent>,
    seen: &Seen,
    session_id: &SessionId,
    text: &str,
) -> Result<(PromptResponse, String), Error> {
    seen.take_updates();
    let response = cx
        .send_request(PromptRequest::new(session_id.clone(), vec![text.into()]))
        .block_task()
        .await?;
    let streamed = seen
        .take_updates()
        .iter()
        .filter_map(|update| match update {
            SessionUpdate::AgentMessageChunk(chunk) => Some(text_of(&chunk.content)),
            _ => None,
        })
        .collect();
    Ok((response, streamed))
}

async fn set_option(
    cx: &v1::ConnectionTo<Agent>,
    session_id: &SessionId,
    config_id: &'static str,
    value: &'static str,
) -> Result<Vec<SessionConfigOption>, Error> {
    let request =
        SetSessionConfigOptionRequest::new(session_id.clone(), config_id, SessionConfigOptionValue::value_id(value));
    Ok(cx.send_request(request).block_task().await?.config_options)
}

fn current(options: &[SessionConfigOption], id: &str) -> String {
    let option = options
        .iter()
        .find(|option| &*option.id.0 == id)
        .expect("config option present");
    match &option.kind {
        SessionConfigKind::Select(select) => select.current_value.0.to_string(),
        other => panic!("config option {id} is not a select: {other:?}"),
    }
}

fn text_of(content: &ContentBlock) -> String {
    match content {
        ContentBlock::Text(text) => text.text.clone(),
        _ => String::new(),
    }
}

/// Polls a condition with a deadline; the fake answers in milliseconds.
async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "condition not met within 2 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
