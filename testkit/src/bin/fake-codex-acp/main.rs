//! fake-codex-acp: a scripted ACP agent that stands in for `codex-acp` in the
//! test suite. It speaks ACP v1 on stdio, keeps codex-like sessions (modes,
//! models, load with replay) in a state directory, and picks each turn's
//! behaviour from `fake:…` markers in the prompt (see `markers.rs`). No model,
//! no network.

mod args;
mod handlers;
mod markers;
mod permission;
mod state;
mod transport;
mod turn;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    AuthenticateRequest, CancelNotification, CloseSessionRequest, InitializeRequest, LoadSessionRequest,
    NewSessionRequest, PromptRequest, ResumeSessionRequest, SetSessionConfigOptionRequest, SetSessionModeRequest,
};
use agent_client_protocol::{Agent, on_receive_notification, on_receive_request};

use crate::args::Args;
use crate::state::Shared;
use crate::transport::{MessageLog, Output};

/// How long the fake lets queued output drain after stdin reached EOF.
/// Short: the client that closed stdin is normally gone or about to be.
const EOF_GRACE: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("fake-codex-acp: {message}");
            return ExitCode::from(2);
        }
    };
    eprintln!("fake-codex-acp started pid={}", std::process::id());
    if let Some(message) = &args.fail_first_start {
        let marker = args.state_dir.join("first-start-failed");
        if !marker.exists() {
            let _ = std::fs::create_dir_all(&args.state_dir);
            let _ = std::fs::write(&marker, "");
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fake-codex-acp: starting the tokio runtime failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let status = runtime.block_on(run(args));
    // Exit without dropping the runtime: tokio's stdin reader sits in a
    // blocking thread that would hold the shutdown until stdin yields, and
    // turns such as `fake:ignore-cancel` never end by themselves.
    std::process::exit(status)
}

async fn run(args: Args) -> i32 {
    let log = match &args.log {
        Some(path) => match MessageLog::open(path) {
            Ok(log) => Some(Arc::new(log)),
            Err(error) => {
                eprintln!("fake-codex-acp: opening the log {} failed: {error}", path.display());
                return 1;
            }
        },
        None => None,
    };
    let output = Output::new(log.clone());
    let (transport, stdin_closed) = transport::stdio(output.clone(), log);
    let shared = Arc::new(Shared::new(args, output));
    let connection = serve(shared, transport);
    tokio::select! {
        result = connection => match result {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("fake-codex-acp: connection failed: {error:?}");
                1
            }
        },
        _ = async {
            let _ = stdin_closed.await;
            tokio::time::sleep(EOF_GRACE).await;
        } => 0,
    }
}

/// Wires every handler and serves the connection until stdin closes.
async fn serve(
    shared: Arc<Shared>,
    transport: impl agent_client_protocol::ConnectTo<Agent> + 'static,
) -> Result<(), agent_client_protocol::Error> {
    // Each closure owns a clone of `shared`; the handler bodies live in
    // `handlers.rs`, so this function is only the routing table.
    let on_initialize = {
        let shared = shared.clone();
        async move |request: InitializeRequest, responder, _cx| handlers::initialize(&shared, request, responder)
    };
    let on_authenticate = {
        let shared = shared.clone();
        async move |request: AuthenticateRequest, responder, _cx| handlers::authenticate(&shared, request, responder)
    };
    let on_new_session = {
        let shared = shared.clone();
        async move |request: NewSessionRequest, responder, _cx| handlers::new_session(&shared, request, responder)
    };
    let on_load_session = {
        let shared = shared.clone();
        async move |request: LoadSessionRequest, responder, cx| handlers::load_session(&shared, request, responder, &cx)
    };
    let on_resume_session = {
        let shared = shared.clone();
        async move |request: ResumeSessionRequest, responder, _cx| handlers::resume_session(&shared, request, responder)
    };
    let on_set_config_option = {
        let shared = shared.clone();
        async move |request: SetSessionConfigOptionRequest, responder, _cx| {
            handlers::set_config_option(&shared, request, responder)
        }
    };
    let on_set_mode = {
        let shared = shared.clone();
        async move |request: SetSessionModeRequest, responder, _cx| handlers::set_mode(&shared, request, responder)
    };
    let on_prompt = {
        let shared = shared.clone();
        async move |request: PromptRequest, responder, cx| handlers::prompt(&shared, request, responder, &cx)
    };
    let on_close = {
        let shared = shared.clone();
        async move |request: CloseSessionRequest, responder, _cx| handlers::close_session(&shared, request, responder)
    };
    let on_cancel = {
        let shared = shared.clone();
        async move |notification: CancelNotification, _cx| {
            handlers::cancel(&shared, &notification);
            Ok(())
        }
    };
    Agent
        .v1()
        .name("fake-codex-acp")
        .on_receive_request(on_initialize, on_receive_request!())
        .on_receive_request(on_authenticate, on_receive_request!())
        .on_receive_request(on_new_session, on_receive_request!())
        .on_receive_request(on_load_session, on_receive_request!())
        .on_receive_request(on_resume_session, on_receive_request!())
        .on_receive_request(on_set_config_option, on_receive_request!())
        .on_receive_request(on_set_mode, on_receive_request!())
        .on_receive_request(on_prompt, on_receive_request!())
        .on_receive_request(on_close, on_receive_request!())
        .on_receive_notification(on_cancel, on_receive_notification!())
        .connect_to(transport)
        .await
}
