//! Claude Code's configuration as codex-fusion sees it: where Claude keeps
//! its settings, whether our MCP server and SessionStart hook are registered
//! there, and how the hook is merged into a settings file without touching
//! anything else in it. Pure functions over JSON text and values.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The name we register the MCP server under.
pub const MCP_SERVER_NAME: &str = "codex-fusion";
/// The binary Claude Code launches as the MCP server.
pub const MCP_BINARY: &str = "codex-fusion-mcp";
/// The binary and argument of the SessionStart hook.
pub const HOOK_BINARY: &str = "codex-fusion";
pub const HOOK_ARGUMENT: &str = "hook";

/// Where Claude Code keeps its user configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeFiles {
    /// `~/.claude`, or `$CLAUDE_CONFIG_DIR`.
    pub config_dir: PathBuf,
    /// `~/.claude.json` (user- and local-scope MCP servers), or
    /// `$CLAUDE_CONFIG_DIR/.claude.json`.
    pub claude_json: PathBuf,
}

impl ClaudeFiles {
    pub fn new(home: &Path, claude_config_dir: Option<PathBuf>) -> ClaudeFiles {
        match claude_config_dir {
            Some(dir) => ClaudeFiles {
                claude_json: dir.join(".claude.json"),
                config_dir: dir,
            },
            None => ClaudeFiles {
                config_dir: home.join(".claude"),
                claude_json: home.join(".claude.json"),
            },
        }
    }

    /// The user's settings, where `install --claude` puts the hook.
    pub fn user_settings(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }
}

/// The settings files whose SessionStart hooks apply in `project`, most
/// general first.
pub fn hook_settings_files(files: &ClaudeFiles, project: &Path) -> Vec<PathBuf> {
    vec![
        files.user_settings(),
        project.join(".claude/settings.json"),
        project.join(".claude/settings.local.json"),
    ]
}

/// Whether `command` runs our hook: `codex-fusion hook`, with the binary
/// named by any path.
pub fn is_our_hook(command: &str) -> bool {
    let Some(words) = shlex::split(command) else {
        return false;
    };
    match words.as_slice() {
        [program, argument, ..] => {
            Path::new(program).file_name().is_some_and(|name| name == HOOK_BINARY) && argument == HOOK_ARGUMENT
        }
        _ => false,
    }
}

/// The program a command line runs: its first word.
pub fn program_of(command: &str) -> Option<String> {
    shlex::split(command)?.into_iter().next()
}

/// The SessionStart sources our hook must see: `compact` changes nothing,
/// the others change which Codex session is current.
const SOURCES_THAT_MATTER: [&str; 3] = ["startup", "resume", "clear"];

/// One SessionStart hook of ours in a settings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurHook {
    pub command: String,
    /// The entry's `matcher`, which limits the sources it runs for.
    pub matcher: Option<String>,
}

impl OurHook {
    /// Whether Claude Code runs it for every source that matters.
    pub fn runs_for_every_start(&self) -> bool {
        SOURCES_THAT_MATTER
            .iter()
            .all(|source| matcher_matches(self.matcher.as_deref(), source))
    }
}

/// Whether a SessionStart `matcher` lets `source` through, as Claude Code
/// reads it: none, empty or `*` match everything; letters, digits, `_` and
/// `|` are a list of exact names. Anything else is a regular expression,
/// which is taken to match: without a regex engine here we cannot tell, and
/// a false alarm would make `install` add a second hook.
pub fn matcher_matches(matcher: Option<&str>, source: &str) -> bool {
    let Some(matcher) = matcher
        .map(str::trim)
        .filter(|matcher| !matcher.is_empty() && *matcher != "*")
    else {
        return true;
    };
    let plain = matcher
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '|');
    !plain || matcher.split('|').any(|name| name == source)
}

/// Every SessionStart hook of ours in `settings` (a parsed settings file).
pub fn our_hooks(settings: &Value) -> Vec<OurHook> {
    let mut found = Vec::new();
    let entries = settings.pointer("/hooks/SessionStart").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let matcher = entry.get("matcher").and_then(Value::as_str).map(str::to_owned);
        let hooks = entry.get("hooks").and_then(Value::as_array);
        for command in hooks
            .into_iter()
            .flatten()
            .filter_map(|hook| hook.get("command").and_then(Value::as_str))
            .filter(|command| is_our_hook(command))
        {
            found.push(OurHook {
                command: command.to_owned(),
                matcher: matcher.clone(),
            });
        }
    }
    found
}

/// What [`add_session_start_hook`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookChange {
    /// A new SessionStart entry runs the hook.
    Added,
    /// Our hook was there, but its binary is gone; it now runs the new command.
    Repaired { old: String },
    /// Our hook ran the binary by name, so it worked only where Claude
    /// Code's own PATH finds it; it now runs the new command, a path.
    MadeAbsolute { old: String },
}

/// `text` (a settings file, `None` if there is none) with a SessionStart
/// hook running `command`, keeping every other key and its order.
/// `Ok(None)` when a hook of ours already runs for every source, by an
/// absolute path that `exists` says is there. A hook of ours whose program
/// is gone, or named without a path (Claude Code may run hooks with a PATH
/// that lacks it), is pointed at `command`; one limited by a `matcher` that
/// leaves out `startup`, `resume` or `clear` does not count, and a new entry
/// is added. A file whose shape we do not understand is an error, never
/// overwritten.
pub fn add_session_start_hook(
    text: Option<&str>,
    command: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Result<Option<(String, HookChange)>, String> {
    let mut settings = match text.map(str::trim) {
        None | Some("") => Value::Object(Map::new()),
        Some(text) => serde_json::from_str::<Value>(text).map_err(|error| not_json(&error))?,
    };
    let program = |hook: &OurHook| program_of(&hook.command).unwrap_or_default();
    let complete: Vec<OurHook> = our_hooks(&settings)
        .into_iter()
        .filter(OurHook::runs_for_every_start)
        .collect();
    if complete
        .iter()
        .any(|hook| Path::new(&program(hook)).is_absolute() && exists(&program(hook)))
    {
        return Ok(None);
    }
    let change = if let Some(hook) = complete.first() {
        let old = hook.command.clone();
        if old == command {
            return Ok(None);
        }
        repoint(&mut settings, &old, command);
        if exists(&program(hook)) {
            HookChange::MadeAbsolute { old }
        } else {
            HookChange::Repaired { old }
        }
    } else {
        let root = settings
            .as_object_mut()
            .ok_or("is not a JSON object at the top level")?;
        let hooks = root
            .entry("hooks")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or("has a `hooks` that is not an object")?;
        let session_start = hooks
            .entry("SessionStart")
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or("has a `hooks.SessionStart` that is not an array")?;
        session_start.push(json!({ "hooks": [ { "type": "command", "command": command } ] }));
        HookChange::Added
    };
    let mut text = serde_json::to_string_pretty(&settings).map_err(|error| error.to_string())?;
    text.push('\n');
    Ok(Some((text, change)))
}

/// "is not valid JSON (line:column)", for a file named before it.
pub fn not_json(error: &serde_json::Error) -> String {
    format!("is not valid JSON ({}:{})", error.line(), error.column())
}

/// Points every SessionStart hook running `old` at `new`.
fn repoint(settings: &mut Value, old: &str, new: &str) {
    let entries = settings
        .pointer_mut("/hooks/SessionStart")
        .and_then(Value::as_array_mut);
    for entry in entries.into_iter().flatten() {
        let hooks = entry.get_mut("hooks").and_then(Value::as_array_mut);
        for hook in hooks.into_iter().flatten() {
            if hook.get("command").and_then(Value::as_str) == Some(old) {
                hook["command"] = Value::String(new.to_owned());
            }
        }
    }
}

/// Our server in an `mcpServers` object, found by its name or by the binary
/// it runs: its name and its entry.
pub fn our_mcp_server(servers: &Value) -> Option<(&str, &Value)> {
    let servers = servers.as_object()?;
    if let Some((name, server)) = servers.get_key_value(MCP_SERVER_NAME) {
        return Some((name.as_str(), server));
    }
    servers.iter().find_map(|(name, server)| {
        let program = program_of(server.get("command")?.as_str()?)?;
        (Path::new(&program).file_name()? == MCP_BINARY).then_some((name.as_str(), server))
    })
}

/// Every server of ours in an `mcpServers` object (by its name or by the
/// binary it runs), with its name: a file may hold more than one.
pub fn our_mcp_servers(servers: &Value) -> Vec<(&str, &Value)> {
    let Some(servers) = servers.as_object() else {
        return Vec::new();
    };
    servers
        .iter()
        .filter(|(name, server)| {
            name.as_str() == MCP_SERVER_NAME
                || server
                    .get("command")
                    .and_then(Value::as_str)
                    .and_then(program_of)
                    .is_some_and(|program| Path::new(&program).file_name() == Some(MCP_BINARY.as_ref()))
        })
        .map(|(name, server)| (name.as_str(), server))
        .collect()
}

/// Where and how our MCP server is registered in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    /// Which scope, for a person: "user scope (~/.claude.json)", …
    pub scope: &'static str,
    /// The program it runs (the first word of its `command`).
    pub program: Option<String>,
    /// Its `env`, which the shim forwards to the daemon.
    pub env: Vec<(String, String)>,
    /// Whether it has `args` or `env`, which a re-registration would drop.
    pub customised: bool,
}

impl Registration {
    fn new(name: &str, server: &Value, scope: &'static str) -> Registration {
        let env: Vec<(String, String)> = server
            .get("env")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
            .collect();
        let has_args = server
            .get("args")
            .and_then(Value::as_array)
            .is_some_and(|args| !args.is_empty());
        Registration {
            name: name.to_owned(),
            scope,
            program: server.get("command").and_then(Value::as_str).and_then(program_of),
            customised: has_args || !env.is_empty(),
            env,
        }
    }
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`, {}", self.name, self.scope)
    }
}

/// Our server in `~/.claude.json`'s user scope, if registered there.
pub fn user_registration(claude_json: &Value) -> Option<Registration> {
    let (name, server) = claude_json.get("mcpServers").and_then(our_mcp_server)?;
    Some(Registration::new(name, server, "user scope (~/.claude.json)"))
}

/// Where Claude Code would find our MCP server for `project`: the user scope
/// and the project's local scope in `~/.claude.json`, and the project's
/// `.mcp.json`.
pub fn mcp_registrations(
    claude_json: Option<&Value>,
    project_mcp_json: Option<&Value>,
    project: &Path,
) -> Vec<Registration> {
    let mut found = Vec::new();
    if let Some(claude_json) = claude_json {
        found.extend(user_registration(claude_json));
        let project_key = project.to_string_lossy();
        if let Some((name, server)) = claude_json
            .get("projects")
            .and_then(|projects| projects.get(project_key.as_ref()))
            .and_then(|entry| entry.get("mcpServers"))
            .and_then(our_mcp_server)
        {
            found.push(Registration::new(
                name,
                server,
                "local scope for this project (~/.claude.json)",
            ));
        }
    }
    if let Some((name, server)) = project_mcp_json
        .and_then(|file| file.get("mcpServers"))
        .and_then(our_mcp_server)
    {
        found.push(Registration::new(name, server, "project scope (.mcp.json)"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMAND: &str = "/usr/local/bin/codex-fusion hook";

    fn everything_exists(_: &str) -> bool {
        true
    }

    /// Whether `settings` has our SessionStart hook for every source that matters.
    fn has_our_hook(settings: &Value) -> bool {
        our_hooks(settings).iter().any(OurHook::runs_for_every_start)
    }

    #[test]
    fn our_hook_is_recognised_by_any_path_to_the_binary() {
        assert!(is_our_hook("codex-fusion hook"));
        assert!(is_our_hook("/home/u/.cargo/bin/codex-fusion hook"));
        assert!(is_our_hook("'/opt/my tools/codex-fusion' hook"));
        assert!(!is_our_hook("codex-fusion status"));
        assert!(!is_our_hook("other-tool hook"));
        assert!(!is_our_hook("codex-fusion"));
        assert!(!is_our_hook("'unterminated"));
    }

    #[test]
    fn the_hook_is_added_to_a_missing_or_empty_file() {
        for text in [None, Some(""), Some("  \n")] {
            let (merged, change) = add_session_start_hook(text, COMMAND, &everything_exists)
                .expect("merges")
                .expect("changed");
            assert_eq!(change, HookChange::Added);
            let value: Value = serde_json::from_str(&merged).expect("valid JSON");
            assert_eq!(
                value,
                json!({"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": COMMAND}]}]}})
            );
            assert!(merged.ends_with("}\n"));
        }
    }

    #[test]
    fn merging_keeps_every_other_setting_in_order_and_is_idempotent() {
        let original = r#"{
  "model": "opus",
  "permissions": { "allow": ["Bash(ls:*)"], "deny": [] },
  "hooks": {
    "PreToolUse": [ { "matcher": "Bash", "hooks": [ { "type": "command", "command": "audit.sh" } ] } ],
    "SessionStart": [ { "matcher": "startup", "hooks": [ { "type": "command", "command": "echo hi" } ] } ]
  },
  "env": { "A": "1" }
}"#;
        let (merged, _) = add_session_start_hook(Some(original), COMMAND, &everything_exists)
            .expect("merges")
            .expect("changed");
        let value: Value = serde_json::from_str(&merged).expect("valid JSON");
        let before: Value = serde_json::from_str(original).expect("valid JSON");
        assert_eq!(value["model"], before["model"]);
        assert_eq!(value["permissions"], before["permissions"]);
        assert_eq!(value["env"], before["env"]);
        assert_eq!(value["hooks"]["PreToolUse"], before["hooks"]["PreToolUse"]);
        let session_start = value["hooks"]["SessionStart"].as_array().expect("array");
        assert_eq!(session_start.len(), 2);
        assert_eq!(
            session_start[0], before["hooks"]["SessionStart"][0],
            "the user's hook stays first"
        );
        assert_eq!(session_start[1]["hooks"][0]["command"], COMMAND);
        let keys: Vec<&String> = value.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["model", "permissions", "hooks", "env"], "key order is kept");
        assert_eq!(
            add_session_start_hook(Some(&merged), COMMAND, &everything_exists),
            Ok(None),
            "a second merge changes nothing"
        );
        let elsewhere = add_session_start_hook(Some(&merged), "/opt/bin/codex-fusion hook", &everything_exists);
        assert_eq!(elsewhere, Ok(None), "a hook at another path counts as ours");
    }

    #[test]
    fn files_we_do_not_understand_are_refused_not_overwritten() {
        for (text, expected) in [
            ("{ not json", "is not valid JSON (1:3)"),
            ("[1]", "not a JSON object"),
            (r#"{"hooks": []}"#, "`hooks` that is not an object"),
            (
                r#"{"hooks": {"SessionStart": {}}}"#,
                "`hooks.SessionStart` that is not an array",
            ),
        ] {
            let error = add_session_start_hook(Some(text), COMMAND, &everything_exists).expect_err("refused");
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn mcp_registrations_are_found_in_every_scope() {
        let project = Path::new("/home/u/project");
        let claude_json = json!({
            "mcpServers": { "codex-fusion": { "type": "stdio", "command": "/home/u/.cargo/bin/codex-fusion-mcp", "args": [] } },
            "projects": { "/home/u/project": { "mcpServers": { "codex": { "command": "codex-fusion-mcp" } } } }
        });
        let mcp_json = json!({ "mcpServers": { "cf": { "command": "/opt/bin/codex-fusion-mcp" } } });
        let found: Vec<String> = mcp_registrations(Some(&claude_json), Some(&mcp_json), project)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("user scope"));
        assert!(found[1].contains("`codex`") && found[1].contains("local scope"));
        assert!(found[2].contains("`cf`") && found[2].contains(".mcp.json"));
        let registrations = mcp_registrations(Some(&claude_json), Some(&mcp_json), project);
        assert_eq!(
            registrations[0].program.as_deref(),
            Some("/home/u/.cargo/bin/codex-fusion-mcp")
        );
        assert!(!registrations[0].customised);
        let other = json!({ "mcpServers": { "github": { "command": "gh-mcp" } } });
        assert!(mcp_registrations(Some(&other), None, project).is_empty());
        assert!(mcp_registrations(None, None, project).is_empty());
    }

    #[test]
    fn hooks_in_settings_are_found() {
        let settings =
            json!({"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "codex-fusion hook"}]}]}});
        assert!(has_our_hook(&settings));
        assert!(!has_our_hook(
            &json!({"hooks": {"Stop": [{"hooks": [{"command": "codex-fusion hook"}]}]}})
        ));
        assert!(!has_our_hook(&json!({})));
    }

    #[test]
    fn a_hook_limited_by_a_matcher_that_leaves_out_clear_or_resume_does_not_count() {
        let with = |matcher: Value| json!({"hooks": {"SessionStart": [{"matcher": matcher, "hooks": [{"type": "command", "command": COMMAND}]}]}});
        for counted in [
            json!("*"),
            json!(""),
            json!("startup|resume|clear"),
            json!("clear|startup|compact|resume"),
            json!("^(s|r|c).*"),
        ] {
            assert!(has_our_hook(&with(counted.clone())), "{counted}");
        }
        for left_out in [
            json!("startup"),
            json!("startup|resume"),
            json!("clear"),
            json!("compact"),
        ] {
            let settings = with(left_out.clone());
            assert!(!has_our_hook(&settings), "{left_out}");
            let (merged, change) = add_session_start_hook(Some(&settings.to_string()), COMMAND, &everything_exists)
                .expect("merges")
                .expect("a hook for every start is added");
            assert_eq!(change, HookChange::Added);
            assert!(has_our_hook(&serde_json::from_str(&merged).expect("json")));
        }
    }

    #[test]
    fn a_hook_whose_binary_is_gone_is_pointed_at_the_new_one() {
        let original = json!({"hooks": {"SessionStart": [{"hooks": [
            {"type": "command", "command": "/old/bin/codex-fusion hook"},
            {"type": "command", "command": "echo hi"}
        ]}]}})
        .to_string();
        let exists = |program: &str| program != "/old/bin/codex-fusion";
        let (merged, change) = add_session_start_hook(Some(&original), "/new/bin/codex-fusion hook", &exists)
            .expect("merges")
            .expect("changed");
        assert_eq!(
            change,
            HookChange::Repaired {
                old: "/old/bin/codex-fusion hook".into()
            }
        );
        let value: Value = serde_json::from_str(&merged).expect("json");
        assert_eq!(
            value["hooks"]["SessionStart"],
            json!([{"hooks": [
                {"type": "command", "command": "/new/bin/codex-fusion hook"},
                {"type": "command", "command": "echo hi"}
            ]}]),
            "repointed in place, nothing added"
        );
        assert_eq!(
            add_session_start_hook(Some(&merged), "/new/bin/codex-fusion hook", &exists),
            Ok(None)
        );
    }

    #[test]
    fn a_hook_run_by_name_is_pointed_at_the_absolute_path() {
        let original = json!({"hooks": {"SessionStart": [{"hooks": [
            {"type": "command", "command": "codex-fusion hook"}
        ]}]}})
        .to_string();
        let (merged, change) = add_session_start_hook(Some(&original), COMMAND, &everything_exists)
            .expect("merges")
            .expect("changed");
        assert_eq!(
            change,
            HookChange::MadeAbsolute {
                old: "codex-fusion hook".into()
            }
        );
        let value: Value = serde_json::from_str(&merged).expect("json");
        assert_eq!(
            value["hooks"]["SessionStart"],
            json!([{"hooks": [{"type": "command", "command": COMMAND}]}]),
            "repointed in place"
        );
        assert_eq!(
            add_session_start_hook(Some(&merged), COMMAND, &everything_exists),
            Ok(None)
        );
        // By name and not found: it was broken, not only fragile.
        let (_, change) = add_session_start_hook(Some(&original), COMMAND, &|_| false)
            .expect("merges")
            .expect("changed");
        assert_eq!(
            change,
            HookChange::Repaired {
                old: "codex-fusion hook".into()
            }
        );
    }
}
