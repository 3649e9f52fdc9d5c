//! What an agent process gets in its environment: nothing of the daemon's
//! own environment except an explicit allowlist (what codex-acp and codex
//! need to run and reach the model), then the credentials a client
//! forwarded, then the `NAME=value` words of the agent command, then the
//! daemon's own settings for the agent. Pure functions; `agent` applies the
//! result to a cleared `Command`.
//!
//! Commands that Codex runs see less still: the permission profile's
//! `shell_environment_policy` (see `confine`) gives them only the core
//! variables, so no credential reaches a command's output, and so none the
//! model.

use std::collections::BTreeMap;

/// Variables taken from the daemon's environment as they are.
pub const ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "TMPDIR",
    "TMP",
    "TEMP",
    "TZ",
    "LANG",
    "LANGUAGE",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    // Proxies and certificate authorities, to reach the model at all.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
];

/// Prefixes of variables taken from the daemon's environment (the locale).
pub const ALLOWED_PREFIXES: &[&str] = &["LC_"];

/// Variables of the daemon's own environment only agent `agent` gets,
/// besides those a client would forward for it: where Codex reaches its
/// model.
fn own_extra(agent: &str) -> &'static [&'static str] {
    match agent {
        "codex" => &["OPENAI_BASE_URL"],
        _ => &[],
    }
}

/// Whether the daemon passes its own variable `name` on to agent `agent`:
/// the allowlist, and the variables a client would forward for that agent
/// (`agents::credential_vars`: the API keys it reads to sign in, never
/// passed on to Codex's commands, see the shell environment policy; its
/// home; its endpoint).
pub fn is_allowed(name: &str, agent: &str) -> bool {
    ALLOWED.contains(&name)
        || codex_fusion_protocol::agents::credential_vars(agent).contains(&name)
        || own_extra(agent).contains(&name)
        || ALLOWED_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Of the variables a client forwarded, those meant for agent `agent`.
pub fn forwarded_for(agent: &str, forwarded: &[(String, String)]) -> Vec<(String, String)> {
    let own = codex_fusion_protocol::agents::credential_vars(agent);
    forwarded
        .iter()
        .filter(|(name, _)| own.contains(&name.as_str()))
        .cloned()
        .collect()
}

/// The environment of an agent process, in layers, later ones winning:
/// the allowed part of `daemon` (the daemon's own environment), `forwarded`
/// (the client's credentials and Codex home), `command` (the agent
/// command's `NAME=value` words) and `ours` (what the daemon sets for the
/// agent, such as `CODEX_PATH`; last, so the agent command cannot undo
/// the confinement). `PATH` keeps only absolute entries, so a command found
/// on it never comes from the workspace or the current directory.
pub fn agent_environment<'a>(
    agent: &str,
    daemon: impl IntoIterator<Item = (String, String)>,
    forwarded: impl IntoIterator<Item = &'a (String, String)>,
    command: impl IntoIterator<Item = &'a (String, String)>,
    ours: impl IntoIterator<Item = &'a (String, String)>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = daemon.into_iter().filter(|(name, _)| is_allowed(name, agent)).collect();
    for (name, value) in forwarded.into_iter().chain(command).chain(ours) {
        env.insert(name.clone(), value.clone());
    }
    if let Some(path) = env.get_mut("PATH") {
        *path = absolute_entries(path);
    }
    env.into_iter().collect()
}

/// `PATH` without empty or relative entries (an empty entry means the
/// current directory).
pub fn absolute_entries(path: &str) -> String {
    path.split(':')
        .filter(|entry| entry.starts_with('/'))
        .collect::<Vec<_>>()
        .join(":")
}

/// The daemon's own environment as UTF-8 pairs (others cannot be passed on
/// faithfully and are left out).
pub fn daemon_environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    #[test]
    fn only_allowed_variables_of_the_daemon_pass() {
        let daemon = pairs(&[
            ("PATH", "/usr/bin:/bin"),
            ("HOME", "/home/u"),
            ("LC_ALL", "C.UTF-8"),
            ("https_proxy", "http://proxy:3128"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("DB_PASSWORD", "hunter2"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
            ("OPENAI_API_KEY", "sk-openai"),
        ]);
        let env = agent_environment("codex", daemon, &[], &[], &[]);
        let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["HOME", "LC_ALL", "OPENAI_API_KEY", "PATH", "https_proxy"]);
        for name in codex_fusion_protocol::agents::credential_vars("codex") {
            assert!(
                is_allowed(name, "codex"),
                "{name}: what a client forwards for the agent, the daemon's own passes too"
            );
        }
    }

    #[test]
    fn later_layers_win_and_ours_come_last() {
        let daemon = pairs(&[("CODEX_HOME", "/daemon/codex"), ("OPENAI_API_KEY", "daemon-key")]);
        let forwarded = pairs(&[("CODEX_HOME", "/client/codex"), ("OPENAI_API_KEY", "client-key")]);
        let command = pairs(&[("CODEX_PATH", "/user/codex"), ("EXTRA", "1")]);
        let ours = pairs(&[("CODEX_PATH", "/state/wrapper")]);
        let env = agent_environment("codex", daemon, &forwarded, &command, &ours);
        assert_eq!(get(&env, "CODEX_HOME"), Some("/client/codex"));
        assert_eq!(get(&env, "OPENAI_API_KEY"), Some("client-key"));
        assert_eq!(get(&env, "EXTRA"), Some("1"), "the agent command may add what it names");
        assert_eq!(
            get(&env, "CODEX_PATH"),
            Some("/state/wrapper"),
            "the confinement cannot be undone"
        );
    }

    #[test]
    fn relative_and_empty_path_entries_are_dropped() {
        assert_eq!(absolute_entries("/usr/bin::.:node_modules/.bin:/bin:"), "/usr/bin:/bin");
        let env = agent_environment("codex", pairs(&[("PATH", ":./bin:/usr/bin")]), &[], &[], &[]);
        assert_eq!(get(&env, "PATH"), Some("/usr/bin"));
        // Also when the agent command sets it.
        let env = agent_environment("codex", Vec::new(), &[], &pairs(&[("PATH", "bin:/opt/bin")]), &[]);
        assert_eq!(get(&env, "PATH"), Some("/opt/bin"));
    }

    /// Issue 15: an agent of a council gets its own credentials from the
    /// daemon's environment and from the client, never another agent's.
    #[test]
    fn each_agent_gets_only_its_own_credentials() {
        let daemon = pairs(&[
            ("HOME", "/home/u"),
            ("OPENAI_API_KEY", "sk-openai"),
            ("OPENAI_BASE_URL", "http://openai.mock"),
            ("ANTHROPIC_API_KEY", "sk-ant"),
            ("GEMINI_API_KEY", "gem"),
        ]);
        let names = |agent: &str| -> Vec<String> {
            agent_environment(agent, daemon.clone(), &[], &[], &[])
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        };
        assert_eq!(names("codex"), ["HOME", "OPENAI_API_KEY", "OPENAI_BASE_URL"]);
        assert_eq!(names("claude"), ["ANTHROPIC_API_KEY", "HOME"]);
        assert_eq!(names("gemini"), ["GEMINI_API_KEY", "HOME"]);
        assert_eq!(names("my-agent"), ["HOME"]);
        let forwarded = pairs(&[("OPENAI_API_KEY", "client"), ("ANTHROPIC_BASE_URL", "http://mock")]);
        assert_eq!(
            forwarded_for("claude", &forwarded),
            pairs(&[("ANTHROPIC_BASE_URL", "http://mock")])
        );
        assert_eq!(
            forwarded_for("codex", &forwarded),
            pairs(&[("OPENAI_API_KEY", "client")])
        );
    }
}
