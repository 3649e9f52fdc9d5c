//! The little the shim knows about the MCP traffic it forwards: which client
//! requests await a response, and the client's `initialize` exchange to
//! replay after a reconnect. Messages are read (ids and methods only), never
//! changed.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::value::RawValue;

/// What one line is, as far as the shim cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request with this id (raw JSON) and method.
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
            id: id.get().to_owned(),
            method: method.into_owned(),
        },
        (None, Some(method)) => {
            let cancels = if method == "notifications/cancelled" {
                fields
                    .params
                    .and_then(|params| serde_json::from_str::<CancelParams>(params.get()).ok())
                    .and_then(|params| params.request_id)
                    .map(|id| id.get().to_owned())
            } else {
                None
            };
            Kind::Notification {
                method: method.into_owned(),
                cancels,
            }
        }
        (Some(id), None) => Kind::Response {
            id: id.get().to_owned(),
        },
        (None, None) => Kind::Other,
    }
}

/// Requests in flight and the recorded handshake.
#[derive(Debug, Default)]
pub struct Tracking {
    in_flight: HashSet<String>,
    /// The client's `initialize` request line, verbatim.
    pub initialize: Option<Vec<u8>>,
    pub initialize_id: Option<String>,
    /// The client's `notifications/initialized` line, verbatim.
    pub initialized: Option<Vec<u8>>,
    /// The id of a replayed `initialize` whose response must not reach the
    /// client (it already has one).
    pub swallow: Option<String>,
}

impl Tracking {
    /// Notes a line the client sent.
    pub fn from_client(&mut self, line: &[u8]) {
        match classify(line) {
            Kind::Request { id, method } => {
                if method == "initialize" {
                    self.initialize = Some(line.to_vec());
                    self.initialize_id = Some(id.clone());
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

    /// Notes a line the daemon sent; `false` means drop it (the response to
    /// a replayed `initialize`).
    pub fn from_daemon(&mut self, line: &[u8]) -> bool {
        if let Kind::Response { id } = classify(line) {
            if self.swallow.as_ref() == Some(&id) {
                self.swallow = None;
                return false;
            }
            self.in_flight.remove(&id);
        }
        true
    }

    /// Takes every request still waiting for a response.
    pub fn take_in_flight(&mut self) -> Vec<String> {
        let mut ids: Vec<String> = self.in_flight.drain().collect();
        ids.sort();
        ids
    }

    /// Puts a request back in flight (it will be sent again).
    pub fn restore_in_flight(&mut self, id: String) {
        self.in_flight.insert(id);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// A JSON-RPC error response for request `id` (raw JSON), as one line.
pub fn error_response(id: &str, message: &str) -> Vec<u8> {
    let message = serde_json::to_string(message).expect("a string serializes");
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32603,"message":{message}}}}}"#).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn in_flight_follows_requests_responses_and_cancels() {
        let mut tracking = Tracking::default();
        tracking.from_client(br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#);
        tracking.from_client(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(tracking.from_daemon(br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
        tracking.from_client(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#);
        tracking.from_client(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call"}"#);
        tracking.from_client(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call"}"#);
        tracking.from_client(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}"#);
        assert!(tracking.from_daemon(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#));
        assert_eq!(tracking.take_in_flight(), ["3"]);
        assert_eq!(tracking.initialize_id.as_deref(), Some("0"));
        assert!(tracking.initialized.is_some());
    }

    #[test]
    fn the_replayed_initialize_response_is_swallowed_once() {
        let mut tracking = Tracking {
            swallow: Some("0".into()),
            ..Tracking::default()
        };
        assert!(!tracking.from_daemon(br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
        assert!(tracking.from_daemon(br#"{"jsonrpc":"2.0","id":0,"result":{}}"#));
    }

    #[test]
    fn error_responses_are_valid_json_rpc() {
        let line = error_response(r#""req-1""#, "daemon \"restarted\"");
        let value: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(value["id"], "req-1");
        assert_eq!(value["error"]["message"], "daemon \"restarted\"");
        assert_eq!(value["error"]["code"], -32603);
    }
}
