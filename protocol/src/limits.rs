//! Size and time limits of the socket protocol, with the reason for each.

use std::time::Duration;

/// Longest hello line. A hello is a few hundred bytes plus the forwarded
/// `CODEX_FUSION_*` variables; 64 KiB leaves room for long paths without letting
/// a stray client make the daemon buffer much.
pub const HELLO_MAX_BYTES: usize = 64 * 1024;

/// A client that connects and sends no hello within this is disconnected, so
/// idle sockets cannot pile up.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest control request or response line (status of many workspaces fits).
pub const CONTROL_MAX_BYTES: usize = 1024 * 1024;

/// Longest MCP message the daemon reads. Large enough for a review of a
/// multi-megabyte diff (JSON-escaped), small enough that a client cannot make
/// the daemon hold an unbounded buffer. Longer lines are dropped, and the
/// connection stays open.
pub const MCP_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How long a CLI or hook waits for the daemon to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
