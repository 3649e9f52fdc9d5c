//! `CODEX_FUSION_ACP_COMMAND`: how codex-acp is started, split like a shell
//! would, with leading `NAME=value` words taken as environment. Shared by
//! the daemon (which runs it) and the CLI's `doctor` (which checks it).

/// The variable that sets the command.
pub const ACP_COMMAND_ENV: &str = "CODEX_FUSION_ACP_COMMAND";

/// How to start codex-acp: `CODEX_FUSION_ACP_COMMAND` split like a shell
/// would, with leading `NAME=value` words taken as environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpCommand {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The command for messages and logs, as written but with the values
    /// of leading `NAME=value` words hidden (they may be API keys).
    pub display: String,
}

/// Why a command line cannot be used; names the variable (the command
/// itself is not quoted: it may hold a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ACP_COMMAND_ENV}: {reason}")]
pub struct CommandError {
    pub value: String,
    pub reason: &'static str,
}

impl AcpCommand {
    /// Splits `value` like a POSIX shell (quotes, escapes); leading
    /// `NAME=value` words become environment for the child.
    pub fn parse(value: &str) -> Result<AcpCommand, CommandError> {
        let fail = |reason| CommandError {
            value: value.to_owned(),
            reason,
        };
        let words = shlex::split(value).ok_or_else(|| fail("unbalanced quotes"))?;
        let mut words = words.into_iter().peekable();
        let mut env = Vec::new();
        while let Some(word) = words.peek() {
            match word.split_once('=') {
                Some((name, _)) if is_env_name(name) => {
                    let word = words.next().expect("peeked");
                    let (name, value) = word.split_once('=').expect("checked above");
                    env.push((name.to_owned(), value.to_owned()));
                }
                _ => break,
            }
        }
        let program = words.next().ok_or_else(|| fail("no program to run"))?;
        Ok(AcpCommand {
            program,
            args: words.collect(),
            env,
            display: redact(value),
        })
    }
}

/// `value` with each leading `NAME=value` word's value replaced by `…`.
fn redact(value: &str) -> String {
    let Some(words) = shlex::split(value) else {
        return value.to_owned();
    };
    let mut shown = Vec::new();
    let mut in_env = true;
    for word in words {
        match word.split_once('=') {
            Some((name, _)) if in_env && is_env_name(name) => shown.push(format!("{name}=…")),
            _ => {
                in_env = false;
                shown.push(shlex::try_quote(&word).map_or(word.clone(), |quoted| quoted.into_owned()));
            }
        }
    }
    shown.join(" ")
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|rest| rest.is_ascii_alphanumeric() || rest == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_with_leading_env() {
        let command =
            AcpCommand::parse(r#"FOO=1 BAR="a b" npx -y '@agentclientprotocol/codex-acp' --flag"#).expect("parses");
        assert_eq!(command.program, "npx");
        assert_eq!(command.args, ["-y", "@agentclientprotocol/codex-acp", "--flag"]);
        assert_eq!(
            command.env,
            [
                ("FOO".to_string(), "1".to_string()),
                ("BAR".to_string(), "a b".to_string())
            ]
        );
        assert!(AcpCommand::parse("FOO=1").is_err());
        let error = AcpCommand::parse("'unbalanced").expect_err("unbalanced");
        assert!(
            error
                .to_string()
                .starts_with("CODEX_FUSION_ACP_COMMAND: unbalanced quotes"),
            "{error}"
        );
        // The values of environment words never show in messages or logs.
        let command = AcpCommand::parse("OPENAI_API_KEY=sk-secret codex-acp --x").expect("parses");
        assert_eq!(command.display, "OPENAI_API_KEY=… codex-acp --x");
        assert_eq!(command.env, [("OPENAI_API_KEY".to_string(), "sk-secret".to_string())]);
        // A word with `=` after the program is an argument, not environment.
        let command = AcpCommand::parse("agent key=value").expect("parses");
        assert_eq!(command.args, ["key=value"]);
    }
}
