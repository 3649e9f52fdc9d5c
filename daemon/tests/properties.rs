//! Property tests of the guardian's path checks and its decision function.
//!
//! `resolve::resolve` is checked against the operating system itself: each
//! generated path is built from `..`, `.`, empty components (`//`), names
//! that exist or not, and symlinks that point out of and into the
//! workspace (some dangling, one looping), in a fresh copy of a small tree.
//! The oracle asks the kernel where the path lands: `canonicalize` when it
//! exists, otherwise it creates the path the way a write tool would
//! (`mkdir -p` of the parent, then create, which follows dangling symlinks)
//! and canonicalizes what was created. A path the kernel cannot land
//! anywhere (a loop, a file used as a directory) constrains nothing.
//!
//! Deletes and moves act on a directory entry, not on where it leads, so
//! they get an oracle of their own: the deletion or move is really done in
//! a fresh tree, and whatever it removed or moved outside the workspace
//! must have been refused by the guardian. (Only paths the kernel places
//! inside the test's own temp dir are ever deleted or moved.)
//!
//! `guardian::decide` is checked over arbitrary requests and policies.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use codex_fusiond::guardian::{self, ActionKind, Decision, PermissionRequest, Policy, ResolvedPath};
use codex_fusiond::resolve::resolve;
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ----- the tree -----------------------------------------------------------

/// How deep the tree sits inside its temp dir. The oracle creates whatever
/// path it is given, so no generated path may reach above the temp dir: a
/// path climbs at most `MAX_COMPONENTS` `..` from at most 3 levels above the
/// tree's root (`Start::Ancestor`), and every symlink points into the tree.
const NEST: usize = MAX_COMPONENTS + 4;

/// Most components in a generated path.
const MAX_COMPONENTS: usize = 6;

/// A workspace, a directory outside it, a sibling whose name shares the
/// workspace's prefix, and symlinks between them, nested `NEST` levels
/// inside a temp dir (`scratch`) so that nothing is ever created elsewhere.
struct Tree {
    _temp: tempfile::TempDir,
    scratch: PathBuf,
    workspace: PathBuf,
    outside: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let temp = tempfile::Builder::new()
            .prefix("cf-resolve-")
            .tempdir()
            .expect("tempdir");
        let scratch = std::fs::canonicalize(temp.path()).expect("canonical temp");
        let root = (1..=NEST).fold(scratch.clone(), |path, level| path.join(format!("n{level}")));
        let workspace = root.join("ws");
        let outside = root.join("outside");
        for dir in [
            workspace.join("src"),
            workspace.join("sub/deeper"),
            outside.clone(),
            root.join("ws-other"),
        ] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        for file in [
            workspace.join("src/lib.rs"),
            workspace.join("file.txt"),
            outside.join("secret"),
            root.join("ws-other/x"),
        ] {
            std::fs::write(file, "").expect("write");
        }
        let links: [(&str, PathBuf); 19] = [
            // Out of the workspace: absolute, relative, to a file, chained.
            ("ws/link-out", outside.clone()),
            ("ws/link-out-rel", "../outside".into()),
            ("ws/link-file-out", outside.join("secret")),
            ("ws/chain", "link-out-rel".into()),
            ("ws/link-root", "..".into()),
            ("ws/sub/link-up2", "../..".into()),
            ("ws/link-sibling", root.join("ws-other")),
            // Dangling ones: writing through them creates their target.
            ("ws/dangling-out", outside.join("not-yet")),
            ("ws/dangling-out-rel", "../outside/not-yet-rel".into()),
            ("ws/dangling-deep-out", outside.join("newdir/newfile")),
            ("ws/dangling-in", "not-yet-in".into()),
            // Inside the workspace.
            ("ws/link-in", "src".into()),
            ("ws/link-in-abs", workspace.join("src")),
            ("ws/link-self", ".".into()),
            ("ws/sub/link-ws", "..".into()),
            // From outside back in.
            ("outside/link-back", workspace.clone()),
            ("outside/link-back-rel", "../ws/src".into()),
            // A loop the kernel refuses (ELOOP).
            ("ws/loop-a", "loop-b".into()),
            ("ws/loop-b", "loop-a".into()),
        ];
        for (link, target) in links {
            symlink(target, root.join(link)).expect("symlink");
        }
        Tree {
            _temp: temp,
            scratch,
            workspace,
            outside,
        }
    }
}

/// Where the kernel puts `path`: its canonical form if it exists, else
/// where creating it (parent directories first) lands. `None` when the
/// kernel can place it nowhere. Mutates the tree.
fn kernel_landing(path: &Path) -> Option<PathBuf> {
    if let Ok(existing) = std::fs::canonicalize(path) {
        return Some(existing);
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .is_err()
    {
        let _ = std::fs::create_dir_all(path);
    }
    std::fs::canonicalize(path).ok()
}

// ----- generated paths ----------------------------------------------------

const COMPONENTS: &[&str] = &[
    "..",
    "..",
    ".",
    "",
    "src",
    "lib.rs",
    "sub",
    "deeper",
    "file.txt",
    "missing",
    "new",
    "ws",
    "ws-other",
    "outside",
    "secret",
    "x",
    "link-out",
    "link-out-rel",
    "link-file-out",
    "chain",
    "link-root",
    "link-up2",
    "link-sibling",
    "dangling-out",
    "dangling-out-rel",
    "dangling-deep-out",
    "dangling-in",
    "link-in",
    "link-in-abs",
    "link-self",
    "link-ws",
    "link-back",
    "link-back-rel",
    "loop-a",
];

#[derive(Debug, Clone, Copy)]
enum Start {
    Relative,
    Root,
    Workspace,
    Outside,
    /// Three levels above the tree's root.
    Ancestor,
}

#[derive(Debug, Clone, Copy)]
enum Base {
    Workspace,
    Sub,
    /// A base that is itself a symlink (a command's `cwd` as Codex wrote it).
    LinkIn,
    LinkOut,
    Outside,
    Missing,
}

#[derive(Debug, Clone)]
struct Case {
    start: Start,
    base: Base,
    components: Vec<&'static str>,
    trailing_slash: bool,
}

impl Case {
    fn raw(&self, tree: &Tree) -> String {
        let joined = self.components.join("/");
        let prefix = match self.start {
            Start::Relative => {
                let raw = if self.trailing_slash {
                    format!("{joined}/")
                } else {
                    joined
                };
                // A leading empty component would make it absolute (`/x`):
                // keep it relative, so it can never name the real root.
                return if raw.starts_with('/') { format!(".{raw}") } else { raw };
            }
            Start::Root => tree
                .workspace
                .parent()
                .expect("the tree has a root")
                .display()
                .to_string(),
            Start::Workspace => tree.workspace.display().to_string(),
            Start::Outside => tree.outside.display().to_string(),
            Start::Ancestor => format!(
                "{}/../../..",
                tree.workspace.parent().expect("the tree has a root").display()
            ),
        };
        let slash = if self.trailing_slash { "/" } else { "" };
        format!("{prefix}/{joined}{slash}")
    }

    fn base(&self, tree: &Tree) -> PathBuf {
        match self.base {
            Base::Workspace => tree.workspace.clone(),
            Base::Sub => tree.workspace.join("sub"),
            Base::LinkIn => tree.workspace.join("link-in"),
            Base::LinkOut => tree.workspace.join("link-out"),
            Base::Outside => tree.outside.clone(),
            Base::Missing => tree.workspace.join("missing-dir"),
        }
    }

    /// The path the OS is asked about: `raw` as given, or under `base`.
    fn full(&self, tree: &Tree) -> PathBuf {
        let raw = self.raw(tree);
        if raw.starts_with('/') {
            PathBuf::from(raw)
        } else {
            PathBuf::from(format!("{}/{raw}", self.base(tree).display()))
        }
    }
}

fn case() -> impl Strategy<Value = Case> {
    let start = prop_oneof![
        4 => Just(Start::Relative),
        1 => Just(Start::Root),
        2 => Just(Start::Workspace),
        1 => Just(Start::Outside),
        1 => Just(Start::Ancestor),
    ];
    let base = prop_oneof![
        4 => Just(Base::Workspace),
        1 => Just(Base::Sub),
        1 => Just(Base::LinkIn),
        1 => Just(Base::LinkOut),
        1 => Just(Base::Outside),
        1 => Just(Base::Missing),
    ];
    (
        start,
        base,
        proptest::collection::vec(prop::sample::select(COMPONENTS), 0..=MAX_COMPONENTS),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(start, base, components, trailing_slash)| Case {
            start,
            base,
            components,
            trailing_slash,
        })
}

struct Checked {
    resolved: ResolvedPath,
    landing: Option<PathBuf>,
    existed: bool,
    tree: Tree,
}

/// Resolves the case in a fresh tree, then asks the kernel.
fn check(case: &Case) -> Checked {
    let tree = Tree::new();
    let raw = case.raw(&tree);
    let resolved = resolve(&tree.workspace, &case.base(&tree), Path::new(&raw));
    let full = case.full(&tree);
    let existed = std::fs::canonicalize(&full).is_ok();
    let landing = kernel_landing(&full);
    // A tripwire for the nesting argument above: nothing the oracle touches
    // may be outside the temp dir.
    assert!(
        landing
            .as_ref()
            .is_none_or(|landing| landing.starts_with(&tree.scratch)),
        "{} reached {landing:?}, outside the test's temp dir",
        full.display()
    );
    Checked {
        resolved,
        landing,
        existed,
        tree,
    }
}

proptest! {
    #![proptest_config(config(768))]

    /// The security property: a path the kernel puts outside the workspace
    /// is never judged inside.
    #[test]
    fn a_path_that_lands_outside_is_never_inside(case in case()) {
        let checked = check(&case);
        if let Some(landing) = checked.landing.as_ref().filter(|landing| !landing.starts_with(&checked.tree.workspace)) {
            prop_assert!(
                !checked.resolved.inside_workspace,
                "{:?} lands at {} but was judged inside (resolved to {})",
                case.raw(&checked.tree), landing.display(), checked.resolved.resolved.display()
            );
        }
    }

    /// For a path that exists, the resolution is exactly the kernel's.
    #[test]
    fn an_existing_path_resolves_exactly_as_the_kernel_does(case in case()) {
        let checked = check(&case);
        if checked.existed {
            let landing = checked.landing.as_ref().expect("an existing path lands");
            prop_assert_eq!(&checked.resolved.resolved, landing, "{:?}", case.raw(&checked.tree));
            prop_assert_eq!(checked.resolved.inside_workspace, landing.starts_with(&checked.tree.workspace));
        }
    }

    /// No needless asking: a path the kernel puts inside is judged inside.
    #[test]
    fn a_path_that_lands_inside_is_inside(case in case()) {
        let checked = check(&case);
        if let Some(landing) = checked.landing.as_ref().filter(|landing| landing.starts_with(&checked.tree.workspace)) {
            prop_assert!(
                checked.resolved.inside_workspace,
                "{:?} lands at {} but was judged outside (resolved to {})",
                case.raw(&checked.tree), landing.display(), checked.resolved.resolved.display()
            );
        }
    }
}

/// Every entry under `root`, symlinks listed but not followed.
fn entries(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut directories = vec![root.to_path_buf()];
    while let Some(directory) = directories.pop() {
        let Ok(listing) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in listing.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                directories.push(entry.path());
            }
            found.insert(entry.path());
        }
    }
    found
}

/// Whether the kernel places `path` (where it leads, and its entry) inside
/// `root`, so that deleting or moving it cannot touch anything else on
/// this machine.
fn confined_to(root: &Path, path: &Path) -> bool {
    let leads = std::fs::canonicalize(path).ok();
    let parent = path.parent().and_then(|parent| std::fs::canonicalize(parent).ok());
    (leads.is_some() || parent.is_some())
        && leads.is_none_or(|leads| leads.starts_with(root) && leads != root)
        && parent.is_none_or(|parent| parent.starts_with(root))
}

#[derive(Debug, Clone, Copy)]
enum Removal {
    /// `rm -r` / `std::fs::remove_dir_all` (after `remove_file` failed).
    Delete,
    /// `mv PATH <workspace>/moved-here`.
    Move,
}

/// Does `removal` of the case's path in a fresh tree, and returns the path
/// as `resolve` judged it (before) and the entries outside the workspace
/// that the operation removed. `None` when the path could lead out of the
/// test's temp dir, where nothing is ever deleted.
fn remove_for_real(case: &Case, removal: Removal) -> Option<(ResolvedPath, Vec<PathBuf>)> {
    let tree = Tree::new();
    let root = tree.workspace.parent().expect("the tree has a root").to_path_buf();
    let full = case.full(&tree);
    if !confined_to(&root, &full) {
        return None;
    }
    let resolved = resolve(&tree.workspace, &case.base(&tree), Path::new(&case.raw(&tree)));
    let before = entries(&root);
    match removal {
        Removal::Delete => {
            if std::fs::remove_file(&full).is_err() {
                let _ = std::fs::remove_dir_all(&full);
            }
        }
        Removal::Move => {
            let _ = std::fs::rename(&full, tree.workspace.join("moved-here"));
        }
    }
    let after = entries(&root);
    let touched_outside = before
        .difference(&after)
        .filter(|entry| !entry.starts_with(&tree.workspace))
        .cloned()
        .collect();
    Some((resolved, touched_outside))
}

proptest! {
    #![proptest_config(config(512))]

    /// Whatever a delete of the path really removes outside the workspace
    /// (through `..`, symlinks, a trailing `/` that makes the kernel follow
    /// a final symlink), the guardian never auto-allows that delete.
    #[test]
    fn a_delete_that_removes_anything_outside_is_never_allowed(case in case()) {
        let policy = Policy { allow_writes: true, ..Policy::default() };
        if let Some((resolved, removed)) = remove_for_real(&case, Removal::Delete)
            && !removed.is_empty()
        {
            let decision = guardian::decide(&request(ActionKind::Delete, vec![resolved.clone()]), &policy);
            prop_assert_ne!(
                decision, Decision::Allow,
                "deleting {:?} removed {:?} outside the workspace, yet was allowed ({:?})",
                case.raw(&Tree::new()), removed, resolved
            );
        }
    }

    /// The same for a move into the workspace: taking anything from outside
    /// is never auto-allowed.
    #[test]
    fn a_move_that_takes_anything_from_outside_is_never_allowed(case in case()) {
        let policy = Policy { allow_writes: true, ..Policy::default() };
        if let Some((resolved, moved)) = remove_for_real(&case, Removal::Move)
            && !moved.is_empty()
        {
            let decision = guardian::decide(&request(ActionKind::Move, vec![resolved.clone()]), &policy);
            prop_assert_ne!(
                decision, Decision::Allow,
                "moving {:?} took {:?} from outside the workspace, yet was allowed ({:?})",
                case.raw(&Tree::new()), moved, resolved
            );
        }
    }
}

/// Deleting or moving acts on the directory entry itself, not on what a
/// symlink points to (unlink(2) and rename(2) do not follow the last
/// component). A symlink that lives outside the workspace is outside, even
/// when it points inside it, so removing it must not be auto-allowed by
/// CODEX_FUSION_ALLOW_WRITES. (Found by the property tests; fixed by judging
/// deletes and moves by `entry_inside_workspace`.)
#[test]
fn deleting_a_symlink_that_lives_outside_is_never_auto_allowed() {
    let tree = Tree::new();
    let policy = Policy {
        allow_writes: true,
        ..Policy::default()
    };
    for raw in ["../outside/link-back", "../outside/link-back-rel"] {
        for kind in [ActionKind::Delete, ActionKind::Move] {
            let path = resolve(&tree.workspace, &tree.workspace, Path::new(raw));
            let request = request(kind, vec![path.clone()]);
            assert_ne!(
                guardian::decide(&request, &policy),
                Decision::Allow,
                "{kind:?} of {raw} (a symlink in {}) was auto-allowed as if inside: {path:?}",
                tree.outside.display()
            );
        }
    }
}

/// A trailing `/` (or `/.`) makes the kernel follow a final symlink, even
/// for unlink, rmdir and `rm -r`: deleting `link-out/` removes what is in
/// the directory it points to. Such a delete is judged by where the path
/// leads, so it is never auto-allowed when that is outside. (Found by
/// `a_delete_that_removes_anything_outside_is_never_allowed`: `entry` took
/// the last component from `Path::components`, which drops a trailing `/`;
/// fixed in 1a4bbd7.)
#[test]
fn deleting_through_a_trailing_slash_is_judged_by_the_target() {
    let tree = Tree::new();
    let policy = Policy {
        allow_writes: true,
        ..Policy::default()
    };
    for raw in ["link-out/", "link-out/.", "chain/", "link-sibling/"] {
        let path = resolve(&tree.workspace, &tree.workspace, Path::new(raw));
        assert_ne!(
            guardian::decide(&request(ActionKind::Delete, vec![path.clone()]), &policy),
            Decision::Allow,
            "deleting {raw} empties a directory outside the workspace, yet was allowed: {path:?}"
        );
    }
}

// ----- guardian::decide ---------------------------------------------------

fn request(kind: ActionKind, paths: Vec<ResolvedPath>) -> PermissionRequest {
    PermissionRequest {
        kind,
        title: "t".into(),
        paths,
        ..PermissionRequest::default()
    }
}

fn kind() -> impl Strategy<Value = ActionKind> {
    prop::sample::select(vec![
        ActionKind::Read,
        ActionKind::Search,
        ActionKind::Edit,
        ActionKind::Delete,
        ActionKind::Move,
        ActionKind::Execute,
        ActionKind::Fetch,
        ActionKind::Think,
        ActionKind::SwitchMode,
        ActionKind::Other,
    ])
}

fn policy() -> impl Strategy<Value = Policy> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(allow_external_reads, allow_writes, allow_commands, commands_see_credentials)| Policy {
            allow_external_reads,
            allow_writes,
            allow_commands,
            commands_see_credentials,
        },
    )
}

/// A path inside or out, its entry inside or out, and now and then in a
/// credential store or agent configuration.
fn resolved_path() -> impl Strategy<Value = ResolvedPath> {
    (
        "[a-z./]{0,12}",
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(raw, inside_workspace, entry_inside_workspace, credential, agent_config)| ResolvedPath {
                credential_store: credential.then(|| "~/.ssh".to_owned()),
                agent_config: agent_config.then(|| ".git".to_owned()),
                raw: PathBuf::from(&raw),
                resolved: PathBuf::from(format!("/r/{raw}")),
                inside_workspace,
                entry_inside_workspace,
            },
        )
}

/// Edits of one to five paths, every one of them inside the workspace and
/// ordinary, as CODEX_FUSION_ALLOW_WRITES is meant to allow.
fn ordinary_paths_inside() -> impl Strategy<Value = Vec<ResolvedPath>> {
    proptest::collection::vec("[a-z]{1,8}", 1..=5).prop_map(|names| {
        names
            .into_iter()
            .map(|name| ResolvedPath {
                raw: PathBuf::from(&name),
                resolved: PathBuf::from(format!("/w/{name}")),
                inside_workspace: true,
                entry_inside_workspace: true,
                ..ResolvedPath::default()
            })
            .collect()
    })
}

fn permission_request() -> impl Strategy<Value = PermissionRequest> {
    (
        kind(),
        proptest::collection::vec(resolved_path(), 0..4),
        proptest::option::of(resolved_path()),
        proptest::option::of("[a-z ]{0,12}"),
        proptest::option::of("https://[a-z]{1,8}"),
        // Mostly complete: an incomplete request asks whatever else it has.
        prop::bool::weighted(0.2),
    )
        .prop_map(|(kind, paths, cwd, command, url, paths_incomplete)| PermissionRequest {
            cwd,
            command,
            url,
            paths_incomplete,
            ..request(kind, paths)
        })
}

fn allowed(request: &PermissionRequest, policy: &Policy) -> bool {
    guardian::decide(request, policy) == Decision::Allow
}

proptest! {
    #![proptest_config(config(2048))]

    /// Reads and searches touching a path outside (or naming none) are
    /// allowed only with CODEX_FUSION_ALLOW_EXTERNAL_READS.
    #[test]
    fn reads_outside_need_the_external_reads_flag(request in permission_request(), policy in policy()) {
        let reads = matches!(request.kind, ActionKind::Read | ActionKind::Search);
        let any_outside = request.paths.is_empty() || request.paths.iter().any(|path| !path.inside_workspace);
        if reads && any_outside && !policy.allow_external_reads {
            prop_assert!(!allowed(&request, &policy), "{:?} {:?}", request, policy);
        }
    }

    /// A request that touches a credential store is never auto-allowed,
    /// whatever its kind (but thinking) and whatever the flags.
    #[test]
    fn credential_stores_always_ask(request in permission_request(), policy in policy()) {
        let touches = request.paths.iter().any(|path| path.credential_store.is_some());
        if touches && matches!(
            request.kind,
            ActionKind::Read | ActionKind::Search | ActionKind::Edit | ActionKind::Delete | ActionKind::Move | ActionKind::Execute
        ) {
            prop_assert!(!allowed(&request, &policy), "{:?} {:?}", request, policy);
        }
    }

    /// A change that touches agent configuration is never auto-allowed.
    #[test]
    fn changes_to_agent_configuration_always_ask(request in permission_request(), policy in policy()) {
        let touches = request.paths.iter().any(|path| path.agent_config.is_some());
        if touches && matches!(request.kind, ActionKind::Edit | ActionKind::Delete | ActionKind::Move) {
            prop_assert!(!allowed(&request, &policy), "{:?} {:?}", request, policy);
        }
    }

    /// An edit of several paths with writes allowed: any one outside, in a
    /// credential store or agent configuration makes it ask; all inside and
    /// ordinary, it is allowed.
    #[test]
    fn an_edit_of_several_paths_is_allowed_only_when_every_one_is(
        mut paths in ordinary_paths_inside(),
        spoiler in prop::sample::select(vec!["none", "outside", "credential", "agent config"]),
        index in any::<prop::sample::Index>(),
    ) {
        let at = index.index(paths.len());
        match spoiler {
            "outside" => paths[at].inside_workspace = false,
            "credential" => paths[at].credential_store = Some(".env".into()),
            "agent config" => paths[at].agent_config = Some("AGENTS.md".into()),
            _ => {}
        }
        let writes = Policy { allow_writes: true, ..Policy::default() };
        let request = request(ActionKind::Edit, paths);
        prop_assert_eq!(allowed(&request, &writes), spoiler == "none", "{:?}", request);
    }

    /// Changes are never auto-allowed when any path is outside (or none is
    /// named, or some path is not known), whatever the flags; inside they
    /// need CODEX_FUSION_ALLOW_WRITES.
    /// An edit writes where the path leads, a delete removes the entry, a
    /// move changes both.
    #[test]
    fn writes_are_never_allowed_outside(request in permission_request(), policy in policy()) {
        let outside = |path: &ResolvedPath| match request.kind {
            ActionKind::Edit => !path.inside_workspace,
            ActionKind::Delete => !path.entry_inside_workspace,
            _ => !path.inside_workspace || !path.entry_inside_workspace,
        };
        if matches!(request.kind, ActionKind::Edit | ActionKind::Delete | ActionKind::Move) {
            let any_outside = request.paths.is_empty() || request.paths.iter().any(outside);
            if any_outside || request.paths_incomplete || !policy.allow_writes {
                prop_assert!(!allowed(&request, &policy), "{:?} {:?}", request, policy);
            }
        }
    }

    /// Each other kind is allowed only by its own flag; mode switches and
    /// unknown kinds never.
    #[test]
    fn every_other_kind_needs_its_own_flag(request in permission_request(), policy in policy()) {
        let allow = allowed(&request, &policy);
        match request.kind {
            ActionKind::Execute => prop_assert!(!allow || policy.allow_commands),
            ActionKind::Fetch => prop_assert!(!allow || policy.allow_external_reads),
            ActionKind::SwitchMode | ActionKind::Other => prop_assert!(!allow),
            _ => {}
        }
    }

    /// Issue 15: a command of an agent whose commands see its credentials
    /// is never allowed without asking, whatever the switches.
    #[test]
    fn a_command_that_would_see_the_agents_key_always_asks(request in permission_request(), policy in policy()) {
        let other = Policy { commands_see_credentials: true, ..policy };
        if request.kind == ActionKind::Execute {
            prop_assert!(!allowed(&request, &other), "{:?} allowed under {:?}", request, other);
        }
    }

    /// Turning a flag on never turns an allow into an ask.
    #[test]
    fn more_flags_never_take_an_allow_away(request in permission_request(), policy in policy(), extra in policy()) {
        let wider = Policy {
            allow_external_reads: policy.allow_external_reads || extra.allow_external_reads,
            allow_writes: policy.allow_writes || extra.allow_writes,
            allow_commands: policy.allow_commands || extra.allow_commands,
            // The same agent.
            commands_see_credentials: policy.commands_see_credentials,
        };
        if allowed(&request, &policy) {
            prop_assert!(allowed(&request, &wider), "{:?}: {:?} allows, {:?} does not", request, policy, wider);
        }
    }

    /// Judging one path inside instead of outside, or ordinary instead of
    /// sensitive, never takes an allow away: the decision only gets
    /// stricter as paths leave the workspace or turn out sensitive.
    #[test]
    fn a_path_moved_inside_never_takes_an_allow_away(request in permission_request(), policy in policy(), index in any::<prop::sample::Index>()) {
        if request.paths.is_empty() {
            return Ok(());
        }
        let at = index.index(request.paths.len());
        let mut target_inside = request.clone();
        target_inside.paths[at].inside_workspace = true;
        let mut ordinary = request.clone();
        ordinary.paths[at].credential_store = None;
        ordinary.paths[at].agent_config = None;
        let mut entry_inside = request.clone();
        entry_inside.paths[at].entry_inside_workspace = true;
        if allowed(&request, &policy) {
            prop_assert!(allowed(&target_inside, &policy), "{:?} {:?}", target_inside, policy);
            prop_assert!(allowed(&entry_inside, &policy), "{:?} {:?}", entry_inside, policy);
            prop_assert!(allowed(&ordinary, &policy), "{:?} {:?}", ordinary, policy);
        }
    }
}
