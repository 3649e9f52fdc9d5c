//! The agents on offer (issue 15, the council): `CODEX_FUSION_AGENTS`
//! names them, the first being the default, and each name's command comes
//! from `CODEX_FUSION_AGENT_<NAME>` or is built in. One reading of these
//! variables for every side (doctor now; the daemon's council next), so
//! that what doctor checks is what the daemon would run.

use crate::command::{ACP_COMMAND_ENV, AcpCommand};

/// The agents on offer, comma-separated; the first is the default.
pub const AGENTS_ENV: &str = "CODEX_FUSION_AGENTS";
/// Followed by a name in capitals (`-` as `_`): that agent's command.
pub const AGENT_COMMAND_PREFIX: &str = "CODEX_FUSION_AGENT_";
/// Who answers when `CODEX_FUSION_AGENTS` is not set.
pub const DEFAULT_AGENT: &str = "codex";

/// The names with a command of their own, and the npm package that has it.
pub const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        name: "codex",
        command: "codex-acp",
        package: "@agentclientprotocol/codex-acp",
    },
    BuiltIn {
        name: "claude",
        command: "claude-agent-acp",
        package: "@agentclientprotocol/claude-agent-acp",
    },
    BuiltIn {
        name: "gemini",
        command: "gemini --acp",
        package: "@google/gemini-cli",
    },
];

/// An agent codex-fusion knows how to start without being told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltIn {
    pub name: &'static str,
    pub command: &'static str,
    pub package: &'static str,
}

/// One agent on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// As written in `CODEX_FUSION_AGENTS`, in lower case.
    pub name: String,
    pub command: AcpCommand,
    /// The variable the command came from; `None` for a built-in command.
    pub from: Option<String>,
}

/// Why the agents on offer cannot be read; every message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentsError {
    #[error("{AGENTS_ENV}: an empty name in `{list}`; list agents separated by commas, e.g. `codex,claude`")]
    EmptyName { list: String },
    #[error("{AGENTS_ENV}: `{name}` is not an agent name (letters, digits, `-` and `_` only)")]
    BadName { name: String },
    #[error("{AGENTS_ENV}: `{name}` is listed twice")]
    Twice { name: String },
    #[error(
        "{AGENTS_ENV}: no command for agent `{name}`: the built-in ones are codex, claude and gemini; for another, set {variable} to its ACP command"
    )]
    Unknown { name: String, variable: String },
    #[error("{variable}: {reason}")]
    Command { variable: String, reason: &'static str },
}

/// The forwarded variables ([`crate::AGENT_ENV_VARS`]) agent `name` gets:
/// its own credentials, home and endpoint, never another agent's. An agent
/// that is not built in gets none (its command's `NAME=value` words give
/// it what it needs).
pub fn credential_vars(name: &str) -> &'static [&'static str] {
    match name {
        "codex" => &crate::AGENT_ENV_VARS[..3],
        "claude" => &crate::AGENT_ENV_VARS[3..7],
        "gemini" => &crate::AGENT_ENV_VARS[7..],
        _ => &[],
    }
}

/// What to say when agent `name`'s `program` cannot be found: where to get
/// it (the npm package of a built-in agent) and which variable names its
/// command.
pub fn not_installed(name: &str, program: &str) -> String {
    let where_ = if program.contains('/') {
        "does not exist"
    } else {
        "was not found on PATH"
    };
    let install = BUILT_IN
        .iter()
        .find(|built_in| built_in.name == name && built_in.command.split_whitespace().next() == Some(program))
        .map(|built_in| format!("Install it with `npm install -g {}`, or set", built_in.package))
        .unwrap_or_else(|| "Set".to_owned());
    format!(
        "{} (agent `{name}`) is not installed: `{program}` {where_}. {install} {} to how it is started, or leave `{name}` out of {AGENTS_ENV}",
        display_name(name),
        command_variable(name)
    )
}

/// How results name agent `name` to people: `Codex`, `Claude`, `Gemini`,
/// any other name as written.
pub fn display_name(name: &str) -> String {
    match name {
        "codex" => "Codex".to_owned(),
        "claude" => "Claude".to_owned(),
        "gemini" => "Gemini".to_owned(),
        other => other.to_owned(),
    }
}

/// The start of agent `name`'s pause results: `🔐 Codex paused` for Codex
/// (SPEC), `🔐 Claude paused` and so on for the others.
pub fn pause_prefix(name: &str) -> String {
    format!("🔐 {} paused", display_name(name))
}

/// The variable that holds agent `name`'s command.
pub fn command_variable(name: &str) -> String {
    format!("{AGENT_COMMAND_PREFIX}{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The agents `env` offers, the default first. `env` gives a variable's
/// value (unset and empty are the same).
pub fn on_offer(env: impl Fn(&str) -> Option<String>) -> Result<Vec<AgentSpec>, AgentsError> {
    let get = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let list = get(AGENTS_ENV).unwrap_or_else(|| DEFAULT_AGENT.to_owned());
    let mut agents: Vec<AgentSpec> = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(AgentsError::EmptyName { list: list.clone() });
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(AgentsError::BadName { name: name.to_owned() });
        }
        let name = name.to_ascii_lowercase();
        if agents.iter().any(|agent| agent.name == name) {
            return Err(AgentsError::Twice { name });
        }
        let variable = command_variable(&name);
        let parse = |variable: &str, value: &str| {
            AcpCommand::parse(value).map_err(|error| AgentsError::Command {
                variable: variable.to_owned(),
                reason: error.reason,
            })
        };
        let (command, from) = if let Some(value) = get(&variable) {
            (parse(&variable, &value)?, Some(variable))
        } else if let (DEFAULT_AGENT, Some(value)) = (name.as_str(), get(ACP_COMMAND_ENV)) {
            (parse(ACP_COMMAND_ENV, &value)?, Some(ACP_COMMAND_ENV.to_owned()))
        } else if let Some(built_in) = BUILT_IN.iter().find(|built_in| built_in.name == name) {
            (parse(&variable, built_in.command)?, None)
        } else {
            return Err(AgentsError::Unknown { name, variable });
        };
        agents.push(AgentSpec { name, command, from });
    }
    Ok(agents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, value)| value.clone())
        }
    }

    fn names(agents: &[AgentSpec]) -> Vec<&str> {
        agents.iter().map(|agent| agent.name.as_str()).collect()
    }

    #[test]
    fn codex_alone_is_the_default() {
        let agents = on_offer(with(&[])).expect("the default");
        assert_eq!(names(&agents), ["codex"]);
        assert_eq!(agents[0].command.program, "codex-acp");
        assert_eq!(agents[0].from, None);
        // An empty list is no list.
        assert_eq!(
            names(&on_offer(with(&[(AGENTS_ENV, " ")])).expect("default")),
            ["codex"]
        );
    }

    #[test]
    fn built_in_names_have_their_commands_and_the_first_is_the_default() {
        let agents = on_offer(with(&[(AGENTS_ENV, "Claude, codex ,gemini")])).expect("parses");
        assert_eq!(names(&agents), ["claude", "codex", "gemini"]);
        assert_eq!(agents[0].command.program, "claude-agent-acp");
        assert_eq!(agents[2].command.program, "gemini");
        assert_eq!(agents[2].command.args, ["--acp"]);
    }

    #[test]
    fn a_variable_sets_or_overrides_a_command_and_codex_reads_the_old_one_too() {
        let agents = on_offer(with(&[
            (AGENTS_ENV, "codex,claude,my-agent"),
            (ACP_COMMAND_ENV, "npx @agentclientprotocol/codex-acp"),
            ("CODEX_FUSION_AGENT_CLAUDE", "IS_SANDBOX=1 /opt/claude-agent-acp"),
            ("CODEX_FUSION_AGENT_MY_AGENT", "my-acp --stdio"),
        ]))
        .expect("parses");
        assert_eq!(agents[0].command.program, "npx");
        assert_eq!(agents[0].from.as_deref(), Some(ACP_COMMAND_ENV));
        assert_eq!(agents[1].command.program, "/opt/claude-agent-acp");
        assert_eq!(agents[1].command.env, [("IS_SANDBOX".to_owned(), "1".to_owned())]);
        assert_eq!(agents[1].from.as_deref(), Some("CODEX_FUSION_AGENT_CLAUDE"));
        assert_eq!(agents[2].command.program, "my-acp");
        // CODEX_FUSION_AGENT_CODEX wins over CODEX_FUSION_ACP_COMMAND.
        let agents = on_offer(with(&[
            (ACP_COMMAND_ENV, "old-acp"),
            ("CODEX_FUSION_AGENT_CODEX", "new-acp"),
        ]))
        .expect("parses");
        assert_eq!(agents[0].command.program, "new-acp");
    }

    #[test]
    fn a_missing_agent_is_told_where_to_get_it() {
        let claude = not_installed("claude", "claude-agent-acp");
        assert_eq!(
            claude,
            "Claude (agent `claude`) is not installed: `claude-agent-acp` was not found on PATH. Install it with `npm install -g @agentclientprotocol/claude-agent-acp`, or set CODEX_FUSION_AGENT_CLAUDE to how it is started, or leave `claude` out of CODEX_FUSION_AGENTS"
        );
        let mine = not_installed("reviewer", "/opt/reviewer-acp");
        assert!(
            mine.contains("`/opt/reviewer-acp` does not exist. Set CODEX_FUSION_AGENT_REVIEWER"),
            "{mine}"
        );
    }

    #[test]
    fn each_agent_gets_its_own_credentials_only() {
        assert_eq!(
            credential_vars("codex"),
            ["CODEX_API_KEY", "OPENAI_API_KEY", "CODEX_HOME"]
        );
        assert_eq!(
            credential_vars("claude"),
            [
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_AUTH_TOKEN",
                "ANTHROPIC_BASE_URL",
                "CLAUDE_CONFIG_DIR"
            ]
        );
        assert_eq!(
            credential_vars("gemini"),
            ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"]
        );
        assert!(credential_vars("my-agent").is_empty());
        let all: Vec<&str> = ["codex", "claude", "gemini"]
            .iter()
            .flat_map(|agent| credential_vars(agent).iter().copied())
            .collect();
        assert_eq!(
            all,
            crate::AGENT_ENV_VARS,
            "every forwarded variable belongs to one agent"
        );
    }

    #[test]
    fn every_mistake_names_the_variable() {
        let cases = [
            (
                vec![(AGENTS_ENV, "codex,,claude")],
                "CODEX_FUSION_AGENTS: an empty name",
            ),
            (
                vec![(AGENTS_ENV, "codex;claude")],
                "CODEX_FUSION_AGENTS: `codex;claude` is not an agent name",
            ),
            (
                vec![(AGENTS_ENV, "codex,Codex")],
                "CODEX_FUSION_AGENTS: `codex` is listed twice",
            ),
            (
                vec![(AGENTS_ENV, "grok")],
                "CODEX_FUSION_AGENTS: no command for agent `grok`: the built-in ones are codex, claude and gemini; for another, set CODEX_FUSION_AGENT_GROK",
            ),
            (
                vec![
                    (AGENTS_ENV, "claude"),
                    ("CODEX_FUSION_AGENT_CLAUDE", "claude 'unbalanced"),
                ],
                "CODEX_FUSION_AGENT_CLAUDE: unbalanced quotes",
            ),
            (
                vec![(ACP_COMMAND_ENV, "codex-acp \"")],
                "CODEX_FUSION_ACP_COMMAND: unbalanced quotes",
            ),
        ];
        for (env, expected) in cases {
            let error = on_offer(with(&env)).expect_err("refused").to_string();
            assert!(error.starts_with(expected), "{env:?}: {error}");
        }
    }
}
