//! A turn's traffic with the agent in our own terms: what the agent says
//! about a session ([`Update`]), a permission it asks for ([`PermissionAsk`],
//! which owns the answer), and the prompt itself ([`prompt`], [`Prompted`],
//! [`Stop`]). The session layer sees only these; ACP schema types stay here.

use agent_client_protocol::Agent as AcpPeer;
use agent_client_protocol::v1::schema::{
    CancelNotification, ContentBlock, PromptRequest, RequestPermissionOutcome, RequestPermissionRequest,
    RequestPermissionResponse, SelectedPermissionOutcome, SessionUpdate, StopReason, TextContent, ToolCallUpdateFields,
    ToolKind,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};

use super::{AgentFailure, ToolCallInfo};
use crate::guardian::PermissionRequest;
use crate::models::ModelOptions;
use crate::resolve::Boundary;
use crate::turn::TurnUsage;

/// What the agent said about a session.
pub enum Update {
    /// A piece of the answer.
    Text(String),
    /// A piece of its reasoning.
    Thought(String),
    /// A tool call announced.
    ToolCall { id: String, info: Box<ToolCallInfo> },
    /// Fields of an announced tool call changed.
    ToolCallChanged { id: String, change: ToolCallChange },
    /// A plan with this many steps.
    Plan { steps: usize },
    /// How much of the context window is used.
    Usage { used: u64, size: u64 },
    /// A piece of a user's prompt: only in the history a `session/load`
    /// replays.
    Prompted,
    /// Anything else (commands offered, mode changes, …): not ours to show.
    Other,
}

/// The changed fields of a tool call; applied with [`ToolCallInfo::apply`].
pub struct ToolCallChange(Box<ToolCallUpdateFields>);

impl ToolCallInfo {
    pub fn apply(&mut self, change: &ToolCallChange) {
        self.merge(&change.0);
    }

    /// Whether the call reads or searches (which needs no permission).
    pub fn reads(&self) -> bool {
        matches!(self.kind, Some(ToolKind::Read | ToolKind::Search))
    }

    /// The guardian's label of its kind.
    pub fn kind_label(&self) -> &'static str {
        self.kind
            .map(super::action_kind)
            .unwrap_or(crate::guardian::ActionKind::Other)
            .label()
    }
}

impl Update {
    /// The update in our terms.
    pub fn of(update: SessionUpdate) -> Update {
        let text = |content: ContentBlock| match content {
            ContentBlock::Text(text) => Some(text.text),
            _ => None,
        };
        match update {
            SessionUpdate::AgentMessageChunk(chunk) => text(chunk.content).map_or(Update::Other, Update::Text),
            SessionUpdate::AgentThoughtChunk(chunk) => text(chunk.content).map_or(Update::Other, Update::Thought),
            SessionUpdate::ToolCall(call) => Update::ToolCall {
                id: call.tool_call_id.to_string(),
                info: Box::new(ToolCallInfo::from_call(&call)),
            },
            SessionUpdate::ToolCallUpdate(update) => Update::ToolCallChanged {
                id: update.tool_call_id.to_string(),
                change: ToolCallChange(Box::new(update.fields)),
            },
            SessionUpdate::Plan(plan) => Update::Plan {
                steps: plan.entries.len(),
            },
            SessionUpdate::UsageUpdate(usage) => Update::Usage {
                used: usage.used,
                size: usage.size,
            },
            SessionUpdate::UserMessageChunk(_) => Update::Prompted,
            _ => Update::Other,
        }
    }
}

/// A permission the agent asks for, and the only way to answer it.
pub struct PermissionAsk {
    request: Box<RequestPermissionRequest>,
    responder: Responder<RequestPermissionResponse>,
}

impl PermissionAsk {
    pub fn new(request: RequestPermissionRequest, responder: Responder<RequestPermissionResponse>) -> Self {
        PermissionAsk {
            request: Box::new(request),
            responder,
        }
    }

    /// The session it is about.
    pub fn session_id(&self) -> &str {
        &self.request.session_id.0
    }

    pub fn tool_call_id(&self) -> String {
        self.request.tool_call.tool_call_id.to_string()
    }

    /// The request in the guardian's terms (see [`super::permission_request`]).
    pub fn judge(&self, known: Option<&ToolCallInfo>, boundary: &Boundary) -> PermissionRequest {
        super::permission_request(&self.request, known, boundary)
    }

    /// Whether the agent offers a one-time allow.
    pub fn can_allow(&self) -> bool {
        super::choose_option(&self.request, true).is_some()
    }

    /// Answers allow-once or reject-once (cancelled if the agent offered
    /// neither); the option chosen, for the log.
    pub fn answer(self, allow: bool) -> Option<String> {
        let option = super::choose_option(&self.request, allow);
        let outcome = match &option {
            Some(option) => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option.clone())),
            None => RequestPermissionOutcome::Cancelled,
        };
        if let Err(error) = self.responder.respond(RequestPermissionResponse::new(outcome)) {
            tracing::warn!(%error, "could not answer the permission request");
        }
        option
    }

    /// Answers `cancelled` (the turn it belongs to is over).
    pub fn cancel(self) {
        let _ = self
            .responder
            .respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled));
    }
}

/// Why the agent ended a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    EndTurn,
    MaxTokens,
    MaxTurnRequests,
    Refusal,
    Cancelled,
    Other,
}

impl Stop {
    pub fn label(self) -> &'static str {
        match self {
            Stop::EndTurn => "end_turn",
            Stop::MaxTokens => "max_tokens",
            Stop::MaxTurnRequests => "max_turn_requests",
            Stop::Refusal => "refusal",
            Stop::Cancelled => "cancelled",
            Stop::Other => "other",
        }
    }
}

/// A prompt's response.
pub struct Prompted {
    pub stop: Stop,
    pub usage: Option<TurnUsage>,
}

/// Why a prompt (or the option changes before it) failed.
pub struct PromptFailure {
    pub failure: AgentFailure,
    /// The connection to the agent ended (it died), as opposed to the agent
    /// answering with an error.
    pub connection_lost: bool,
}

/// What a turn's prompt came back with: the session's options after the
/// model/effort changes (`None` if setting them failed, `Some(None)` if
/// nothing was set), and the prompt's own outcome.
pub struct PromptResult {
    pub applied: Option<Option<ModelOptions>>,
    pub outcome: Result<Prompted, PromptFailure>,
    /// From sending `session/prompt` to its response.
    pub took: std::time::Duration,
}

/// Applies `changes` (model, effort) and sends `text` as a prompt, after
/// `preamble` as a block of its own where there is one.
pub async fn prompt(
    connection: &ConnectionTo<AcpPeer>,
    session_id: &str,
    preamble: Option<String>,
    text: String,
    changes: &[(String, String)],
) -> PromptResult {
    let failed = |error: agent_client_protocol::Error| PromptFailure {
        connection_lost: connection_lost(&error),
        failure: AgentFailure::classify(&error),
    };
    let applied = match super::set_options(connection, session_id, changes).await {
        Ok(options) => options.map(|options| super::model_options(&options)),
        Err(error) => {
            return PromptResult {
                applied: None,
                outcome: Err(failed(error)),
                took: std::time::Duration::ZERO,
            };
        }
    };
    let blocks = preamble
        .into_iter()
        .chain([text])
        .map(|text| ContentBlock::Text(TextContent::new(text)))
        .collect();
    let request = PromptRequest::new(session_id.to_owned(), blocks);
    let sent = std::time::Instant::now();
    let response = connection.send_request(request).block_task().await;
    let took = sent.elapsed();
    let outcome = response.map_err(failed).map(|response| Prompted {
        stop: match response.stop_reason {
            StopReason::EndTurn => Stop::EndTurn,
            StopReason::MaxTokens => Stop::MaxTokens,
            StopReason::MaxTurnRequests => Stop::MaxTurnRequests,
            StopReason::Refusal => Stop::Refusal,
            StopReason::Cancelled => Stop::Cancelled,
            _ => Stop::Other,
        },
        usage: response.usage.map(|usage| TurnUsage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            reasoning_tokens: usage.thought_tokens.unwrap_or(0),
        }),
    });
    PromptResult {
        applied: Some(applied),
        outcome,
        took,
    }
}

/// Asks the agent to stop the session's running turn.
pub fn cancel(connection: &ConnectionTo<AcpPeer>, session_id: &str) {
    if let Err(error) = connection.send_notification(CancelNotification::new(session_id.to_owned())) {
        tracing::warn!(%error, "could not send session/cancel");
    }
}

/// Whether a request failed because the connection to the agent ended
/// (rather than because the agent answered with an error).
fn connection_lost(error: &agent_client_protocol::Error) -> bool {
    agent_client_protocol::is_incoming_transport_closed(error)
        || agent_client_protocol::is_connection_terminated(error)
        || error.message.contains("never received")
}
