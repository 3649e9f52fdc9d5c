//! Turning the paths in a permission request into facts for the guardian:
//! absolute, `..` and symlinks resolved the way the OS would, inside or
//! outside the canonical workspace, and sensitive or not ([`Boundary`]).
//! This is the only guardian code that touches the filesystem (metadata
//! and link reads only).

use std::path::{Component, Path, PathBuf};

use crate::guardian::ResolvedPath;
use crate::sensitive;

/// What every path of a request is judged against: the canonical
/// workspace, the credential stores only the daemon knows of (its own
/// state directory, the agent's CODEX_HOME), and the home directory, to
/// name a store as a person would (`~/.ssh`).
#[derive(Debug, Clone)]
pub struct Boundary {
    workspace: PathBuf,
    stores: Vec<PathBuf>,
    home: Option<PathBuf>,
}

impl Boundary {
    /// `workspace` must be canonical; `stores` are resolved here (relative
    /// ones are ignored: they name nothing).
    pub fn new(workspace: &Path, stores: impl IntoIterator<Item = PathBuf>, home: Option<PathBuf>) -> Boundary {
        let resolve_store = |store: PathBuf| store.is_absolute().then(|| resolve_absolute(&store, 0)).flatten();
        Boundary {
            workspace: workspace.to_path_buf(),
            stores: stores.into_iter().filter_map(resolve_store).collect(),
            home: home.filter(|home| home.is_absolute() && home.parent().is_some()),
        }
    }

    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// [`resolve`]s `raw` and says whether it is in a credential store or
    /// is agent configuration, judging where it leads, its directory entry
    /// and the path as written (`..` taken lexically), so that neither a
    /// link named `.env` nor a link into `~/.ssh` hides what it is.
    pub fn judge(&self, base: &Path, raw: &Path) -> ResolvedPath {
        let mut path = resolve(&self.workspace, base, raw);
        let absolute = if raw.is_absolute() {
            raw.to_path_buf()
        } else {
            base.join(raw)
        };
        let forms: Vec<PathBuf> = [Some(path.resolved.clone()), entry(&absolute), Some(lexical(&absolute))]
            .into_iter()
            .flatten()
            .collect();
        let stores: Vec<&Path> = self.stores.iter().map(PathBuf::as_path).collect();
        path.credential_store = forms
            .iter()
            .find_map(|form| sensitive::credential_store(form, &stores))
            .map(|store| self.show(&store));
        path.agent_config = forms
            .iter()
            .find_map(|form| sensitive::agent_config_entry(form, &self.workspace))
            .map(|entry| self.show(&entry));
        path
    }

    /// `path` as a person would name it: relative inside the workspace,
    /// `~/…` under the home directory, else absolute.
    fn show(&self, path: &Path) -> String {
        if let Ok(relative) = path.strip_prefix(&self.workspace)
            && !relative.as_os_str().is_empty()
        {
            return relative.display().to_string();
        }
        match self.home.as_deref().map(|home| path.strip_prefix(home)) {
            Some(Ok(relative)) if !relative.as_os_str().is_empty() => format!("~/{}", relative.display()),
            _ => path.display().to_string(),
        }
    }
}

/// `path` with `.` dropped and `..` taken lexically (the path as written,
/// symlinks not followed).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    out
}

/// Symlink hops followed before a path is judged unresolvable (Linux's own
/// limit is 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// Resolves `raw` (relative paths against `base`) and judges it against
/// `workspace`, which must itself be canonical.
///
/// Two facts are judged: where the path leads (reads and writes follow a
/// final symlink) and where its directory entry is (deletes and moves act on
/// the entry itself, `unlink`/`rename`), so a link that lives outside is an
/// outside entry even when it points in.
pub fn resolve(workspace: &Path, base: &Path, raw: &Path) -> ResolvedPath {
    let absolute = if raw.is_absolute() {
        raw.to_path_buf()
    } else {
        base.join(raw)
    };
    match resolve_absolute(&absolute, 0) {
        Some(resolved) => ResolvedPath {
            raw: raw.to_path_buf(),
            inside_workspace: resolved.starts_with(workspace),
            entry_inside_workspace: entry(&absolute).is_some_and(|entry| entry.starts_with(workspace)),
            resolved,
            ..ResolvedPath::default()
        },
        // A symlink loop or a too-deep chain: the OS would refuse it too, but
        // it is never judged inside.
        None => ResolvedPath {
            raw: raw.to_path_buf(),
            resolved: absolute,
            ..ResolvedPath::default()
        },
    }
}

/// The directory entry `path` names: its parent resolved, its last
/// component as written (not followed if it is a symlink).
fn entry(path: &Path) -> Option<PathBuf> {
    // `link/` (or `link/.`) names what the link points to, as in the kernel.
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.ends_with(b"/") || bytes.ends_with(b"/.") {
        return resolve_absolute(path, 0);
    }
    match path.components().next_back()? {
        Component::Normal(name) => {
            let parent = path.parent().unwrap_or(Path::new("/"));
            Some(resolve_absolute(parent, 0)?.join(name))
        }
        // `..`, `.` or `/` at the end name a directory, resolved as a whole.
        _ => resolve_absolute(path, 0),
    }
}

/// Walks `path` one component at a time, as the kernel does: an existing
/// symlink is replaced by its target (even a dangling one), `..` goes to the
/// parent of what has been resolved so far, and components that do not exist
/// are taken as written. The prefix resolved so far is always free of
/// symlinks, so `..` after it is exact.
fn resolve_absolute(path: &Path, hops: usize) -> Option<PathBuf> {
    let mut resolved = PathBuf::from("/");
    let mut hops = hops;
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                let candidate = resolved.join(name);
                match std::fs::symlink_metadata(&candidate) {
                    Ok(metadata) if metadata.file_type().is_symlink() => {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            return None;
                        }
                        let target = std::fs::read_link(&candidate).ok()?;
                        let target = if target.is_absolute() {
                            target
                        } else {
                            resolved.join(target)
                        };
                        resolved = resolve_absolute(&target, hops)?;
                    }
                    _ => resolved = candidate,
                }
            }
        }
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _temp: tempfile::TempDir,
        workspace: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(temp.path()).expect("canonical");
        let workspace = root.join("ws");
        let outside = root.join("outside");
        std::fs::create_dir_all(workspace.join("src")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(workspace.join("src/lib.rs"), "").expect("write");
        std::fs::write(outside.join("secret"), "").expect("write");
        symlink(&outside, workspace.join("link-out")).expect("symlink");
        symlink(workspace.join("src"), workspace.join("link-in")).expect("symlink");
        symlink(outside.join("not-yet"), workspace.join("dangling-out")).expect("symlink");
        symlink("loop-b", workspace.join("loop-a")).expect("symlink");
        symlink("loop-a", workspace.join("loop-b")).expect("symlink");
        Fixture {
            _temp: temp,
            workspace,
            outside,
        }
    }

    fn inside(fixture: &Fixture, raw: &str) -> bool {
        resolve(&fixture.workspace, &fixture.workspace, Path::new(raw)).inside_workspace
    }

    #[test]
    fn plain_paths_inside_and_outside() {
        let fixture = fixture();
        assert!(inside(&fixture, "src/lib.rs"));
        assert!(inside(&fixture, "./src/../src/lib.rs"));
        assert!(inside(&fixture, "new-file.txt"));
        assert!(inside(&fixture, fixture.workspace.to_str().expect("utf8")));
        assert!(!inside(&fixture, "/etc/passwd"));
        assert!(!inside(&fixture, "../outside/secret"));
        assert!(!inside(
            &fixture,
            fixture.outside.join("secret").to_str().expect("utf8")
        ));
    }

    #[test]
    fn dotdot_and_double_slashes_are_resolved() {
        let fixture = fixture();
        assert!(!inside(&fixture, "src/../../outside/secret"));
        assert!(!inside(&fixture, "missing/../../outside"));
        assert!(inside(&fixture, "missing/../src//lib.rs"));
        let doubled = format!("{}//..//outside", fixture.workspace.display());
        assert!(!inside(&fixture, &doubled));
    }

    #[test]
    fn symlinks_are_followed_including_dangling_ones() {
        let fixture = fixture();
        assert!(!inside(&fixture, "link-out/secret"));
        assert!(!inside(&fixture, "link-out/new-file"));
        assert!(!inside(&fixture, "link-out"));
        assert!(inside(&fixture, "link-in/lib.rs"));
        // Writing through a dangling link creates its target, outside.
        assert!(!inside(&fixture, "dangling-out"));
        // `..` after a symlink goes to the parent of its target, as in the kernel.
        assert!(!inside(&fixture, "link-in/../../outside/secret"));
        assert!(inside(&fixture, "link-in/../src/lib.rs"));
    }

    #[test]
    fn a_link_outside_pointing_in_is_outside() {
        let fixture = fixture();
        symlink(&fixture.workspace, fixture.outside.join("link-back")).expect("symlink");
        let path = resolve(
            &fixture.workspace,
            &fixture.workspace,
            Path::new("../outside/link-back"),
        );
        // It leads inside, but deleting it would remove an entry outside.
        assert!(path.inside_workspace);
        assert!(!path.entry_inside_workspace);
        // A dangling link inside leads outside; its entry is inside.
        let path = resolve(&fixture.workspace, &fixture.workspace, Path::new("dangling-out"));
        assert!(!path.inside_workspace);
        assert!(path.entry_inside_workspace);
        // With a trailing slash, the entry is the directory it points to.
        let path = resolve(&fixture.workspace, &fixture.workspace, Path::new("link-out/"));
        assert!(!path.entry_inside_workspace);
    }

    #[test]
    fn loops_are_never_inside() {
        let fixture = fixture();
        let resolved = resolve(&fixture.workspace, &fixture.workspace, Path::new("loop-a/x"));
        assert!(!resolved.inside_workspace);
    }

    #[test]
    fn credential_stores_and_agent_configuration_are_named_however_they_are_reached() {
        let fixture = fixture();
        let home = fixture.outside.join("home");
        let state = home.join(".local/state/codex-fusion");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
        std::fs::create_dir_all(&state).expect("mkdir");
        std::fs::create_dir_all(fixture.workspace.join(".git/hooks")).expect("mkdir");
        // A link inside into ~/.ssh, a harmless-looking link named `.env`,
        // a link to the state dir.
        symlink(home.join(".ssh"), fixture.workspace.join("keys")).expect("symlink");
        symlink("src/lib.rs", fixture.workspace.join(".env")).expect("symlink");
        symlink(&state, fixture.workspace.join("state")).expect("symlink");
        symlink(".git/hooks", fixture.workspace.join("hooks")).expect("symlink");
        let boundary = Boundary::new(&fixture.workspace, [state.clone()], Some(home.clone()));
        let judge = |raw: &str| boundary.judge(&fixture.workspace, Path::new(raw));
        assert_eq!(judge("keys/id_rsa").credential_store.as_deref(), Some("~/.ssh"));
        assert_eq!(judge(".env").credential_store.as_deref(), Some(".env"));
        assert_eq!(
            judge("state/sessions.json").credential_store.as_deref(),
            Some("~/.local/state/codex-fusion")
        );
        assert_eq!(judge("src/lib.rs").credential_store, None);
        assert_eq!(judge(".git/hooks/pre-commit").agent_config.as_deref(), Some(".git"));
        assert_eq!(judge("hooks/pre-commit").agent_config.as_deref(), Some(".git"));
        assert_eq!(judge("sub/AGENTS.md").agent_config.as_deref(), Some("sub/AGENTS.md"));
        assert_eq!(judge("src/lib.rs").agent_config, None);
        // `..` as written is taken lexically: `.ssh/..` names no store.
        assert_eq!(judge("keys/../src/lib.rs").credential_store, None);
        // Outside the workspace, agent configuration is not judged (it asks
        // anyway); a store is named by its absolute path off home.
        let elsewhere = fixture.outside.join(".aws/credentials");
        assert_eq!(
            judge(elsewhere.to_str().expect("utf8")).credential_store.as_deref(),
            Some(fixture.outside.join(".aws").to_str().expect("utf8"))
        );
    }

    #[test]
    fn a_sibling_with_a_common_prefix_is_outside() {
        let fixture = fixture();
        let sibling = format!("{}-other/file", fixture.workspace.display());
        assert!(!inside(&fixture, &sibling));
    }
}
