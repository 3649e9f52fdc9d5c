//! Scenarios: what the mock answers, chosen from the last user message of the request.
//!
//! Markers (put each on its own line of the prompt; the argument runs to the end of the line):
//! - `mock:reason`: reasoning summary deltas, then the default answer.
//! - `mock:think:<ms>`: reasoning summary deltas for `<ms>` milliseconds (one every 250 ms),
//!   then the default answer: a model that thinks long before it says anything.
//! - `mock:exec:<command>`: a call to `exec_command` with `sandbox_permissions: "require_escalated"`,
//!   so a read-only session asks the client; once the output comes back, an answer quoting it.
//! - `mock:exec-sandboxed:<command>`: the same call without escalation (runs in Codex's sandbox).
//! - `mock:write:<path>`: an `apply_patch` adding `<path>` (relative to the workspace).
//! - `mock:patch:<patch>`: an `apply_patch` whose input is `<patch>`, written on one line
//!   with `\n` for a line break and `\\` for a backslash (a move, a delete, several files).
//! - `mock:slow`: text deltas every `--slow-interval-ms`, `--slow-chunks` of them.
//! - `mock:status:<code>[:<error code>]`: that HTTP status with an OpenAI-style error body.
//! - anything else: the default answer (prompt count, model, effort, verdict line).
//!
//! Codex's own side requests are recognised first, whatever markers their text quotes:
//! the session-title request and the history compaction request.

use std::time::Duration;

use serde_json::{Value, json};

use crate::analyze::RequestInfo;
use crate::sse::{self, Step, Usage};

pub const VERDICT_LINE: &str = "VERDICT: CONSENSUS — mock agrees";
pub const TITLE: &str = "Mock session title";
/// The pause between the reasoning deltas of `mock:think`.
const THINK_TICK_MS: u64 = 250;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    Title,
    Compaction,
    Status { code: u16, error_code: Option<String> },
    ExecCall { command: String, escalate: bool },
    ExecResult { command: String },
    WriteCall { path: String },
    WriteResult { path: String },
    PatchCall { patch: String },
    PatchResult,
    Reason,
    Think { millis: u64 },
    Slow,
    Default,
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Title => "title",
            Scenario::Compaction => "compaction",
            Scenario::Status { .. } => "status",
            Scenario::ExecCall { escalate: true, .. } => "exec_call",
            Scenario::ExecCall { escalate: false, .. } => "exec_sandboxed_call",
            Scenario::ExecResult { .. } => "exec_result",
            Scenario::WriteCall { .. } => "write_call",
            Scenario::WriteResult { .. } => "write_result",
            Scenario::PatchCall { .. } => "patch_call",
            Scenario::PatchResult => "patch_result",
            Scenario::Reason => "reason",
            Scenario::Think { .. } => "think",
            Scenario::Slow => "slow",
            Scenario::Default => "default",
        }
    }

    /// The kind of request, for the recording: `title`, `compaction` or `turn`.
    pub fn request_class(&self) -> &'static str {
        match self {
            Scenario::Title => "title",
            Scenario::Compaction => "compaction",
            _ => "turn",
        }
    }
}

/// The argument of `marker` in `text`: the rest of that line, trimmed. `None` if absent
/// or empty.
fn marker_arg(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let line = rest.lines().next().unwrap_or_default().trim();
    (!line.is_empty()).then(|| line.to_owned())
}

fn parse_status(text: &str) -> Option<Scenario> {
    let arg = marker_arg(text, "mock:status:")?;
    let mut parts = arg.splitn(2, ':');
    let code_text: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    let code: u16 = code_text.parse().ok().filter(|c| (100..=599).contains(c))?;
    let error_code = parts
        .next()
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|s| !s.is_empty());
    Some(Scenario::Status { code, error_code })
}

/// A patch written on one line: `\n` is a line break, `\\` a backslash; any
/// other backslash is kept as it is.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    // apply_patch wants the patch to end with a line break.
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

pub fn select(info: &RequestInfo) -> Scenario {
    if info.is_title_request() {
        return Scenario::Title;
    }
    if info.is_compaction_request() {
        return Scenario::Compaction;
    }
    let text = info.last_user_text.as_str();
    if let Some(status) = parse_status(text) {
        return status;
    }
    let answered = !info.outputs_after_last_user.is_empty();
    if let Some(command) = marker_arg(text, "mock:exec:") {
        return if answered {
            Scenario::ExecResult { command }
        } else {
            Scenario::ExecCall {
                command,
                escalate: true,
            }
        };
    }
    if let Some(command) = marker_arg(text, "mock:exec-sandboxed:") {
        return if answered {
            Scenario::ExecResult { command }
        } else {
            Scenario::ExecCall {
                command,
                escalate: false,
            }
        };
    }
    if let Some(path) = marker_arg(text, "mock:write:") {
        return if answered {
            Scenario::WriteResult { path }
        } else {
            Scenario::WriteCall { path }
        };
    }
    if let Some(patch) = marker_arg(text, "mock:patch:") {
        return if answered {
            Scenario::PatchResult
        } else {
            Scenario::PatchCall {
                patch: unescape(&patch),
            }
        };
    }
    if let Some(millis) = marker_arg(text, "mock:think:").and_then(|arg| {
        let digits: String = arg.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }) {
        return Scenario::Think { millis };
    }
    if text.contains("mock:reason") {
        return Scenario::Reason;
    }
    if text.contains("mock:slow") {
        return Scenario::Slow;
    }
    Scenario::Default
}

/// How the mock answers one request.
pub enum Reply {
    /// `200 text/event-stream` with these events.
    Stream(Vec<Step>),
    /// An HTTP error with a JSON body.
    Error { status: u16, body: Value },
}

/// Settings that shape the answers.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub slow_interval: Duration,
    pub slow_chunks: usize,
    pub reason_interval: Duration,
}

/// Ids unique to one request.
pub struct Ids {
    pub response: String,
    pub seq: u64,
}

impl Ids {
    fn item(&self, kind: &str, n: usize) -> String {
        format!("{kind}_mock_{}_{n}", self.seq)
    }
    fn call(&self) -> String {
        format!("call_mock_{}", self.seq)
    }
}

pub fn reply(scenario: &Scenario, info: &RequestInfo, ids: &Ids, pacing: Pacing) -> Reply {
    let model = info.model.clone().unwrap_or_else(|| "unknown".to_owned());
    let mut steps = vec![Step::now(sse::created(&ids.response, &model))];
    let mut reasoning_tokens = 8;
    let mut output_text = String::new();

    match scenario {
        Scenario::Status { code, error_code } => {
            return Reply::Error {
                status: *code,
                body: error_body(*code, error_code.as_deref()),
            };
        }
        Scenario::Title => {
            output_text = json!({"title": TITLE}).to_string();
            steps.extend(sse::message(
                &ids.item("msg", 0),
                0,
                &[output_text.clone()],
                Duration::ZERO,
            ));
        }
        Scenario::Compaction => {
            output_text = format!(
                "Summary by model-mock: the user sent {} message(s); nothing else of note.",
                info.prompts.len()
            );
            steps.extend(sse::message(
                &ids.item("msg", 0),
                0,
                &[output_text.clone()],
                Duration::ZERO,
            ));
        }
        Scenario::ExecCall { command, escalate } => {
            let mut arguments = json!({"cmd": command});
            if *escalate {
                arguments["sandbox_permissions"] = json!("require_escalated");
                arguments["justification"] = json!(format!("model-mock wants to run `{command}`"));
            }
            steps.extend(sse::whole_item(
                0,
                json!({
                    "type": "function_call", "id": ids.item("fc", 0), "status": "completed",
                    "call_id": ids.call(), "name": "exec_command", "arguments": arguments.to_string(),
                }),
            ));
        }
        Scenario::WriteCall { path } => {
            let patch = format!("*** Begin Patch\n*** Add File: {path}\n+written by model-mock\n*** End Patch\n");
            steps.extend(sse::whole_item(
                0,
                json!({
                    "type": "custom_tool_call", "id": ids.item("ctc", 0), "status": "completed",
                    "call_id": ids.call(), "name": "apply_patch", "input": patch,
                }),
            ));
        }
        Scenario::PatchCall { patch } => {
            steps.extend(sse::whole_item(
                0,
                json!({
                    "type": "custom_tool_call", "id": ids.item("ctc", 0), "status": "completed",
                    "call_id": ids.call(), "name": "apply_patch", "input": patch,
                }),
            ));
        }
        Scenario::PatchResult => {
            output_text = format!("The patch came back:\n{}\n{VERDICT_LINE}", last_output(info));
            steps.extend(sse::message(
                &ids.item("msg", 0),
                0,
                &split3(&output_text),
                Duration::ZERO,
            ));
        }
        Scenario::ExecResult { command } => {
            output_text = exec_result_text(command, info);
            steps.extend(sse::message(
                &ids.item("msg", 0),
                0,
                &split3(&output_text),
                Duration::ZERO,
            ));
        }
        Scenario::WriteResult { path } => {
            let output = last_output(info);
            output_text = format!("Patch for `{path}` came back:\n{output}\n{VERDICT_LINE}");
            steps.extend(sse::message(
                &ids.item("msg", 0),
                0,
                &split3(&output_text),
                Duration::ZERO,
            ));
        }
        Scenario::Reason => {
            let parts: Vec<String> = [
                "**Weighing the question** ",
                "step by step, ",
                "checking assumptions, ",
                "then concluding.",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            reasoning_tokens = 32;
            steps.extend(sse::reasoning(&ids.item("rs", 0), 0, &parts, pacing.reason_interval));
            output_text = default_text(info, "reason");
            steps.extend(sse::message(
                &ids.item("msg", 1),
                1,
                &split3(&output_text),
                Duration::ZERO,
            ));
        }
        Scenario::Think { millis } => {
            let count = usize::try_from(millis / THINK_TICK_MS).unwrap_or(1).max(1);
            let parts: Vec<String> = (1..=count).map(|step| format!("still thinking ({step}) ")).collect();
            reasoning_tokens = 4 * count as u64;
            steps.extend(sse::reasoning(
                &ids.item("rs", 0),
                0,
                &parts,
                Duration::from_millis(THINK_TICK_MS),
            ));
            output_text = default_text(info, "think");
            steps.extend(sse::message(
                &ids.item("msg", 1),
                1,
                &split3(&output_text),
                Duration::ZERO,
            ));
        }
        Scenario::Slow => {
            let mut chunks: Vec<String> = (1..=pacing.slow_chunks).map(|i| format!("tick {i}\n")).collect();
            chunks.push(VERDICT_LINE.to_owned());
            output_text = chunks.concat();
            steps.extend(sse::message(&ids.item("msg", 0), 0, &chunks, pacing.slow_interval));
        }
        Scenario::Default => {
            output_text = default_text(info, "default");
            steps.extend(sse::message(
                &ids.item("msg", 0),
                0,
                &split3(&output_text),
                Duration::ZERO,
            ));
        }
    }

    let usage = Usage {
        input: (info.input_chars as u64 / 4).max(1),
        cached: 0,
        output: (output_text.len() as u64 / 4).max(1) + reasoning_tokens,
        reasoning: reasoning_tokens,
    };
    steps.push(Step::now(sse::completed(&ids.response, &model, usage)));
    Reply::Stream(steps)
}

fn default_text(info: &RequestInfo, scenario: &str) -> String {
    format!(
        "Mock answer ({scenario}).\nuser_messages={} model={} effort={}\n{VERDICT_LINE}",
        info.prompts.len(),
        info.model.as_deref().unwrap_or("none"),
        info.effort.as_deref().unwrap_or("none"),
    )
}

fn last_output(info: &RequestInfo) -> String {
    info.outputs_after_last_user
        .last()
        .map(|o| o.output.clone())
        .unwrap_or_default()
}

/// Codex reports a command as e.g. "Chunk ID: …\nWall time: …\nProcess exited with code 0\n
/// Original token count: 1\nOutput:\nhi\n"; a refused one as "…\naborted by user".
fn exec_result_text(command: &str, info: &RequestInfo) -> String {
    let output = last_output(info);
    if output.contains("aborted by user") || output.contains("rejected") {
        return format!(
            "The command `{command}` was not run (rejected): {}\n{VERDICT_LINE}",
            output.trim()
        );
    }
    let exit = output
        .lines()
        .find_map(|l| l.strip_prefix("Process exited with code "))
        .map_or_else(|| "unknown".to_owned(), |c| c.trim().to_owned());
    let captured = output.split_once("Output:\n").map_or(output.as_str(), |(_, rest)| rest);
    format!(
        "Ran `{command}` (exit code {exit}).\nCommand output:\n{}\n{VERDICT_LINE}",
        captured.trim_end()
    )
}

/// Splits a text into three deltas (on char boundaries) so streaming is exercised.
fn split3(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let third = chars.len().div_ceil(3).max(1);
    chars.chunks(third).map(|c| c.iter().collect()).collect()
}

/// An OpenAI-style error body: `{"error": {"message", "type", "param", "code"}}`.
pub fn error_body(status: u16, error_code: Option<&str>) -> Value {
    let (kind, code, message): (&str, Option<&str>, String) = match (status, error_code) {
        (429, None | Some("insufficient_quota")) => (
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details.".to_owned(),
        ),
        (429, Some(other)) => (
            "requests",
            Some(other),
            format!("Rate limit reached for requests ({other})."),
        ),
        (401, code) => (
            "invalid_request_error",
            Some(code.unwrap_or("invalid_api_key")),
            "Incorrect API key provided: mock-***. (model-mock)".to_owned(),
        ),
        (s, code) if s >= 500 => (
            "server_error",
            code,
            format!("The server had an error (model-mock {s})."),
        ),
        (s, code) => ("invalid_request_error", code, format!("model-mock answered {s}.")),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::ToolOutput;

    fn info(last: &str) -> RequestInfo {
        RequestInfo {
            last_user_text: last.to_owned(),
            prompts: vec![last.to_owned()],
            user_texts_raw: vec![last.to_owned()],
            model: Some("gpt-5.5".to_owned()),
            ..RequestInfo::default()
        }
    }

    #[test]
    fn selects_by_marker() {
        assert_eq!(select(&info("hello")), Scenario::Default);
        assert_eq!(select(&info("please mock:reason now")), Scenario::Reason);
        assert_eq!(select(&info("x\nmock:slow\n")), Scenario::Slow);
        assert_eq!(select(&info("x\nmock:think:5000\n")), Scenario::Think { millis: 5000 });
        assert_eq!(
            select(&info("Task:\nmock:exec:touch a b.txt\nmore")),
            Scenario::ExecCall {
                command: "touch a b.txt".to_owned(),
                escalate: true
            }
        );
        assert_eq!(
            select(&info("mock:exec-sandboxed:cat /etc/hostname")),
            Scenario::ExecCall {
                command: "cat /etc/hostname".to_owned(),
                escalate: false
            }
        );
        assert_eq!(
            select(&info("mock:write:notes/a.txt")),
            Scenario::WriteCall {
                path: "notes/a.txt".to_owned()
            }
        );
        assert_eq!(
            select(&info("mock:status:429")),
            Scenario::Status {
                code: 429,
                error_code: None
            }
        );
        assert_eq!(
            select(&info("mock:status:429:rate_limit_exceeded.")),
            Scenario::Status {
                code: 429,
                error_code: Some("rate_limit_exceeded".to_owned())
            }
        );
        assert_eq!(select(&info("mock:status:abc")), Scenario::Default);
        assert_eq!(select(&info("mock:status:99999")), Scenario::Default);
        assert_eq!(select(&info("mock:exec:")), Scenario::Default);
        assert_eq!(
            select(&info(
                r"mock:patch:*** Begin Patch\n*** Delete File: a\\b\n*** End Patch"
            )),
            Scenario::PatchCall {
                patch: "*** Begin Patch\n*** Delete File: a\\b\n*** End Patch\n".to_owned()
            }
        );
    }

    #[test]
    fn title_wins_over_quoted_markers() {
        let i = info("Your task is to generate a very short title ...\nUser's first message:\nmock:exec:rm -rf x");
        assert_eq!(select(&i), Scenario::Title);
    }

    #[test]
    fn exec_result_quotes_output() {
        let mut i = info("mock:exec:echo hi");
        i.outputs_after_last_user.push(ToolOutput {
            call_id: "c".to_owned(),
            output: "Chunk ID: x\nWall time: 0.1 seconds\nProcess exited with code 0\nOriginal token count: 1\nOutput:\nhi\n".to_owned(),
        });
        assert_eq!(
            select(&i),
            Scenario::ExecResult {
                command: "echo hi".to_owned()
            }
        );
        let text = exec_result_text("echo hi", &i);
        assert!(text.contains("exit code 0"), "{text}");
        assert!(text.contains("Command output:\nhi\n"), "{text}");
        assert!(text.ends_with(VERDICT_LINE));
    }

    #[test]
    fn default_answer_counts_messages() {
        let mut i = info("third");
        i.prompts = vec!["a".into(), "b".into(), "third".into()];
        i.effort = Some("high".into());
        let text = default_text(&i, "default");
        assert!(text.contains("user_messages=3 model=gpt-5.5 effort=high"), "{text}");
    }

    #[test]
    fn split3_keeps_text() {
        for t in ["", "a", "héllo — wörld", "VERDICT: CONSENSUS — mock agrees"] {
            assert_eq!(split3(t).concat(), t);
        }
    }

    #[test]
    fn error_bodies() {
        assert_eq!(error_body(429, None)["error"]["code"], "insufficient_quota");
        assert_eq!(
            error_body(429, Some("rate_limit_exceeded"))["error"]["type"],
            "requests"
        );
        assert_eq!(error_body(401, None)["error"]["code"], "invalid_api_key");
        assert_eq!(error_body(503, None)["error"]["type"], "server_error");
    }
}
