//! `CODEX_FUSION_ACP_COMMAND`: how codex-acp is started, split like a shell
//! would, with leading `NAME=value` words taken as environment. Shared by
//! the daemon (which runs it) and the CLI's `doctor` (which checks it).
//!
//! The command may carry a credential anywhere (`OPENAI_API_KEY=… codex-acp`,
//! `env OPENAI_API_KEY=… codex-acp`, `codex-acp --api-key …`), so it is only
//! ever shown as [`AcpCommand::display`], and text that could echo it (the
//! agent's stderr, a probe's output) goes through [`AcpCommand::scrub`].

use std::borrow::Cow;

/// The variable that sets the command.
pub const ACP_COMMAND_ENV: &str = "CODEX_FUSION_ACP_COMMAND";

/// What replaces a hidden value.
pub const HIDDEN: &str = "…";

/// Hidden values shorter than this are not scrubbed out of free text: `1`,
/// `true` or a model name would garble every line they occur in, and the
/// credentials this is for are far longer.
const SCRUB_MIN_CHARS: usize = 8;

/// Words in a flag's or variable's name that mark its value as a credential
/// (compared case-insensitively): `--api-key`, `--token`, `--client-secret`,
/// `OPENAI_API_KEY`, …
const SECRET_NAME_WORDS: [&str; 5] = ["key", "token", "secret", "passw", "credential"];

/// How to start codex-acp: `CODEX_FUSION_ACP_COMMAND` split like a shell
/// would, with leading `NAME=value` words taken as environment.
///
/// Two commands are the same agent when they are equal as a whole, values
/// included; `display` alone is not an identity (it hides the values).
/// `Debug` shows `display` only.
#[derive(Clone, PartialEq, Eq)]
pub struct AcpCommand {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The command for messages and logs, as written but with every value
    /// that may be a credential shown as `…`: each `NAME=value` word
    /// anywhere, and the value of a flag whose name looks like a secret
    /// (`--api-key x`, `--token=x`).
    pub display: String,
    /// The values `display` hides, for [`AcpCommand::scrub`].
    hidden: Vec<String>,
}

impl std::fmt::Debug for AcpCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcpCommand")
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

/// Why a command line cannot be used; names the variable (the command
/// itself is not quoted: it may hold a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ACP_COMMAND_ENV}: {reason}")]
pub struct CommandError {
    pub reason: &'static str,
}

impl AcpCommand {
    /// Splits `value` like a POSIX shell (quotes, escapes); leading
    /// `NAME=value` words become environment for the child.
    pub fn parse(value: &str) -> Result<AcpCommand, CommandError> {
        let fail = |reason| CommandError { reason };
        let words = shlex::split(value).ok_or_else(|| fail("unbalanced quotes"))?;
        let (display, hidden) = redact(&words);
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
            display,
            hidden,
        })
    }

    /// `text` with every value this command hides (see `display`) replaced
    /// by `…`, for output of the agent or of a probe that may echo its
    /// arguments or environment.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        scrub(text, &self.hidden)
    }

    /// The hidden values long enough to scrub from free text.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.hidden.iter().map(String::as_str)
    }
}

/// `text` with each of `secrets` replaced by `…`; values shorter than a
/// credential are left alone (see [`SCRUB_MIN_CHARS`]).
pub fn scrub<'a, S: AsRef<str>>(text: &'a str, secrets: &[S]) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.chars().count() >= SCRUB_MIN_CHARS && text.contains(secret) {
            text = Cow::Owned(text.replace(secret, HIDDEN));
        }
    }
    text
}

/// Whether a flag (`--api-key`, `-Token`) names a credential.
pub fn is_secret_flag(word: &str) -> bool {
    word.strip_prefix('-').is_some_and(is_secret_name)
}

/// Whether a variable or flag name (`OPENAI_API_KEY`, `api-token`) looks
/// like it holds a credential.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_WORDS.iter().any(|secret| name.contains(secret))
}

/// The command as shown, and the values it hides. A `name=value` word
/// anywhere shows as `name=…`; after a secret flag without `=`, the next
/// word shows as `…`.
fn redact(words: &[String]) -> (String, Vec<String>) {
    let mut shown = Vec::with_capacity(words.len());
    let mut hidden = Vec::new();
    let mut hide_next = false;
    for word in words {
        if std::mem::take(&mut hide_next) {
            shown.push(HIDDEN.to_owned());
            hidden.push(word.clone());
            continue;
        }
        match word.split_once('=') {
            Some((name, value)) if is_assignment_name(name) => {
                shown.push(format!("{}={HIDDEN}", quote(name)));
                hidden.push(value.to_owned());
            }
            _ => {
                hide_next = is_secret_flag(word);
                shown.push(quote(word));
            }
        }
    }
    hidden.retain(|value| value.chars().count() >= SCRUB_MIN_CHARS);
    (shown.join(" "), hidden)
}

fn quote(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| word.to_owned(), Cow::into_owned)
}

/// The left side of a `name=value` word whose value is hidden: a variable
/// (`OPENAI_API_KEY`), a flag (`--api-key`), a config key
/// (`model_providers.x.api_key`). Not a path or a URL, whose `=` is part of
/// something else.
fn is_assignment_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().any(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
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
        assert!(command.env.is_empty());
    }

    /// Issue 13: a key anywhere in the command is hidden, not only in the
    /// leading words (`env KEY=… agent`, `--api-key …`, `-c x.api_key=…`).
    #[test]
    fn a_credential_anywhere_in_the_command_is_hidden() {
        let key = "sk-planted-123";
        let cases = [
            (
                format!("env OPENAI_API_KEY={key} codex-acp"),
                "env OPENAI_API_KEY=… codex-acp",
            ),
            (format!("codex-acp --api-key={key}"), "codex-acp --api-key=…"),
            (format!("codex-acp --api-key {key} --x"), "codex-acp --api-key … --x"),
            (format!("codex-acp --API-KEY {key}"), "codex-acp --API-KEY …"),
            (format!("agent --token {key}"), "agent --token …"),
            (format!("agent --client-secret '{key}'"), "agent --client-secret …"),
            (format!("agent --password {key}"), "agent --password …"),
            (
                format!("agent -c model_providers.x.api_key={key}"),
                "agent -c model_providers.x.api_key=…",
            ),
            (format!("A=1 env B={key} agent"), "A=… env B=… agent"),
            (
                format!("agent --header 'X: {key}' --verbose"),
                "agent --header 'X: sk-planted-123' --verbose",
            ),
        ];
        for (line, shown) in cases.iter().take(9) {
            let command = AcpCommand::parse(line).expect("parses");
            assert_eq!(&command.display, shown, "{line}");
            assert!(!command.display.contains(key), "{line}");
            assert!(!format!("{command:?}").contains(key), "Debug of {line}");
            assert_eq!(
                command.scrub(&format!("error: bad key {key}!")),
                "error: bad key …!",
                "{line}"
            );
        }
        // What no rule can recognise stays visible (a documented limit).
        let (line, shown) = &cases[9];
        assert_eq!(&AcpCommand::parse(line).expect("parses").display, shown);
        // The command still runs with the values.
        let command = AcpCommand::parse(&format!("env OPENAI_API_KEY={key} codex-acp")).expect("parses");
        assert_eq!(command.program, "env");
        assert_eq!(command.args, [format!("OPENAI_API_KEY={key}"), "codex-acp".to_owned()]);
        // Paths and URLs with `=` are not assignments.
        let command = AcpCommand::parse("agent /a=b https://x/?q=1").expect("parses");
        assert_eq!(command.display, "agent '/a=b' 'https://x/?q=1'");
    }

    #[test]
    fn commands_differing_only_in_a_hidden_value_are_different_agents() {
        let first = AcpCommand::parse("codex-acp --api-key=sk-first-0000").expect("parses");
        let second = AcpCommand::parse("codex-acp --api-key=sk-second-000").expect("parses");
        assert_eq!(first.display, second.display);
        assert_ne!(first, second);
    }

    #[test]
    fn short_values_are_hidden_in_the_command_but_not_scrubbed_from_text() {
        let command = AcpCommand::parse("DEBUG=1 agent --token abc").expect("parses");
        assert_eq!(command.display, "DEBUG=… agent --token …");
        assert_eq!(command.scrub("level 1, token abc"), "level 1, token abc");
        assert_eq!(command.secrets().count(), 0);
    }
}
