//! An MCP client that starts `codex-fusion-mcp` and talks to it over its
//! stdio with rmcp, as Claude Code does, recording every progress
//! notification.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestHandle, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{Map, Value};

use crate::env::{TestEnv, binary};

/// A progress notification as the client saw it.
#[derive(Debug, Clone)]
pub struct ProgressEvent {
    pub token: String,
    pub progress: f64,
    pub message: String,
    pub at: Instant,
}

#[derive(Clone, Default)]
pub struct Recorder {
    pub events: Arc<Mutex<Vec<ProgressEvent>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        let token = match &params.progress_token.0 {
            rmcp::model::NumberOrString::Number(number) => number.to_string(),
            rmcp::model::NumberOrString::String(string) => string.to_string(),
        };
        self.events.lock().expect("lock").push(ProgressEvent {
            token,
            progress: params.progress,
            message: params.message.unwrap_or_default(),
            at: Instant::now(),
        });
    }
}

/// An MCP session through a real shim process.
pub struct Client {
    pub shim: tokio::process::Child,
    pub service: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
}

impl Client {
    /// Starts a shim in `env` (plus `extra` variables) and initializes MCP.
    pub async fn start(env: &TestEnv, extra: &[(&str, &str)]) -> Client {
        Client::try_start(env, extra)
            .await
            .expect("MCP session through the shim")
    }

    pub async fn try_start(env: &TestEnv, extra: &[(&str, &str)]) -> anyhow::Result<Client> {
        let mut command = tokio::process::Command::new(binary("codex-fusion-mcp"));
        env.apply(&mut command);
        command
            .envs(extra.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        let mut shim = command.spawn()?;
        let stdout = shim.stdout.take().expect("piped stdout");
        let stdin = shim.stdin.take().expect("piped stdin");
        let recorder = Recorder::default();
        let service = recorder.clone().serve((stdout, stdin)).await?;
        Ok(Client {
            shim,
            service,
            recorder,
        })
    }

    /// Calls `tool` with JSON `arguments` and waits for the result.
    pub async fn call(&self, tool: &str, arguments: Value) -> Result<CallToolResult, rmcp::ServiceError> {
        self.service.call_tool(params(tool, arguments)).await
    }

    /// Calls `tool`, waiting at most `limit`: whether the result is an
    /// error, and its text. Panics when no answer came in time.
    pub async fn call_within(&self, limit: std::time::Duration, tool: &str, arguments: Value) -> (bool, String) {
        let result = tokio::time::timeout(limit, self.call(tool, arguments))
            .await
            .unwrap_or_else(|_| panic!("{tool} did not answer within {limit:?}"))
            .expect("answered");
        (result.is_error == Some(true), result_text(&result))
    }

    /// Calls `tool` and returns the result's text, panicking on protocol errors.
    pub async fn text(&self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments).await.expect("tool call answered");
        result_text(&result)
    }

    /// Starts a call that can be cancelled.
    pub async fn start_call(&self, tool: &str, arguments: Value) -> RequestHandle<RoleClient> {
        let request = ClientRequest::CallToolRequest(Request::new(params(tool, arguments)));
        self.service
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
            .expect("request sent")
    }

    /// Progress events recorded so far for `token`, ordered by `progress`.
    pub fn progress_for(&self, token: &str) -> Vec<ProgressEvent> {
        let mut events: Vec<ProgressEvent> = self
            .recorder
            .events
            .lock()
            .expect("lock")
            .iter()
            .filter(|event| event.token == token)
            .cloned()
            .collect();
        events.sort_by(|a, b| a.progress.total_cmp(&b.progress));
        events
    }

    pub fn all_progress(&self) -> Vec<ProgressEvent> {
        self.recorder.events.lock().expect("lock").clone()
    }

    /// Closes stdin as Claude Code does on exit and waits for the shim.
    pub async fn close(mut self) -> std::process::ExitStatus {
        let _ = self.service.cancel().await;
        tokio::time::timeout(std::time::Duration::from_secs(5), self.shim.wait())
            .await
            .expect("the shim exits within 5 s of stdin closing")
            .expect("wait")
    }
}

fn params(tool: &str, arguments: Value) -> CallToolRequestParams {
    let arguments: Map<String, Value> = match arguments {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => panic!("arguments must be an object, got {other}"),
    };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}

/// The text content of a tool result.
pub fn result_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text of a tool call's response from a [`RequestHandle`].
pub fn response_text(response: &ServerResult) -> String {
    match response {
        ServerResult::CallToolResult(result) => result_text(result),
        other => panic!("expected a tool result, got {other:?}"),
    }
}

pub type CallRequest = CallToolRequest;

/// The progress token rmcp gave a cancellable call, as recorded events name it.
pub fn token_of(handle: &RequestHandle<RoleClient>) -> String {
    match &handle.progress_token.0 {
        rmcp::model::NumberOrString::Number(number) => number.to_string(),
        rmcp::model::NumberOrString::String(string) => string.to_string(),
    }
}

/// The arguments of a `consult` of `question`.
pub fn consult(question: &str) -> Value {
    serde_json::json!({ "question": question })
}

/// The number after `prompts_seen=` in a fake answer: how many prompts the
/// fake agent's Codex session has seen, across processes.
pub fn prompts_seen(text: &str) -> u32 {
    text.split("prompts_seen=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no prompts_seen in {text}"))
}
