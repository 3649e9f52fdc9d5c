//! Reading a Responses API request body: who is asking, with which model, and what the
//! conversation (`input`) carries. Everything here is total: odd or missing fields give
//! empty values, never a panic.

use serde_json::Value;

/// Texts that Codex itself puts into `input` as `role: "user"` messages. They are not
/// prompts the client sent, so they do not count as user messages.
const SYNTHETIC_USER_PREFIXES: &[&str] = &[
    "<environment_context>",
    "<turn_aborted>",
    "<user_instructions>",
    "<user_shell_command>",
    "<subagent_notification>",
    "# AGENTS.md instructions for",
    "Another language model started to solve this problem",
];

/// The prompt codex-acp sends on an ephemeral thread to name a new session.
pub const TITLE_PROMPT_PREFIX: &str = "Your task is to generate a very short title";
/// The prompt Codex sends to summarise history (e.g. before switching models).
pub const COMPACTION_MARKER: &str = "CONTEXT CHECKPOINT COMPACTION";

/// The output of a tool call that Codex reports back to the model.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub call_id: String,
    pub output: String,
}

/// What the mock needs to know about one `POST /v1/responses` request.
#[derive(Debug, Default, Clone)]
pub struct RequestInfo {
    pub model: Option<String>,
    pub effort: Option<String>,
    /// `request_kind` from the `x-codex-turn-metadata` header (`turn`, `compaction`, …).
    pub request_kind: Option<String>,
    /// Every `role: "user"` message text, in order, including Codex's synthetic ones.
    pub user_texts_raw: Vec<String>,
    /// The user messages a client actually sent (synthetic ones left out).
    pub prompts: Vec<String>,
    /// Text of the last `role: "user"` message, synthetic or not.
    pub last_user_text: String,
    /// Tool outputs that come after the last user message, i.e. in the current turn.
    pub outputs_after_last_user: Vec<ToolOutput>,
    /// Names of the tools offered (top-level `tools` and any `additional_tools` item).
    pub tools: Vec<String>,
    /// Rough size of the conversation, for a plausible `input_tokens`.
    pub input_chars: usize,
    /// `text.format.name`, set when Codex asks for structured output (the title request).
    pub output_schema_name: Option<String>,
}

impl RequestInfo {
    pub fn from_body(body: &Value, turn_metadata: Option<&str>) -> Self {
        let mut info = RequestInfo {
            model: body.get("model").and_then(Value::as_str).map(str::to_owned),
            effort: body
                .get("reasoning")
                .and_then(|r| r.get("effort"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            request_kind: turn_metadata
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
                .and_then(|m| m.get("request_kind").and_then(Value::as_str).map(str::to_owned)),
            output_schema_name: body
                .get("text")
                .and_then(|t| t.get("format"))
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..RequestInfo::default()
        };

        if let Some(tools) = body.get("tools").and_then(Value::as_array) {
            collect_tool_names(tools, &mut info.tools);
        }

        let items: &[Value] = body.get("input").and_then(Value::as_array).map_or(&[], Vec::as_slice);
        let mut last_user_index = None;
        for (index, item) in items.iter().enumerate() {
            info.input_chars += item.to_string().len();
            let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
            match kind {
                "message" if item.get("role").and_then(Value::as_str) == Some("user") => {
                    let text = content_text(item.get("content"));
                    // A client may send Codex's kind of block (project
                    // instructions) as a part before its prompt.
                    let prompt = prompt_text(item.get("content"));
                    if !prompt.is_empty() {
                        info.prompts.push(prompt);
                    }
                    info.user_texts_raw.push(text);
                    last_user_index = Some(index);
                }
                "additional_tools" => {
                    if let Some(tools) = item.get("tools").and_then(Value::as_array) {
                        collect_tool_names(tools, &mut info.tools);
                    }
                }
                _ => {}
            }
        }
        if let Some(index) = last_user_index {
            info.last_user_text = info.user_texts_raw.last().cloned().unwrap_or_default();
            for item in &items[index + 1..] {
                let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
                if kind == "function_call_output" || kind == "custom_tool_call_output" {
                    info.outputs_after_last_user.push(ToolOutput {
                        call_id: item
                            .get("call_id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        output: output_text(item.get("output")),
                    });
                }
            }
        }
        info
    }

    pub fn is_title_request(&self) -> bool {
        self.last_user_text.trim_start().starts_with(TITLE_PROMPT_PREFIX)
    }

    pub fn is_compaction_request(&self) -> bool {
        self.request_kind.as_deref() == Some("compaction") || self.last_user_text.contains(COMPACTION_MARKER)
    }
}

fn is_synthetic(text: &str) -> bool {
    let trimmed = text.trim_start();
    SYNTHETIC_USER_PREFIXES.iter().any(|prefix| trimmed.starts_with(prefix))
}

/// Joins the text parts of a message `content` (a string or an array of parts).
fn content_text(content: Option<&Value>) -> String {
    text_parts(content).collect()
}

/// The texts of a message `content`: the string itself, or each part's.
fn text_parts(content: Option<&Value>) -> Box<dyn Iterator<Item = &str> + '_> {
    match content {
        Some(Value::String(s)) => Box::new(std::iter::once(s.as_str())),
        Some(Value::Array(parts)) => Box::new(parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str))),
        _ => Box::new(std::iter::empty()),
    }
}

/// The parts of a user message `content` that are not synthetic, joined.
fn prompt_text(content: Option<&Value>) -> String {
    text_parts(content).filter(|text| !is_synthetic(text)).collect()
}

/// A tool output is usually a string; newer shapes are arrays of content items.
fn output_text(output: Option<&Value>) -> String {
    match output {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(_)) => content_text(output),
        Some(other) => other
            .get("content")
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), str::to_owned),
        None => String::new(),
    }
}

fn collect_tool_names(tools: &[Value], out: &mut Vec<String>) {
    for tool in tools {
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| tool.get("type").and_then(Value::as_str))
            .unwrap_or("?");
        out.push(name.to_owned());
        if let Some(nested) = tool.get("tools").and_then(Value::as_array) {
            collect_tool_names(nested, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    #[test]
    fn counts_prompts_without_synthetic_messages() {
        let body = json!({
            "model": "gpt-5.5",
            "reasoning": {"effort": "high"},
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sys"}]},
                user("<environment_context>\n  <cwd>/x</cwd>\n</environment_context>"),
                user("first"),
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
                user("<turn_aborted>\nstop\n</turn_aborted>"),
                user("second mock:exec:ls"),
                {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "Output:\nhi\n"},
            ],
            "tools": [{"type": "function", "name": "exec_command"}, {"type": "web_search"}],
        });
        let info = RequestInfo::from_body(&body, Some(r#"{"request_kind":"turn"}"#));
        assert_eq!(info.prompts, vec!["first".to_owned(), "second mock:exec:ls".to_owned()]);
        assert_eq!(info.user_texts_raw.len(), 4);
        assert_eq!(info.last_user_text, "second mock:exec:ls");
        assert_eq!(info.outputs_after_last_user.len(), 1);
        assert_eq!(info.outputs_after_last_user[0].call_id, "c1");
        assert_eq!(info.model.as_deref(), Some("gpt-5.5"));
        assert_eq!(info.effort.as_deref(), Some("high"));
        assert_eq!(info.request_kind.as_deref(), Some("turn"));
        assert_eq!(info.tools, vec!["exec_command".to_owned(), "web_search".to_owned()]);
    }

    #[test]
    fn a_synthetic_part_before_a_prompt_leaves_the_prompt() {
        let body = json!({"input": [
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\nx\n</INSTRUCTIONS>"},
                {"type": "input_text", "text": "## Question"},
            ]},
            user("# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\ny\n</INSTRUCTIONS>"),
        ]});
        let info = RequestInfo::from_body(&body, None);
        assert_eq!(info.prompts, vec!["## Question".to_owned()]);
        assert_eq!(info.user_texts_raw.len(), 2);
    }

    #[test]
    fn outputs_before_the_last_user_message_are_ignored() {
        let body = json!({"input": [
            user("mock:exec:ls"),
            {"type": "function_call_output", "call_id": "c1", "output": "old"},
            user("mock:exec:ls again"),
        ]});
        let info = RequestInfo::from_body(&body, None);
        assert!(info.outputs_after_last_user.is_empty());
    }

    #[test]
    fn odd_bodies_do_not_panic() {
        for body in [
            json!(null),
            json!([]),
            json!({"input": "text"}),
            json!({"input": [1, "x", {"role": "user"}]}),
        ] {
            let info = RequestInfo::from_body(&body, Some("not json"));
            assert!(info.model.is_none());
        }
    }

    #[test]
    fn recognises_title_and_compaction() {
        let title = RequestInfo::from_body(
            &json!({"input": [user("Your task is to generate a very short title for a conversation\nUser's first message:\nmock:exec:ls")]}),
            None,
        );
        assert!(title.is_title_request());
        let compaction = RequestInfo::from_body(
            &json!({"input": [user("hi")]}),
            Some(r#"{"request_kind":"compaction"}"#),
        );
        assert!(compaction.is_compaction_request());
    }
}
