//! anthropic-mock: a scripted mock of the Anthropic Messages API, so the
//! end-to-end suite can drive the real Claude Code (`claude -p`) without
//! network or account. What "Claude" does is read from the prompt
//! (`script.rs`); the replies are streamed as the API streams them.
//!
//! Usage: `anthropic-mock [--port N] [--ignore-stdin]`
//!
//! It binds 127.0.0.1 (a random port unless `--port`), prints one line
//! `listening http://127.0.0.1:PORT` when ready, and serves until its stdin
//! reaches EOF (the test that started it is gone). Point Claude Code at it
//! with `ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`.
//!
//! Endpoints:
//! - `POST /v1/messages`               the model (SSE when `stream`, else one JSON message)
//! - `POST /v1/messages/count_tokens`  a fixed count
//! - `GET  /_mock/requests`            JSON array of every request so far (summary + body)
//! - `POST /v1beta/models/<m>:streamGenerateContent` and `:generateContent`,
//!   `:countTokens`: the Gemini API, for `gemini --acp` pointed here with
//!   `GOOGLE_GEMINI_BASE_URL` (`gemini.rs`)

mod gemini;
mod script;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use script::{Conversation, Reply};

const USAGE: &str = "usage: anthropic-mock [--port N] [--ignore-stdin]";

struct State {
    seq: AtomicU64,
    records: Mutex<Vec<Value>>,
}

impl State {
    fn record(&self, entry: Value) {
        if let Ok(mut records) = self.records.lock() {
            records.push(entry);
        }
    }

    fn snapshot(&self) -> Value {
        self.records
            .lock()
            .map(|records| Value::Array(records.clone()))
            .unwrap_or_else(|_| Value::Array(Vec::new()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut port = 0u16;
    let mut watch_stdin = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().context("--port needs a port number")?;
                port = value
                    .parse()
                    .with_context(|| format!("--port: `{value}` is not a port number"))?;
            }
            "--ignore-stdin" => watch_stdin = false,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening http://{}", listener.local_addr()?)?;
        stdout.flush()?;
    }
    if watch_stdin {
        std::thread::spawn(|| {
            let mut buffer = [0u8; 512];
            loop {
                match std::io::stdin().read(&mut buffer) {
                    Ok(0) | Err(_) => std::process::exit(0),
                    Ok(_) => {}
                }
            }
        });
    }
    let state = Arc::new(State {
        seq: AtomicU64::new(0),
        records: Mutex::new(Vec::new()),
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(request, state).await) }
            });
            // An error here is Claude Code hanging up mid-answer.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(request: Request<Incoming>, state: Arc<State>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if method == Method::GET && path == "/_mock/requests" {
        return respond(StatusCode::OK, "application/json", state.snapshot().to_string());
    }
    let seq = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let session = request
        .headers()
        .get("x-claude-code-session-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = match request.into_body().collect().await {
        Ok(collected) => serde_json::from_slice::<Value>(&collected.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    if method == Method::POST && path.starts_with("/v1beta/models/") {
        return route_gemini(&path, &body, seq, &state);
    }
    match (&method, path.as_str()) {
        (&Method::POST, "/v1/messages") => {
            let conversation = Conversation::read(&body);
            let reply = conversation.reply();
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("claude-mock")
                .to_owned();
            let streamed = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
            state.record(json!({
                "seq": seq,
                "path": path,
                "session_id": session,
                "model": model,
                "stream": streamed,
                "tools": conversation.tools,
                "human_text": conversation.human_text,
                "tool_results": conversation.results,
                "reply": reply_json(&reply),
                "body": body,
            }));
            let message_id = format!("msg_mock_{seq}");
            if streamed {
                respond(StatusCode::OK, "text/event-stream", stream(&message_id, &model, &reply))
            } else {
                respond(
                    StatusCode::OK,
                    "application/json",
                    message(&message_id, &model, &reply).to_string(),
                )
            }
        }
        (&Method::POST, "/v1/messages/count_tokens") => {
            state.record(json!({"seq": seq, "path": path, "session_id": session}));
            respond(
                StatusCode::OK,
                "application/json",
                json!({"input_tokens": 100}).to_string(),
            )
        }
        _ => {
            state.record(json!({"seq": seq, "path": path, "method": method.as_str(), "status": 404}));
            let error = json!({"type": "error", "error": {"type": "not_found_error",
                "message": format!("anthropic-mock: no route for {method} {path}")}});
            respond(StatusCode::NOT_FOUND, "application/json", error.to_string())
        }
    }
}

/// The Gemini API: the conversation streams its reply; the other requests
/// (a small model's side questions) get a short JSON answer.
fn route_gemini(path: &str, body: &Value, seq: u64, state: &State) -> Response<Full<Bytes>> {
    if path.ends_with(":countTokens") {
        state.record(json!({"seq": seq, "path": path}));
        return respond(
            StatusCode::OK,
            "application/json",
            json!({"totalTokens": 100}).to_string(),
        );
    }
    if path.ends_with(":streamGenerateContent") {
        let turn = gemini::Turn::read(body);
        let reply = turn.reply();
        let answer = gemini::response(&reply);
        state.record(json!({"seq": seq, "path": path, "human_text": turn.text,
            "tool_results": turn.responses, "reply": answer, "body": body}));
        return respond(StatusCode::OK, "text/event-stream", format!("data: {answer}\r\n\r\n"));
    }
    state.record(json!({"seq": seq, "path": path, "body": body}));
    respond(StatusCode::OK, "application/json", gemini::side_answer().to_string())
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn reply_json(reply: &Reply) -> Value {
    match reply {
        Reply::ToolUse { name, input } => json!({"tool_use": name, "input": input}),
        Reply::Text(text) => json!({"text": text}),
    }
}

/// The content block and stop reason of a reply; the tool-use id is unique
/// per message.
fn content(message_id: &str, reply: &Reply) -> (Value, &'static str) {
    match reply {
        Reply::ToolUse { name, input } => (
            json!({"type": "tool_use", "id": format!("toolu_{message_id}"), "name": name, "input": input}),
            "tool_use",
        ),
        Reply::Text(text) => (json!({"type": "text", "text": text}), "end_turn"),
    }
}

fn usage(output_tokens: u64) -> Value {
    json!({"input_tokens": 100, "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
}

/// A whole (non-streamed) message.
fn message(message_id: &str, model: &str, reply: &Reply) -> Value {
    let (block, stop) = content(message_id, reply);
    json!({"id": message_id, "type": "message", "role": "assistant", "model": model,
        "content": [block], "stop_reason": stop, "stop_sequence": null, "usage": usage(10)})
}

/// The events of a streamed message: start, one content block (its text or
/// its input JSON as one delta), the stop reason, stop.
fn stream(message_id: &str, model: &str, reply: &Reply) -> String {
    let (block, stop) = content(message_id, reply);
    let (start_block, delta) = match reply {
        Reply::ToolUse { input, .. } => {
            let mut empty = block.clone();
            empty["input"] = json!({});
            (
                empty,
                json!({"type": "input_json_delta", "partial_json": input.to_string()}),
            )
        }
        Reply::Text(text) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": text}),
        ),
    };
    let events = [
        json!({"type": "message_start", "message": {"id": message_id, "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage(1)}}),
        json!({"type": "content_block_start", "index": 0, "content_block": start_block}),
        json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": 10}}),
        json!({"type": "message_stop"}),
    ];
    events
        .iter()
        .map(|event| {
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap_or("message")
            )
        })
        .collect()
}
