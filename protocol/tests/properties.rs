//! Property tests of the socket protocol's parsers: whatever bytes a peer
//! sends, `frame::read_line` and `frame::decode` return a value or an error and
//! never panic; lines never exceed their limit; every message survives
//! encode → read_line → decode unchanged; refusals name both versions.
//!
//! Failures print the smallest input proptest found; nothing is persisted
//! (no regression files are written next to the sources).

use std::collections::BTreeMap;
use std::io::{BufReader, Cursor};
use std::path::PathBuf;

use codex_fusion_protocol::control::{
    AgentProcessStatus, ControlRequest, ControlResponse, DaemonStatus, GuardianFlags, SessionSource, UsageTotals,
    WorkspaceStatus,
};
use codex_fusion_protocol::frame::{self, FrameError};
use codex_fusion_protocol::hello::HelloError;
use codex_fusion_protocol::limits::{CONTROL_MAX_BYTES, HELLO_MAX_BYTES};
use codex_fusion_protocol::{Channel, Hello, HelloReply, PROTOCOL_NAME, PROTOCOL_VERSION, Role};
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ----- strategies -------------------------------------------------------

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Shim), Just(Role::Hook), Just(Role::Cli)]
}

fn channel() -> impl Strategy<Value = Channel> {
    prop_oneof![Just(Channel::Mcp), Just(Channel::Control)]
}

/// Any Unicode text, control characters and newlines included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~]{0,40}", "[\\n\\r\"\\\\\\u{0}\\u{2028}é🔐]{0,12}"]
}

fn path() -> impl Strategy<Value = PathBuf> {
    prop_oneof![
        text().prop_map(PathBuf::from),
        "(/[a-z.]{0,6}){0,6}".prop_map(PathBuf::from)
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        prop_oneof![Just(PROTOCOL_NAME.to_owned()), text()],
        any::<u32>(),
        role(),
        channel(),
        text(),
        proptest::option::of(path()),
        proptest::collection::btree_map(text(), text(), 0..6),
    )
        .prop_map(
            |(protocol, version, role, channel, client_version, workspace, env)| Hello {
                protocol,
                version,
                role,
                channel,
                client_version,
                workspace,
                env,
            },
        )
}

fn hello_reply() -> impl Strategy<Value = HelloReply> {
    prop_oneof![
        (text(), any::<u32>(), text(), any::<u32>()).prop_map(|(protocol, version, daemon_version, pid)| {
            HelloReply::Accepted {
                protocol,
                version,
                daemon_version,
                pid,
            }
        }),
        (text(), any::<u32>(), text()).prop_map(|(protocol, version, error)| HelloReply::Refused {
            protocol,
            version,
            error
        }),
    ]
}

fn source() -> impl Strategy<Value = SessionSource> {
    prop_oneof![
        Just(SessionSource::Startup),
        Just(SessionSource::Resume),
        Just(SessionSource::Clear),
        Just(SessionSource::Compact),
    ]
}

fn control_request() -> impl Strategy<Value = ControlRequest> {
    prop_oneof![
        Just(ControlRequest::Ping),
        Just(ControlRequest::Stop),
        proptest::option::of(path()).prop_map(|workspace| ControlRequest::Status { workspace }),
        path().prop_map(|workspace| ControlRequest::Reset { workspace }),
        (path(), proptest::option::of(text()), source()).prop_map(|(workspace, claude_session_id, source)| {
            ControlRequest::SessionStart {
                workspace,
                claude_session_id,
                source,
            }
        }),
    ]
}

fn workspace_status() -> impl Strategy<Value = WorkspaceStatus> {
    (
        path(),
        text(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        any::<u64>(),
        proptest::collection::vec(text(), 0..4),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (any::<u64>(), any::<u64>(), proptest::option::of(any::<u64>())),
    )
        .prop_map(
            |(workspace, agent_state, agent_pid, last_error, pending_permission, turns, stderr_tail, flags, usage)| {
                WorkspaceStatus {
                    workspace,
                    agent_state,
                    agent_pid,
                    last_error,
                    pending_permission,
                    turns,
                    stderr_tail,
                    guardian: GuardianFlags {
                        allow_external_reads: flags.0,
                        allow_writes: flags.1,
                        allow_commands: flags.2,
                    },
                    usage: UsageTotals {
                        input_tokens: usage.0,
                        output_tokens: usage.1,
                        context_used: usage.2,
                        ..UsageTotals::default()
                    },
                    ..WorkspaceStatus::default()
                }
            },
        )
}

fn control_response() -> impl Strategy<Value = ControlResponse> {
    prop_oneof![
        (text(), any::<u32>()).prop_map(|(daemon_version, pid)| ControlResponse::Pong { daemon_version, pid }),
        (path(), any::<bool>()).prop_map(|(workspace, had_session)| ControlResponse::Reset { workspace, had_session }),
        text().prop_map(|action| ControlResponse::SessionStarted { action }),
        Just(ControlResponse::Stopping),
        text().prop_map(|message| ControlResponse::Error { message }),
        (
            text(),
            any::<u32>(),
            any::<u64>(),
            path(),
            any::<usize>(),
            proptest::collection::vec(workspace_status(), 0..3),
            proptest::collection::vec((any::<Option<u32>>(), text(), any::<Option<u64>>()), 0..3)
        )
            .prop_map(
                |(daemon_version, pid, uptime_secs, socket, connections, workspaces, agents)| {
                    let agents = agents
                        .into_iter()
                        .map(|(pid, agent, rss_kb)| AgentProcessStatus {
                            pid,
                            agent,
                            workspaces: workspaces.iter().map(|status| status.workspace.clone()).collect(),
                            rss_kb,
                            ..AgentProcessStatus::default()
                        })
                        .collect();
                    ControlResponse::Status(DaemonStatus {
                        daemon_version,
                        pid,
                        uptime_secs,
                        state_dir: socket.join("state"),
                        socket,
                        connections,
                        workspaces,
                        agents,
                        last_answers: Vec::new(),
                    })
                }
            ),
    ]
}

/// Bytes that look like our messages, then damaged: valid lines with bytes
/// replaced, cut short or spliced, so the parser is pushed past its first
/// `{`. Pure noise alone would almost never get there.
fn damaged_message() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        hello().prop_map(|hello| frame::encode(&hello)),
        control_request().prop_map(|request| frame::encode(&request)),
        hello_reply().prop_map(|reply| frame::encode(&reply)),
    ];
    (
        valid,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        proptest::option::of(any::<prop::sample::Index>()),
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(mut bytes, replacements, cut, tail)| {
            for (index, byte) in replacements {
                let at = index.index(bytes.len());
                bytes[at] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes.extend(tail);
            bytes
        })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        damaged_message(),
        // Few distinct bytes: many newlines, braces and quotes.
        proptest::collection::vec(prop::sample::select(b"{}[]\":,\n\r\\ a0\xff".to_vec()), 0..256),
    ]
}

// ----- a model of read_line ---------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Read {
    Line(Vec<u8>),
    End,
    TooLong,
    Truncated,
}

/// What successive `read_line(limit)` calls must return for `input`:
/// `\n`-separated lines, stopping at the first line over `limit` or at an
/// unterminated tail.
fn model(input: &[u8], limit: usize) -> Vec<Read> {
    let mut reads = Vec::new();
    let mut rest = input;
    loop {
        if rest.is_empty() {
            reads.push(Read::End);
            return reads;
        }
        match rest.iter().position(|byte| *byte == b'\n') {
            Some(index) if index > limit => {
                reads.push(Read::TooLong);
                return reads;
            }
            Some(index) => {
                reads.push(Read::Line(rest[..index].to_vec()));
                rest = &rest[index + 1..];
            }
            None => {
                reads.push(if rest.len() > limit {
                    Read::TooLong
                } else {
                    Read::Truncated
                });
                return reads;
            }
        }
    }
}

fn observed(result: Result<Option<Vec<u8>>, FrameError>) -> Option<Read> {
    match result {
        Ok(Some(line)) => Some(Read::Line(line)),
        Ok(None) => Some(Read::End),
        Err(FrameError::TooLong { .. }) => Some(Read::TooLong),
        Err(FrameError::Truncated) => Some(Read::Truncated),
        Err(_) => None,
    }
}

/// Every read of `input` through a buffer of `capacity` bytes, until the
/// end or the first error.
fn read_all(input: &[u8], limit: usize, capacity: usize) -> Vec<Read> {
    let mut reader = BufReader::with_capacity(capacity, Cursor::new(input.to_vec()));
    let mut reads = Vec::new();
    loop {
        let read = observed(frame::read_line(&mut reader, limit)).expect("no I/O error from memory");
        let last = !matches!(read, Read::Line(_));
        reads.push(read);
        if last {
            return reads;
        }
    }
}

// ----- properties -------------------------------------------------------

proptest! {
    #![proptest_config(config(1024))]

    /// Whatever arrives as a line, decoding it is a value or an error.
    #[test]
    fn decode_never_panics(bytes in any_bytes()) {
        let _ = frame::decode::<Hello>(&bytes);
        let _ = frame::decode::<HelloReply>(&bytes);
        let _ = frame::decode::<ControlRequest>(&bytes);
        let _ = frame::decode::<ControlResponse>(&bytes);
        let _ = frame::decode::<serde_json::Value>(&bytes);
    }

    /// Bytes that are not UTF-8 are named as such, never half-parsed.
    #[test]
    fn invalid_utf8_is_refused_by_name(mut bytes in any_bytes(), bad in prop::sample::select(vec![0x80u8, 0xc0, 0xff, 0xfe])) {
        bytes.insert(0, bad);
        prop_assert!(matches!(frame::decode::<Hello>(&bytes), Err(FrameError::NotUtf8)));
        prop_assert!(matches!(frame::decode::<ControlRequest>(&bytes), Err(FrameError::NotUtf8)));
    }

    /// `read_line` returns exactly the lines of the input, never one longer
    /// than its limit, whatever the limit and however the bytes arrive.
    #[test]
    fn read_line_matches_its_model(bytes in any_bytes(), limit in 0usize..300, capacity in 1usize..64) {
        prop_assert_eq!(read_all(&bytes, limit, capacity), model(&bytes, limit));
    }

    /// A peer that never sends a newline cannot make the reader buffer more
    /// than the limit: the error comes as soon as the limit is passed.
    #[test]
    fn an_endless_line_is_cut_at_the_limit(limit in 0usize..4096, capacity in 1usize..512) {
        struct Endless;
        impl std::io::Read for Endless {
            fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
                buffer.fill(b'a');
                Ok(buffer.len())
            }
        }
        let mut reader = BufReader::with_capacity(capacity, Endless);
        let cut = matches!(frame::read_line(&mut reader, limit), Err(FrameError::TooLong { limit: l }) if l == limit);
        prop_assert!(cut, "an endless line under limit {} was not cut", limit);
    }

    /// The encoded form is one line whatever the strings hold, and it reads
    /// back as the same hello.
    #[test]
    fn hello_round_trips(hello in hello()) {
        let line = frame::encode(&hello);
        prop_assert_eq!(line.iter().filter(|byte| **byte == b'\n').count(), 1);
        prop_assert_eq!(line.last(), Some(&b'\n'));
        let mut reader = Cursor::new(line.clone());
        let read = frame::read_line(&mut reader, line.len()).expect("reads").expect("a line");
        let back: Hello = frame::decode(&read).expect("decodes");
        prop_assert_eq!(back, hello);
    }

    #[test]
    fn hello_reply_round_trips(reply in hello_reply()) {
        let line = frame::encode(&reply);
        prop_assert_eq!(line.iter().filter(|byte| **byte == b'\n').count(), 1);
        let back: HelloReply = frame::decode(&line).expect("decodes");
        prop_assert_eq!(back, reply);
    }

    #[test]
    fn control_request_round_trips(request in control_request()) {
        let line = frame::encode(&request);
        prop_assert_eq!(line.iter().filter(|byte| **byte == b'\n').count(), 1);
        let mut reader = Cursor::new(line.clone());
        let read = frame::read_line(&mut reader, CONTROL_MAX_BYTES).expect("reads").expect("a line");
        let back: ControlRequest = frame::decode(&read).expect("decodes");
        prop_assert_eq!(back, request);
    }

    #[test]
    fn control_response_round_trips(response in control_response()) {
        let line = frame::encode(&response);
        prop_assert_eq!(line.iter().filter(|byte| **byte == b'\n').count(), 1);
        let back: ControlResponse = frame::decode(&line).expect("decodes");
        prop_assert_eq!(back, response);
    }

    /// A hello of another version is refused with a message that names both
    /// versions and the binary to restart; a foreign protocol names both
    /// protocols.
    #[test]
    fn mismatches_name_both_sides(mut hello in hello(), version in any::<u32>()) {
        hello.version = version;
        let result = hello.check_compatible();
        if hello.protocol != PROTOCOL_NAME {
            let message = result.expect_err("a foreign protocol is refused").to_string();
            prop_assert!(message.contains(PROTOCOL_NAME), "{}", message);
            prop_assert!(message.contains(&format!("`{}`", hello.protocol)), "{}", message);
        } else if version != PROTOCOL_VERSION {
            let error = result.expect_err("another version is refused");
            let is_mismatch = matches!(error, HelloError::VersionMismatch { .. });
            prop_assert!(is_mismatch, "{:?}", error);
            let message = error.to_string();
            prop_assert!(message.contains(&format!("version {version}")), "{}", message);
            prop_assert!(message.contains(&format!("version {PROTOCOL_VERSION}")), "{}", message);
            prop_assert!(message.contains(hello.role.binary()), "{}", message);
        } else {
            prop_assert!(result.is_ok());
        }
    }

    /// Forwarded variables may carry API keys: `Debug` shows their names only.
    #[test]
    fn hello_debug_never_shows_values(
        env in proptest::collection::btree_map("[A-Z_]{1,16}", "secret-[a-z0-9]{12}", 1..6),
        workspace in proptest::option::of(path()),
    ) {
        let hello = Hello { env: env.clone(), workspace, ..Hello::new(Role::Shim, Channel::Mcp) };
        let shown = format!("{hello:?}");
        for (name, value) in &env {
            prop_assert!(shown.contains(name.as_str()), "{}", shown);
            prop_assert!(!shown.contains(value.as_str()), "{}", shown);
        }
    }
}

/// A hello built by this crate always fits the daemon's hello limit, with
/// the variables a real client forwards.
#[test]
fn a_realistic_hello_fits_its_limit() {
    let env: BTreeMap<String, String> = [
        (
            "CODEX_FUSION_ACP_COMMAND",
            "npx -y @agentclientprotocol/codex-acp".to_owned(),
        ),
        ("CODEX_FUSION_LOG", format!("/home/{}/log.jsonl", "u".repeat(200))),
        ("OPENAI_API_KEY", format!("sk-{}", "k".repeat(200))),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let hello = Hello {
        env,
        ..Hello::new(Role::Shim, Channel::Mcp).with_workspace(PathBuf::from(format!("/{}", "w".repeat(4000))))
    };
    assert!(frame::encode(&hello).len() < HELLO_MAX_BYTES);
}

/// The async reader (daemon side) and the blocking one (shim side) agree
/// on every input. Only built when the crate's `tokio` feature is on, as in
/// a workspace run.
#[cfg(feature = "tokio")]
mod async_twin {
    use super::*;

    fn read_all_async(input: &[u8], limit: usize, capacity: usize) -> Vec<Read> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let mut reader = tokio::io::BufReader::with_capacity(capacity, input);
            let mut reads = Vec::new();
            loop {
                let read = observed(frame::read_line_async(&mut reader, limit).await).expect("no I/O error");
                let last = !matches!(read, Read::Line(_));
                reads.push(read);
                if last {
                    return reads;
                }
            }
        })
    }

    proptest! {
        #![proptest_config(config(512))]

        #[test]
        fn read_line_async_matches_read_line(bytes in any_bytes(), limit in 0usize..300, capacity in 1usize..64) {
            prop_assert_eq!(read_all_async(&bytes, limit, capacity), read_all(&bytes, limit, capacity));
        }
    }
}
