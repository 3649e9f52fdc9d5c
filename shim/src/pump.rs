//! The byte pump: stdin → socket on one thread, socket → stdout on the
//! other, one JSON-RPC line at a time and unchanged. When the daemon's side
//! closes, in-flight requests get an error response, the shim reconnects,
//! replays the client's `initialize`, and goes on. When stdin closes, the
//! shim exits at once; the daemon and the Codex session live on.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ShimError;
use crate::connect::{Connection, Connector};
use crate::tracking::{Kind, Tracking, classify, error_response};

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

/// The link both threads share: where client lines go, and what is known
/// about them. Held only while a line is written or a reconnect runs.
struct Link {
    writer: UnixStream,
    tracking: Tracking,
    /// Client lines the daemon never received (the socket was already
    /// closed): sent on the next connection rather than failed.
    unsent: Vec<Vec<u8>>,
}

/// Pumps until stdin closes (exits the process) or the daemon cannot be
/// reached again (returns the error).
pub fn run(connector: Connector, connection: Connection) -> Result<(), ShimError> {
    let Connection { mut reader, writer } = connection;
    let link = Arc::new(Mutex::new(Link {
        writer,
        tracking: Tracking::default(),
        unsent: Vec::new(),
    }));
    {
        let link = link.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || client_to_daemon(&link))
            .map_err(|error| ShimError::Connect(format!("cannot start the stdin thread: {error}")))?;
    }
    let mut stdout = std::io::stdout().lock();
    let mut reconnects: Vec<Instant> = Vec::new();
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line);
        match read {
            Ok(0) | Err(_) => {
                // The daemon went away (or its line was cut off: drop it).
                let now = Instant::now();
                reconnects.retain(|at| now.duration_since(*at) < RECONNECT_WINDOW);
                if reconnects.len() >= RECONNECT_LIMIT {
                    return Err(ShimError::Lost(format!(
                        "codex-fusiond keeps going away ({} reconnects within {} s); giving up. Check `codex-fusion status` and its log",
                        reconnects.len(),
                        RECONNECT_WINDOW.as_secs()
                    )));
                }
                // Back off between episodes too, so a daemon in a crash loop
                // is retried over seconds, not milliseconds.
                std::thread::sleep(STORM_BACKOFF[reconnects.len().min(STORM_BACKOFF.len() - 1)]);
                reconnects.push(now);
                reader = reconnect(&connector, &link, &mut stdout)?;
                continue;
            }
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            // EOF in the middle of a line: the daemon died mid-write.
            continue;
        }
        let forward = lock(&link).tracking.from_daemon(&line);
        if forward {
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
}

fn client_to_daemon(link: &Mutex<Link>) {
    let mut stdin = BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        match stdin.by_ref().read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => {
                // Claude closed our stdin: leave at once. The daemon keeps
                // the Codex session for the next shim.
                std::process::exit(0);
            }
            Ok(_) => {}
        }
        let mut link = lock(link);
        link.tracking.from_client(&line);
        // A failed write means the daemon is gone and never saw this line
        // (a closed peer refuses the bytes): keep it, and everything after
        // it in order, for the next connection.
        if !link.unsent.is_empty() || link.writer.write_all(&line).is_err() {
            link.unsent.push(line.clone());
        }
    }
}

/// Answers in-flight requests with an error, reconnects (starting the
/// daemon if needed), replays the handshake, and returns the new reader.
fn reconnect(
    connector: &Connector,
    link: &Mutex<Link>,
    stdout: &mut impl Write,
) -> Result<BufReader<UnixStream>, ShimError> {
    let mut link = lock(link);
    // Requests the old daemon received may have run; they are answered with
    // an error. Requests it never received are sent again below.
    let unsent_ids: Vec<String> = link
        .unsent
        .iter()
        .filter_map(|line| match classify(line) {
            Kind::Request { id, .. } => Some(id),
            _ => None,
        })
        .collect();
    for id in link.tracking.take_in_flight() {
        if unsent_ids.contains(&id) {
            link.tracking.restore_in_flight(id);
            continue;
        }
        let mut response = error_response(
            &id,
            "codex-fusiond restarted while this request was in flight; codex-fusion reconnected, call the tool again",
        );
        response.push(b'\n');
        if stdout.write_all(&response).is_err() {
            std::process::exit(0);
        }
    }
    let _ = stdout.flush();
    let mut last_error = None;
    for pause in RECONNECT_BACKOFF {
        std::thread::sleep(pause);
        match connector.connect_or_start() {
            Ok(Connection { reader, mut writer }) => {
                let tracking = &link.tracking;
                let handshake = [tracking.initialize.clone(), tracking.initialized.clone()];
                let swallow = tracking.initialize.as_ref().and(tracking.initialize_id.clone());
                let mut replayed = Ok(());
                for line in handshake.iter().flatten() {
                    replayed = replayed.and_then(|()| writer.write_all(line));
                }
                for line in &link.unsent {
                    if handshake.iter().flatten().any(|sent| sent == line) {
                        continue;
                    }
                    replayed = replayed.and_then(|()| writer.write_all(line));
                }
                if replayed.is_err() {
                    continue;
                }
                link.tracking.swallow = swallow;
                link.unsent.clear();
                link.writer = writer;
                return Ok(reader);
            }
            Err(error @ ShimError::Refused(_)) => return Err(error),
            Err(error) => last_error = Some(error),
        }
    }
    Err(ShimError::Lost(format!(
        "lost codex-fusiond and could not reconnect: {}",
        last_error.map_or_else(|| "unknown error".to_owned(), |error| error.to_string())
    )))
}

fn lock(link: &Mutex<Link>) -> std::sync::MutexGuard<'_, Link> {
    link.lock().unwrap_or_else(|poison| poison.into_inner())
}
