//! Reads a prompt's `fake:…` markers into a `Script`: what the turn will do.
//! Markers may sit anywhere in the text (tests embed them in a question that
//! the daemon wraps in its own prompt). Everything else in the text is ignored.

/// The scenario of one turn. Single-shot markers keep their first occurrence;
/// `fake:stderr` and `fake:permission` keep every occurrence, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    pub stderr: Vec<String>,
    /// `fake:stderr-env:NAME`: write `NAME=<its value>` to stderr, as an
    /// agent that dumps its environment would.
    pub stderr_env: Vec<String>,
    pub garbage: bool,
    pub error: Option<ErrorKind>,
    pub reason: bool,
    /// `fake:think:MS`: reasoning chunks for MS milliseconds and no text
    /// meanwhile, as a model thinking long before it answers.
    pub think_ms: Option<u64>,
    pub silent_ms: Option<u64>,
    pub slow_ms: Option<u64>,
    pub flood: Option<u64>,
    pub crash: bool,
    pub wait_cancel: bool,
    pub ignore_cancel: bool,
    /// `fake:ignore-close`: with `ignore-cancel`, the turn ignores
    /// `session/close` too, which is never answered (a wedged process).
    pub ignore_close: bool,
    pub permissions: Vec<PermissionAsk>,
    pub big: Option<usize>,
}

/// The failure `fake:error:KIND` makes `session/prompt` answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    Quota,
    RateLimit,
    Auth,
    /// `fake:error:env:NAME`: an error that quotes variable NAME and its
    /// value, as an agent rejecting a key might.
    QuotingEnv(String),
    Other(String),
}

/// One `fake:permission:KIND:ARG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionAsk {
    pub kind: AskKind,
    /// A file name, path or URL, as written.
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskKind {
    Execute,
    Edit,
    Read,
    Fetch,
    Delete,
    Move,
    /// `patch-move:SRC>DEST`: an `apply_patch` move the way codex-acp shows
    /// it: the tool call announced with no content, the destination only in
    /// a later update's diff, the request naming the source alone.
    PatchMove,
}

const PREFIX: &str = "fake:";
const STDERR: &str = "stderr:";
/// Trailing characters that end a sentence or a quotation rather than a marker.
const TRAILING_PUNCTUATION: &[char] = &['.', ',', ';', ':', '!', '?', ')', ']', '}', '"', '\'', '`'];

/// `text` with the markers addressed to this fake (`fake@NAME:…`, NAME its
/// `--agent-name`) made plain markers; those addressed to another fake stay
/// text. A council's agents all get one prompt; this is how a test makes
/// one of them behave differently.
pub fn for_agent(text: &str, agent_name: &str) -> String {
    text.replace(&format!("fake@{agent_name}:"), PREFIX)
}

pub fn parse(text: &str) -> Script {
    let mut script = Script::default();
    // A stderr marker's text runs to the end of its line; markers inside it
    // are part of the text, not markers.
    let mut consumed_until = 0;
    for (start, _) in text.match_indices(PREFIX) {
        if start < consumed_until {
            continue;
        }
        let rest = &text[start + PREFIX.len()..];
        if let Some(message) = rest.strip_prefix(STDERR) {
            let line = message.split('\n').next().unwrap_or_default();
            consumed_until = start + PREFIX.len() + STDERR.len() + line.len();
            script.stderr.push(line.trim_end_matches('\r').to_owned());
            continue;
        }
        let token = rest.split(char::is_whitespace).next().unwrap_or_default();
        apply(&mut script, token.trim_end_matches(TRAILING_PUNCTUATION));
    }
    script
}

fn apply(script: &mut Script, token: &str) {
    let (name, argument) = match token.split_once(':') {
        Some((name, argument)) => (name, Some(argument)),
        None => (token, None),
    };
    let number = || argument.and_then(|value| value.parse::<u64>().ok());
    match name {
        "reason" => script.reason = true,
        "garbage" => script.garbage = true,
        "crash" => script.crash = true,
        "wait-cancel" => script.wait_cancel = true,
        "ignore-cancel" => script.ignore_cancel = true,
        "ignore-close" => script.ignore_close = true,
        "think" => script.think_ms = script.think_ms.or(number()),
        "silent" => script.silent_ms = script.silent_ms.or(number()),
        "slow" => script.slow_ms = script.slow_ms.or(number()),
        "flood" => script.flood = script.flood.or(number()),
        "big" => {
            let size = number().and_then(|size| usize::try_from(size).ok());
            script.big = script.big.or(size);
        }
        "error" => {
            let kind = match argument.unwrap_or_default() {
                "quota" => ErrorKind::Quota,
                "ratelimit" => ErrorKind::RateLimit,
                "auth" => ErrorKind::Auth,
                other => match other.strip_prefix("env:") {
                    Some(name) => ErrorKind::QuotingEnv(name.to_owned()),
                    None => ErrorKind::Other(other.to_owned()),
                },
            };
            script.error = script.error.take().or(Some(kind));
        }
        "stderr-env" => script.stderr_env.extend(argument.map(str::to_owned)),
        "permission" => {
            if let Some(ask) = argument.and_then(permission) {
                script.permissions.push(ask);
            }
        }
        _ => {}
    }
}

fn permission(argument: &str) -> Option<PermissionAsk> {
    let (kind, target) = argument.split_once(':')?;
    let kind = match kind {
        "execute" => AskKind::Execute,
        "edit" => AskKind::Edit,
        "read" => AskKind::Read,
        "fetch" => AskKind::Fetch,
        "delete" => AskKind::Delete,
        "move" => AskKind::Move,
        "patch-move" => AskKind::PatchMove,
        _ => return None,
    };
    (!target.is_empty()).then(|| PermissionAsk {
        kind,
        target: target.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_markers_anywhere_in_the_text() {
        let script = parse(
            "Question: is X safe? `fake:reason` and fake:slow:300, then\n\
             fake:permission:execute:made.txt fake:permission:fetch:https://example.com/a?b=1.\n\
             fake:stderr:boom fake:crash here\nfake:big:500",
        );
        assert!(script.reason);
        assert_eq!(script.slow_ms, Some(300));
        assert_eq!(script.stderr, vec!["boom fake:crash here".to_owned()]);
        assert!(!script.crash, "a marker inside stderr text is text");
        assert_eq!(script.big, Some(500));
        assert_eq!(
            script.permissions,
            vec![
                PermissionAsk {
                    kind: AskKind::Execute,
                    target: "made.txt".into()
                },
                PermissionAsk {
                    kind: AskKind::Fetch,
                    target: "https://example.com/a?b=1".into()
                },
            ]
        );
    }

    #[test]
    fn plain_text_is_the_default_script() {
        assert_eq!(parse("what is fake about this: nothing"), Script::default());
        let addressed = "fake@second:crash fake@third:slow:50";
        assert!(parse(&for_agent(addressed, "second")).crash);
        assert_eq!(parse(&for_agent(addressed, "second")).slow_ms, None);
        assert_eq!(parse(&for_agent(addressed, "third")).slow_ms, Some(50));
        assert_eq!(parse(addressed), Script::default());
        assert_eq!(parse("fake:error:quota").error, Some(ErrorKind::Quota));
        assert_eq!(parse("think first: fake:think:5000.").think_ms, Some(5000));
        assert_eq!(parse("fake:stderr-env:OPENAI_API_KEY.").stderr_env, ["OPENAI_API_KEY"]);
        assert_eq!(
            parse("fake:error:env:OPENAI_API_KEY").error,
            Some(ErrorKind::QuotingEnv("OPENAI_API_KEY".into()))
        );
    }
}
