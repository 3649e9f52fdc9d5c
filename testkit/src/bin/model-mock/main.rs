//! model-mock: a scenario-driven mock of the OpenAI Responses API, for end-to-end tests of
//! the real `codex-acp` (and the Codex binary it drives) without network or account.
//!
//! Usage: `model-mock [--port N] [--slow-interval-ms N] [--slow-chunks N] [--ignore-stdin] [--verbose]`
//!
//! It binds 127.0.0.1 (a random port unless `--port`), prints exactly one line
//! `listening http://127.0.0.1:PORT` on stdout when ready, and serves until it is killed or
//! its stdin reaches EOF (so a test that dies leaves no orphan; `--ignore-stdin` turns that
//! off for manual runs). Point Codex at it with a provider whose
//! `base_url = "http://127.0.0.1:PORT/v1"` and `wire_api = "responses"`.
//!
//! Endpoints:
//! - `POST …/responses`       the model; answers with SSE, see `scenario.rs` for the markers
//! - `GET  …/models`          an empty model list
//! - `GET  /_mock/requests`   JSON array of every request received so far (summary + body)
//! - `POST /_mock/reset`      forget the recorded requests
//! - `GET  /_mock/health`     `ok`

mod analyze;
mod scenario;
mod sse;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use analyze::RequestInfo;
use scenario::{Ids, Pacing, Reply, Scenario};

type Body = BoxBody<Bytes, Infallible>;

const USAGE: &str =
    "usage: model-mock [--port N] [--slow-interval-ms N] [--slow-chunks N] [--ignore-stdin] [--verbose]";

#[derive(Debug, Clone)]
struct Options {
    port: u16,
    pacing: Pacing,
    watch_stdin: bool,
    verbose: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        port: 0,
        pacing: Pacing {
            slow_interval: Duration::from_millis(200),
            slow_chunks: 100,
            reason_interval: Duration::from_millis(20),
        },
        watch_stdin: true,
        verbose: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |what: &str| -> anyhow::Result<u64> {
            let text = match inline.clone() {
                Some(v) => v,
                None => args.next().with_context(|| format!("{name} needs {what}"))?,
            };
            text.parse::<u64>()
                .with_context(|| format!("{name}: `{text}` is not {what}"))
        };
        match name.as_str() {
            "--port" => {
                options.port = u16::try_from(value("a port number")?).context("--port: out of range")?;
            }
            "--slow-interval-ms" => options.pacing.slow_interval = Duration::from_millis(value("milliseconds")?),
            "--slow-chunks" => {
                options.pacing.slow_chunks = usize::try_from(value("a count")?).context("--slow-chunks: too big")?;
            }
            "--ignore-stdin" => options.watch_stdin = false,
            "--verbose" | "-v" => options.verbose = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(options)
}

struct State {
    options: Options,
    seq: AtomicU64,
    records: Mutex<Vec<Value>>,
}

impl State {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn record(&self, entry: Value) {
        if let Ok(mut records) = self.records.lock() {
            records.push(entry);
        }
    }

    /// Sets `field` on the recorded request `seq` (e.g. that its client went away).
    fn annotate(&self, seq: u64, field: &str, value: Value) {
        if let Ok(mut records) = self.records.lock()
            && let Some(entry) = records
                .iter_mut()
                .rev()
                .find(|e| e.get("seq").and_then(Value::as_u64) == Some(seq))
        {
            entry[field] = value;
        }
    }

    fn snapshot(&self) -> Value {
        self.records
            .lock()
            .map(|r| Value::Array(r.clone()))
            .unwrap_or_else(|_| Value::Array(Vec::new()))
    }

    fn reset(&self) {
        if let Ok(mut records) = self.records.lock() {
            records.clear();
        }
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if self.options.verbose {
            eprintln!("model-mock: {}", line());
        }
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

fn header_text(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn route(req: Request<Incoming>, state: Arc<State>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/_mock/requests") => json_response(StatusCode::OK, &state.snapshot()),
        (&Method::POST | &Method::DELETE, "/_mock/reset") => {
            state.reset();
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        (&Method::GET, "/_mock/health") => full(StatusCode::OK, "text/plain", "ok"),
        (&Method::POST, p) if p.ends_with("/responses") => responses(req, state).await,
        (&Method::GET, p) if p.ends_with("/models") => {
            let seq = state.next_seq();
            state.record(json!({"seq": seq, "method": "GET", "path": path, "kind": "models", "status": 200}));
            json_response(StatusCode::OK, &json!({"object": "list", "data": [], "models": []}))
        }
        _ => {
            let seq = state.next_seq();
            state
                .record(json!({"seq": seq, "method": method.as_str(), "path": path, "kind": "unknown", "status": 404}));
            let body = json!({"error": {"message": format!("model-mock: no route for {method} {path}"),
                "type": "invalid_request_error", "param": null, "code": "not_found"}});
            json_response(StatusCode::NOT_FOUND, &body)
        }
    }
}

async fn responses(req: Request<Incoming>, state: Arc<State>) -> Response<Body> {
    let seq = state.next_seq();
    let path = req.uri().path().to_owned();
    let turn_metadata = header_text(&req, "x-codex-turn-metadata");
    let session_id = header_text(&req, "session-id");
    let authorization = header_text(&req, "authorization");
    let content_encoding = header_text(&req, "content-encoding");

    let bytes = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            state.record(
                json!({"seq": seq, "method": "POST", "path": path, "kind": "unreadable", "status": 400,
                "error": err.to_string()}),
            );
            return json_response(
                StatusCode::BAD_REQUEST,
                &scenario::error_body(400, Some("unreadable_body")),
            );
        }
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(err) => {
            state.record(
                json!({"seq": seq, "method": "POST", "path": path, "kind": "invalid_json", "status": 400,
                "error": err.to_string(), "content_encoding": content_encoding, "bytes": bytes.len()}),
            );
            return json_response(
                StatusCode::BAD_REQUEST,
                &scenario::error_body(400, Some("invalid_json")),
            );
        }
    };

    let info = RequestInfo::from_body(&body, turn_metadata.as_deref());
    let chosen = scenario::select(&info);
    let ids = Ids {
        response: format!("resp_mock_{seq}"),
        seq,
    };
    let reply = scenario::reply(&chosen, &info, &ids, state.options.pacing);
    let status = match &reply {
        Reply::Stream(_) => 200,
        Reply::Error { status, .. } => *status,
    };
    state.log(|| {
        format!(
            "#{seq} {} model={} prompts={} -> {} ({status})",
            chosen.request_class(),
            info.model.as_deref().unwrap_or("-"),
            info.prompts.len(),
            chosen.name()
        )
    });
    state.record(record_entry(
        seq,
        &path,
        &info,
        &chosen,
        status,
        session_id,
        authorization,
        body,
    ));

    match reply {
        Reply::Error { status, body } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json_response(code, &body)
        }
        Reply::Stream(steps) => {
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            let task_state = state.clone();
            tokio::spawn(async move {
                for step in steps {
                    if !step.delay.is_zero() {
                        tokio::time::sleep(step.delay).await;
                    }
                    if tx.send(sse::encode(&step.event)).await.is_err() {
                        task_state.annotate(seq, "client_disconnected", Value::Bool(true));
                        task_state.log(|| format!("#{seq} client disconnected; stream stopped"));
                        return;
                    }
                }
                task_state.annotate(seq, "completed", Value::Bool(true));
            });
            let mut response = Response::new(sse::ChannelBody::new(rx).boxed());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert("cache-control", HeaderValue::from_static("no-cache"));
            headers.insert(
                "x-request-id",
                HeaderValue::from_str(&format!("req_mock_{seq}")).unwrap_or(HeaderValue::from_static("req_mock")),
            );
            response
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn record_entry(
    seq: u64,
    path: &str,
    info: &RequestInfo,
    chosen: &Scenario,
    status: u16,
    session_id: Option<String>,
    authorization: Option<String>,
    body: Value,
) -> Value {
    let outputs: Vec<Value> = info
        .outputs_after_last_user
        .iter()
        .map(|o| json!({"call_id": o.call_id, "output": o.output}))
        .collect();
    json!({
        "seq": seq,
        "method": "POST",
        "path": path,
        "kind": chosen.request_class(),
        "request_kind": info.request_kind,
        "scenario": chosen.name(),
        "status": status,
        "model": info.model,
        "reasoning_effort": info.effort,
        "user_messages": info.prompts.len(),
        "user_messages_raw": info.user_texts_raw.len(),
        "user_texts": info.prompts,
        "last_user_text": info.last_user_text,
        "tool_outputs": outputs,
        "tools": info.tools,
        "output_schema": info.output_schema_name,
        "session_id": session_id,
        "authorization": authorization,
        "completed": false,
        "client_disconnected": false,
        "body": body,
    })
}

/// Exits the process when stdin reaches EOF (or fails): the test that started us is gone.
fn watch_stdin() {
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 512];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args(std::env::args().skip(1))?;
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
    let addr = listener.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening http://{addr}")?;
        stdout.flush()?;
    }
    if options.watch_stdin {
        watch_stdin();
    }

    let state = Arc::new(State {
        options,
        seq: AtomicU64::new(0),
        records: Mutex::new(Vec::new()),
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                eprintln!("model-mock: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, state).await) }
            });
            // Errors here are clients hanging up mid-stream (Codex cancelling a turn).
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_arguments() -> anyhow::Result<()> {
        let o = parse_args(args(&[
            "--port",
            "8080",
            "--slow-interval-ms=5",
            "--slow-chunks",
            "3",
            "--ignore-stdin",
        ]))?;
        assert_eq!(o.port, 8080);
        assert_eq!(o.pacing.slow_interval, Duration::from_millis(5));
        assert_eq!(o.pacing.slow_chunks, 3);
        assert!(!o.watch_stdin);
        assert!(parse_args(args(&["--port"])).is_err());
        assert!(parse_args(args(&["--port", "70000"])).is_err());
        assert!(parse_args(args(&["--bogus"])).is_err());
        Ok(())
    }
}
