//! The `CODEX_FUSION_ALLOW_*` switches, which widen what the guardian lets
//! Codex do without asking, and the way their values are read. The daemon
//! applies them; `codex-fusion doctor` warns when a project file sets them.

/// What every switch's name starts with.
pub const ALLOW_PREFIX: &str = "CODEX_FUSION_ALLOW_";
pub const ALLOW_EXTERNAL_READS_ENV: &str = "CODEX_FUSION_ALLOW_EXTERNAL_READS";
pub const ALLOW_WRITES_ENV: &str = "CODEX_FUSION_ALLOW_WRITES";
pub const ALLOW_COMMANDS_ENV: &str = "CODEX_FUSION_ALLOW_COMMANDS";

/// A switch's value: `1`, `true`, `yes` (any case, spaces around ignored)
/// are on; `0`, `false`, `no` and the empty string are off; anything else
/// is `None`, which the daemon refuses naming the variable.
pub fn parse(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_like_the_readme_says() {
        for on in ["1", "true", "YES", " True "] {
            assert_eq!(parse(on), Some(true), "{on}");
        }
        for off in ["0", "false", "No", ""] {
            assert_eq!(parse(off), Some(false), "{off}");
        }
        assert_eq!(parse("maybe"), None);
        assert!(ALLOW_WRITES_ENV.starts_with(ALLOW_PREFIX));
    }
}
