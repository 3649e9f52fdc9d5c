//! The guardian: one pure function from a permission request (paths already
//! resolved) and the policy to allow or ask. No I/O, no clock, no globals;
//! [`crate::resolve`] does the filesystem work before it is called.

use std::path::PathBuf;

/// What the configuration lets Codex do without asking Claude.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// `CODEX_FUSION_ALLOW_EXTERNAL_READS`: reads outside the workspace and network fetches.
    pub allow_external_reads: bool,
    /// `CODEX_FUSION_ALLOW_WRITES`: edits, deletes and moves inside the workspace.
    pub allow_writes: bool,
    /// `CODEX_FUSION_ALLOW_COMMANDS`: shell commands.
    pub allow_commands: bool,
    /// The agent's commands inherit its environment, its API key included
    /// (every agent but Codex, whose profile gives commands the core
    /// variables only): they always ask, whatever `allow_commands` says.
    pub commands_see_credentials: bool,
}

/// The kind of action Codex asks for, from the ACP tool-call kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ActionKind {
    Read,
    Search,
    Edit,
    Delete,
    Move,
    Execute,
    Fetch,
    Think,
    SwitchMode,
    /// Anything unrecognised; it always asks.
    #[default]
    Other,
}

impl ActionKind {
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Read => "read",
            ActionKind::Search => "search",
            ActionKind::Edit => "edit",
            ActionKind::Delete => "delete",
            ActionKind::Move => "move",
            ActionKind::Execute => "execute",
            ActionKind::Fetch => "fetch",
            ActionKind::Think => "think",
            ActionKind::SwitchMode => "switch mode",
            ActionKind::Other => "other",
        }
    }
}

/// A path the request touches, resolved the way the OS would (`..` and
/// symlinks followed) against the canonical workspace, with what makes it
/// sensitive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedPath {
    /// As Codex wrote it.
    pub raw: PathBuf,
    /// Absolute, with `..` and symlinks resolved.
    pub resolved: PathBuf,
    /// Where the path leads is inside the workspace.
    pub inside_workspace: bool,
    /// The directory entry itself (a final symlink not followed) is inside
    /// the workspace; what deletes and moves act on.
    pub entry_inside_workspace: bool,
    /// The credential store the path is or lies in (as written or where it
    /// leads), as a person would name it (`~/.ssh`, `.env`).
    pub credential_store: Option<String>,
    /// The file or directory that makes the path one that runs code or
    /// configures an agent (`.git`, `.claude`, `AGENTS.md`), relative to
    /// the workspace.
    pub agent_config: Option<String>,
}

/// A permission request in our terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionRequest {
    pub kind: ActionKind,
    /// Codex's one-line title for the action.
    pub title: String,
    /// The command line, for [`ActionKind::Execute`].
    pub command: Option<String>,
    /// The working directory of a command, if given.
    pub cwd: Option<ResolvedPath>,
    /// Files and directories the action touches: the request's locations,
    /// the paths in its raw input, and every path the tool call's diffs
    /// named (where a move's destination is).
    pub paths: Vec<ResolvedPath>,
    /// Some file the action changes is not among `paths`: the agent named
    /// it nowhere the daemon can see (e.g. codex-acp left out the diff of a
    /// change too large to show, and with it a move's destination).
    pub paths_incomplete: bool,
    /// The address, for [`ActionKind::Fetch`].
    pub url: Option<String>,
    /// Codex's reason for asking, if it gave one.
    pub reason: Option<String>,
    /// What an edit would write, from the tool call's latest diff content.
    pub diffs: Vec<FileDiff>,
    /// The permissions asked for (a mode switch, codex's "request
    /// permissions", a command's additional permissions), one readable
    /// line each.
    pub permissions: Vec<String>,
}

/// One change as the agent showed it: the old text (`None` for a new file)
/// and the new text, of a whole file or of one hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub path: PathBuf,
    pub old_text: Option<String>,
    pub new_text: String,
}

/// The guardian's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Pause the turn and let Claude decide; the text says why it was not
    /// auto-allowed.
    Ask(String),
}

/// Decides whether Codex may go ahead without asking Claude.
///
/// Reads and searches inside the workspace are always allowed. Reads outside
/// it and fetches need `allow_external_reads`; edits, deletes and moves need
/// `allow_writes` and every path inside the workspace; commands need
/// `allow_commands`. Whatever the flags, a read, a command or a change
/// that touches a credential store asks, and so does a change to a file
/// that runs code or configures an agent, or one whose paths are not all
/// known. Anything unrecognised asks.
pub fn decide(request: &PermissionRequest, policy: &Policy) -> Decision {
    let acts_on_entry = matches!(request.kind, ActionKind::Delete | ActionKind::Move);
    let all_inside = !request.paths.is_empty()
        && request.paths.iter().all(|path| {
            // Deleting or moving a link acts on the link (`rm link`) or on
            // what it points to (`rm -r link/`); the guardian cannot tell
            // which, so both must be inside.
            path.inside_workspace && (!acts_on_entry || path.entry_inside_workspace)
        });
    let credential = request.paths.iter().find_map(|path| path.credential_store.as_deref());
    let agent_config = request.paths.iter().find_map(|path| path.agent_config.as_deref());
    match request.kind {
        ActionKind::Read | ActionKind::Search => {
            if let Some(store) = credential {
                Decision::Ask(format!(
                    "it reads a credential store ({store}); codex-fusion always asks"
                ))
            } else if all_inside || policy.allow_external_reads {
                Decision::Allow
            } else if request.paths.is_empty() {
                Decision::Ask("a read that names no path cannot be checked against the workspace".into())
            } else {
                Decision::Ask("it reads outside the workspace (CODEX_FUSION_ALLOW_EXTERNAL_READS is off)".into())
            }
        }
        ActionKind::Edit | ActionKind::Delete | ActionKind::Move => {
            if request.paths.is_empty() {
                Decision::Ask("a change that names no path cannot be checked against the workspace".into())
            } else if request.paths_incomplete {
                Decision::Ask(
                    "it moves files, or changes one whose diff was not sent, so not every path it touches can be checked against the workspace (CODEX_FUSION_ALLOW_WRITES does not cover it)".into(),
                )
            } else if let Some(store) = credential {
                Decision::Ask(format!(
                    "it changes a credential store ({store}); codex-fusion always asks"
                ))
            } else if !all_inside {
                Decision::Ask("it changes files outside the workspace".into())
            } else if let Some(entry) = agent_config {
                Decision::Ask(format!(
                    "it changes {entry}, which runs code or configures an agent; CODEX_FUSION_ALLOW_WRITES does not cover that, codex-fusion always asks"
                ))
            } else if policy.allow_writes {
                Decision::Allow
            } else {
                Decision::Ask("it changes files (CODEX_FUSION_ALLOW_WRITES is off)".into())
            }
        }
        ActionKind::Execute => {
            // An escalated read arrives as a command whose locations are
            // what it reads.
            if let Some(store) = credential {
                Decision::Ask(format!(
                    "the command reads a credential store ({store}); codex-fusion always asks"
                ))
            } else if policy.commands_see_credentials {
                Decision::Ask(
                    "it runs a command, which would see this agent's own credentials (only Codex's commands run without them), so it asks whatever CODEX_FUSION_ALLOW_COMMANDS says".into(),
                )
            } else if policy.allow_commands {
                Decision::Allow
            } else {
                Decision::Ask("it runs a command (CODEX_FUSION_ALLOW_COMMANDS is off)".into())
            }
        }
        ActionKind::Fetch => {
            if policy.allow_external_reads {
                Decision::Allow
            } else {
                Decision::Ask("it fetches from the network (CODEX_FUSION_ALLOW_EXTERNAL_READS is off)".into())
            }
        }
        // Thinking touches nothing; it is allowed whatever the paths say.
        ActionKind::Think => Decision::Allow,
        ActionKind::SwitchMode => Decision::Ask("it wants to change its own permission mode".into()),
        ActionKind::Other => Decision::Ask("codex-fusion does not recognise this kind of action".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str, inside: bool) -> ResolvedPath {
        ResolvedPath {
            raw: raw.into(),
            resolved: raw.into(),
            inside_workspace: inside,
            entry_inside_workspace: inside,
            ..ResolvedPath::default()
        }
    }

    /// A symlink whose entry and target disagree.
    fn link(entry_inside: bool, target_inside: bool) -> ResolvedPath {
        ResolvedPath {
            raw: "link".into(),
            resolved: "target".into(),
            inside_workspace: target_inside,
            entry_inside_workspace: entry_inside,
            ..ResolvedPath::default()
        }
    }

    /// A path in a credential store (named as the store).
    fn credential(raw: &str, inside: bool) -> ResolvedPath {
        ResolvedPath {
            credential_store: Some(raw.into()),
            ..path(raw, inside)
        }
    }

    /// A path inside the workspace that configures an agent.
    fn agent_config(raw: &str) -> ResolvedPath {
        ResolvedPath {
            agent_config: Some(raw.trim_start_matches("/w/").into()),
            ..path(raw, true)
        }
    }

    fn request(kind: ActionKind, paths: Vec<ResolvedPath>) -> PermissionRequest {
        PermissionRequest {
            kind,
            title: "t".into(),
            paths,
            ..PermissionRequest::default()
        }
    }

    const NONE: Policy = Policy {
        allow_external_reads: false,
        allow_writes: false,
        allow_commands: false,
        commands_see_credentials: false,
    };
    const READS: Policy = Policy {
        allow_external_reads: true,
        ..NONE
    };
    const WRITES: Policy = Policy {
        allow_writes: true,
        ..NONE
    };
    const COMMANDS: Policy = Policy {
        allow_commands: true,
        ..NONE
    };
    const ALL: Policy = Policy {
        allow_external_reads: true,
        allow_writes: true,
        allow_commands: true,
        commands_see_credentials: false,
    };

    /// Issue 15: another agent's commands see its API key, so they ask even
    /// with every switch on; its edits and reads follow the switches.
    #[test]
    fn another_agents_commands_always_ask() {
        let other = Policy {
            commands_see_credentials: true,
            ..ALL
        };
        let command = PermissionRequest {
            kind: ActionKind::Execute,
            title: "make".into(),
            command: Some("make".into()),
            ..PermissionRequest::default()
        };
        match decide(&command, &other) {
            Decision::Ask(why) => assert!(why.contains("own credentials"), "{why}"),
            Decision::Allow => panic!("a command of another agent was allowed"),
        }
        assert_eq!(decide(&command, &ALL), Decision::Allow, "Codex's command, allowed");
    }

    /// One row per rule: (kind, paths inside?, policy, allowed?).
    #[test]
    fn decision_table() {
        use ActionKind::*;
        let inside = || vec![path("/w/a", true)];
        let outside = || vec![path("/etc/passwd", false)];
        let mixed = || vec![path("/w/a", true), path("/etc/passwd", false)];
        let rows: Vec<(ActionKind, Vec<ResolvedPath>, Policy, bool)> = vec![
            // Reads and searches inside the workspace never ask.
            (Read, inside(), NONE, true),
            (Search, inside(), NONE, true),
            // Reads outside ask unless external reads are allowed.
            (Read, outside(), NONE, false),
            (Read, mixed(), NONE, false),
            (Read, outside(), READS, true),
            (Search, outside(), WRITES, false),
            (Read, vec![], NONE, false),
            (Read, vec![], READS, true),
            // Writes ask unless allowed, and never auto-allow outside.
            (Edit, inside(), NONE, false),
            (Edit, inside(), WRITES, true),
            (Delete, inside(), WRITES, true),
            (Move, inside(), WRITES, true),
            (Delete, inside(), NONE, false),
            (Edit, outside(), WRITES, false),
            (Move, mixed(), ALL, false),
            (Edit, vec![], ALL, false),
            // An edit is judged by all its paths (a move's source and its
            // destination, several files): one outside is enough to ask.
            (Edit, vec![path("/w/a", true), path("/w/b", true)], WRITES, true),
            (
                Edit,
                vec![path("/w/src/a.rs", true), path("/outside.txt", false)],
                WRITES,
                false,
            ),
            (
                Edit,
                vec![path("/outside.txt", false), path("/w/src/a.rs", true)],
                ALL,
                false,
            ),
            // Deletes and moves need the entry and its target inside; edits
            // and reads follow the link.
            (Delete, vec![link(false, true)], WRITES, false),
            (Delete, vec![link(true, false)], WRITES, false),
            (Delete, vec![link(true, true)], WRITES, true),
            (Move, vec![link(true, false)], WRITES, false),
            (Move, vec![link(false, true)], WRITES, false),
            (Edit, vec![link(false, true)], WRITES, true),
            (Edit, vec![link(true, false)], WRITES, false),
            (Read, vec![link(true, false)], NONE, false),
            (Read, vec![link(false, true)], NONE, true),
            // Commands ask unless allowed, wherever they run.
            (Execute, vec![], NONE, false),
            (Execute, inside(), WRITES, false),
            (Execute, vec![], COMMANDS, true),
            (Execute, outside(), COMMANDS, true),
            // Fetches are external reads.
            (Fetch, vec![], NONE, false),
            (Fetch, vec![], COMMANDS, false),
            (Fetch, vec![], READS, true),
            // Thinking is harmless; mode switches and unknowns always ask.
            (Think, vec![], NONE, true),
            (SwitchMode, vec![], ALL, false),
            (Other, inside(), ALL, false),
            // Credential stores: reads, commands and changes always ask,
            // inside the workspace too, whatever the flags.
            (Read, vec![credential("/w/.env", true)], ALL, false),
            (Search, vec![credential("/home/u/.ssh", false)], ALL, false),
            (
                Read,
                vec![path("/w/a", true), credential("/home/u/.aws/credentials", false)],
                READS,
                false,
            ),
            (Execute, vec![credential("/home/u/.ssh/id_rsa", false)], ALL, false),
            (Edit, vec![credential("/w/.env", true)], ALL, false),
            (Delete, vec![credential("/w/.env", true)], ALL, false),
            // Files that run code or configure an agent: changes always
            // ask; reading them is a read like any other.
            (Edit, vec![agent_config("/w/.git/hooks/pre-commit")], WRITES, false),
            (
                Edit,
                vec![path("/w/src/a.rs", true), agent_config("/w/AGENTS.md")],
                ALL,
                false,
            ),
            (Move, vec![agent_config("/w/.github/workflows/ci.yml")], ALL, false),
            (Read, vec![agent_config("/w/.mcp.json")], NONE, true),
            (Execute, vec![agent_config("/w/.envrc")], COMMANDS, true),
        ];
        for (index, (kind, paths, policy, allowed)) in rows.into_iter().enumerate() {
            let decision = decide(&request(kind, paths.clone()), &policy);
            assert_eq!(
                decision == Decision::Allow,
                allowed,
                "row {index}: {kind:?} {paths:?} {policy:?} → {decision:?}"
            );
        }
    }

    #[test]
    fn a_change_whose_paths_are_not_all_known_asks_whatever_the_flags() {
        for kind in [ActionKind::Edit, ActionKind::Delete, ActionKind::Move] {
            let request = PermissionRequest {
                paths_incomplete: true,
                ..request(kind, vec![path("/w/src/a.rs", true)])
            };
            let Decision::Ask(reason) = decide(&request, &ALL) else {
                panic!("{kind:?} with a path nobody named was allowed")
            };
            assert!(reason.contains("not every path it touches"), "{reason}");
        }
    }

    #[test]
    fn ask_reasons_name_the_flag_that_would_allow_it() {
        let Decision::Ask(reason) = decide(&request(ActionKind::Execute, vec![]), &NONE) else {
            panic!("commands ask by default")
        };
        assert!(reason.contains("CODEX_FUSION_ALLOW_COMMANDS"), "{reason}");
        let Decision::Ask(reason) = decide(&request(ActionKind::Edit, vec![path("/w/a", true)]), &NONE) else {
            panic!("writes ask by default")
        };
        assert!(reason.contains("CODEX_FUSION_ALLOW_WRITES"), "{reason}");
    }

    #[test]
    fn ask_reasons_say_which_store_or_file_made_it_ask() {
        let ssh = ResolvedPath {
            credential_store: Some("~/.ssh".into()),
            ..path("/home/u/.ssh/id_rsa", false)
        };
        let Decision::Ask(reason) = decide(&request(ActionKind::Read, vec![ssh]), &ALL) else {
            panic!("credential reads ask")
        };
        assert_eq!(reason, "it reads a credential store (~/.ssh); codex-fusion always asks");
        let Decision::Ask(reason) = decide(
            &request(ActionKind::Edit, vec![agent_config("/w/.claude/settings.json")]),
            &ALL,
        ) else {
            panic!("agent configuration asks")
        };
        assert!(
            reason.starts_with("it changes .claude/settings.json, which runs code"),
            "{reason}"
        );
        assert!(
            reason.contains("CODEX_FUSION_ALLOW_WRITES does not cover that"),
            "{reason}"
        );
    }
}
