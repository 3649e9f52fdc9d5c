//! Building the Server-Sent Events of a streamed Responses API answer, and a response
//! body fed from a channel so that a slow answer notices when the client goes away.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// One SSE event, sent after `delay`.
#[derive(Debug, Clone)]
pub struct Step {
    pub delay: Duration,
    pub event: Value,
}

impl Step {
    pub fn now(event: Value) -> Self {
        Step {
            delay: Duration::ZERO,
            event,
        }
    }

    pub fn after(delay: Duration, event: Value) -> Self {
        Step { delay, event }
    }
}

/// `event: <type>` + `data: <json>` + blank line, as the Responses API streams it.
pub fn encode(event: &Value) -> Bytes {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("message");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

/// Token counts reported in `response.completed`.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub input: u64,
    pub cached: u64,
    pub output: u64,
    pub reasoning: u64,
}

impl Usage {
    pub fn to_json(self) -> Value {
        json!({
            "input_tokens": self.input,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.input + self.output,
        })
    }
}

pub fn created(response_id: &str, model: &str) -> Value {
    json!({
        "type": "response.created",
        "response": {"id": response_id, "object": "response", "status": "in_progress", "model": model},
    })
}

pub fn completed(response_id: &str, model: &str, usage: Usage) -> Value {
    json!({
        "type": "response.completed",
        "response": {
            "id": response_id, "object": "response", "status": "completed", "model": model,
            "output": [], "usage": usage.to_json(),
        },
    })
}

/// An assistant message streamed as `chunks` (deltas `delay` apart), then its final item.
pub fn message(item_id: &str, output_index: usize, chunks: &[String], delay: Duration) -> Vec<Step> {
    let full: String = chunks.concat();
    let mut steps = vec![Step::now(json!({
        "type": "response.output_item.added",
        "output_index": output_index,
        "item": {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []},
    }))];
    for chunk in chunks {
        steps.push(Step::after(
            delay,
            json!({
                "type": "response.output_text.delta",
                "item_id": item_id, "output_index": output_index, "content_index": 0, "delta": chunk,
            }),
        ));
    }
    steps.push(Step::now(json!({
        "type": "response.output_item.done",
        "output_index": output_index,
        "item": {
            "type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": full, "annotations": []}],
        },
    })));
    steps
}

/// A reasoning item whose summary is streamed as `parts`; codex-acp turns each
/// `response.reasoning_summary_text.delta` into an ACP `agent_thought_chunk`.
pub fn reasoning(item_id: &str, output_index: usize, parts: &[String], delay: Duration) -> Vec<Step> {
    let full: String = parts.concat();
    let mut steps = vec![
        Step::now(json!({
            "type": "response.output_item.added",
            "output_index": output_index,
            "item": {"type": "reasoning", "id": item_id, "summary": []},
        })),
        Step::now(json!({
            "type": "response.reasoning_summary_part.added",
            "item_id": item_id, "output_index": output_index, "summary_index": 0,
            "part": {"type": "summary_text", "text": ""},
        })),
    ];
    for part in parts {
        steps.push(Step::after(
            delay,
            json!({
                "type": "response.reasoning_summary_text.delta",
                "item_id": item_id, "output_index": output_index, "summary_index": 0, "delta": part,
            }),
        ));
    }
    steps.push(Step::now(json!({
        "type": "response.reasoning_summary_text.done",
        "item_id": item_id, "output_index": output_index, "summary_index": 0, "text": full,
    })));
    steps.push(Step::now(json!({
        "type": "response.output_item.done",
        "output_index": output_index,
        "item": {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": full}]},
    })));
    steps
}

/// A finished output item (a `function_call` or `custom_tool_call`): added, then done.
pub fn whole_item(output_index: usize, item: Value) -> Vec<Step> {
    vec![
        Step::now(json!({"type": "response.output_item.added", "output_index": output_index, "item": item})),
        Step::now(json!({"type": "response.output_item.done", "output_index": output_index, "item": item})),
    ]
}

/// A response body whose frames come from a channel. When the client disconnects, hyper
/// drops the body, the receiver goes with it, and the producer's next send fails.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelBody { rx }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_event_lines() {
        let bytes = encode(&json!({"type": "response.created", "response": {"id": "r"}}));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("event: response.created\ndata: {"));
        assert!(text.ends_with("}\n\n"));
    }

    #[test]
    fn message_ends_with_full_text() {
        let steps = message("m1", 0, &["a".to_owned(), "b".to_owned()], Duration::ZERO);
        assert_eq!(steps.len(), 4);
        let done = &steps[3].event;
        assert_eq!(done["item"]["content"][0]["text"], "ab");
    }
}
