//! The Gemini API side of the mock (`POST /v1beta/models/<model>:…`), so
//! the suite can drive the real `gemini --acp` offline: Gemini CLI sends its
//! requests to `GOOGLE_GEMINI_BASE_URL` when it signs in with
//! `GEMINI_API_KEY`. Pure functions over the request's JSON; the server is
//! `main.rs`'s.
//!
//! Markers, one per line of the current user turn:
//! - `gemini:call:<tool> <json>`: call Gemini CLI's tool `<tool>` (such as
//!   `run_shell_command`) with `<json>` as its arguments, after the previous
//!   call's response came back.
//! - `gemini:answer:<text>`: end the turn with `<text>` (`\n` in it is a line
//!   break), after `Gemini read: <the last tool response>` when there is one.
//!
//! Requests that are not the conversation (Gemini CLI asks a small model,
//! without streaming, who speaks next and what to call the session) get a
//! short JSON answer saying the user speaks next.

use serde_json::{Value, json};

const CALL_MARKER: &str = "gemini:call:";
const ANSWER_MARKER: &str = "gemini:answer:";
/// The start of an answer after a tool call; tests look for what follows.
pub const READ_PREFIX: &str = "Gemini read: ";

/// The next model message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Call { name: String, args: Value },
    Text(String),
}

/// What one request says: the script of its current user turn and the
/// tool responses that came after it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    pub text: String,
    pub calls: Vec<(String, String)>,
    /// Each tool response after the user turn, as JSON text.
    pub responses: Vec<String>,
}

impl Turn {
    pub fn read(body: &Value) -> Turn {
        let contents = body
            .get("contents")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let parts = |content: &Value| {
            content
                .get("parts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let text_of = |content: &Value| {
            parts(content)
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let is_user_text = |content: &Value| {
            content.get("role").and_then(Value::as_str) == Some("user")
                && parts(content).iter().all(|part| part.get("functionResponse").is_none())
                && !text_of(content).trim().is_empty()
        };
        // The last user turn with a script, else the last user turn.
        let users: Vec<usize> = (0..contents.len())
            .filter(|index| is_user_text(&contents[*index]))
            .collect();
        let start = users
            .iter()
            .rev()
            .find(|index| {
                let text = text_of(&contents[**index]);
                text.contains(CALL_MARKER) || text.contains(ANSWER_MARKER)
            })
            .or(users.last())
            .copied();
        let Some(start) = start else { return Turn::default() };
        let text = text_of(&contents[start]);
        let calls = text
            .lines()
            .filter_map(|line| {
                let rest = &line[line.find(CALL_MARKER)? + CALL_MARKER.len()..];
                let (tool, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, "{}"));
                Some((tool.to_owned(), args.trim().to_owned()))
            })
            .collect();
        let responses = contents[start + 1..]
            .iter()
            .flat_map(parts)
            .filter_map(|part| {
                part.get("functionResponse")
                    .map(|response| response["response"].to_string())
            })
            .collect();
        Turn { text, calls, responses }
    }

    pub fn reply(&self) -> Reply {
        if let Some((name, args)) = self.calls.get(self.responses.len()) {
            return match serde_json::from_str(args) {
                Ok(args) => Reply::Call {
                    name: name.clone(),
                    args,
                },
                Err(error) => Reply::Text(format!(
                    "gemini mock: the arguments of {name} are not JSON ({error}): {args}"
                )),
            };
        }
        let scripted = self.text.lines().find_map(|line| {
            let at = line.find(ANSWER_MARKER)?;
            Some(line[at + ANSWER_MARKER.len()..].trim().replace("\\n", "\n"))
        });
        Reply::Text(match (self.responses.last(), scripted) {
            (Some(last), Some(answer)) => format!("{READ_PREFIX}{last}\n\n{answer}"),
            (None, Some(answer)) => answer,
            (Some(last), None) => format!("{READ_PREFIX}{last}"),
            (None, None) => "Gemini (mock) has nothing scripted for this turn.".to_owned(),
        })
    }
}

/// One `GenerateContentResponse` carrying `reply`, as the last (or only)
/// chunk of an answer.
pub fn response(reply: &Reply) -> Value {
    let part = match reply {
        Reply::Call { name, args } => json!({"functionCall": {"name": name, "args": args}}),
        Reply::Text(text) => json!({"text": text}),
    };
    json!({
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 10, "totalTokenCount": 110},
        "modelVersion": "gemini-mock"
    })
}

/// The answer to a request that is not the conversation: the user speaks
/// next (Gemini CLI's next-speaker check), in the JSON it asked for.
pub fn side_answer() -> Value {
    response(&Reply::Text(
        json!({"next_speaker": "user", "reasoning": "the mock's turn is over"}).to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Value {
        json!({"role": "user", "parts": [{"text": text}]})
    }

    #[test]
    fn a_script_calls_its_tools_in_turn_then_answers() {
        let script = "<session_context>…</session_context>";
        let turn = "Review it.\ngemini:call:run_shell_command {\"command\": \"touch x\"}\ngemini:answer:Done.\\nVERDICT: CONSENSUS — ok";
        let first = json!({"contents": [user(script), user(turn)]});
        assert_eq!(
            Turn::read(&first).reply(),
            Reply::Call {
                name: "run_shell_command".into(),
                args: json!({"command": "touch x"})
            }
        );
        let after = json!({"contents": [user(script), user(turn),
            {"role": "model", "parts": [{"functionCall": {"name": "run_shell_command", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command", "response": {"output": "ok"}}}]}]});
        assert_eq!(
            Turn::read(&after).reply(),
            Reply::Text("Gemini read: {\"output\":\"ok\"}\n\nDone.\nVERDICT: CONSENSUS — ok".into())
        );
        let plain = json!({"contents": [user("hello")]});
        assert!(matches!(Turn::read(&plain).reply(), Reply::Text(text) if text.contains("nothing scripted")));
    }
}
