//! One accepted connection: the hello, then either an MCP server or control
//! requests. Errors here end this connection only.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::frame::{self, FrameError};
use codex_fusion_protocol::hello::HelloError;
use codex_fusion_protocol::limits::{CONTROL_MAX_BYTES, HELLO_MAX_BYTES, HELLO_TIMEOUT, MCP_MAX_LINE_BYTES};
use codex_fusion_protocol::{Channel, Hello, HelloReply, paths};
use rmcp::ServiceExt as _;
use rmcp::transport::async_rw::AsyncRwTransport;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::config::Settings;
use crate::control;
use crate::daemon::Daemon;
use crate::flow::FlowControl;
use crate::mcp::McpService;

/// Serves one connection to its end.
pub async fn serve(daemon: Arc<Daemon>, stream: UnixStream) {
    let _counted = daemon.connection_guard();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let hello = match read_hello(&mut reader).await {
        Ok(hello) => hello,
        Err(message) => {
            tracing::warn!(%message, "refusing a connection");
            refuse(&mut write, &message).await;
            return;
        }
    };
    tracing::debug!(?hello, "hello");
    match hello.channel {
        Channel::Mcp => serve_mcp(daemon, hello, reader, write).await,
        Channel::Control => {
            // A hook sends its request with the hello and may be gone before
            // the reply (it never waits long): the request it delivered is
            // still served.
            let _ = reply(&mut write, &HelloReply::accepted(std::process::id())).await;
            control::serve(daemon, &hello, reader, write).await;
        }
    }
}

async fn read_hello(reader: &mut BufReader<OwnedReadHalf>) -> Result<Hello, String> {
    let line = match tokio::time::timeout(HELLO_TIMEOUT, frame::read_line_async(reader, HELLO_MAX_BYTES)).await {
        Err(_) => return Err(format!("no hello within {} s", HELLO_TIMEOUT.as_secs())),
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => return Err("the client closed the connection before its hello".into()),
        Ok(Err(FrameError::TooLong { limit })) => {
            return Err(format!(
                "hello longer than {limit} bytes; this socket speaks codex-fusion"
            ));
        }
        Ok(Err(error)) => return Err(format!("unreadable hello: {error}")),
    };
    let hello: Hello = frame::decode(&line).map_err(|error| {
        format!("malformed hello ({error}); this socket speaks the codex-fusion protocol, connect with codex-fusion-mcp or codex-fusion")
    })?;
    hello
        .check_compatible()
        .map_err(|error: HelloError| error.to_string())?;
    Ok(hello)
}

async fn serve_mcp(daemon: Arc<Daemon>, hello: Hello, reader: BufReader<OwnedReadHalf>, mut write: OwnedWriteHalf) {
    let Some(workspace) = hello.workspace.as_deref() else {
        refuse(&mut write, "an MCP connection must name its workspace in the hello").await;
        return;
    };
    let workspace = match paths::canonical_directory(workspace) {
        Ok(workspace) => workspace,
        Err(error) => {
            refuse(&mut write, &error.to_string()).await;
            return;
        }
    };
    let settings = match Settings::from_env(&hello.env) {
        Ok((settings, unknown)) => {
            if !unknown.is_empty() {
                tracing::warn!(?unknown, "ignoring unknown CODEX_FUSION_* variables (typo?)");
            }
            settings
        }
        Err(error) => {
            refuse(&mut write, &error.to_string()).await;
            return;
        }
    };
    let agent_env = agent_env(&hello);
    if reply(&mut write, &HelloReply::accepted(std::process::id()))
        .await
        .is_err()
    {
        return;
    }
    let span = tracing::info_span!("mcp", workspace = %workspace.display(), role = ?hello.role);
    tracing::info!(parent: &span, "MCP client connected");
    let transport =
        FlowControl::new(AsyncRwTransport::new_server(reader, write).with_max_line_length(MCP_MAX_LINE_BYTES));
    let service = McpService::new(
        daemon.clone(),
        Arc::from(workspace.as_path()),
        settings,
        agent_env,
        transport.closed(),
        transport.responses(),
    );
    let shutdown = daemon.shutdown.clone();
    let served = tokio::select! {
        served = service.serve(transport) => served,
        _ = shutdown.cancelled() => return,
    };
    match served {
        Ok(running) => {
            let cancel = running.cancellation_token();
            let waiting = running.waiting();
            tokio::pin!(waiting);
            tokio::select! {
                quit = &mut waiting => tracing::info!(parent: &span, ?quit, "MCP client disconnected"),
                _ = shutdown.cancelled() => {
                    // Let the sessions answer this client's waiting calls
                    // ("shutting down") and those answers be written, then
                    // close.
                    let stopped = daemon.sessions_stopped.clone();
                    let written = async {
                        stopped.cancelled().await;
                        tokio::time::sleep(ANSWERS_WRITTEN).await;
                    };
                    tokio::select! {
                        _ = written => {}
                        _ = &mut waiting => return,
                        _ = tokio::time::sleep(SESSIONS_STOP_WAIT) => {}
                    }
                    cancel.cancel();
                }
            }
        }
        Err(error) => tracing::info!(parent: &span, %error, "MCP client left during initialize"),
    }
}

/// At shutdown, how long a connection waits for the sessions to stop
/// before it closes anyway.
const SESSIONS_STOP_WAIT: Duration = Duration::from_secs(5);
/// And, once they have, how long their last answers get to be written.
const ANSWERS_WRITTEN: Duration = Duration::from_millis(50);

/// The hello's variables meant for codex-acp (credentials, Codex home).
pub fn agent_env(hello: &Hello) -> Vec<(String, String)> {
    hello
        .env
        .iter()
        .filter(|(name, value)| codex_fusion_protocol::AGENT_ENV_VARS.contains(&name.as_str()) && !value.is_empty())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Sends a refusal line; the connection is closed by the caller.
async fn refuse<W: AsyncWrite + Unpin>(write: &mut W, message: &str) {
    let _ = reply(write, &HelloReply::refused(message)).await;
    let _ = write.shutdown().await;
}

async fn reply<W: AsyncWrite + Unpin>(write: &mut W, reply: &HelloReply) -> std::io::Result<()> {
    write.write_all(&frame::encode(reply)).await?;
    write.flush().await
}

/// Canonicalises a workspace named in a control request.
pub fn canonical_workspace(workspace: &Path) -> Result<std::path::PathBuf, String> {
    paths::canonical_directory(workspace).map_err(|error| error.to_string())
}

/// Reads control requests until EOF; answers each in order. A request
/// answered `Watching` turns the connection into a stream: it is handed back
/// unanswered, with the workspace to watch.
pub(crate) async fn control_requests<F, Fut>(
    mut reader: BufReader<OwnedReadHalf>,
    mut write: OwnedWriteHalf,
    shutdown: tokio_util::sync::CancellationToken,
    mut handle: F,
) -> Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf, std::path::PathBuf)>
where
    F: FnMut(ControlRequest) -> Fut,
    Fut: std::future::Future<Output = (ControlResponse, bool)>,
{
    loop {
        // An idle control connection must not hold up a daemon that stops.
        let read = tokio::select! {
            read = frame::read_line_async(&mut reader, CONTROL_MAX_BYTES) => read,
            _ = shutdown.cancelled() => return None,
        };
        let line = match read {
            Ok(Some(line)) => line,
            Ok(None) => return None,
            Err(error) => {
                let _ = write
                    .write_all(&frame::encode(&ControlResponse::Error {
                        message: format!("unreadable control request: {error}"),
                    }))
                    .await;
                return None;
            }
        };
        let (response, stop) = match frame::decode::<ControlRequest>(&line) {
            Ok(request) => handle(request).await,
            Err(error) => (
                ControlResponse::Error {
                    message: format!("malformed control request: {error}"),
                },
                false,
            ),
        };
        if let ControlResponse::Watching { workspace } = response {
            return Some((reader, write, workspace));
        }
        if write.write_all(&frame::encode(&response)).await.is_err() || write.flush().await.is_err() {
            return None;
        }
        if stop {
            return None;
        }
    }
}
