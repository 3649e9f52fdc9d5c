//! The settings one connection brings: its `CODEX_FUSION_*` variables, parsed
//! into facts (workspace, agent command, guardian policy, timeouts) before any
//! work starts. A malformed value is an error that names the variable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use codex_fusion_protocol::agents::AgentSpec;
pub use codex_fusion_protocol::command::{AcpCommand, CommandError};

use crate::guardian::Policy;

pub use codex_fusion_protocol::allow::{ALLOW_COMMANDS_ENV, ALLOW_EXTERNAL_READS_ENV, ALLOW_WRITES_ENV};
pub use codex_fusion_protocol::command::ACP_COMMAND_ENV;
pub const ALLOW_CODEX_CONFIG_ENV: &str = "CODEX_FUSION_ALLOW_CODEX_CONFIG";
pub const TURN_TIMEOUT_ENV: &str = "CODEX_FUSION_TURN_TIMEOUT_MS";
pub const STARTUP_TIMEOUT_ENV: &str = "CODEX_FUSION_STARTUP_TIMEOUT_MS";
pub const LOG_ENV: &str = "CODEX_FUSION_LOG";
pub const MAX_RESULT_CHARS_ENV: &str = "CODEX_FUSION_MAX_RESULT_CHARS";

/// How codex-acp is launched when `CODEX_FUSION_ACP_COMMAND` is unset.
pub const DEFAULT_ACP_COMMAND: &str = "codex-acp";
/// Idle limit of a turn when `CODEX_FUSION_TURN_TIMEOUT_MS` is unset.
pub const DEFAULT_TURN_TIMEOUT: Duration = Duration::from_millis(300_000);
/// How long spawn + initialize + session setup may take before the start is
/// abandoned (the next call retries). Generous: `npx` may unpack a package.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest tool result, in characters, a character outside ASCII counting
/// three (`render::cost`). Claude Code caps a tool's output at 25 000 tokens
/// (roughly 100 000 characters of English or code); 40 000 keeps a result
/// well under it, in any script, and leaves room in Claude's context.
pub const DEFAULT_MAX_RESULT_CHARS: usize = 40_000;
/// Below this a cut answer would be mostly notes.
const MIN_RESULT_CHARS: usize = 1_000;

/// Variables that are ours but read elsewhere (the shim, the path resolver).
const KNOWN_ELSEWHERE: &[&str] = &[
    "CODEX_FUSION_WORKSPACE",
    "CODEX_FUSION_SOCKET",
    "CODEX_FUSION_STATE_DIR",
    "CODEX_FUSION_AGENT_IDLE_SECS",
    "CODEX_FUSION_AGENT_MAX_SESSIONS",
    "CODEX_FUSION_TEST_PANIC_MARKER",
    "CODEX_FUSION_DAEMON_LOG",
    "CODEX_FUSION_DAEMON_QUIET_STDERR",
];

/// A connection's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The command of the agent this settings value is for (see
    /// [`Settings::for_agent`]); the default agent's as parsed.
    pub acp_command: AcpCommand,
    /// The agents on offer (`CODEX_FUSION_AGENTS`), the default first.
    pub agents: Vec<AgentSpec>,
    /// The reviewer a Codex host gets when the list offers no agent but
    /// Codex: `claude`, with its command as `CODEX_FUSION_AGENT_CLAUDE`
    /// sets it.
    pub host_fallback: Option<AgentSpec>,
    pub policy: Policy,
    /// `CODEX_FUSION_ALLOW_CODEX_CONFIG`: let Codex load the MCP servers,
    /// hooks and rules of the user's and the project's own Codex config.
    pub allow_codex_config: bool,
    pub turn_timeout: Duration,
    pub startup_timeout: Duration,
    /// Append one JSONL record per turn here.
    pub log_path: Option<PathBuf>,
    /// Longest tool result; a longer answer is cut and saved whole.
    pub max_result_chars: usize,
}

/// A setting that could not be used. The text names the variable and says
/// what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{variable}: expected 1/true/yes or 0/false/no, got `{value}`")]
    Bool { variable: &'static str, value: String },
    #[error("{variable}: expected a whole number of milliseconds greater than 0, got `{value}`")]
    Millis { variable: &'static str, value: String },
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Agents(#[from] codex_fusion_protocol::agents::AgentsError),
    #[error("{LOG_ENV}: expected an absolute file path, got `{value}`")]
    LogPath { value: String },
    #[error("{MAX_RESULT_CHARS_ENV}: expected a number of characters of at least {MIN_RESULT_CHARS}, got `{value}`")]
    ResultChars { value: String },
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            acp_command: AcpCommand::parse(DEFAULT_ACP_COMMAND).expect("the default command parses"),
            agents: codex_fusion_protocol::agents::on_offer(|_| None).expect("the default agents parse"),
            host_fallback: codex_fusion_protocol::agents::on_offer(|name| {
                (name == codex_fusion_protocol::agents::AGENTS_ENV).then(|| "claude".to_owned())
            })
            .ok()
            .and_then(|agents| agents.into_iter().next()),
            policy: Policy::default(),
            allow_codex_config: false,
            turn_timeout: DEFAULT_TURN_TIMEOUT,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            log_path: None,
            max_result_chars: DEFAULT_MAX_RESULT_CHARS,
        }
    }
}

impl Settings {
    /// Parses the forwarded variables. Unknown `CODEX_FUSION_*` names are
    /// returned separately so the caller can warn about likely typos.
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<(Settings, Vec<String>), SettingsError> {
        let defaults = Settings::default();
        let get = |name: &str| env.get(name).map(String::as_str).filter(|value| !value.is_empty());
        // Read and checked as doctor reads them.
        let offered = codex_fusion_protocol::agents::on_offer(|name| get(name).map(str::to_owned))?;
        let host_fallback = codex_fusion_protocol::agents::on_offer(|name| match name {
            codex_fusion_protocol::agents::AGENTS_ENV => Some("claude".to_owned()),
            other => get(other).map(str::to_owned),
        })
        .ok()
        .and_then(|agents| agents.into_iter().next());
        let acp_command = offered
            .first()
            .map_or(defaults.acp_command, |agent| agent.command.clone());
        let agent_variables: Vec<String> = offered
            .iter()
            .map(|agent| codex_fusion_protocol::agents::command_variable(&agent.name))
            .collect();
        let policy = Policy {
            allow_external_reads: parse_bool(ALLOW_EXTERNAL_READS_ENV, get(ALLOW_EXTERNAL_READS_ENV))?,
            allow_writes: parse_bool(ALLOW_WRITES_ENV, get(ALLOW_WRITES_ENV))?,
            allow_commands: parse_bool(ALLOW_COMMANDS_ENV, get(ALLOW_COMMANDS_ENV))?,
            // As for the default agent (see `with_command`).
            commands_see_credentials: offered
                .first()
                .is_some_and(|agent| agent.name != codex_fusion_protocol::agents::DEFAULT_AGENT),
        };
        let allow_codex_config = parse_bool(ALLOW_CODEX_CONFIG_ENV, get(ALLOW_CODEX_CONFIG_ENV))?;
        let turn_timeout = parse_millis(TURN_TIMEOUT_ENV, get(TURN_TIMEOUT_ENV))?.unwrap_or(defaults.turn_timeout);
        let startup_timeout =
            parse_millis(STARTUP_TIMEOUT_ENV, get(STARTUP_TIMEOUT_ENV))?.unwrap_or(defaults.startup_timeout);
        let log_path = match get(LOG_ENV) {
            Some(value) => {
                let path = PathBuf::from(value);
                if !path.is_absolute() {
                    return Err(SettingsError::LogPath {
                        value: value.to_owned(),
                    });
                }
                Some(path)
            }
            None => None,
        };
        let max_result_chars = match get(MAX_RESULT_CHARS_ENV) {
            Some(value) => match value.trim().parse::<usize>() {
                Ok(chars) if chars >= MIN_RESULT_CHARS => chars,
                _ => {
                    return Err(SettingsError::ResultChars {
                        value: value.to_owned(),
                    });
                }
            },
            None => defaults.max_result_chars,
        };
        let known = [
            MAX_RESULT_CHARS_ENV,
            ACP_COMMAND_ENV,
            ALLOW_EXTERNAL_READS_ENV,
            ALLOW_WRITES_ENV,
            ALLOW_COMMANDS_ENV,
            ALLOW_CODEX_CONFIG_ENV,
            TURN_TIMEOUT_ENV,
            STARTUP_TIMEOUT_ENV,
            LOG_ENV,
        ];
        let unknown = env
            .keys()
            .filter(|name| name.starts_with(codex_fusion_protocol::ENV_PREFIX))
            .filter(|name| !known.contains(&name.as_str()) && !KNOWN_ELSEWHERE.contains(&name.as_str()))
            .filter(|name| {
                name.as_str() != codex_fusion_protocol::agents::AGENTS_ENV && !agent_variables.contains(name)
            })
            .cloned()
            .collect();
        Ok((
            Settings {
                acp_command,
                agents: offered,
                host_fallback,
                policy,
                allow_codex_config,
                turn_timeout,
                startup_timeout,
                log_path,
                max_result_chars,
            },
            unknown,
        ))
    }
}

impl Settings {
    /// The default agent's name: the first on offer.
    pub fn default_agent(&self) -> &str {
        self.agents
            .first()
            .map_or(codex_fusion_protocol::agents::DEFAULT_AGENT, |agent| {
                agent.name.as_str()
            })
    }

    /// These settings for agent `name`, with its command; `None` if it is
    /// not on offer.
    pub fn for_agent(&self, name: &str) -> Option<Settings> {
        let agent = self.agents.iter().find(|agent| agent.name == name)?;
        Some(self.with_command(name, agent.command.clone()))
    }

    /// These settings for agent `name` run by `command`: another agent than
    /// Codex runs its commands with its own credentials in their
    /// environment, so they always ask.
    pub fn with_command(&self, name: &str, command: AcpCommand) -> Settings {
        let mut policy = self.policy;
        policy.commands_see_credentials = name != codex_fusion_protocol::agents::DEFAULT_AGENT;
        Settings {
            acp_command: command,
            policy,
            ..self.clone()
        }
    }

    /// The names on offer, comma-separated, for messages.
    pub fn offered_names(&self) -> String {
        let names: Vec<&str> = self.agents.iter().map(|agent| agent.name.as_str()).collect();
        names.join(", ")
    }
}

/// `1`, `true`, `yes` (any case) are on; `0`, `false`, `no` and unset are off.
pub fn parse_bool(variable: &'static str, value: Option<&str>) -> Result<bool, SettingsError> {
    let Some(value) = value else { return Ok(false) };
    codex_fusion_protocol::allow::parse(value).ok_or_else(|| SettingsError::Bool {
        variable,
        value: value.to_owned(),
    })
}

fn parse_millis(variable: &'static str, value: Option<&str>) -> Result<Option<Duration>, SettingsError> {
    let Some(value) = value else { return Ok(None) };
    match value.trim().parse::<u64>() {
        Ok(millis) if millis > 0 => Ok(Some(Duration::from_millis(millis))),
        _ => Err(SettingsError::Millis {
            variable,
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let (settings, unknown) = Settings::from_env(&env(&[])).expect("parses");
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.acp_command.program, "codex-acp");
        assert_eq!(settings.turn_timeout, Duration::from_millis(300_000));
        assert!(unknown.is_empty());
    }

    #[test]
    fn the_agents_on_offer_are_checked_and_codex_takes_its_command_from_them() {
        let error = Settings::from_env(&env(&[("CODEX_FUSION_AGENTS", "codex,,claude")])).expect_err("malformed");
        assert!(
            error.to_string().starts_with("CODEX_FUSION_AGENTS: an empty name"),
            "{error}"
        );
        let error = Settings::from_env(&env(&[("CODEX_FUSION_AGENTS", "grok")])).expect_err("unknown");
        assert!(error.to_string().contains("CODEX_FUSION_AGENT_GROK"), "{error}");
        let (settings, unknown) = Settings::from_env(&env(&[
            ("CODEX_FUSION_AGENTS", "codex,claude"),
            ("CODEX_FUSION_AGENT_CODEX", "npx codex-acp"),
            ("CODEX_FUSION_AGENT_CLAUDE", "claude-agent-acp"),
            ("CODEX_FUSION_AGENT_OTHER", "x"),
        ]))
        .expect("parses");
        assert_eq!(settings.acp_command.program, "npx");
        assert_eq!(
            unknown,
            ["CODEX_FUSION_AGENT_OTHER"],
            "a command for no agent on offer is a likely typo"
        );
    }

    #[test]
    fn booleans_accept_the_documented_spellings() {
        for on in ["1", "true", "TRUE", "Yes", " yes "] {
            assert!(parse_bool(ALLOW_WRITES_ENV, Some(on)).expect("valid"), "{on}");
        }
        for off in ["0", "false", "No"] {
            assert!(!parse_bool(ALLOW_WRITES_ENV, Some(off)).expect("valid"), "{off}");
        }
        let error = Settings::from_env(&env(&[(ALLOW_COMMANDS_ENV, "sure")])).expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "CODEX_FUSION_ALLOW_COMMANDS: expected 1/true/yes or 0/false/no, got `sure`"
        );
    }

    #[test]
    fn timeout_must_be_positive_milliseconds() {
        let (settings, _) = Settings::from_env(&env(&[(TURN_TIMEOUT_ENV, "1500")])).expect("parses");
        assert_eq!(settings.turn_timeout, Duration::from_millis(1500));
        let error = Settings::from_env(&env(&[(TURN_TIMEOUT_ENV, "5m")])).expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "CODEX_FUSION_TURN_TIMEOUT_MS: expected a whole number of milliseconds greater than 0, got `5m`"
        );
        assert!(Settings::from_env(&env(&[(TURN_TIMEOUT_ENV, "0")])).is_err());
    }

    #[test]
    fn result_budget_is_a_sane_number_of_characters() {
        let (settings, _) = Settings::from_env(&env(&[(MAX_RESULT_CHARS_ENV, "5000")])).expect("parses");
        assert_eq!(settings.max_result_chars, 5000);
        let error = Settings::from_env(&env(&[(MAX_RESULT_CHARS_ENV, "12")])).expect_err("too small");
        assert!(
            error.to_string().starts_with("CODEX_FUSION_MAX_RESULT_CHARS:"),
            "{error}"
        );
        assert!(Settings::from_env(&env(&[(MAX_RESULT_CHARS_ENV, "lots")])).is_err());
    }

    #[test]
    fn log_path_must_be_absolute_and_unknown_names_are_reported() {
        assert!(Settings::from_env(&env(&[(LOG_ENV, "rel.jsonl")])).is_err());
        let (settings, unknown) = Settings::from_env(&env(&[
            (LOG_ENV, "/tmp/log.jsonl"),
            ("CODEX_FUSION_ALLOW_WRITE", "1"),
            ("CODEX_FUSION_WORKSPACE", "/w"),
            ("OPENAI_API_KEY", "sk-x"),
        ]))
        .expect("parses");
        assert_eq!(settings.log_path, Some(PathBuf::from("/tmp/log.jsonl")));
        assert_eq!(unknown, ["CODEX_FUSION_ALLOW_WRITE"]);
        let (settings, unknown) = Settings::from_env(&env(&[(ALLOW_CODEX_CONFIG_ENV, "yes")])).expect("parses");
        assert!(settings.allow_codex_config && unknown.is_empty());
    }
}
