//! The ACP edge: the setup sequence of a Codex session (initialize,
//! authenticate, new or load, read-only mode) and the translation of ACP
//! messages into our own types (activities, permission requests, failures).
//! No other module looks inside ACP schema types.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_client_protocol::Agent as AcpPeer;
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AuthenticateRequest, CloseSessionRequest, Implementation, InitializeRequest, LoadSessionRequest, NewSessionRequest,
    PermissionOptionKind, RequestPermissionRequest, SessionConfigKind, SessionConfigOption,
    SessionConfigOptionCategory, SessionConfigOptionValue, SessionConfigSelectOptions, SessionModeState,
    SetSessionConfigOptionRequest, SetSessionModeRequest, ToolCallContent, ToolCallLocation, ToolKind,
};
use serde_json::Value;

use crate::guardian::{ActionKind, FileDiff, PermissionRequest, ResolvedPath};
use crate::models::{ModelOptions, Select};
use crate::resolve::Boundary;

/// The mode that makes codex-acp ask the client before escalating.
pub const READ_ONLY_MODE: &str = "read-only";
/// The mode of claude-agent-acp (0.101) and gemini's ACP agent in which
/// they ask the client before editing or running anything ("Manual"); their
/// `auto` and `yolo` let them decide for themselves.
pub const ASKING_MODE: &str = "default";
/// The modes, best first, in which agent `agent` asks the client before
/// acting (without the read-confining profile, which only Codex has):
/// Codex's `read-only`; Claude's and Gemini's `default`; for any other
/// agent `read-only`, else `default`, the names ACP agents use for it.
pub fn asking_modes(agent: &str) -> &'static [&'static str] {
    match agent {
        "codex" => &[READ_ONLY_MODE],
        "claude" | "gemini" => &[ASKING_MODE],
        _ => &[READ_ONLY_MODE, ASKING_MODE],
    }
}
const MODE_CONFIG_ID: &str = "mode";
const MODEL_CONFIG_ID: &str = "model";
const API_KEY_METHOD: &str = "api-key";
/// What codex says when another codex process holds the session.
const SESSION_IN_USE: &str = "in use by another Codex client";
/// How long a `session/load` waits for another codex to let the session go.
const SESSION_IN_USE_WAIT: Duration = Duration::from_secs(5);
/// Environment variables that carry an OpenAI API key for Codex.
pub use codex_fusion_protocol::API_KEY_VARS;

mod turn;
pub use turn::{PermissionAsk, PromptFailure, PromptResult, Prompted, Stop, ToolCallChange, Update, cancel, prompt};

/// What `initialize` told us about the agent.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    /// The name the agent gives itself (`agentInfo.name`).
    pub name: String,
    pub load_session: bool,
    /// Whether it offers `session/close` (codex-acp does: it ends the
    /// session's turn and lets the session be loaded elsewhere).
    pub close_session: bool,
    pub auth_methods: Vec<String>,
}

/// A session ready for prompts.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub session_id: String,
    /// `true` when an earlier session was restored with `session/load`.
    pub loaded: bool,
    /// The mode the agent reports after we set it.
    pub mode: Option<String>,
    /// The model and effort selects the session offers.
    pub models: ModelOptions,
    /// One line for the next result's footer, e.g. why context was lost.
    pub note: Option<String>,
}

/// Why a session could not be started or a prompt failed, in terms a user
/// can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentFailure {
    #[error(
        "Codex is not signed in: run `codex login` in a terminal, or set OPENAI_API_KEY (or CODEX_API_KEY) in the environment of the MCP server or the daemon, then call again (no restart needed). Agent said: {0}"
    )]
    AuthRequired(String),
    #[error(
        "Codex refused for quota: the account has run out of credits or hit its plan limit. Check billing, or switch to a cheaper model. Agent said: {0}"
    )]
    Quota(String),
    #[error("Codex is rate limited: wait a minute and call again, or switch model. Agent said: {0}")]
    RateLimited(String),
    #[error(
        "codex-acp and codex-fusion speak different ACP protocol versions ({0}); codex-fusion speaks version 1: install a codex-acp that does (`npm install -g @agentclientprotocol/codex-acp@2.6.0`), or upgrade codex-fusion"
    )]
    ProtocolMismatch(String),
    #[error(
        "codex-fusion could not confine Codex's reads to the workspace ({0}), so it will not run Codex: sandboxed commands would read any file without asking. Run `codex-fusion doctor` to see why, fix it, and call again"
    )]
    Unconfined(String),
    #[error("{0}")]
    Other(String),
}

impl AgentFailure {
    /// The same failure with its text passed through `change` (to scrub
    /// credentials the agent quoted).
    pub fn map_text(self, change: impl FnOnce(&str) -> String) -> AgentFailure {
        match self {
            AgentFailure::AuthRequired(text) => AgentFailure::AuthRequired(change(&text)),
            AgentFailure::Quota(text) => AgentFailure::Quota(change(&text)),
            AgentFailure::RateLimited(text) => AgentFailure::RateLimited(change(&text)),
            AgentFailure::ProtocolMismatch(text) => AgentFailure::ProtocolMismatch(change(&text)),
            AgentFailure::Unconfined(text) => AgentFailure::Unconfined(change(&text)),
            AgentFailure::Other(text) => AgentFailure::Other(change(&text)),
        }
    }

    /// Sorts an ACP error into a cause a user can act on.
    pub fn classify(error: &agent_client_protocol::Error) -> AgentFailure {
        let code: i32 = error.code.into();
        let mut text = error.message.clone();
        if let Some(data) = &error.data {
            let data = match data {
                Value::String(data) => data.clone(),
                other => other.to_string(),
            };
            if !data.is_empty() && data != "null" {
                text = format!("{text} ({data})");
            }
        }
        let lower = text.to_ascii_lowercase();
        if lower.contains("protocol version") {
            AgentFailure::ProtocolMismatch(text)
        } else if code == -32000 || lower.contains("authentication required") || lower.contains("401 unauthorized") {
            AgentFailure::AuthRequired(text)
        } else if lower.contains("insufficient_quota") || lower.contains("quota") || lower.contains("usage limit") {
            AgentFailure::Quota(text)
        } else if lower.contains("rate limit") || lower.contains("rate_limit") || lower.contains("429") {
            AgentFailure::RateLimited(text)
        } else if lower.contains("execvp codex-linux-sandbox") {
            AgentFailure::Other(format!("codex-acp error {code}: {text}. {OLD_BWRAP_HINT}"))
        } else {
            AgentFailure::Other(format!("codex-acp error {code}: {text}"))
        }
    }
}

/// What codex's sandbox failing to re-exec itself means, and what to do.
/// Seen with Debian 12's bubblewrap 0.8.0 installed: codex prefers the
/// system `bwrap`, and one without `--argv0` cannot start its helper.
pub const OLD_BWRAP_HINT: &str = "Codex's sandbox could not start its helper: a system bubblewrap (`bwrap`) older than 0.9 (no `--argv0`) is installed, and codex uses it instead of its own. Upgrade bubblewrap to 0.9 or later, or remove it (codex then uses the one it ships); `codex-fusion doctor` checks it";

/// `initialize`, checking the protocol version.
pub async fn initialize(connection: &ConnectionTo<AcpPeer>) -> Result<AgentInfo, AgentFailure> {
    let response = connection
        .send_request(
            InitializeRequest::new(ProtocolVersion::V1).client_info(Implementation::new(
                "codex-fusion",
                codex_fusion_protocol::PACKAGE_VERSION,
            )),
        )
        .block_task()
        .await
        .map_err(|error| AgentFailure::classify(&error))?;
    if response.protocol_version != ProtocolVersion::V1 {
        return Err(AgentFailure::ProtocolMismatch(format!(
            "codex-acp answered with {:?}",
            response.protocol_version
        )));
    }
    Ok(AgentInfo {
        name: response
            .agent_info
            .as_ref()
            .map(|agent| agent.name.clone())
            .unwrap_or_default(),
        load_session: response.agent_capabilities.load_session,
        close_session: response.agent_capabilities.session_capabilities.close.is_some(),
        auth_methods: response
            .auth_methods
            .iter()
            .map(|method| method.id().to_string())
            .collect(),
    })
}

impl AgentInfo {
    /// Whether the agent says it is codex-acp (which must be confined).
    pub fn is_codex_acp(&self) -> bool {
        self.name == "codex-acp" || self.name.ends_with("/codex-acp")
    }
}

/// Opens a session in `workspace`: restores `resume` with `session/load` when
/// the agent supports it (falling back to a fresh session with a note), then
/// puts it in the first of `modes` the agent offers (the read-confining
/// profile, else `read-only`) and checks that the mode took.
pub async fn open_session(
    connection: &ConnectionTo<AcpPeer>,
    agent: &str,
    info: &AgentInfo,
    workspace: &Path,
    resume: Option<&str>,
    api_key_available: bool,
    modes: &[&str],
) -> Result<OpenedSession, AgentFailure> {
    if api_key_available && info.auth_methods.iter().any(|method| method == API_KEY_METHOD) {
        // With a key at hand, authenticate up front rather than wait for the
        // "Authentication required" error.
        connection
            .send_request(AuthenticateRequest::new(API_KEY_METHOD))
            .block_task()
            .await
            .map_err(|error| AgentFailure::classify(&error))?;
    }
    let mut note = None;
    let mut restored = None;
    if let Some(session_id) = resume {
        if info.load_session {
            let load = || {
                connection
                    .send_request(LoadSessionRequest::new(session_id.to_owned(), workspace.to_path_buf()))
                    .block_task()
            };
            let mut answer = load().await;
            // A codex of a daemon that was killed still holds the session for
            // the second or two it takes to see its stdin close: wait for it
            // rather than lose the context.
            let deadline = tokio::time::Instant::now() + SESSION_IN_USE_WAIT;
            while let Err(error) = &answer {
                let held = AgentFailure::classify(error).to_string().contains(SESSION_IN_USE);
                if !held || tokio::time::Instant::now() >= deadline {
                    break;
                }
                tracing::info!(
                    session_id,
                    "the Codex session is still held by an earlier codex; waiting for it"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
                answer = load().await;
            }
            match answer {
                Ok(response) => restored = Some((session_id.to_owned(), response.config_options, response.modes)),
                Err(error) => {
                    let failure = AgentFailure::classify(&error);
                    if matches!(failure, AgentFailure::AuthRequired(_)) {
                        return Err(failure);
                    }
                    tracing::warn!(session_id, %failure, "could not restore the Codex session; starting a fresh one");
                    note = Some(format!(
                        "new Codex session: the previous one could not be restored ({}); re-establish context",
                        one_line(&failure.to_string(), 120)
                    ));
                }
            }
        } else {
            note = Some("new Codex session: codex-acp cannot restore sessions; re-establish context".to_owned());
        }
    }
    let loaded = restored.is_some();
    let (session_id, options, session_modes) = match restored {
        Some(restored) => restored,
        None => {
            let response = connection
                .send_request(NewSessionRequest::new(workspace.to_path_buf()))
                .block_task()
                .await
                .map_err(|error| AgentFailure::classify(&error))?;
            (response.session_id.to_string(), response.config_options, response.modes)
        }
    };
    let (mode, options) = ensure_mode(connection, agent, info, &session_id, options, session_modes, modes).await?;
    if !loaded && info.is_codex_acp() {
        name_session(connection, &session_id, workspace).await;
    }
    let models = options.as_deref().map(model_options).unwrap_or_default();
    Ok(OpenedSession {
        session_id,
        loaded,
        mode,
        models,
        note,
    })
}

/// Names a new codex-acp session after its workspace (`session/set_title`,
/// which codex-acp 2.6 serves though the schema crate has no type for it).
/// Unnamed, codex-acp titles it after its first turn with a model request
/// of its own: one more request per session that nobody reads here (Claude
/// never sees the title), and a second thread started right after the
/// first answer, whose sandbox helpers compete with the next call. Best
/// effort: a rename that fails costs only that.
async fn name_session(connection: &ConnectionTo<AcpPeer>, session_id: &str, workspace: &Path) {
    let name = workspace.file_name().map_or_else(
        || workspace.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let params = serde_json::json!({ "sessionId": session_id, "title": format!("codex-fusion: {name}") });
    let Ok(request) = agent_client_protocol::UntypedMessage::new(RENAME_METHOD, params) else {
        return;
    };
    if let Err(error) = connection.send_request(request).block_task().await {
        tracing::debug!(%error, "codex-acp did not take the session's name; it will title the session itself");
    }
}

/// The ACP method that sets a session's title (codex-acp's `_session/rename`
/// is only for its own editor clients).
const RENAME_METHOD: &str = "session/set_title";

/// Closes `session_id` on the agent: its running turn ends and another
/// process may load it.
pub async fn close_session(connection: &ConnectionTo<AcpPeer>, session_id: &str) -> Result<(), AgentFailure> {
    connection
        .send_request(CloseSessionRequest::new(session_id.to_owned()))
        .block_task()
        .await
        .map(|_| ())
        .map_err(|error| AgentFailure::classify(&error))
}

/// Sets the first of `wanted` the agent offers (after every new and every
/// load: codex-acp forgets the mode on load) and returns the mode the agent
/// reports afterwards, which must be the one asked for.
async fn ensure_mode(
    connection: &ConnectionTo<AcpPeer>,
    agent: &str,
    info: &AgentInfo,
    session_id: &str,
    options: Option<Vec<SessionConfigOption>>,
    modes: Option<SessionModeState>,
    wanted: &[&str],
) -> Result<(Option<String>, Option<Vec<SessionConfigOption>>), AgentFailure> {
    let who = codex_fusion_protocol::agents::display_name(agent);
    let program = if info.name.is_empty() {
        agent
    } else {
        info.name.as_str()
    };
    let pick = |offered: &[String]| -> Result<String, AgentFailure> {
        wanted
            .iter()
            .find(|mode| offered.iter().any(|offer| offer == *mode))
            .map(|mode| (*mode).to_owned())
            .ok_or_else(|| match wanted {
                [crate::confine::PROFILE_MODE] => AgentFailure::Unconfined(format!(
                    "the `{}` permission profile did not take: codex-acp offers the modes {}; codex may have rejected the profile (see codex-acp's stderr in `status`)",
                    crate::confine::PROFILE,
                    offered.join(", ")
                )),
                _ => AgentFailure::Other(format!(
                    "{program} offers none of the modes {} (it offers {}); codex-fusion needs one so that {who} asks before acting, and does not run it otherwise. Upgrade {program}, or leave `{agent}` out of {}",
                    wanted.join(", "),
                    offered.join(", "),
                    codex_fusion_protocol::agents::AGENTS_ENV,
                )),
            })
    };
    if let Some(values) = options
        .as_deref()
        .and_then(|options| select_values(options, MODE_CONFIG_ID))
    {
        let target = pick(&values)?;
        let response = connection
            .send_request(SetSessionConfigOptionRequest::new(
                session_id.to_owned(),
                MODE_CONFIG_ID,
                SessionConfigOptionValue::value_id(target.clone()),
            ))
            .block_task()
            .await
            .map_err(|error| AgentFailure::classify(&error))?;
        let mode = current_value(&response.config_options, MODE_CONFIG_ID);
        if mode.as_deref() != Some(target.as_str()) {
            return Err(AgentFailure::Other(format!(
                "{program} did not switch to `{target}` mode (it reports `{}`); refusing to run {who} with its own approvals",
                mode.unwrap_or_default()
            )));
        }
        return Ok((mode, Some(response.config_options)));
    }
    if let Some(modes) = modes {
        let offered: Vec<String> = modes.available_modes.iter().map(|mode| mode.id.to_string()).collect();
        let target = pick(&offered)?;
        connection
            .send_request(SetSessionModeRequest::new(session_id.to_owned(), target.clone()))
            .block_task()
            .await
            .map_err(|error| AgentFailure::classify(&error))?;
        return Ok((Some(target), options));
    }
    if agent != codex_fusion_protocol::agents::DEFAULT_AGENT {
        // Nothing says this agent will ask before acting.
        return Err(AgentFailure::Other(format!(
            "{program} offers no session modes, so codex-fusion cannot put {who} in one where it asks before acting, and does not run it. Leave `{agent}` out of {}",
            codex_fusion_protocol::agents::AGENTS_ENV
        )));
    }
    tracing::warn!(session_id, "the agent has no modes; its own approval policy applies");
    Ok((None, options))
}

/// The current value of select option `id`.
pub fn current_value(options: &[SessionConfigOption], id: &str) -> Option<String> {
    options
        .iter()
        .find(|option| option.id.to_string() == id)
        .and_then(|option| match &option.kind {
            SessionConfigKind::Select(select) => Some(select.current_value.to_string()),
            _ => None,
        })
}

/// Every value select option `id` offers.
pub fn select_values(options: &[SessionConfigOption], id: &str) -> Option<Vec<String>> {
    let option = options.iter().find(|option| option.id.to_string() == id)?;
    let SessionConfigKind::Select(select) = &option.kind else {
        return None;
    };
    Some(match &select.options {
        SessionConfigSelectOptions::Ungrouped(options) => {
            options.iter().map(|option| option.value.to_string()).collect()
        }
        SessionConfigSelectOptions::Grouped(groups) => groups
            .iter()
            .flat_map(|group| group.options.iter().map(|option| option.value.to_string()))
            .collect(),
        _ => Vec::new(),
    })
}

/// The model and effort selects among `options`: the model by id `model` or
/// category, the effort by category (thought level) or a known id.
pub fn model_options(options: &[SessionConfigOption]) -> ModelOptions {
    let find = |wanted: &dyn Fn(&SessionConfigOption) -> bool| {
        options.iter().find(|option| wanted(option)).and_then(|option| {
            let id = option.id.to_string();
            Some(Select {
                current: current_value(options, &id)?,
                values: select_values(options, &id)?,
                id,
            })
        })
    };
    ModelOptions {
        model: find(&|option| {
            option.id.to_string() == MODEL_CONFIG_ID
                || matches!(option.category, Some(SessionConfigOptionCategory::Model))
        }),
        effort: find(&|option| {
            matches!(option.category, Some(SessionConfigOptionCategory::ThoughtLevel))
                || ["reasoning_effort", "effort", "thought_level"].contains(&option.id.to_string().as_str())
        }),
    }
}

/// Sets each `(config id, value)` on the session, in order; the options as
/// the agent reports them after the last one.
pub async fn set_options(
    connection: &ConnectionTo<AcpPeer>,
    session_id: &str,
    changes: &[(String, String)],
) -> Result<Option<Vec<SessionConfigOption>>, agent_client_protocol::Error> {
    let mut last = None;
    for (id, value) in changes {
        let response = connection
            .send_request(SetSessionConfigOptionRequest::new(
                session_id.to_owned(),
                id.clone(),
                SessionConfigOptionValue::value_id(value.clone()),
            ))
            .block_task()
            .await?;
        last = Some(response.config_options);
    }
    Ok(last)
}

/// An error codex reported as answer text rather than as a JSON-RPC error
/// (it does so for rate limits and server errors, with no usage). Only
/// called for turns that produced no usage.
pub fn failure_in_text(text: &str) -> Option<AgentFailure> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 600 {
        return None;
    }
    let lower = trimmed.to_ascii_lowercase();
    let quoted = one_line(trimmed, 200);
    // Codex's own phrasings (docs/notes/codex-acp-2.6.0.md §8), not any text
    // that merely mentions a status code.
    if lower.contains("quota exceeded") || lower.contains("insufficient_quota") {
        Some(AgentFailure::Quota(quoted))
    } else if lower.contains("last status: 429") || lower.contains("rate_limit_exceeded") {
        Some(AgentFailure::RateLimited(quoted))
    } else if lower.contains("last status: 401") || lower.contains("invalid_api_key") {
        Some(AgentFailure::AuthRequired(quoted))
    } else if lower.contains("high demand")
        || lower.contains("last status: 5")
        || lower.contains("internal server error")
    {
        Some(AgentFailure::Other(format!(
            "the model service failed (it said: {quoted}); wait a moment and call again"
        )))
    } else {
        None
    }
}

/// Our view of a tool call, merged from `tool_call` and `tool_call_update`.
#[derive(Debug, Clone, Default)]
pub struct ToolCallInfo {
    /// Its locations that resolve outside the workspace (judged once, when
    /// the call is announced).
    pub outside: Vec<String>,
    pub kind: Option<ToolKind>,
    pub title: Option<String>,
    pub status: Option<String>,
    pub locations: Vec<PathBuf>,
    pub raw_input: Option<Value>,
    /// Every path its diff content has named so far, first seen first
    /// (codex-acp names a move's destination only here, never in the
    /// permission request). Only ever grows: a later update that replaces
    /// the content does not take back a path the call once showed.
    pub diff_paths: Vec<PathBuf>,
    /// The diffs of its latest content that had any, to show what an edit
    /// would write.
    pub diffs: Vec<FileDiff>,
}

impl ToolCallInfo {
    pub fn from_call(call: &agent_client_protocol::v1::schema::ToolCall) -> Self {
        let mut info = ToolCallInfo {
            kind: Some(call.kind),
            title: Some(call.title.clone()),
            status: Some(format!("{:?}", call.status).to_ascii_lowercase()),
            locations: locations(&call.locations),
            raw_input: call.raw_input.clone(),
            outside: Vec::new(),
            diff_paths: Vec::new(),
            diffs: Vec::new(),
        };
        info.absorb_content(&call.content);
        info
    }

    pub fn merge(&mut self, update: &agent_client_protocol::v1::schema::ToolCallUpdateFields) {
        if let Some(kind) = update.kind {
            self.kind = Some(kind);
        }
        if let Some(title) = &update.title {
            self.title = Some(title.clone());
        }
        if let Some(status) = &update.status {
            self.status = Some(format!("{status:?}").to_ascii_lowercase());
        }
        if let Some(found) = &update.locations {
            self.locations = locations(found);
        }
        if let Some(raw_input) = &update.raw_input {
            self.raw_input = Some(raw_input.clone());
        }
        if let Some(content) = &update.content {
            self.absorb_content(content);
        }
    }

    /// Records `content`'s diffs: their paths for good, their texts as the
    /// latest to show.
    fn absorb_content(&mut self, content: &[ToolCallContent]) {
        let diffs: Vec<FileDiff> = content
            .iter()
            .filter_map(|item| match item {
                ToolCallContent::Diff(diff) => Some(FileDiff {
                    path: diff.path.clone(),
                    old_text: diff.old_text.clone(),
                    new_text: diff.new_text.clone(),
                }),
                _ => None,
            })
            .collect();
        for diff in &diffs {
            if !self.diff_paths.contains(&diff.path) {
                self.diff_paths.push(diff.path.clone());
            }
        }
        if !diffs.is_empty() {
            self.diffs = diffs;
        }
    }

    /// A one-line description for the activity trail.
    pub fn activity(&self) -> String {
        let kind = self.kind.map(action_kind).unwrap_or(ActionKind::Other).label();
        let title = self.title.clone().unwrap_or_else(|| "tool call".into());
        one_line(&format!("{kind}: {title}"), 200)
    }
}

fn locations(locations: &[ToolCallLocation]) -> Vec<PathBuf> {
    locations.iter().map(|location| location.path.clone()).collect()
}

/// The ACP tool kind in our terms.
pub fn action_kind(kind: ToolKind) -> ActionKind {
    match kind {
        ToolKind::Read => ActionKind::Read,
        ToolKind::Search => ActionKind::Search,
        ToolKind::Edit => ActionKind::Edit,
        ToolKind::Delete => ActionKind::Delete,
        ToolKind::Move => ActionKind::Move,
        ToolKind::Execute => ActionKind::Execute,
        ToolKind::Fetch => ActionKind::Fetch,
        ToolKind::Think => ActionKind::Think,
        ToolKind::SwitchMode => ActionKind::SwitchMode,
        _ => ActionKind::Other,
    }
}

/// Translates a permission request into the guardian's terms, merging what
/// the turn already knows of the tool call and judging every path against
/// `boundary` (the canonical workspace and the credential stores).
///
/// The paths judged are the union of the request's locations, the paths in
/// the raw input and every path the tool call's diffs have named. An edit
/// is marked [`PermissionRequest::paths_incomplete`] unless its diffs (or
/// raw input) name exactly its locations: a move, or a change whose diff
/// codex-acp left out, cannot be checked path by path.
pub fn permission_request(
    request: &RequestPermissionRequest,
    known: Option<&ToolCallInfo>,
    boundary: &Boundary,
) -> PermissionRequest {
    let workspace = boundary.workspace();
    let mut info = known.cloned().unwrap_or_default();
    info.merge(&request.tool_call.fields);
    let raw = info.raw_input.clone().unwrap_or(Value::Null);
    let kind = info.kind.map(action_kind).unwrap_or(ActionKind::Other);
    let cwd_raw = string_field(&raw, &["cwd", "workdir"]).map(PathBuf::from);
    let cwd = cwd_raw.as_ref().map(|cwd| boundary.judge(workspace, cwd));
    let base = cwd
        .as_ref()
        .map(|cwd| cwd.resolved.clone())
        .unwrap_or_else(|| workspace.to_path_buf());
    let judge =
        |paths: &[PathBuf]| -> Vec<ResolvedPath> { paths.iter().map(|path| boundary.judge(&base, path)).collect() };
    let located = judge(&info.locations);
    let from_input = judge(&raw_input_paths(&raw));
    let from_diffs = judge(&info.diff_paths);
    let mut paths: Vec<ResolvedPath> = Vec::new();
    for path in located.iter().chain(&from_input).chain(&from_diffs) {
        // The same place named twice (as a location and in a diff) is
        // judged once; a different entry for it (a link) is kept.
        let seen = paths
            .iter()
            .any(|seen| seen.resolved == path.resolved && seen.entry_inside_workspace == path.entry_inside_workspace);
        if !seen {
            paths.push(path.clone());
        }
    }
    // codex-acp names a change's source as a location and only a move's
    // destination in its diff, drops the diff of a change too large to
    // show, and merges repeated locations: which source goes where cannot
    // be told apart from a dropped diff (a patch can pair an add of `a`
    // with a move of `a`, or two moves of one file). So an edit is known
    // whole only when its diffs name exactly its locations; any move, and
    // any change shown without its diff, asks.
    let paths_incomplete = match kind {
        ActionKind::Edit => {
            let among = |path: &ResolvedPath, others: &[ResolvedPath]| {
                others.iter().any(|other| other.resolved == path.resolved)
            };
            let explained = |path: &ResolvedPath| among(path, &from_diffs) || among(path, &from_input);
            located.iter().any(|path| !explained(path))
                || from_diffs
                    .iter()
                    .any(|path| !located.is_empty() && !among(path, &located))
        }
        // Where it goes, and from where.
        ActionKind::Move => paths.len() < 2,
        _ => false,
    };
    PermissionRequest {
        kind,
        title: info.title.clone().unwrap_or_else(|| kind.label().to_owned()),
        command: command_line(&raw),
        cwd,
        paths,
        paths_incomplete,
        url: string_field(&raw, &["url", "uri"]),
        reason: string_field(&raw, &["justification", "reason"]),
        diffs: info.diffs.clone(),
        permissions: asked_permissions(kind, &raw),
    }
}

/// Most lines [`asked_permissions`] gives; a request asking for more says
/// how many were left out.
const MAX_PERMISSION_LINES: usize = 40;

/// What a request asks to be granted, one readable line each: for a mode
/// switch or an unrecognised kind (codex's `request_permissions` is kind
/// `other`, `rawInput {permissions, cwd, environmentId}`), every field of
/// its raw input; for any other request, its `permissions` or
/// `additionalPermissions` (codex's escalation with extra sandbox rights).
fn asked_permissions(kind: ActionKind, raw: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    match kind {
        ActionKind::SwitchMode | ActionKind::Other => match raw {
            Value::Null => {}
            Value::Object(_) => readable("", raw, &mut lines),
            other => readable("input", other, &mut lines),
        },
        _ => {
            for key in ["permissions", "additionalPermissions"] {
                if let Some(value) = raw.get(key) {
                    readable(key, value, &mut lines);
                }
            }
        }
    }
    if lines.len() > MAX_PERMISSION_LINES {
        let more = lines.len() - MAX_PERMISSION_LINES + 1;
        lines.truncate(MAX_PERMISSION_LINES - 1);
        lines.push(format!("… {more} more"));
    }
    lines
}

/// Appends `value` as `key.path: value` lines: objects by field, lists of
/// plain values on one line, codex's filesystem entries
/// (`{access, path: {type, path|pattern|value}}`) as `write /some/dir`.
fn readable(prefix: &str, value: &Value, lines: &mut Vec<String>) {
    let field = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Object(map) if map.is_empty() => lines.push(format!("{prefix}: (none)")),
        Value::Object(map) => {
            if let Some(entry) = filesystem_entry(map) {
                lines.push(format!("{prefix}: {entry}"));
                return;
            }
            for (key, value) in map {
                readable(&field(key), value, lines);
            }
        }
        Value::Array(items) if items.is_empty() => lines.push(format!("{prefix}: (none)")),
        Value::Array(items) if items.iter().all(|item| !item.is_object() && !item.is_array()) => {
            let words: Vec<String> = items.iter().map(plain).collect();
            lines.push(format!("{prefix}: {}", words.join(", ")));
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                readable(&format!("{prefix}[{index}]"), item, lines);
            }
        }
        other => lines.push(format!("{prefix}: {}", plain(other))),
    }
}

/// A codex filesystem permission entry, e.g. `write /w/out` or
/// `read pattern **/*.md`.
fn filesystem_entry(map: &serde_json::Map<String, Value>) -> Option<String> {
    let access = map.get("access")?.as_str()?;
    let path = map.get("path")?;
    let what = match path.get("type").and_then(Value::as_str) {
        Some("path") => string_field(path, &["path"])?,
        Some("glob_pattern") => format!("pattern {}", string_field(path, &["pattern"])?),
        Some("special") => format!("Codex scope {}", path.get("value")?),
        _ => path.as_str().map(str::to_owned)?,
    };
    Some(format!("{access} {what}"))
}

/// A plain JSON value as text: strings without quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "(not set)".to_owned(),
        other => other.to_string(),
    }
}

/// The paths an agent's raw input names: single fields under the names
/// agents use, a `paths` list, and the keys (and move targets) of a
/// `changes` map (codex's older `apply_patch` input).
fn raw_input_paths(raw: &Value) -> Vec<PathBuf> {
    const SINGLE: &[&str] = &[
        "path",
        "file_path",
        "filePath",
        "source",
        "destination",
        "target",
        "new_path",
        "newPath",
        "old_path",
        "oldPath",
        "move_path",
        "movePath",
    ];
    let mut paths: Vec<PathBuf> = SINGLE
        .iter()
        .filter_map(|key| string_field(raw, &[key]))
        .map(PathBuf::from)
        .collect();
    if let Some(Value::Array(items)) = raw.get("paths") {
        paths.extend(items.iter().filter_map(Value::as_str).map(PathBuf::from));
    }
    if let Some(Value::Object(changes)) = raw.get("changes") {
        for (path, change) in changes {
            paths.push(PathBuf::from(path));
            paths.extend(
                string_field(change, &["move_path", "movePath"])
                    .or_else(|| {
                        change
                            .get("update")
                            .and_then(|update| string_field(update, &["move_path", "movePath"]))
                    })
                    .map(PathBuf::from),
            );
        }
    }
    paths
}

/// The option to answer with: `allow_once` for allow (never a standing
/// grant), `reject_once` for deny. Chosen by kind, never by id or position.
pub fn choose_option(request: &RequestPermissionRequest, allow: bool) -> Option<String> {
    let wanted = if allow {
        PermissionOptionKind::AllowOnce
    } else {
        PermissionOptionKind::RejectOnce
    };
    request
        .options
        .iter()
        .find(|option| option.kind == wanted)
        .map(|option| option.option_id.to_string())
}

fn string_field(raw: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|key| raw.get(*key).and_then(Value::as_str))
        .map(str::to_owned)
}

/// A command from `rawInput.command`, a string or an argv array.
fn command_line(raw: &Value) -> Option<String> {
    match raw.get("command")? {
        Value::String(command) => Some(command.clone()),
        Value::Array(words) => {
            let words: Vec<&str> = words.iter().filter_map(Value::as_str).collect();
            shlex::try_join(words.iter().copied())
                .ok()
                .or_else(|| Some(words.join(" ")))
        }
        _ => None,
    }
}

/// `text` on one line, cut to `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardian::FileDiff;
    use agent_client_protocol::v1::schema::{Diff, PermissionOption, ToolCall, ToolCallUpdate, ToolCallUpdateFields};
    use serde_json::json;

    fn request(kind: ToolKind, raw_input: Value, locations: Vec<&str>) -> RequestPermissionRequest {
        let fields = ToolCallUpdateFields::new()
            .kind(kind)
            .title("do it")
            .raw_input(raw_input)
            .locations(locations.into_iter().map(ToolCallLocation::new).collect::<Vec<_>>());
        RequestPermissionRequest::new(
            "s1",
            ToolCallUpdate::new("call-1", fields),
            vec![
                PermissionOption::new("allow_once", "Yes", PermissionOptionKind::AllowOnce),
                PermissionOption::new(
                    "accept_execpolicy_amendment",
                    "Always",
                    PermissionOptionKind::AllowAlways,
                ),
                PermissionOption::new("cancel", "No", PermissionOptionKind::RejectOnce),
            ],
        )
    }

    #[test]
    fn options_are_chosen_by_kind_not_id() {
        let request = request(ToolKind::Execute, json!({}), vec![]);
        assert_eq!(choose_option(&request, true).as_deref(), Some("allow_once"));
        assert_eq!(choose_option(&request, false).as_deref(), Some("cancel"));
    }

    #[test]
    fn command_requests_carry_the_command_line_and_cwd() {
        let workspace = std::fs::canonicalize(std::env::temp_dir()).expect("tmp");
        let request = request(
            ToolKind::Execute,
            json!({"command": ["touch", "a file"], "cwd": workspace, "justification": "needed"}),
            vec![],
        );
        let translated = permission_request(&request, None, &Boundary::new(&workspace, [], None));
        assert_eq!(translated.kind, ActionKind::Execute);
        assert_eq!(translated.command.as_deref(), Some("touch 'a file'"));
        assert_eq!(translated.reason.as_deref(), Some("needed"));
        assert!(translated.cwd.expect("cwd").inside_workspace);
    }

    #[test]
    fn paths_come_from_locations_and_raw_input() {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = std::fs::canonicalize(temp.path()).expect("canonical");
        let request = request(
            ToolKind::Edit,
            json!({"changes": {"/etc/passwd": {}}, "path": "src/x.rs"}),
            vec!["README.md"],
        );
        let translated = permission_request(&request, None, &Boundary::new(&workspace, [], None));
        let judged: Vec<(String, bool)> = translated
            .paths
            .iter()
            .map(|path| (path.raw.display().to_string(), path.inside_workspace))
            .collect();
        assert_eq!(
            judged,
            [
                ("README.md".to_string(), true),
                ("src/x.rs".to_string(), true),
                ("/etc/passwd".to_string(), false)
            ]
        );
    }

    /// A workspace with `src/a.rs`, and the parent directory it sits in.
    fn move_fixture() -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = std::fs::canonicalize(temp.path()).expect("canonical").join("ws");
        std::fs::create_dir_all(workspace.join("src")).expect("mkdir");
        std::fs::write(workspace.join("src/a.rs"), "fn a() {}\n").expect("write");
        (temp, workspace)
    }

    /// What codex-acp 2.6.0 sends for `*** Update File: src/a.rs` +
    /// `*** Move to: ../outside.txt`: the permission request names the
    /// source only.
    fn move_request(workspace: &Path) -> RequestPermissionRequest {
        let fields = ToolCallUpdateFields::new()
            .kind(ToolKind::Edit)
            .title("Edit files")
            .locations(vec![ToolCallLocation::new(workspace.join("src/a.rs"))]);
        RequestPermissionRequest::new("s1", ToolCallUpdate::new("call-1", fields), vec![])
    }

    fn moved_diff(workspace: &Path) -> ToolCallContent {
        ToolCallContent::Diff(Diff::new(workspace.join("../outside.txt"), "fn moved() {}\n").old_text("fn a() {}\n"))
    }

    /// `request` pauses even with `CODEX_FUSION_ALLOW_WRITES`.
    fn assert_asks_with_writes_allowed(request: &PermissionRequest) {
        let writes = crate::guardian::Policy {
            allow_writes: true,
            ..Default::default()
        };
        assert_ne!(
            crate::guardian::decide(request, &writes),
            crate::guardian::Decision::Allow,
            "{request:?}"
        );
    }

    fn judged(request: &PermissionRequest) -> Vec<(String, bool)> {
        request
            .paths
            .iter()
            .map(|path| (path.resolved.display().to_string(), path.inside_workspace))
            .collect()
    }

    #[test]
    fn a_move_is_judged_by_the_destination_its_diff_names() {
        let (_temp, workspace) = move_fixture();
        let call = ToolCall::new("call-1", "Editing files")
            .kind(ToolKind::Edit)
            .content(vec![moved_diff(&workspace)]);
        let known = ToolCallInfo::from_call(&call);
        let translated = permission_request(
            &move_request(&workspace),
            Some(&known),
            &Boundary::new(&workspace, [], None),
        );
        let outside = workspace.parent().expect("parent").join("outside.txt");
        assert_eq!(
            judged(&translated),
            [
                (workspace.join("src/a.rs").display().to_string(), true),
                (outside.display().to_string(), false)
            ]
        );
        // Both are judged, and a move is never auto-allowed: which source
        // goes where cannot be told from what codex-acp sends.
        assert!(translated.paths_incomplete, "a move cannot be checked path by path");
        assert_asks_with_writes_allowed(&translated);
    }

    #[test]
    fn a_diff_path_seen_only_in_a_tool_call_update_is_judged() {
        let (_temp, workspace) = move_fixture();
        // Announced without content; the diff comes in an update.
        let mut known = ToolCallInfo::from_call(&ToolCall::new("call-1", "Editing files").kind(ToolKind::Edit));
        known.merge(&ToolCallUpdateFields::new().content(vec![moved_diff(&workspace)]));
        // A later update that replaces the content does not take the path back.
        known.merge(&ToolCallUpdateFields::new().content(Vec::<ToolCallContent>::new()));
        let translated = permission_request(
            &move_request(&workspace),
            Some(&known),
            &Boundary::new(&workspace, [], None),
        );
        assert!(
            translated
                .paths
                .iter()
                .any(|path| path.resolved.ends_with("outside.txt") && !path.inside_workspace),
            "{:?}",
            translated.paths
        );
        // And one that only the permission request itself carries.
        let fields = ToolCallUpdateFields::new()
            .kind(ToolKind::Edit)
            .locations(vec![ToolCallLocation::new(workspace.join("src/a.rs"))])
            .content(vec![moved_diff(&workspace)]);
        let bare = RequestPermissionRequest::new("s1", ToolCallUpdate::new("call-1", fields), vec![]);
        let translated = permission_request(&bare, None, &Boundary::new(&workspace, [], None));
        assert!(
            translated.paths.iter().any(|path| !path.inside_workspace),
            "{:?}",
            translated.paths
        );
    }

    #[test]
    fn an_edit_whose_destination_was_left_out_is_incomplete() {
        let (_temp, workspace) = move_fixture();
        // codex-acp leaves out the diff of a change over 1 MiB: only the
        // source is known, and where it goes is not.
        let known = ToolCallInfo::from_call(&ToolCall::new("call-1", "Editing files").kind(ToolKind::Edit));
        let translated = permission_request(
            &move_request(&workspace),
            Some(&known),
            &Boundary::new(&workspace, [], None),
        );
        assert!(translated.paths_incomplete);
        // An edit in place: the diff names the location itself.
        let in_place = ToolCall::new("call-1", "Editing files")
            .kind(ToolKind::Edit)
            .content(vec![ToolCallContent::Diff(
                Diff::new(workspace.join("src/a.rs"), "fn b() {}\n").old_text("fn a() {}\n"),
            )]);
        let known = ToolCallInfo::from_call(&in_place);
        assert!(
            !permission_request(
                &move_request(&workspace),
                Some(&known),
                &Boundary::new(&workspace, [], None)
            )
            .paths_incomplete
        );
        // An agent that names the file in its raw input instead of a diff.
        let request = request(ToolKind::Edit, json!({"path": "src/a.rs"}), vec!["src/a.rs"]);
        assert!(!permission_request(&request, None, &Boundary::new(&workspace, [], None)).paths_incomplete);
        // Two moves, one of them without its diff.
        let fields = ToolCallUpdateFields::new().kind(ToolKind::Edit).locations(vec![
            ToolCallLocation::new(workspace.join("src/a.rs")),
            ToolCallLocation::new(workspace.join("src/b.rs")),
        ]);
        let two = RequestPermissionRequest::new("s1", ToolCallUpdate::new("call-1", fields), vec![]);
        let one_shown = ToolCall::new("call-1", "Editing files")
            .kind(ToolKind::Edit)
            .content(vec![moved_diff(&workspace)]);
        let known = ToolCallInfo::from_call(&one_shown);
        assert!(permission_request(&two, Some(&known), &Boundary::new(&workspace, [], None)).paths_incomplete);
        // A patch balanced to look whole: `a` moved inside to `c`, `a`
        // added again (its diff explains the location `a`), and `big`
        // moved out with its diff dropped. Locations {a, big}, diffs
        // {c, a}: a count of "sources without a diff" against "diffs
        // without a location" would call it complete.
        let fields = ToolCallUpdateFields::new().kind(ToolKind::Edit).locations(vec![
            ToolCallLocation::new(workspace.join("src/a.rs")),
            ToolCallLocation::new(workspace.join("src/big.rs")),
        ]);
        let balanced = RequestPermissionRequest::new("s1", ToolCallUpdate::new("call-1", fields), vec![]);
        let shown = ToolCall::new("call-1", "Editing files")
            .kind(ToolKind::Edit)
            .content(vec![
                ToolCallContent::Diff(Diff::new(workspace.join("src/c.rs"), "fn a() {}\n").old_text("fn a() {}\n")),
                ToolCallContent::Diff(Diff::new(workspace.join("src/a.rs"), "fn again() {}\n")),
            ]);
        let translated = permission_request(
            &balanced,
            Some(&ToolCallInfo::from_call(&shown)),
            &Boundary::new(&workspace, [], None),
        );
        assert!(translated.paths_incomplete, "{:?}", translated.paths);
        assert_asks_with_writes_allowed(&translated);
    }

    #[test]
    fn the_latest_diffs_are_kept_to_show_what_the_edit_writes() {
        let (_temp, workspace) = move_fixture();
        let call = ToolCall::new("call-1", "Editing files")
            .kind(ToolKind::Edit)
            .content(vec![moved_diff(&workspace)]);
        let mut known = ToolCallInfo::from_call(&call);
        // Content without diffs (a text note) keeps the diffs shown.
        known.merge(&ToolCallUpdateFields::new().content(vec![ToolCallContent::from("patching")]));
        let translated = permission_request(
            &move_request(&workspace),
            Some(&known),
            &Boundary::new(&workspace, [], None),
        );
        assert_eq!(
            translated.diffs,
            [FileDiff {
                path: workspace.join("../outside.txt"),
                old_text: Some("fn a() {}\n".into()),
                new_text: "fn moved() {}\n".into()
            }]
        );
    }

    /// codex-acp 2.6.0's `request_permissions` (SandboxPermissionReporter):
    /// kind `other`, the permissions in `rawInput`.
    #[test]
    fn permissions_asked_for_are_shown_field_by_field() {
        let workspace = std::fs::canonicalize(std::env::temp_dir()).expect("tmp");
        let raw = json!({
            "permissions": {
                "network": {"enabled": true},
                "fileSystem": {
                    "read": ["/opt/data"],
                    "write": ["/w/out", "/w/tmp"],
                    "entries": [
                        {"access": "write", "path": {"type": "glob_pattern", "pattern": "**/*.log"}},
                        {"access": "read", "path": {"type": "special", "value": {"kind": "tmpdir"}}}
                    ]
                }
            },
            "cwd": "/w",
            "environmentId": null
        });
        let mut asked = request(ToolKind::Other, raw, vec!["/opt/data", "/w/out"]);
        asked.tool_call.fields.title = Some("Additional sandbox permissions".into());
        let translated = permission_request(&asked, None, &Boundary::new(&workspace, [], None));
        assert_eq!(
            translated.permissions,
            [
                "permissions.network.enabled: true",
                "permissions.fileSystem.read: /opt/data",
                "permissions.fileSystem.write: /w/out, /w/tmp",
                "permissions.fileSystem.entries[0]: write pattern **/*.log",
                "permissions.fileSystem.entries[1]: read Codex scope {\"kind\":\"tmpdir\"}",
                "cwd: /w",
                "environmentId: (not set)",
            ]
        );
        // An unknown request without input asks for nothing it can show.
        let bare = request(ToolKind::Other, Value::Null, vec![]);
        assert!(
            permission_request(&bare, None, &Boundary::new(&workspace, [], None))
                .permissions
                .is_empty()
        );
        // A command with extra sandbox rights shows those, not its whole input.
        let command = request(
            ToolKind::Execute,
            json!({"command": "make", "cwd": "/w", "additionalPermissions": {"network": {"enabled": true}}}),
            vec![],
        );
        let translated = permission_request(&command, None, &Boundary::new(&workspace, [], None));
        assert_eq!(translated.permissions, ["additionalPermissions.network.enabled: true"]);
    }

    #[test]
    fn kind_known_from_an_earlier_tool_call_is_kept() {
        let workspace = std::fs::canonicalize(std::env::temp_dir()).expect("tmp");
        let known = ToolCallInfo {
            kind: Some(ToolKind::Fetch),
            title: Some("Fetch https://example.com".into()),
            raw_input: Some(json!({"url": "https://example.com"})),
            ..ToolCallInfo::default()
        };
        let bare =
            RequestPermissionRequest::new("s1", ToolCallUpdate::new("call-1", ToolCallUpdateFields::new()), vec![]);
        let translated = permission_request(&bare, Some(&known), &Boundary::new(&workspace, [], None));
        assert_eq!(translated.kind, ActionKind::Fetch);
        assert_eq!(translated.url.as_deref(), Some("https://example.com"));
    }

    #[test]
    fn failures_are_classified_for_people() {
        let auth = agent_client_protocol::Error::new(-32000, "Authentication required");
        assert!(matches!(AgentFailure::classify(&auth), AgentFailure::AuthRequired(_)));
        assert!(AgentFailure::classify(&auth).to_string().contains("codex login"));
        let quota = agent_client_protocol::Error::new(-32603, "Internal error").data(json!("insufficient_quota"));
        assert!(matches!(AgentFailure::classify(&quota), AgentFailure::Quota(_)));
        let rate = agent_client_protocol::Error::new(-32603, "Rate limit reached, try again in 20s");
        assert!(matches!(AgentFailure::classify(&rate), AgentFailure::RateLimited(_)));
        let version = agent_client_protocol::Error::new(
            -32600,
            "Invalid request (unsupported ACP protocol version 7; this endpoint only supports ACP protocol version 1)",
        );
        let failure = AgentFailure::classify(&version);
        assert!(matches!(failure, AgentFailure::ProtocolMismatch(_)));
        assert!(failure.to_string().contains("version 7"), "{failure}");
        assert!(failure.to_string().contains("npm install"), "{failure}");
        let other = agent_client_protocol::Error::new(-32603, "boom");
        assert_eq!(
            AgentFailure::classify(&other).to_string(),
            "codex-acp error -32603: boom"
        );
        // As codex-acp 2.6.0 said it with Debian 12's bubblewrap 0.8.0.
        let old_bwrap = agent_client_protocol::Error::new(-32603, "Internal error").data(json!({
            "details": "error creating thread: failed to load AGENTS.md instructions for environment `local`: fs sandbox helper failed with status exit status: 1: bwrap: execvp codex-linux-sandbox: No such file or directory"
        }));
        let failure = AgentFailure::classify(&old_bwrap).to_string();
        assert!(failure.contains("bubblewrap (`bwrap`) older than 0.9"), "{failure}");
        assert!(
            failure.contains("execvp codex-linux-sandbox"),
            "codex's words are kept: {failure}"
        );
    }

    #[test]
    fn errors_codex_reports_as_text_are_recognised() {
        let rate = failure_in_text("exceeded retry limit, last status: 429 Too Many Requests\n\n");
        assert!(matches!(rate, Some(AgentFailure::RateLimited(_))), "{rate:?}");
        let quota = failure_in_text("Quota exceeded. Check your plan and billing details.");
        assert!(matches!(quota, Some(AgentFailure::Quota(_))));
        let busy = failure_in_text("We’re currently experiencing high demand, which may cause temporary errors.");
        assert!(busy.expect("server error").to_string().contains("call again"));
        assert_eq!(failure_in_text("Looks fine to me.\nVERDICT: CONSENSUS — ok"), None);
        assert_eq!(failure_in_text(&"429 ".repeat(400)), None, "long answers are answers");
        assert_eq!(
            failure_in_text("HTTP 401 means unauthorized; 429 means slow down."),
            None
        );
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("abcdefghijkl", 5), "abcd…");
    }
}
