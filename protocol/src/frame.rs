//! Line framing shared by every side: one JSON value per `\n`-terminated line,
//! read with a hard size limit so a peer can never make the reader buffer more.

use std::io::BufRead;

use serde::{Serialize, de::DeserializeOwned};

/// Why a line could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("line longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot encode the message: {0}")]
    Encode(serde_json::Error),
    #[error("connection closed before a complete line")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Serializes `value` as one line, newline included. Fails only for a value
/// JSON cannot carry: a path that is not valid UTF-8.
pub fn try_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    let mut line = serde_json::to_vec(value).map_err(FrameError::Encode)?;
    line.push(b'\n');
    Ok(line)
}

/// [`try_encode`] for values that cannot fail: protocol messages whose paths
/// were checked by [`crate::paths::canonical_directory`] (which refuses
/// non-UTF-8 paths) or came from a message that was itself decoded. A value
/// built from unchecked user input goes through [`try_encode`].
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    try_encode(value).expect("protocol messages hold only UTF-8 strings and checked paths")
}

/// Parses one line (with or without its newline).
pub fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, FrameError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| FrameError::NotUtf8)?;
    Ok(serde_json::from_str(text)?)
}

/// Reads one line of at most `limit` bytes (newline excluded) from a blocking
/// reader. `Ok(None)` is a clean end of stream before any byte.
pub fn read_line<R: BufRead>(reader: &mut R, limit: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error.into()),
        };
        if available.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        let newline = available.iter().position(|byte| *byte == b'\n');
        let take = newline.map_or(available.len(), |index| index);
        if line.len() + take > limit {
            return Err(FrameError::TooLong { limit });
        }
        line.extend_from_slice(&available[..take]);
        let consumed = newline.map_or(take, |index| index + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(Some(line));
        }
    }
}

/// The async twin of [`read_line`], for any buffered async reader.
#[cfg(feature = "tokio")]
pub async fn read_line_async<R>(reader: &mut R, limit: usize) -> Result<Option<Vec<u8>>, FrameError>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        let newline = available.iter().position(|byte| *byte == b'\n');
        let take = newline.unwrap_or(available.len());
        if line.len() + take > limit {
            return Err(FrameError::TooLong { limit });
        }
        line.extend_from_slice(&available[..take]);
        let consumed = newline.map_or(take, |index| index + 1);
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(Some(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ControlRequest;

    #[test]
    fn encode_then_read_then_decode() {
        let mut bytes = encode(&ControlRequest::Ping);
        bytes.extend(encode(&ControlRequest::Stop));
        let mut reader = std::io::Cursor::new(bytes);
        let first = read_line(&mut reader, 100).expect("reads").expect("a line");
        assert_eq!(decode::<ControlRequest>(&first).expect("decodes"), ControlRequest::Ping);
        let second = read_line(&mut reader, 100).expect("reads").expect("a line");
        assert_eq!(
            decode::<ControlRequest>(&second).expect("decodes"),
            ControlRequest::Stop
        );
        assert!(read_line(&mut reader, 100).expect("reads").is_none());
    }

    /// r5: a path JSON cannot carry is an error, not a panic.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_non_utf8_path_fails_to_encode_without_panicking() {
        use std::os::unix::ffi::OsStrExt as _;
        let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b"/w/caf\xe9"));
        let hello = crate::Hello::new(crate::Role::Shim, crate::Channel::Mcp).with_workspace(path);
        assert!(matches!(try_encode(&hello), Err(FrameError::Encode(_))));
    }

    #[test]
    fn over_limit_is_refused_without_reading_on() {
        let mut reader = std::io::Cursor::new(vec![b'a'; 1000]);
        assert!(matches!(
            read_line(&mut reader, 10),
            Err(FrameError::TooLong { limit: 10 })
        ));
    }

    #[test]
    fn a_line_without_newline_at_eof_is_truncated() {
        let mut reader = std::io::Cursor::new(b"{\"op\"".to_vec());
        assert!(matches!(read_line(&mut reader, 100), Err(FrameError::Truncated)));
    }

    #[test]
    fn invalid_utf8_is_named() {
        assert!(matches!(
            decode::<ControlRequest>(b"\xff\xfe\n"),
            Err(FrameError::NotUtf8)
        ));
    }
}
