//! Which paths are sensitive: credential stores (never read without asking,
//! wherever the workspace is) and files that run code or configure agents
//! (never changed without asking, even with `CODEX_FUSION_ALLOW_WRITES`).
//! Pure functions of a path's components: no filesystem access. One list,
//! used by the guardian and by the permission profile (`confine`).

use std::path::{Component, Path};

/// Directories whose whole content is a credential store, as they appear
/// under a home directory (or any workspace: Claude started in `~` makes
/// `~` the workspace).
pub const CREDENTIAL_DIRS: &[&str] = &[".ssh", ".gnupg", ".aws", ".azure", ".kube", ".codex", ".claude"];

/// Credential directories two components deep.
pub const CREDENTIAL_NESTED_DIRS: &[(&str, &str)] = &[(".config", "gh")];

/// Credential files two components deep.
pub const CREDENTIAL_NESTED_FILES: &[(&str, &str)] = &[(".docker", "config.json")];

/// Files that are credentials wherever they are.
pub const CREDENTIAL_FILES: &[&str] = &[
    ".netrc",
    ".claude.json",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    "id_rsa",
    "id_ecdsa",
    "id_ed25519",
    "id_dsa",
];

/// File name endings of key material.
pub const CREDENTIAL_SUFFIXES: &[&str] = &[".pem", ".key", ".p12", ".pfx"];

/// `.env` files by name, for the permission profile, which can only deny
/// by pattern (a pattern for `.env.*` would hide `.env.example` too).
pub const ENV_FILES: &[&str] = &[
    ".env",
    ".env.local",
    ".env.development",
    ".env.development.local",
    ".env.production",
    ".env.production.local",
    ".env.test",
    ".env.test.local",
    ".env.staging",
];

/// `.env` files hold secrets; these endings mark a template that does not.
const ENV_TEMPLATE_SUFFIXES: &[&str] = &[".example", ".sample", ".template", ".dist"];

/// Names (relative to the workspace root) of files and directories that run
/// code or configure an agent: git's config and hooks, Claude's and Codex's
/// project settings, MCP registrations, direnv, agent instructions, CI.
pub const AGENT_CONFIG_ENTRIES: &[&str] = &[
    ".git",
    ".claude",
    ".mcp.json",
    ".codex",
    ".envrc",
    "AGENTS.md",
    "CLAUDE.md",
    ".github",
    ".gitlab-ci.yml",
    ".circleci",
    ".husky",
];

/// Whether a file name is a credential by itself (`.env`, `id_rsa`, `*.pem`).
pub fn is_credential_name(name: &str) -> bool {
    if CREDENTIAL_FILES.contains(&name) {
        return true;
    }
    if name == ".env"
        || (name.starts_with(".env.") && !ENV_TEMPLATE_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)))
    {
        return true;
    }
    CREDENTIAL_SUFFIXES
        .iter()
        .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
}

/// Whether `path` (absolute and resolved) is or lies in a credential store:
/// any component is a credential directory or a credential file name, or
/// the path is inside one of `stores` (the daemon's state dir, CODEX_HOME).
pub fn is_credential_path(path: &Path, stores: &[&Path]) -> bool {
    if stores
        .iter()
        .any(|store| !store.as_os_str().is_empty() && path.starts_with(store))
    {
        return true;
    }
    let names: Vec<&str> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect();
    names.iter().enumerate().any(|(index, name)| {
        CREDENTIAL_DIRS.contains(name)
            || is_credential_name(name)
            || CREDENTIAL_NESTED_DIRS
                .iter()
                .chain(CREDENTIAL_NESTED_FILES)
                .any(|(outer, inner)| name == outer && names.get(index + 1) == Some(inner))
    })
}

/// Whether `path` (absolute and resolved) is a file that runs code or
/// configures an agent, judged by its place under `workspace`: the first
/// component below the workspace is one of [`AGENT_CONFIG_ENTRIES`]. A
/// path outside the workspace is not judged here (it asks anyway).
pub fn is_agent_config_path(path: &Path, workspace: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(workspace) else {
        return false;
    };
    let mut components = relative.components();
    let Some(Component::Normal(first)) = components.next() else {
        return false;
    };
    let first = first.to_string_lossy();
    AGENT_CONFIG_ENTRIES.contains(&first.as_ref())
        // Instructions are read from every directory Codex and Claude enter.
        || path
            .file_name()
            .is_some_and(|name| name == "AGENTS.md" || name == "CLAUDE.md" || name == "AGENTS.override.md")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_stores_are_recognised_at_any_depth() {
        let none: &[&Path] = &[];
        for path in [
            "/home/u/.ssh/id_rsa",
            "/home/u/.ssh",
            "/w/.ssh/config",
            "/w/sub/.aws/credentials",
            "/home/u/.config/gh/hosts.yml",
            "/home/u/.docker/config.json",
            "/home/u/.netrc",
            "/home/u/.claude.json",
            "/home/u/.claude/settings.json",
            "/home/u/.codex/auth.json",
            "/w/.env",
            "/w/app/.env.local",
            "/w/certs/server.pem",
            "/w/keys/id_ed25519",
            "/home/u/.gnupg/private-keys-v1.d/x.key",
            "/home/u/.kube/config",
            "/home/u/.azure/accessTokens.json",
        ] {
            assert!(is_credential_path(Path::new(path), none), "{path}");
        }
        for path in [
            "/w/src/main.rs",
            "/w/.env.example",
            "/w/.env.sample",
            "/w/.config/other/x",
            "/w/.docker/other.json",
            "/w/keys/id_ed25519.pub",
            "/w/docs/ssh.md",
            "/w/.pem",
            "/w/environment.rs",
        ] {
            assert!(!is_credential_path(Path::new(path), none), "{path}");
        }
        let state = Path::new("/home/u/.local/state/codex-fusion");
        assert!(is_credential_path(
            Path::new("/home/u/.local/state/codex-fusion/sessions.json"),
            &[state]
        ));
        assert!(!is_credential_path(Path::new("/home/u/.local/state/other"), &[state]));
    }

    #[test]
    fn agent_configuration_is_recognised_below_the_workspace() {
        let workspace = Path::new("/w");
        for path in [
            "/w/.git/config",
            "/w/.git/hooks/pre-commit",
            "/w/.claude/settings.json",
            "/w/.mcp.json",
            "/w/.codex/config.toml",
            "/w/.envrc",
            "/w/AGENTS.md",
            "/w/CLAUDE.md",
            "/w/sub/AGENTS.md",
            "/w/.github/workflows/ci.yml",
            "/w/.gitlab-ci.yml",
        ] {
            assert!(is_agent_config_path(Path::new(path), workspace), "{path}");
        }
        for path in [
            "/w/src/lib.rs",
            "/w/README.md",
            "/w/.gitignore",
            "/w/docs/git.md",
            "/other/.git/config",
        ] {
            assert!(!is_agent_config_path(Path::new(path), workspace), "{path}");
        }
    }
}
