//! The user's directories as `install` and `doctor` use them, from HOME,
//! XDG_CONFIG_HOME and CLAUDE_CONFIG_DIR (so tests can point them at a
//! temporary home), and reading the JSON files Claude Code keeps there.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::claude::ClaudeFiles;
use crate::env_var;

#[derive(Debug, Clone)]
pub struct UserDirs {
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    pub config_home: PathBuf,
    pub claude: ClaudeFiles,
}

impl UserDirs {
    pub fn from_env() -> anyhow::Result<UserDirs> {
        let absolute = |name: &str| env_var(name).map(PathBuf::from).filter(|path| path.is_absolute());
        let Some(home) = absolute("HOME") else {
            bail!("HOME is not set to an absolute path; set it to your home directory");
        };
        let config_home = absolute("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
        let claude = ClaudeFiles::new(&home, absolute("CLAUDE_CONFIG_DIR"));
        Ok(UserDirs {
            home,
            config_home,
            claude,
        })
    }
}

/// A JSON file of Claude Code's: `Ok(None)` when it is missing or empty; an
/// error, naming the file, when it cannot be read or is not valid JSON
/// (with the line and column).
pub fn read_json(path: &Path) -> Result<Option<serde_json::Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| format!("{} {}", path.display(), crate::claude::not_json(&error)))
}
