//! The user's directories as `install` and `doctor` use them, from HOME,
//! XDG_CONFIG_HOME and CLAUDE_CONFIG_DIR (so tests can point them at a
//! temporary home).

use std::path::PathBuf;

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
