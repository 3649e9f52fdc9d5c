//! Reading stdin to its end, with a size limit: the hook's SessionStart JSON
//! and an `ask` argument given as `-` both come this way.

use std::io::Read as _;

/// Reads stdin to its end, or until it has given more than `limit` bytes
/// (then the result is longer than `limit`, for the caller to refuse).
pub fn read_stdin(limit: u64) -> std::io::Result<Vec<u8>> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit.saturating_add(1))
        .read_to_end(&mut input)?;
    Ok(input)
}
