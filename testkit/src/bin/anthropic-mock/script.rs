//! What "Claude" does next, decided from one Messages API request: the
//! script is in the current human turn, the progress in the messages after
//! it. Pure functions over the request's JSON; no I/O.
//!
//! Markers, one per line of the prompt given to `claude -p`:
//! - `claude:call:<tool> <json>`: call `<tool>` (a codex-fusion tool name such
//!   as `consult`, or a full tool name containing `__`) with `<json>` as its
//!   input, after the previous call's result came back. `{{pause_id}}` in the
//!   JSON becomes the `id:` of the latest `🔐` result, the way Claude copies it.
//!
//! - `claude:answer:<text>`: end the turn with `<text>` (`\n` in it is a
//!   line break), after `Claude read: <the last result>` when there is one:
//!   how a test gives Claude, reviewing through claude-agent-acp, its
//!   VERDICT line.
//!
//! A `<tool>` starting with a capital letter (`Bash`, `Write`) is one of
//! Claude Code's own tools, called by that name.
//!
//! When every call has its result, the answer is `Claude read: <the last
//! result>`. Claude Code defers MCP tools behind its `ToolSearch` tool: a
//! call whose tool is not in the request's `tools` is preceded by a
//! `ToolSearch` call selecting every scripted tool not loaded yet.

use serde_json::{Value, json};

/// The server prefix Claude Code gives our MCP tools.
pub const TOOL_PREFIX: &str = "mcp__codex-fusion__";
/// Claude Code's tool that loads deferred tool schemas.
pub const TOOL_SEARCH: &str = "ToolSearch";
const CALL_MARKER: &str = "claude:call:";
const ANSWER_MARKER: &str = "claude:answer:";
const PAUSE_ID: &str = "{{pause_id}}";
/// The start of the final answer; tests look for what follows.
pub const ANSWER_PREFIX: &str = "Claude read: ";

/// The next assistant message.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    ToolUse { name: String, input: Value },
    Text(String),
}

/// One scripted call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub tool: String,
    /// The input as written, before `{{pause_id}}` is filled in.
    pub input: String,
}

/// What the mock read from one request, for its replies and the recording.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    /// The text of the current human turn (system reminders left out).
    pub human_text: String,
    pub calls: Vec<Call>,
    /// Tool uses after the human turn (ToolSearch left out), by name.
    pub used: Vec<String>,
    /// Whether ToolSearch was called in this turn.
    pub searched: bool,
    /// The text of every tool result after the human turn, in order
    /// (ToolSearch's included).
    pub results: Vec<String>,
    /// The names in the request's `tools`.
    pub tools: Vec<String>,
}

impl Conversation {
    pub fn read(body: &Value) -> Conversation {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let tools = body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|tool| tool.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let start = human_turn(&messages);
        let mut conversation = Conversation {
            tools,
            ..Conversation::default()
        };
        let Some(start) = start else {
            return conversation;
        };
        conversation.human_text = human_text(&messages[start]);
        conversation.calls = calls(&conversation.human_text);
        for message in &messages[start + 1..] {
            for block in blocks(message) {
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let name = block.get("name").and_then(Value::as_str).unwrap_or_default();
                        if name == TOOL_SEARCH {
                            conversation.searched = true;
                        } else {
                            conversation.used.push(name.to_owned());
                        }
                    }
                    Some("tool_result") => conversation.results.push(result_text(block.get("content"))),
                    _ => {}
                }
            }
        }
        conversation
    }

    /// The next step of the script.
    pub fn reply(&self) -> Reply {
        let Some(call) = self.calls.get(self.used.len()) else {
            let scripted = self.human_text.lines().find_map(|line| {
                let at = line.find(ANSWER_MARKER)?;
                Some(line[at + ANSWER_MARKER.len()..].trim().replace("\\n", "\n"))
            });
            return Reply::Text(match (self.results.last(), scripted) {
                (Some(last), Some(answer)) => format!("{ANSWER_PREFIX}{last}\n\n{answer}"),
                (None, Some(answer)) => answer,
                (Some(last), None) => format!("{ANSWER_PREFIX}{last}"),
                (None, None) => "Claude (anthropic-mock) has nothing scripted for this turn.".to_owned(),
            });
        };
        let name = full_name(&call.tool);
        if !self.tools.contains(&name) {
            let missing: Vec<String> = self
                .calls
                .iter()
                .map(|call| full_name(&call.tool))
                .filter(|name| !self.tools.contains(name))
                .fold(Vec::new(), |mut names, name| {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                    names
                });
            if self.searched || !self.tools.iter().any(|tool| tool == TOOL_SEARCH) {
                return Reply::Text(format!(
                    "anthropic-mock: Claude Code did not offer {name} (tools: {})",
                    self.tools.join(", ")
                ));
            }
            return Reply::ToolUse {
                name: TOOL_SEARCH.to_owned(),
                input: json!({ "query": format!("select:{}", missing.join(",")), "max_results": 10 }),
            };
        }
        let input = call.input.replace(PAUSE_ID, &self.pause_id().unwrap_or_default());
        match serde_json::from_str(&input) {
            Ok(input) => Reply::ToolUse { name, input },
            Err(error) => Reply::Text(format!(
                "anthropic-mock: the input of {name} is not JSON ({error}): {input}"
            )),
        }
    }

    /// The `id:` line of the latest result that has one.
    fn pause_id(&self) -> Option<String> {
        self.results.iter().rev().find_map(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("id: "))
                .map(|id| id.trim().to_owned())
        })
    }
}

fn full_name(tool: &str) -> String {
    if tool.contains("__") || tool.starts_with(|c: char| c.is_ascii_uppercase()) {
        tool.to_owned()
    } else {
        format!("{TOOL_PREFIX}{tool}")
    }
}

/// The index of the current human turn: the last user message with text and
/// no tool result, preferring one that carries a script (Claude Code adds
/// user messages of its own, such as "Tool loaded." next to a tool result).
fn human_turn(messages: &[Value]) -> Option<usize> {
    let human: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, message)| message.get("role").and_then(Value::as_str) == Some("user"))
        .filter(|(_, message)| {
            !blocks(message)
                .iter()
                .any(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))
        })
        .filter(|(_, message)| !human_text(message).trim().is_empty())
        .map(|(index, _)| index)
        .collect();
    human
        .iter()
        .rev()
        .find(|&&index| {
            let text = human_text(&messages[index]);
            text.contains(CALL_MARKER) || text.contains(ANSWER_MARKER)
        })
        .or(human.last())
        .copied()
}

/// A message's content as blocks (a string content is one text block).
fn blocks(message: &Value) -> Vec<Value> {
    match message.get("content") {
        Some(Value::String(text)) => vec![json!({"type": "text", "text": text})],
        Some(Value::Array(blocks)) => blocks.clone(),
        _ => Vec::new(),
    }
}

/// The text a person typed in a user message: its text blocks, without the
/// `<system-reminder>` blocks Claude Code adds.
fn human_text(message: &Value) -> String {
    blocks(message)
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .filter(|text| !text.trim_start().starts_with("<system-reminder>"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A tool result's content as text: a string, or its text blocks joined;
/// a `tool_reference` block (ToolSearch's answer) reads as its tool name.
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| {
                block
                    .get("text")
                    .or_else(|| block.get("tool_name"))
                    .and_then(Value::as_str)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn calls(text: &str) -> Vec<Call> {
    text.lines()
        .filter_map(|line| {
            let rest = &line[line.find(CALL_MARKER)? + CALL_MARKER.len()..];
            let (tool, input) = rest.split_once(char::is_whitespace).unwrap_or((rest, "{}"));
            Some(Call {
                tool: tool.to_owned(),
                input: input.trim().to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "Ask Codex.\nclaude:call:consult {\"question\": \"q\"}\nclaude:call:permit {\"decision\": \"allow\", \"id\": \"{{pause_id}}\"}";

    fn first_request(tools: &[&str]) -> Value {
        json!({
            "tools": tools.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>\nclaude:call:nothing {}\n</system-reminder>\n"},
                    {"type": "text", "text": PROMPT}
                ]},
                {"role": "system", "content": "# Environment"}
            ]
        })
    }

    fn push(request: &mut Value, message: Value) {
        request["messages"].as_array_mut().expect("messages").push(message);
    }

    #[test]
    fn deferred_tools_are_searched_for_first_then_called_in_order() {
        let mut request = first_request(&["Bash", TOOL_SEARCH]);
        assert_eq!(
            Conversation::read(&request).reply(),
            Reply::ToolUse {
                name: TOOL_SEARCH.into(),
                input: json!({"query": "select:mcp__codex-fusion__consult,mcp__codex-fusion__permit", "max_results": 10})
            }
        );
        push(
            &mut request,
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": TOOL_SEARCH, "input": {}}]}),
        );
        push(
            &mut request,
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "tool_reference", "tool_name": "mcp__codex-fusion__consult"}]},
                {"type": "text", "text": "Tool loaded."}
            ]}),
        );
        request["tools"] = json!([{"name": TOOL_SEARCH}, {"name": "mcp__codex-fusion__consult"}, {"name": "mcp__codex-fusion__permit"}]);
        assert_eq!(
            Conversation::read(&request).reply(),
            Reply::ToolUse {
                name: "mcp__codex-fusion__consult".into(),
                input: json!({"question": "q"})
            }
        );
        push(
            &mut request,
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "mcp__codex-fusion__consult", "input": {}}]}),
        );
        push(
            &mut request,
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "🔐 Codex paused\nid: p3f9a\nkind: execute"}]}]}),
        );
        assert_eq!(
            Conversation::read(&request).reply(),
            Reply::ToolUse {
                name: "mcp__codex-fusion__permit".into(),
                input: json!({"decision": "allow", "id": "p3f9a"})
            }
        );
        push(
            &mut request,
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t3", "name": "mcp__codex-fusion__permit", "input": {}}]}),
        );
        push(
            &mut request,
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t3", "content": "ran it"}]}),
        );
        assert_eq!(
            Conversation::read(&request).reply(),
            Reply::Text("Claude read: ran it".into())
        );
    }

    #[test]
    fn a_resumed_conversation_follows_its_newest_script() {
        let mut request = first_request(&["mcp__codex-fusion__consult"]);
        push(
            &mut request,
            json!({"role": "assistant", "content": [{"type": "text", "text": "done"}]}),
        );
        push(
            &mut request,
            json!({"role": "user", "content": "again\nclaude:call:consult {\"question\": \"second\"}"}),
        );
        let conversation = Conversation::read(&request);
        assert_eq!(
            conversation.human_text,
            "again\nclaude:call:consult {\"question\": \"second\"}"
        );
        assert_eq!(
            conversation.reply(),
            Reply::ToolUse {
                name: "mcp__codex-fusion__consult".into(),
                input: json!({"question": "second"})
            }
        );
    }

    #[test]
    fn a_tool_never_offered_ends_the_turn_saying_so() {
        let mut request = first_request(&["Bash", TOOL_SEARCH]);
        push(
            &mut request,
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": TOOL_SEARCH, "input": {}}]}),
        );
        let Reply::Text(text) = Conversation::read(&request).reply() else {
            panic!("a text reply")
        };
        assert!(text.contains("did not offer mcp__codex-fusion__consult"), "{text}");
        let plain = json!({"messages": [{"role": "user", "content": "hello"}]});
        assert!(matches!(Conversation::read(&plain).reply(), Reply::Text(text) if text.contains("nothing scripted")));
        let answered = json!({"messages": [{"role": "user", "content": "Review it.\nclaude:answer:Fine.\\nVERDICT: OPEN — one gap"}]});
        assert_eq!(
            Conversation::read(&answered).reply(),
            Reply::Text("Fine.\nVERDICT: OPEN — one gap".into())
        );
        assert_eq!(full_name("Bash"), "Bash");
        assert_eq!(full_name("consult"), "mcp__codex-fusion__consult");
    }
}
