//! The byte pump: stdin → socket on one thread, socket → stdout on the
//! other, one JSON-RPC line at a time and unchanged. When the daemon's side
//! closes, in-flight requests get an error response, the shim reconnects,
//! replays the client's `initialize`, and goes on. When stdin closes, the
//! shim exits at once; the daemon and the Codex session live on.
//!
//! Locks: `writer` (the socket's write half and the lines it never got) is
//! taken by the stdin thread for each line and by a reconnect; `tracking`
//! only for a few map operations; `stdout` while a line is written out.
//! Whoever needs two takes `writer` before `tracking`, and nobody holds
//! `tracking` while writing anywhere. The socket reader never takes
//! `writer`: a daemon that stops reading (it back-pressures a client with
//! many requests in flight) blocks the stdin thread in a write, and its
//! output must still reach the client so that it can drain.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use codex_fusion_protocol::limits::MCP_MAX_LINE_BYTES;

use crate::ShimError;
use crate::tracking::{INTERNAL_ERROR, INVALID_REQUEST, Kind, Tracking, classify, error_response};
use codex_fusion_client::connect::{Connection, Connector};

/// Reconnect attempts after the daemon goes away, each after a longer pause.
const RECONNECT_BACKOFF: [Duration; 6] = [
    Duration::from_millis(0),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// Pause before the n-th reconnect within [`RECONNECT_WINDOW`].
const STORM_BACKOFF: [Duration; 5] = [
    Duration::from_millis(0),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];
/// More reconnects than this within [`RECONNECT_WINDOW`] is a storm: give up.
const RECONNECT_LIMIT: usize = 5;
const RECONNECT_WINDOW: Duration = Duration::from_secs(60);
/// Read and write buffers of both directions: a progress burst or a large
/// tool result moves in a few system calls.
const BUFFER_BYTES: usize = 64 * 1024;

/// What both threads share; see the module comment for the lock order.
struct Shared {
    writer: Mutex<Writer>,
    tracking: Mutex<Tracking>,
    /// Our own handle on fd 1, block-buffered: std's `Stdout` is
    /// line-buffered, which would make every line its own write.
    stdout: Mutex<BufWriter<File>>,
}

/// Where client lines go.
struct Writer {
    stream: UnixStream,
    /// Client lines the daemon never received (the socket was already
    /// closed): sent on the next connection rather than failed.
    unsent: Vec<Vec<u8>>,
}

/// Pumps until stdin closes (exits the process) or the daemon cannot be
/// reached again (returns the error).
pub fn run(connector: Connector, connection: Connection) -> Result<(), ShimError> {
    let Connection { mut reader, writer } = connection;
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| ShimError::Lost(format!("cannot use stdout: {error}")))?;
    let shared = Arc::new(Shared {
        writer: Mutex::new(Writer {
            stream: writer,
            unsent: Vec::new(),
        }),
        tracking: Mutex::new(Tracking::default()),
        stdout: Mutex::new(BufWriter::with_capacity(BUFFER_BYTES, File::from(stdout))),
    });
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || client_to_daemon(&shared))
            .map_err(|error| ShimError::Connect(format!("cannot start the stdin thread: {error}")))?;
    }
    let mut reconnects: Vec<Instant> = Vec::new();
    let mut line = Vec::with_capacity(BUFFER_BYTES);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line);
        match read {
            Ok(0) | Err(_) => {
                // The daemon went away (or its line was cut off: drop it).
                let now = Instant::now();
                reconnects.retain(|at| now.duration_since(*at) < RECONNECT_WINDOW);
                if reconnects.len() >= RECONNECT_LIMIT {
                    return Err(give_up(
                        &shared,
                        ShimError::Lost(format!(
                            "codex-fusiond keeps going away ({} reconnects within {} s); giving up. Check `codex-fusion status` and {}",
                            reconnects.len(),
                            RECONNECT_WINDOW.as_secs(),
                            connector.log_hint()
                        )),
                    ));
                }
                // Back off between episodes too, so a daemon in a crash loop
                // is retried over seconds, not milliseconds.
                std::thread::sleep(STORM_BACKOFF[reconnects.len().min(STORM_BACKOFF.len() - 1)]);
                reconnects.push(now);
                reader = reconnect(&connector, &shared, reader.get_ref()).map_err(|error| give_up(&shared, error))?;
                continue;
            }
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            // EOF in the middle of a line: the daemon died mid-write.
            continue;
        }
        // Only responses change what the shim knows; everything else (most
        // daemon lines are progress notifications) passes without a lock.
        if let Kind::Response { id } = classify(&line)
            && !lock(&shared.tracking).from_daemon(&id)
        {
            continue;
        }
        let mut stdout = lock(&shared.stdout);
        let written = stdout.write_all(&line).and_then(|()| {
            // Batch: flush only when no further complete line is buffered.
            if reader.buffer().contains(&b'\n') {
                Ok(())
            } else {
                stdout.flush()
            }
        });
        if written.is_err() {
            // Claude is gone; so are we.
            std::process::exit(0);
        }
    }
}

fn client_to_daemon(shared: &Shared) {
    let mut stdin = BufReader::with_capacity(BUFFER_BYTES, std::io::stdin().lock());
    let mut line = Vec::with_capacity(BUFFER_BYTES);
    loop {
        line.clear();
        match stdin.by_ref().read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => {
                // Claude closed our stdin: leave at once (with what is
                // already buffered for it, unless a write is under way).
                // The daemon keeps the Codex session for the next shim.
                if let Ok(mut stdout) = shared.stdout.try_lock() {
                    let _ = stdout.flush();
                }
                std::process::exit(0);
            }
            Ok(_) => {}
        }
        let kind = classify(&line);
        if line.len() > MCP_MAX_LINE_BYTES {
            refuse_oversized(shared, kind, line.len());
            continue;
        }
        let mut writer = lock(&shared.writer);
        lock(&shared.tracking).from_client(kind, &line);
        // A failed write means the daemon is gone and never saw this line
        // whole (a closed peer refuses the bytes): keep it, and everything
        // after it in order, for the next connection.
        if !writer.unsent.is_empty() || writer.stream.write_all(&line).is_err() {
            writer
                .unsent
                .push(std::mem::replace(&mut line, Vec::with_capacity(BUFFER_BYTES)));
        }
    }
}

/// A client line the daemon would drop unseen (its MCP library skips lines
/// over [`MCP_MAX_LINE_BYTES`] without a word): a request is answered with an
/// error that says so, anything else is dropped with a note on stderr.
fn refuse_oversized(shared: &Shared, kind: Kind, bytes: usize) {
    let limit_mib = MCP_MAX_LINE_BYTES / (1024 * 1024);
    let Kind::Request { id, method } = kind else {
        eprintln!(
            "codex-fusion-mcp: dropped a {bytes}-byte message from the client: over codex-fusion's {limit_mib} MiB limit per MCP message, and not a request to answer"
        );
        return;
    };
    let message = format!(
        "message too large: this {method} request is {bytes} bytes, over codex-fusion's limit of {limit_mib} MiB per MCP message; send less (a diff over {limit_mib} MiB: review it in parts, or pass `paths` and let Codex read the files)"
    );
    let mut stdout = lock(&shared.stdout);
    if stdout
        .write_all(&error_response(&id, INVALID_REQUEST, &message))
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Answers every request still in flight (an `initialize` kept for a
/// replay too) with `error` before the shim exits with it.
fn give_up(shared: &Shared, error: ShimError) -> ShimError {
    let ids = lock(&shared.tracking).take_in_flight();
    let message = format!("codex-fusion-mcp stopped: {error}");
    let mut stdout = lock(&shared.stdout);
    for id in ids {
        let _ = stdout.write_all(&error_response(&id, INTERNAL_ERROR, &message));
    }
    let _ = stdout.flush();
    error
}

/// Answers in-flight requests with an error, reconnects (starting the
/// daemon if needed), replays the handshake, and returns the new reader.
fn reconnect(connector: &Connector, shared: &Shared, old: &UnixStream) -> Result<BufReader<UnixStream>, ShimError> {
    // The stdin thread may be blocked writing to the old socket, holding the
    // writer; shutting the socket down fails that write and frees it.
    let _ = old.shutdown(Shutdown::Both);
    let mut writer = lock(&shared.writer);
    // Requests the old daemon received may have run; they are answered with
    // an error. Requests it never received are sent again below.
    let unsent: HashSet<String> = writer
        .unsent
        .iter()
        .filter_map(|line| match classify(line) {
            Kind::Request { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    let replay = lock(&shared.tracking).plan_reconnect(&unsent);
    {
        let mut stdout = lock(&shared.stdout);
        for id in &replay.fail {
            let response = error_response(
                id,
                INTERNAL_ERROR,
                "codex-fusiond restarted while this request was in flight; codex-fusion reconnected, call the tool again",
            );
            if stdout.write_all(&response).is_err() {
                std::process::exit(0);
            }
        }
        let _ = stdout.flush();
    }
    let mut last_error = None;
    for pause in RECONNECT_BACKOFF {
        std::thread::sleep(pause);
        match connector.connect_or_start() {
            Ok(Connection {
                reader,
                writer: mut stream,
            }) => {
                let mut replayed = Ok(());
                for line in &replay.handshake {
                    replayed = replayed.and_then(|()| stream.write_all(line));
                }
                for line in &writer.unsent {
                    if replay.handshake.contains(line) {
                        continue;
                    }
                    replayed = replayed.and_then(|()| stream.write_all(line));
                }
                if replayed.is_err() {
                    continue;
                }
                lock(&shared.tracking).replayed(&replay);
                writer.unsent.clear();
                writer.stream = stream;
                return Ok(reader);
            }
            Err(error @ codex_fusion_client::Error::Refused(_)) => return Err(error.into()),
            Err(error) => last_error = Some(error),
        }
    }
    Err(ShimError::Lost(format!(
        "lost codex-fusiond and could not reconnect: {}",
        last_error.map_or_else(|| "unknown error".to_owned(), |error| error.to_string())
    )))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
