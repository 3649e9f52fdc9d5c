//! `fake:permission:KIND:ARG`: the tool call a turn wants to make, and how it
//! gets approval. Like codex-acp: in `read-only` mode it announces the tool
//! call and sends `session/request_permission` with codex's three options,
//! waiting as long as it takes; in any other mode it acts without asking.
//! A refusal, or `session/cancel` while asking, fails the tool call and ends
//! the whole turn `cancelled`.

use std::path::{Path, PathBuf};

use agent_client_protocol::v1::schema::{
    Diff, PermissionOption, PermissionOptionKind, RequestPermissionOutcome, RequestPermissionRequest, SessionUpdate,
    ToolCall, ToolCallContent, ToolCallId, ToolCallLocation, ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields,
    ToolKind,
};
use agent_client_protocol::{is_connection_terminated, is_incoming_transport_closed};
use serde_json::{Value, json};

use crate::markers::{AskKind, PermissionAsk};
use crate::state::READ_ONLY_MODE;
use crate::turn::{Stop, Turn};

/// codex-acp's option ids.
const ALLOW_ONCE: &str = "allow_once";
const ALLOW_ALWAYS: &str = "accept_execpolicy_amendment";
const REJECT: &str = "cancel";

/// The tool call behind one permission ask.
struct Action {
    id: ToolCallId,
    title: String,
    kind: ToolKind,
    raw_input: Value,
    locations: Vec<ToolCallLocation>,
    /// What the action touches: the file to create, edit or read, or the URL.
    target: Target,
}

enum Target {
    Touch { path: PathBuf, name: String },
    Edit(PathBuf),
    Read(PathBuf),
    Fetch(String),
    Delete(PathBuf),
    Move(PathBuf),
    Rename { from: PathBuf, to: PathBuf },
}

/// What the client said about one `session/request_permission`.
enum Answer {
    Allowed,
    Refused,
    /// `session/cancel` arrived while the request was open.
    Withdrawn,
    Disconnected,
}

impl Turn {
    /// Runs one permission ask; `Err(Stop::Cancelled)` ends the turn.
    pub(crate) async fn permission(&mut self, index: usize, ask: &PermissionAsk) -> Result<(), Stop> {
        let data = self.session.snapshot();
        let id = ToolCallId::new(format!("fake-call-{}-{}", self.number, index + 1));
        let action = describe(id, ask, &data.cwd);
        if data.mode != READ_ONLY_MODE {
            // codex's own auto-review lets it act without asking.
            self.update(SessionUpdate::ToolCall(tool_call(&action, ToolCallStatus::InProgress)))?;
            let note = perform(&action.target);
            self.notes.push(format!("auto-approved: {}", action.title));
            self.notes.push(note);
            return self.set_status(&action, ToolCallStatus::Completed);
        }
        self.update(SessionUpdate::ToolCall(tool_call(&action, ToolCallStatus::Pending)))?;
        if let Target::Rename { from, to } = &action.target {
            // codex-acp's diff of a moved file carries the destination.
            let diff = Diff::new(to.clone(), std::fs::read_to_string(from).unwrap_or_default())
                .old_text(std::fs::read_to_string(from).unwrap_or_default());
            let fields = ToolCallUpdateFields::new().content(vec![ToolCallContent::Diff(diff)]);
            self.update(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
                action.id.clone(),
                fields,
            )))?;
        }
        match self.ask(&action).await {
            Answer::Allowed => {
                let note = perform(&action.target);
                self.notes.push(note);
                self.set_status(&action, ToolCallStatus::Completed)
            }
            Answer::Refused | Answer::Withdrawn => {
                self.set_status(&action, ToolCallStatus::Failed)?;
                Err(Stop::Cancelled)
            }
            Answer::Disconnected => Err(Stop::Disconnected),
        }
    }

    /// Sends `session/request_permission` and waits, without a time limit,
    /// for the answer or for `session/cancel`.
    async fn ask(&self, action: &Action) -> Answer {
        let mut fields = ToolCallUpdateFields::new()
            .kind(action.kind)
            .title(action.title.clone())
            .locations(action.locations.clone());
        if !action.raw_input.is_null() {
            fields = fields.raw_input(action.raw_input.clone());
        }
        let request = RequestPermissionRequest::new(
            self.session_id.clone(),
            ToolCallUpdate::new(action.id.clone(), fields),
            codex_options(),
        );
        let sent = self.cx.send_request(request);
        let withdraw = sent.cancellation_handle();
        let cancel = self.cancel.clone();
        let answer = tokio::select! {
            answer = sent.block_task() => answer,
            () = cancel.cancelled() => {
                // Like codex: take back our own request ($/cancel_request).
                // Dropping the unanswered request would send it too; saying it
                // explicitly keeps the behaviour visible here.
                let _ = withdraw.cancel();
                return Answer::Withdrawn;
            }
        };
        match answer {
            Ok(response) => match response.outcome {
                RequestPermissionOutcome::Selected(selected)
                    if [ALLOW_ONCE, ALLOW_ALWAYS].contains(&&*selected.option_id.0) =>
                {
                    Answer::Allowed
                }
                _ => Answer::Refused,
            },
            Err(error) if is_incoming_transport_closed(&error) || is_connection_terminated(&error) => {
                Answer::Disconnected
            }
            Err(error) => {
                eprintln!("fake-codex-acp: permission request failed, taking it as a refusal: {error:?}");
                Answer::Refused
            }
        }
    }

    fn set_status(&self, action: &Action, status: ToolCallStatus) -> Result<(), Stop> {
        let fields = ToolCallUpdateFields::new().status(status);
        self.update(SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(
            action.id.clone(),
            fields,
        )))
    }
}

/// The options codex-acp offers, in its order.
fn codex_options() -> Vec<PermissionOption> {
    vec![
        PermissionOption::new(ALLOW_ONCE, "Yes", PermissionOptionKind::AllowOnce),
        PermissionOption::new(
            ALLOW_ALWAYS,
            "Yes, and don't ask again",
            PermissionOptionKind::AllowAlways,
        ),
        PermissionOption::new(REJECT, "No", PermissionOptionKind::RejectOnce),
    ]
}

fn tool_call(action: &Action, status: ToolCallStatus) -> ToolCall {
    let call = ToolCall::new(action.id.clone(), action.title.clone())
        .kind(action.kind)
        .status(status)
        .locations(action.locations.clone());
    if action.raw_input.is_null() {
        call
    } else {
        call.raw_input(action.raw_input.clone())
    }
}

fn describe(id: ToolCallId, ask: &PermissionAsk, cwd: &Path) -> Action {
    let written = ask.target.clone();
    let path = cwd.join(&ask.target);
    let path_input = json!({ "path": path });
    let at = vec![ToolCallLocation::new(path.clone())];
    let (title, kind, raw_input, locations, target) = match ask.kind {
        AskKind::Execute => (
            format!("touch {written}"),
            ToolKind::Execute,
            json!({ "command": ["touch", written], "cwd": cwd }),
            Vec::new(),
            Target::Touch {
                path,
                name: written.clone(),
            },
        ),
        AskKind::Edit => (
            format!("Edit {written}"),
            ToolKind::Edit,
            path_input,
            at,
            Target::Edit(path),
        ),
        AskKind::Read => (
            format!("Read {written}"),
            ToolKind::Read,
            path_input,
            at,
            Target::Read(path),
        ),
        AskKind::Delete => (
            format!("Delete {written}"),
            ToolKind::Delete,
            path_input,
            at,
            Target::Delete(path),
        ),
        AskKind::Move => (
            format!("Move {written}"),
            ToolKind::Move,
            path_input,
            at,
            Target::Move(path),
        ),
        AskKind::PatchMove => {
            let (from, to) = written.split_once('>').unwrap_or((written.as_str(), ""));
            let (from, to) = (cwd.join(from), cwd.join(to));
            (
                "Edit files".to_owned(),
                ToolKind::Edit,
                Value::Null,
                vec![ToolCallLocation::new(from.clone())],
                Target::Rename { from, to },
            )
        }
        AskKind::Fetch => (
            format!("Fetch {written}"),
            ToolKind::Fetch,
            json!({ "url": written }),
            Vec::new(),
            Target::Fetch(written.clone()),
        ),
    };
    Action {
        id,
        title,
        kind,
        raw_input,
        locations,
        target,
    }
}

/// Does the approved action and says what happened, for the answer.
fn perform(target: &Target) -> String {
    match target {
        Target::Touch { path, name } => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(_) => format!("ran touch {name}"),
            Err(error) => format!("touch {name} failed: {error}"),
        },
        Target::Edit(path) => match std::fs::write(path, "edited by fake\n") {
            Ok(()) => format!("edited {}", path.display()),
            Err(error) => format!("editing {} failed: {error}", path.display()),
        },
        Target::Read(path) => {
            let first_line = std::fs::read_to_string(path)
                .ok()
                .map(|text| text.lines().next().unwrap_or_default().to_owned())
                .unwrap_or_else(|| "unreadable".to_owned());
            format!("read {}: {first_line}", path.display())
        }
        Target::Fetch(url) => format!("fetched {url}"),
        Target::Delete(path) => format!("deleted {}", path.display()),
        Target::Move(path) => format!("moved {}", path.display()),
        Target::Rename { from, to } => match std::fs::rename(from, to) {
            Ok(()) => format!("moved {} to {}", from.display(), to.display()),
            Err(error) => format!("moving {} failed: {error}", from.display()),
        },
    }
}
