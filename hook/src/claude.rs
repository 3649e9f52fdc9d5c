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

/// Whether `settings` (a parsed settings file) has our SessionStart hook.
pub fn has_our_hook(settings: &Value) -> bool {
    settings
        .pointer("/hooks/SessionStart")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("hooks").and_then(Value::as_array))
        .flatten()
        .filter_map(|hook| hook.get("command").and_then(Value::as_str))
        .any(is_our_hook)
}

/// `text` (a settings file, `None` if there is none) with a SessionStart
/// hook running `command` added, keeping every other key and its order.
/// `Ok(None)` when our hook is already there. A file whose shape we do not
/// understand is an error, never overwritten.
pub fn add_session_start_hook(text: Option<&str>, command: &str) -> Result<Option<String>, String> {
    let mut settings = match text.map(str::trim) {
        None | Some("") => Value::Object(Map::new()),
        Some(text) => serde_json::from_str::<Value>(text).map_err(|error| format!("is not valid JSON ({error})"))?,
    };
    if has_our_hook(&settings) {
        return Ok(None);
    }
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
    let mut text = serde_json::to_string_pretty(&settings).map_err(|error| error.to_string())?;
    text.push('\n');
    Ok(Some(text))
}

/// The name of our server in an `mcpServers` object, found by its name or
/// by the binary it runs.
pub fn our_mcp_server(servers: &Value) -> Option<String> {
    let servers = servers.as_object()?;
    if servers.contains_key(MCP_SERVER_NAME) {
        return Some(MCP_SERVER_NAME.to_owned());
    }
    servers.iter().find_map(|(name, server)| {
        let command = server.get("command")?.as_str()?;
        let program = shlex::split(command)?.into_iter().next()?;
        (Path::new(&program).file_name()? == MCP_BINARY).then(|| name.clone())
    })
}

/// Where Claude Code would find our MCP server for `project`: the user scope
/// and the project's local scope in `~/.claude.json`, and the project's
/// `.mcp.json`. Each entry says where, for a person.
pub fn mcp_registrations(claude_json: Option<&Value>, project_mcp_json: Option<&Value>, project: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(claude_json) = claude_json {
        if let Some(name) = claude_json.get("mcpServers").and_then(our_mcp_server) {
            found.push(format!("`{name}`, user scope (~/.claude.json)"));
        }
        let project_key = project.to_string_lossy();
        if let Some(name) = claude_json
            .get("projects")
            .and_then(|projects| projects.get(project_key.as_ref()))
            .and_then(|entry| entry.get("mcpServers"))
            .and_then(our_mcp_server)
        {
            found.push(format!("`{name}`, local scope for this project (~/.claude.json)"));
        }
    }
    if let Some(name) = project_mcp_json
        .and_then(|file| file.get("mcpServers"))
        .and_then(our_mcp_server)
    {
        found.push(format!("`{name}`, project scope (.mcp.json)"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMAND: &str = "codex-fusion hook";

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
            let merged = add_session_start_hook(text, COMMAND).expect("merges").expect("changed");
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
        let merged = add_session_start_hook(Some(original), COMMAND)
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
            add_session_start_hook(Some(&merged), COMMAND),
            Ok(None),
            "a second merge changes nothing"
        );
        let with_absolute = add_session_start_hook(Some(&merged), "/usr/local/bin/codex-fusion hook");
        assert_eq!(with_absolute, Ok(None), "a hook at another path counts as ours");
    }

    #[test]
    fn files_we_do_not_understand_are_refused_not_overwritten() {
        for (text, expected) in [
            ("{ not json", "is not valid JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"hooks": []}"#, "`hooks` that is not an object"),
            (
                r#"{"hooks": {"SessionStart": {}}}"#,
                "`hooks.SessionStart` that is not an array",
            ),
        ] {
            let error = add_session_start_hook(Some(text), COMMAND).expect_err("refused");
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
        let found = mcp_registrations(Some(&claude_json), Some(&mcp_json), project);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("user scope"));
        assert!(found[1].contains("`codex`") && found[1].contains("local scope"));
        assert!(found[2].contains("`cf`") && found[2].contains(".mcp.json"));
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
}
