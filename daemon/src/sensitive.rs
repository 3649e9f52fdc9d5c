//! Which paths are sensitive: credential stores (never read without asking,
//! wherever the workspace is) and files that run code or configure agents
//! (never changed without asking, even with `CODEX_FUSION_ALLOW_WRITES`).
//! Pure functions of a path's components: no filesystem access. One list,
//! used by the guardian and by the permission profile (`confine`).

use std::path::{Component, Path, PathBuf};

/// Directories whose whole content is a credential store, as they appear
/// under a home directory (or any workspace: Claude started in `~` makes
/// `~` the workspace).
pub const CREDENTIAL_DIRS: &[&str] = &[".ssh", ".gnupg", ".aws", ".azure", ".kube", ".codex", ".claude"];

/// Credential directories two components deep.
pub const CREDENTIAL_NESTED_DIRS: &[(&str, &str)] = &[(".config", "gh"), (".config", "gcloud")];

/// Credential files two components deep.
pub const CREDENTIAL_NESTED_FILES: &[(&str, &str)] = &[
    (".docker", "config.json"),
    // `~/.config/git/credentials`, git's store helper's other home.
    ("git", "credentials"),
    (".cargo", "credentials.toml"),
    (".cargo", "credentials"),
];

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
    ".pgpass",
    ".vault-token",
    ".boto",
    ".s3cfg",
    // Shell and REPL histories hold what was typed, keys included.
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".node_repl_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
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
    ".env.staging.local",
    ".env.prod",
    ".env.prod.local",
    ".env.dev",
    ".env.dev.local",
    ".env.stage",
    ".env.qa",
    ".env.uat",
    ".env.ci",
    ".env.docker",
    ".env.preview",
    ".env.backup",
    ".env.bak",
    ".env.old",
    ".env.secret",
    ".env.secrets",
    ".env.override",
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
    ".buildkite",
    ".travis.yml",
    "azure-pipelines.yml",
    "Jenkinsfile",
    ".pre-commit-config.yaml",
    // Build and editor settings that run programs.
    ".cargo",
    ".vscode",
    ".devcontainer",
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
    credential_store(path, stores).is_some()
}

/// The credential store `path` (absolute and resolved) is or lies in, for
/// saying why it is sensitive: the first of `stores` that holds it, else
/// the path up to its first credential component (`/home/u/.ssh` for
/// `/home/u/.ssh/id_rsa`, `/w/.env` for `/w/.env`).
pub fn credential_store(path: &Path, stores: &[&Path]) -> Option<PathBuf> {
    if let Some(store) = stores
        .iter()
        .find(|store| !store.as_os_str().is_empty() && path.starts_with(store))
    {
        return Some(store.to_path_buf());
    }
    let names: Vec<&str> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect();
    let index = names.iter().enumerate().position(|(index, name)| {
        CREDENTIAL_DIRS.contains(name)
            || is_credential_name(name)
            || CREDENTIAL_NESTED_DIRS
                .iter()
                .chain(CREDENTIAL_NESTED_FILES)
                .any(|(outer, inner)| name == outer && names.get(index + 1) == Some(inner))
    })?;
    // A nested store is named with its inner component (`~/.config/gh`).
    let nested = CREDENTIAL_NESTED_DIRS
        .iter()
        .chain(CREDENTIAL_NESTED_FILES)
        .any(|(outer, inner)| names[index] == *outer && names.get(index + 1) == Some(inner));
    let end = if nested { index + 2 } else { index + 1 };
    Some(
        names[..end]
            .iter()
            .fold(PathBuf::from("/"), |store, name| store.join(name)),
    )
}

/// Whether `path` (absolute and resolved) is a file that runs code or
/// configures an agent, judged by its place under `workspace`: the first
/// component below the workspace is one of [`AGENT_CONFIG_ENTRIES`]. A
/// path outside the workspace is not judged here (it asks anyway).
pub fn is_agent_config_path(path: &Path, workspace: &Path) -> bool {
    agent_config_entry(path, workspace).is_some()
}

/// The entry of [`AGENT_CONFIG_ENTRIES`] (or the instructions file) that
/// makes `path` agent configuration: `/w/.git` for `/w/.git/hooks/pre-commit`,
/// `/w/sub/AGENTS.md` for itself.
pub fn agent_config_entry(path: &Path, workspace: &Path) -> Option<PathBuf> {
    let relative = path.strip_prefix(workspace).ok()?;
    // Case folded: macOS's file system is not case-sensitive, so
    // `.GIT/hooks` is `.git/hooks` there.
    let same = |name: &std::ffi::OsStr, entry: &str| name.to_string_lossy().eq_ignore_ascii_case(entry);
    let Some(Component::Normal(first)) = relative.components().next() else {
        return None;
    };
    if AGENT_CONFIG_ENTRIES.iter().any(|entry| same(first, entry)) {
        return Some(workspace.join(first));
    }
    // A nested repository's `.git` (hooks, config) runs code as much as the
    // workspace's own.
    let mut prefix = workspace.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else { continue };
        prefix.push(name);
        if same(name, ".git") {
            return Some(prefix);
        }
    }
    // Instructions are read from every directory Codex and Claude enter.
    path.file_name()
        .is_some_and(|name| INSTRUCTION_FILES.iter().any(|file| same(name, file)))
        .then(|| path.to_path_buf())
}

/// Agent instruction files, honoured in any directory.
const INSTRUCTION_FILES: &[&str] = &["AGENTS.md", "CLAUDE.md", "AGENTS.override.md"];

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
            "/home/u/.config/gcloud/credentials.db",
            "/home/u/.config/git/credentials",
            "/home/u/.cargo/credentials.toml",
            "/home/u/.pgpass",
            "/home/u/.bash_history",
            "/w/.env.prod",
            "/w/.env.docker",
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
    fn the_store_named_is_the_part_of_the_path_that_made_it_one() {
        let state = Path::new("/home/u/.local/state/codex-fusion");
        for (path, store) in [
            ("/home/u/.ssh/id_rsa", "/home/u/.ssh"),
            ("/home/u/.ssh", "/home/u/.ssh"),
            ("/w/app/.env.local", "/w/app/.env.local"),
            ("/home/u/.config/gh/hosts.yml", "/home/u/.config/gh"),
            ("/home/u/.docker/config.json", "/home/u/.docker/config.json"),
            ("/w/keys/id_ed25519", "/w/keys/id_ed25519"),
            (
                "/home/u/.local/state/codex-fusion/sessions.json",
                "/home/u/.local/state/codex-fusion",
            ),
            // An extra store wins over a component inside it.
            (
                "/home/u/.local/state/codex-fusion/.ssh/x",
                "/home/u/.local/state/codex-fusion",
            ),
        ] {
            assert_eq!(
                credential_store(Path::new(path), &[state]).as_deref(),
                Some(Path::new(store)),
                "{path}"
            );
        }
        assert_eq!(credential_store(Path::new("/w/src/main.rs"), &[state]), None);
        // An empty store (an unset variable) holds nothing.
        assert_eq!(credential_store(Path::new("/w/src/main.rs"), &[Path::new("")]), None);
    }

    #[test]
    fn the_profile_masks_every_env_file_the_guardian_asks_for() {
        // The profile can only name `.env` files one by one; each named one
        // is one the guardian treats as a credential too.
        for name in ENV_FILES {
            assert!(is_credential_name(name), "{name}");
        }
        for template in [".env.example", ".env.sample", ".env.template", ".env.dist"] {
            assert!(
                !ENV_FILES.contains(&template) && !is_credential_name(template),
                "{template}"
            );
        }
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
            // Case folded, for macOS.
            "/w/.GIT/hooks/pre-commit",
            "/w/agents.md",
            "/w/.Claude/settings.json",
            // A nested repository's hooks.
            "/w/vendor/lib/.git/hooks/post-checkout",
            "/w/.cargo/config.toml",
            "/w/.vscode/tasks.json",
            "/w/Jenkinsfile",
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
        for (path, entry) in [
            ("/w/.git/hooks/pre-commit", "/w/.git"),
            ("/w/.github/workflows/ci.yml", "/w/.github"),
            ("/w/.mcp.json", "/w/.mcp.json"),
            ("/w/sub/AGENTS.md", "/w/sub/AGENTS.md"),
            ("/w/sub/AGENTS.override.md", "/w/sub/AGENTS.override.md"),
        ] {
            assert_eq!(
                agent_config_entry(Path::new(path), workspace).as_deref(),
                Some(Path::new(entry)),
                "{path}"
            );
        }
        assert_eq!(agent_config_entry(Path::new("/w"), workspace), None);
    }
}
