//! One function per ACP request or notification the fake handles. Handlers
//! run inside the SDK's dispatch loop, so none of them waits on the client:
//! `session/prompt` only starts a `Turn` task and returns.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    AgentCapabilities, AuthMethod, AuthMethodAgent, AuthenticateRequest, AuthenticateResponse, CancelNotification,
    CloseSessionRequest, CloseSessionResponse, ContentBlock, ContentChunk, Implementation, InitializeRequest,
    InitializeResponse, LoadSessionRequest, LoadSessionResponse, NewSessionRequest, NewSessionResponse, PromptRequest,
    PromptResponse, ResumeSessionRequest, ResumeSessionResponse, SessionCapabilities, SessionCloseCapabilities,
    SessionConfigOptionValue, SessionNotification, SessionUpdate, SetSessionConfigOptionRequest,
    SetSessionConfigOptionResponse, SetSessionModeRequest, SetSessionModeResponse,
};
use agent_client_protocol::{Client, Error, ErrorCode, v1};

use crate::markers;
use crate::state::{MODELS, MODES, Session, SessionData, Shared, Speaker, known_value};
use crate::transport::lock;
use crate::turn::Turn;

type Connection = v1::ConnectionTo<Client>;

/// Env variables that make `authenticate` with `api-key` succeed.
const API_KEY_VARS: [&str; 2] = ["OPENAI_API_KEY", "CODEX_API_KEY"];

pub fn initialize(
    shared: &Shared,
    _request: InitializeRequest,
    responder: v1::Responder<InitializeResponse>,
) -> Result<(), Error> {
    if shared.args.hang_initialize {
        shared.hold_initialize(responder);
        return Ok(());
    }
    let auth_methods = if shared.args.require_auth {
        vec![
            AuthMethod::Agent(AuthMethodAgent::new("api-key", "Use OPENAI_API_KEY")),
            AuthMethod::Agent(AuthMethodAgent::new("chat-gpt", "Login with ChatGPT")),
        ]
    } else {
        Vec::new()
    };
    responder.respond(
        InitializeResponse::new(ProtocolVersion::V1)
            .agent_capabilities(
                AgentCapabilities::new()
                    .load_session(!shared.args.no_load)
                    .session_capabilities(SessionCapabilities::new().close(SessionCloseCapabilities::new())),
            )
            .auth_methods(auth_methods)
            .agent_info(Implementation::new(
                shared.args.agent_name.clone(),
                env!("CARGO_PKG_VERSION"),
            )),
    )
}

pub fn authenticate(
    shared: &Shared,
    request: AuthenticateRequest,
    responder: v1::Responder<AuthenticateResponse>,
) -> Result<(), Error> {
    match &*request.method_id.0 {
        "api-key" if API_KEY_VARS.iter().any(|name| std::env::var_os(name).is_some()) => {
            shared.authenticated.store(true, Ordering::SeqCst);
            responder.respond(AuthenticateResponse::new())
        }
        "api-key" => responder.respond_with_error(
            Error::new(ErrorCode::AUTH_REQUIRED, "Authentication required")
                .data("neither OPENAI_API_KEY nor CODEX_API_KEY is set"),
        ),
        other => responder.respond_with_error(Error::new(
            ErrorCode::INVALID_PARAMS,
            format!("authentication method `{other}` is not available in fake-codex-acp"),
        )),
    }
}

pub fn new_session(
    shared: &Shared,
    request: NewSessionRequest,
    responder: v1::Responder<NewSessionResponse>,
) -> Result<(), Error> {
    if !shared.is_authenticated() {
        return responder.respond_with_error(auth_required());
    }
    if !request.cwd.is_absolute() {
        return responder.respond_with_error(Error::new(
            ErrorCode::INVALID_PARAMS,
            format!("cwd must be an absolute path, got `{}`", request.cwd.display()),
        ));
    }
    let data = SessionData::new(request.cwd);
    shared.store.save_or_warn(&data);
    shared.install(data.clone());
    responder.respond(
        NewSessionResponse::new(data.session_id.clone())
            .modes(data.mode_state())
            .config_options(data.config_options()),
    )
}

/// `session/load`: replays the history as updates, then answers. Like codex,
/// the mode comes back as `agent` while the model is kept.
pub fn load_session(
    shared: &Shared,
    request: LoadSessionRequest,
    responder: v1::Responder<LoadSessionResponse>,
    cx: &Connection,
) -> Result<(), Error> {
    if shared
        .busy_loads
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
        .is_ok()
    {
        return responder.respond_with_error(Error::new(
            -32600,
            "Invalid request: This Codex session is in use by another Codex client (the Codex app, the CLI or an IDE); close it there and try again",
        ));
    }
    let data = match restore(shared, &request.session_id.0, request.cwd) {
        Ok(data) => data,
        Err(error) => return responder.respond_with_error(error),
    };
    for entry in &data.history {
        let chunk = ContentChunk::new(ContentBlock::from(entry.text.as_str()));
        let update = match entry.role {
            Speaker::User => SessionUpdate::UserMessageChunk(chunk),
            Speaker::Agent => SessionUpdate::AgentMessageChunk(chunk),
        };
        cx.send_notification(SessionNotification::new(request.session_id.clone(), update))?;
    }
    responder.respond(
        LoadSessionResponse::new()
            .modes(data.mode_state())
            .config_options(data.config_options()),
    )
}

/// `session/resume`: `session/load` without the replay.
pub fn resume_session(
    shared: &Shared,
    request: ResumeSessionRequest,
    responder: v1::Responder<ResumeSessionResponse>,
) -> Result<(), Error> {
    match restore(shared, &request.session_id.0, request.cwd) {
        Ok(data) => responder.respond(
            ResumeSessionResponse::new()
                .modes(data.mode_state())
                .config_options(data.config_options()),
        ),
        Err(error) => responder.respond_with_error(error),
    }
}

pub fn set_config_option(
    shared: &Shared,
    request: SetSessionConfigOptionRequest,
    responder: v1::Responder<SetSessionConfigOptionResponse>,
) -> Result<(), Error> {
    let Some(session) = shared.session(&request.session_id.0) else {
        return responder.respond_with_error(session_not_found(&request.session_id.0));
    };
    let value = match &request.value {
        SessionConfigOptionValue::ValueId { value } => value.0.to_string(),
        other => {
            return responder.respond_with_error(invalid_params(format!(
                "config option `{}` takes a value id, got {other:?}",
                request.config_id.0
            )));
        }
    };
    let values: &[(&str, &str)] = match &*request.config_id.0 {
        "mode" => &MODES,
        "model" => &MODELS,
        other => {
            return responder.respond_with_error(invalid_params(format!("unknown config option `{other}`")));
        }
    };
    let Some(value) = known_value(values, &value) else {
        return responder.respond_with_error(invalid_params(format!(
            "unknown value `{value}` for config option `{}`",
            request.config_id.0
        )));
    };
    let snapshot = {
        let mut data = lock(&session.data);
        if &*request.config_id.0 == "mode" {
            data.mode = value;
        } else {
            data.model = value;
        }
        data.clone()
    };
    shared.store.save_or_warn(&snapshot);
    responder.respond(SetSessionConfigOptionResponse::new(snapshot.config_options()))
}

/// The older `session/set_mode`, kept in step with the `mode` option.
pub fn set_mode(
    shared: &Shared,
    request: SetSessionModeRequest,
    responder: v1::Responder<SetSessionModeResponse>,
) -> Result<(), Error> {
    let Some(session) = shared.session(&request.session_id.0) else {
        return responder.respond_with_error(session_not_found(&request.session_id.0));
    };
    let Some(mode) = known_value(&MODES, &request.mode_id.0) else {
        return responder.respond_with_error(invalid_params(format!("unknown mode `{}`", request.mode_id.0)));
    };
    let snapshot = {
        let mut data = lock(&session.data);
        data.mode = mode;
        data.clone()
    };
    shared.store.save_or_warn(&snapshot);
    responder.respond(SetSessionModeResponse::new())
}

/// Starts the turn in its own task and returns at once, so the dispatch loop
/// stays free for `session/cancel` and permission answers.
pub fn prompt(
    shared: &Arc<Shared>,
    request: PromptRequest,
    responder: v1::Responder<PromptResponse>,
    cx: &Connection,
) -> Result<(), Error> {
    let Some(session) = shared.session(&request.session_id.0) else {
        return responder.respond_with_error(session_not_found(&request.session_id.0));
    };
    let text: String = request
        .prompt
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    let text = markers::for_agent(&text, &shared.args.agent_name);
    let script = markers::parse(&text);
    let turn = Turn::start(shared.clone(), session, cx.clone(), &text);
    cx.spawn(turn.run(script, responder))
}

/// Ends the session's turns (even `fake:ignore-cancel` ones) and forgets
/// the live session, as codex-acp does; a turn marked `fake:ignore-close`
/// keeps it, and the request is never answered.
pub fn close_session(
    shared: &Shared,
    request: CloseSessionRequest,
    responder: v1::Responder<CloseSessionResponse>,
) -> Result<(), Error> {
    let Some(session) = shared.session(&request.session_id.0) else {
        return responder.respond(CloseSessionResponse::new());
    };
    if session.deaf_to_close.load(Ordering::SeqCst) {
        shared.hold_close(responder);
        return Ok(());
    }
    session.cancel_turns();
    session.closed.cancel();
    shared.close(&request.session_id.0);
    responder.respond(CloseSessionResponse::new())
}

pub fn cancel(shared: &Shared, notification: &CancelNotification) {
    if let Some(session) = shared.session(&notification.session_id.0) {
        session.cancel_turns();
    }
}

/// Finds a session for load/resume, in memory or in the state directory,
/// and makes it live again with codex's reset mode.
fn restore(shared: &Shared, session_id: &str, cwd: std::path::PathBuf) -> Result<SessionData, Error> {
    if shared.args.no_load {
        return Err(Error::method_not_found().data("session loading is disabled (--no-load)"));
    }
    if !shared.is_authenticated() {
        return Err(auth_required());
    }
    let live = shared
        .session(session_id)
        .map(|session: Arc<Session>| session.snapshot());
    let stored = match live {
        Some(data) => Some(data),
        None => shared.store.load(session_id).map_err(|error| {
            Error::new(
                ErrorCode::INTERNAL_ERROR,
                format!("reading session {session_id}: {error}"),
            )
        })?,
    };
    let Some(mut data) = stored else {
        return Err(Error::new(
            ErrorCode::INTERNAL_ERROR,
            format!("no rollout found for thread id {session_id}"),
        ));
    };
    data.mode = crate::state::DEFAULT_MODE.to_owned();
    data.cwd = cwd;
    shared.store.save_or_warn(&data);
    shared.install(data.clone());
    Ok(data)
}

fn auth_required() -> Error {
    Error::new(ErrorCode::AUTH_REQUIRED, "Authentication required")
}

fn session_not_found(session_id: &str) -> Error {
    Error::new(
        ErrorCode::RESOURCE_NOT_FOUND,
        format!("Session not found: {session_id}"),
    )
}

fn invalid_params(message: String) -> Error {
    Error::new(ErrorCode::INVALID_PARAMS, message)
}
