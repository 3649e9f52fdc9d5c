//! The little the shim knows about the MCP traffic it forwards: which client
//! requests await a response, and the client's `initialize` exchange to
//! replay after a reconnect. Messages are read (ids and methods only), never
//! changed.
//!
//! Ids are compared in a canonical form (parsed and re-encoded), because the
//! daemon's MCP library re-serialises the ids it answers: `"a\u0062"` comes
//! back as `"ab"`.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::value::RawValue;

/// What one line is, as far as the shim cares. Ids are canonical JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request with this id and method.
    Request { id: String, method: String },
    /// A notification; for `notifications/cancelled`, the request it cancels.
    Notification { method: String, cancels: Option<String> },
    /// A response to request `id`.
    Response { id: String },
    /// Not JSON-RPC we understand; forwarded untouched.
    Other,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CancelParams<'a> {
    #[serde(rename = "requestId", borrow)]
    request_id: Option<&'a RawValue>,
}

/// Classifies one line (without reading more than ids and methods).
pub fn classify(line: &[u8]) -> Kind {
    let Ok(fields) = serde_json::from_slice::<Fields>(line) else {
        return Kind::Other;
    };
    match (fields.id, fields.method) {
        (Some(id), Some(method)) => Kind::Request {
            id: canonical_id(id),
            method: method.into_owned(),
        },
        (None, Some(method)) => {
            let cancels = if method == "notifications/cancelled" {
                fields
                    .params
                    .and_then(|params| serde_json::from_str::<CancelParams>(params.get()).ok())
                    .and_then(|params| params.request_id)
                    .map(canonical_id)
            } else {
                None
            };
            Kind::Notification {
                method: method.into_owned(),
                cancels,
            }
        }
        (Some(id), None) => Kind::Response { id: canonical_id(id) },
        (None, None) => Kind::Other,
    }
}

/// The id as serde_json writes it. Plain ids (a string without escapes, an
/// integer) already are; only the rest is parsed and re-encoded.
fn canonical_id(id: &RawValue) -> String {
    let text = id.get();
    let bytes = text.as_bytes();
    let plain = match bytes.first() {
        Some(b'"') => !bytes.contains(&b'\\'),
        Some(_) => {
            let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        }
        None => false,
    };
    if plain {
        return text.to_owned();
    }
    serde_json::from_str::<serde_json::Value>(text).map_or_else(|_| text.to_owned(), |value| value.to_string())
}

/// Requests in flight and the recorded handshake.
#[derive(Debug, Default)]
pub struct Tracking {
    in_flight: HashSet<String>,
    /// The client's `initialize` request line, verbatim.
    initialize: Option<Vec<u8>>,
    initialize_id: Option<String>,
    /// Whether the client has received a response to its `initialize`.
    initialize_answered: bool,
    /// The client's `notifications/initialized` line, verbatim.
    initialized: Option<Vec<u8>>,
    /// The id of a replayed `initialize` whose response must not reach the
    /// client (it already has one).
    swallow: Option<String>,
}

/// What a reconnect does, decided from the tracking state.
#[derive(Debug, PartialEq, Eq)]
pub struct Replay {
    /// Requests the old daemon may have run: answered with an error.
    pub fail: Vec<String>,
    /// The recorded handshake, sent first on the new connection.
    pub handshake: Vec<Vec<u8>>,
    /// The replayed `initialize` whose response the client must not get
    /// (set with [`Tracking::replayed`] once the handshake is sent).
    pub swallow: Option<String>,
}

impl Tracking {
    /// Notes a line the client sent, classified as `kind`.
    pub fn from_client(&mut self, kind: Kind, line: &[u8]) {
        match kind {
            Kind::Request { id, method } => {
                if method == "initialize" {
                    self.initialize = Some(line.to_vec());
                    self.initialize_id = Some(id.clone());
                    self.initialize_answered = false;
                }
                self.in_flight.insert(id);
            }
            Kind::Notification { method, cancels } => {
                if method == "notifications/initialized" {
                    self.initialized = Some(line.to_vec());
                }
                // A cancelled request gets no response; it is no longer ours
                // to answer.
                if let Some(id) = cancels {
                    self.in_flight.remove(&id);
                }
            }
            Kind::Response { .. } | Kind::Other => {}
        }
    }

    /// Notes a response the daemon sent; `false` means drop it (the response
    /// to a replayed `initialize`).
    pub fn from_daemon(&mut self, id: &str) -> bool {
        if self.swallow.as_deref() == Some(id) {
            self.swallow = None;
            return false;
        }
        if self.in_flight.remove(id) && self.initialize_id.as_deref() == Some(id) {
            self.initialize_answered = true;
        }
        true
    }

    /// Plans a reconnect: every request in flight is failed, except those in
    /// `unsent` (the old daemon never received them; they are sent again) and
    /// an `initialize` the client still waits for (replayed, and its answer
    /// goes to the client). Those stay in flight.
    pub fn plan_reconnect(&mut self, unsent: &HashSet<String>) -> Replay {
        let waiting_initialize = self.initialize_id.as_ref().filter(|_| !self.initialize_answered);
        let mut fail: Vec<String> = self
            .in_flight
            .iter()
            .filter(|id| !unsent.contains(*id) && waiting_initialize != Some(*id))
            .cloned()
            .collect();
        for id in &fail {
            self.in_flight.remove(id);
        }
        fail.sort();
        let handshake = [&self.initialize, &self.initialized]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let swallow = self.initialize_id.clone().filter(|_| self.initialize_answered);
        Replay {
            fail,
            handshake,
            swallow,
        }
    }

    /// Notes that the handshake of `replay` went to a new daemon.
    pub fn replayed(&mut self, replay: &Replay) {
        self.swallow = replay.swallow.clone();
    }

    /// Takes every request still waiting for a response, in id order.
    pub fn take_in_flight(&mut self) -> Vec<String> {
        let mut ids: Vec<String> = self.in_flight.drain().collect();
        ids.sort();
        ids
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// JSON-RPC "Invalid Request": a message the daemon could never accept.
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC "Internal error".
pub const INTERNAL_ERROR: i32 = -32603;

/// A JSON-RPC error response for request `id` (canonical JSON), as one line
/// with its newline.
pub fn error_response(id: &str, code: i32, message: &str) -> Vec<u8> {
    let message = serde_json::to_string(message).expect("a string serializes");
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{{\"code\":{code},\"message\":{message}}}}}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(tracking: &mut Tracking, line: &[u8]) {
        tracking.from_client(classify(line), line);
    }

    fn daemon(tracking: &mut Tracking, line: &[u8]) -> bool {
        match classify(line) {
            Kind::Response { id } => tracking.from_daemon(&id),
            _ => true,
        }
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#),
            Kind::Request {
                id: "7".into(),
                method: "tools/call".into()
            }
        );
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":"a\"b","result":{}}"#),
            Kind::Response { id: r#""a\"b""#.into() }
        );
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"x"}}"#),
            Kind::Notification {
                method: "notifications/cancelled".into(),
                cancels: Some("7".into())
            }
        );
        assert_eq!(classify(b"not json"), Kind::Other);
        assert_eq!(classify(b"[1,2]"), Kind::Other);
    }

    /// r8: ids are compared as the daemon re-serialises them.
    #[test]
    fn ids_written_with_escapes_match_their_canonical_form() {
        let mut tracking = Tracking::default();
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","id":"a\u0062\/c","method":"tools/call"}"#,
        );
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","id":"\u00e9t\u00e9","method":"tools/call"}"#,
        );
        client(&mut tracking, br#"{"jsonrpc":"2.0","id": 12 ,"method":"tools/call"}"#);
        assert_eq!(tracking.in_flight(), 3);
        assert!(daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":"ab/c","result":{}}"#));
        assert!(daemon(
            &mut tracking,
            "{\"jsonrpc\":\"2.0\",\"id\":\"été\",\"result\":{}}".as_bytes()
        ));
        assert!(daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":12,"result":{}}"#));
        assert_eq!(tracking.in_flight(), 0, "{tracking:?}");
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","id":"x\u0079","method":"tools/call"}"#,
        );
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"xy"}}"#,
        );
        assert_eq!(tracking.in_flight(), 0, "a cancel names the id canonically too");
    }

    #[test]
    fn in_flight_follows_requests_responses_and_cancels() {
        let mut tracking = Tracking::default();
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
        );
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        );
        assert!(daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
        client(&mut tracking, br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#);
        client(&mut tracking, br#"{"jsonrpc":"2.0","id":2,"method":"tools/call"}"#);
        client(&mut tracking, br#"{"jsonrpc":"2.0","id":3,"method":"tools/call"}"#);
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}"#,
        );
        assert!(daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#));
        let replay = tracking.plan_reconnect(&HashSet::new());
        assert_eq!(replay.fail, ["3"]);
        assert_eq!(replay.handshake.len(), 2, "initialize and initialized");
        assert_eq!(replay.swallow.as_deref(), Some("0"));
        assert_eq!(tracking.in_flight(), 0);
    }

    #[test]
    fn the_replayed_initialize_response_is_swallowed_once() {
        let mut tracking = Tracking::default();
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
        );
        assert!(daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
        let replay = tracking.plan_reconnect(&HashSet::new());
        tracking.replayed(&replay);
        assert!(!daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
        assert!(daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
    }

    /// r2: an `initialize` the client still waits for is replayed, not
    /// failed, and its response is the client's.
    #[test]
    fn an_unanswered_initialize_stays_in_flight_and_is_not_swallowed() {
        let mut tracking = Tracking::default();
        client(
            &mut tracking,
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
        );
        client(&mut tracking, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        let unsent = HashSet::from(["1".to_owned()]);
        let replay = tracking.plan_reconnect(&unsent);
        assert_eq!(replay.fail, Vec::<String>::new());
        assert_eq!(replay.handshake.len(), 1);
        assert_eq!(replay.swallow, None);
        tracking.replayed(&replay);
        assert_eq!(tracking.in_flight(), 2);
        assert!(daemon(&mut tracking, br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
        // A second reconnect now swallows the replay's answer.
        let replay = tracking.plan_reconnect(&HashSet::new());
        assert_eq!(replay.fail, ["1"]);
        assert_eq!(replay.swallow.as_deref(), Some("0"));
    }

    #[test]
    fn error_responses_are_valid_json_rpc() {
        let line = error_response(r#""req-1""#, INTERNAL_ERROR, "daemon \"restarted\"");
        assert!(line.ends_with(b"}\n"));
        let value: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(value["id"], "req-1");
        assert_eq!(value["error"]["message"], "daemon \"restarted\"");
        assert_eq!(value["error"]["code"], -32603);
    }
}
