//! The command line: clap types for every subcommand, and the translation of
//! `ask TOOL …` into an MCP tool name and its JSON arguments. No I/O here
//! except through the reader the translation is given.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};

/// `codex-fusion`: the shell side of codex-fusion.
#[derive(Debug, Parser)]
#[command(
    name = "codex-fusion",
    version,
    about = "Talk to the codex-fusion daemon from the shell: reset, status, hook, doctor, install, ask, stop",
    long_about = "Talk to the codex-fusion daemon (codex-fusiond) from the shell.\n\n\
        Claude Code reaches Codex through the MCP server codex-fusion-mcp; this command \
        manages the same daemon: reset or inspect a workspace's Codex session, run a tool \
        yourself, install the user service and register everything with Claude Code.\n\n\
        Exit codes: 0 success, 1 failure, 2 usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reset Codex's session for a workspace; its next tool call starts fresh
    Reset(WorkspaceArg),
    /// Show the daemon's health and each workspace's Codex session
    Status {
        #[command(flatten)]
        workspace: WorkspaceArg,
        /// Print the daemon's status report as JSON (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Claude Code's SessionStart hook: tells the daemon how Claude's session started (reads its JSON on stdin)
    #[command(long_about = "Claude Code's SessionStart hook.\n\n\
        Reads the hook's JSON on stdin (session_id, cwd, source, …) and tells the daemon, \
        which keeps Codex's session paired with Claude's: `startup` and `clear` get a fresh \
        Codex session, `resume` the one paired with the resumed Claude session, `compact` \
        keeps it. Never starts the \
        daemon, answers within about a second and always exits 0; problems are one line \
        on stderr.\n\n\
        Register it in ~/.claude/settings.json (`codex-fusion install --claude` does):\n  \
        {\"hooks\": {\"SessionStart\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"codex-fusion hook\"}]}]}}")]
    Hook,
    /// Check codex-acp, Codex login, socket, daemon, service and Claude Code registration
    Doctor,
    /// Install the user service (systemd or launchd); with --claude, register with Claude Code
    #[command(long_about = "Install codex-fusiond as a user service and, with --claude, register \
        the MCP server and the SessionStart hook with Claude Code.\n\n\
        Writes the systemd user unit (Linux) or LaunchAgent (macOS) pointing at the \
        codex-fusiond next to this binary (else on PATH) and enables it where the service \
        manager runs. With --claude: `claude mcp add codex-fusion -s user -- <codex-fusion-mcp>` \
        when the claude CLI is present, and the hook in ~/.claude/settings.json (merged, \
        with a backup of the original). Running it again changes nothing.")]
    Install {
        /// Also register the MCP server and the SessionStart hook with Claude Code
        #[arg(long)]
        claude: bool,
        /// Say what would be done, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Run one Codex tool from the shell, starting the daemon if needed
    Ask(AskArgs),
    /// Stop the daemon gracefully and wait until it is gone
    Stop,
}

/// `--workspace DIR`, shared by the commands that act on one workspace.
#[derive(Debug, Clone, Args)]
pub struct WorkspaceArg {
    /// The workspace (default: $CODEX_FUSION_WORKSPACE, else the current directory)
    #[arg(long, value_name = "DIR", global = true)]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    subcommand_value_name = "TOOL",
    subcommand_help_heading = "Tools",
    after_help = "The answer goes to stdout; while Codex works, a spinner with the latest \
    activity shows on stderr (when it is a terminal). If Codex asks permission, you are asked \
    allow/deny on the terminal; without a terminal the command exits 1 and you resume with \
    `codex-fusion ask permit allow|deny`. Text arguments given as `-` are read from stdin."
)]
pub struct AskArgs {
    #[command(flatten)]
    pub workspace: WorkspaceArg,
    #[command(subcommand)]
    pub tool: Tool,
}

/// The nine MCP tools, with their main field positional.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Tool {
    /// An independent second opinion on a question or decision
    Consult {
        /// The question or decision (`-` reads stdin)
        question: String,
        /// What Codex should know: the goal, what you tried, constraints
        #[arg(long)]
        context: Option<String>,
    },
    /// Critique a plan before implementing it
    #[command(name = "review_plan", visible_alias = "review-plan")]
    ReviewPlan {
        /// The plan, step by step (`-` reads stdin)
        plan: String,
        /// The goal and constraints the plan must meet
        #[arg(long)]
        context: Option<String>,
    },
    /// Review code changes; without --diff Codex inspects `git diff` itself
    #[command(name = "review_diff", visible_alias = "review-diff")]
    ReviewDiff {
        /// A unified diff file to review (`-` reads stdin)
        #[arg(long, value_name = "FILE")]
        diff: Option<String>,
        /// Files or directories to focus on
        #[arg(long, num_args = 1.., value_name = "PATH")]
        paths: Vec<String>,
        /// What to look for, or what the change is meant to do
        #[arg(long)]
        instructions: Option<String>,
    },
    /// Two to four approaches with trade-offs and one recommendation
    Brainstorm {
        /// The problem to find approaches for (`-` reads stdin)
        problem: String,
        /// Limits any approach must respect
        #[arg(long)]
        constraints: Option<String>,
    },
    /// Map an unfamiliar codebase: structure, components, flow, conventions
    Explore {
        /// What to understand: a feature, a flow, a question about the code
        #[arg(long)]
        focus: Option<String>,
        /// Files or directories to start from
        #[arg(long, num_args = 1.., value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Continue the debate on the same Codex session
    Reply {
        /// Your answer to Codex's last reply (`-` reads stdin)
        message: String,
    },
    /// Resolve the permission Codex is waiting on, and resume its turn
    Permit {
        /// allow lets Codex do what it asked; deny refuses and Codex answers without it
        decision: Decision,
        /// A short note for Codex, e.g. what to do instead
        #[arg(long)]
        note: Option<String>,
    },
    /// Drop Codex's context for this workspace
    Reset,
    /// Health of this workspace's session, as Claude sees it
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl Tool {
    /// The MCP tool name.
    pub fn name(&self) -> &'static str {
        match self {
            Tool::Consult { .. } => "consult",
            Tool::ReviewPlan { .. } => "review_plan",
            Tool::ReviewDiff { .. } => "review_diff",
            Tool::Brainstorm { .. } => "brainstorm",
            Tool::Explore { .. } => "explore",
            Tool::Reply { .. } => "reply",
            Tool::Permit { .. } => "permit",
            Tool::Reset => "reset",
            Tool::Status => "status",
        }
    }

    /// The tool's JSON arguments. `read` fetches the text of a `-` (stdin)
    /// or of the `--diff` file; its error is reported as is.
    pub fn arguments(
        &self,
        read: &mut dyn FnMut(Source<'_>) -> anyhow::Result<String>,
    ) -> anyhow::Result<Map<String, Value>> {
        let mut arguments = Map::new();
        match self {
            Tool::Consult { question, context } => {
                insert_text(&mut arguments, "question", question, read)?;
                insert_opt(&mut arguments, "context", context);
            }
            Tool::ReviewPlan { plan, context } => {
                insert_text(&mut arguments, "plan", plan, read)?;
                insert_opt(&mut arguments, "context", context);
            }
            Tool::ReviewDiff {
                diff,
                paths,
                instructions,
            } => {
                // `--diff` names a file (or `-`), never the diff itself: diffs
                // are too long and too full of quotes for a command line.
                if let Some(diff) = diff {
                    let source = if diff == "-" { Source::Stdin } else { Source::File(diff) };
                    arguments.insert("diff".into(), Value::String(read(source)?));
                }
                insert_list(&mut arguments, "paths", paths);
                insert_opt(&mut arguments, "instructions", instructions);
            }
            Tool::Brainstorm { problem, constraints } => {
                insert_text(&mut arguments, "problem", problem, read)?;
                insert_opt(&mut arguments, "constraints", constraints);
            }
            Tool::Explore { focus, paths } => {
                insert_opt(&mut arguments, "focus", focus);
                insert_list(&mut arguments, "paths", paths);
            }
            Tool::Reply { message } => insert_text(&mut arguments, "message", message, read)?,
            Tool::Permit { decision, note } => {
                arguments.insert("decision".into(), Value::String(decision.as_str().into()));
                insert_opt(&mut arguments, "note", note);
            }
            Tool::Reset | Tool::Status => {}
        }
        Ok(arguments)
    }
}

/// Where the text of an argument comes from when it is not on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    Stdin,
    File(&'a str),
}

/// Inserts a main text field; `-` means "read it from stdin".
fn insert_text(
    arguments: &mut Map<String, Value>,
    key: &str,
    value: &str,
    read: &mut dyn FnMut(Source<'_>) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let value = if value == "-" {
        read(Source::Stdin)?
    } else {
        value.to_owned()
    };
    arguments.insert(key.to_owned(), Value::String(value));
    Ok(())
}

fn insert_opt(arguments: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        arguments.insert(key.to_owned(), Value::String(value.clone()));
    }
}

fn insert_list(arguments: &mut Map<String, Value>, key: &str, values: &[String]) {
    if !values.is_empty() {
        arguments.insert(
            key.to_owned(),
            Value::Array(values.iter().cloned().map(Value::String).collect()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;
    use serde_json::json;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("codex-fusion").chain(args.iter().copied())).expect("parses")
    }

    fn tool_of(args: &[&str]) -> Tool {
        match parse(args).command {
            Command::Ask(ask) => ask.tool,
            other => panic!("not ask: {other:?}"),
        }
    }

    fn no_reads(source: Source<'_>) -> anyhow::Result<String> {
        panic!("unexpected read of {source:?}")
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn positional_text_is_the_main_field() {
        let tool = tool_of(&["ask", "consult", "Is it sound?", "--context", "a cache"]);
        assert_eq!(tool.name(), "consult");
        let arguments = tool.arguments(&mut no_reads).expect("arguments");
        assert_eq!(
            Value::Object(arguments),
            json!({"question": "Is it sound?", "context": "a cache"})
        );
        let tool = tool_of(&["ask", "review_plan", "1. do it"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"plan": "1. do it"})
        );
        let tool = tool_of(&["ask", "brainstorm", "P", "--constraints", "K"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"problem": "P", "constraints": "K"})
        );
        let tool = tool_of(&["ask", "reply", "agreed"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"message": "agreed"})
        );
    }

    #[test]
    fn list_flags_take_several_values_and_empty_ones_are_left_out() {
        let tool = tool_of(&["ask", "review_diff", "--paths", "a", "b", "--instructions", "look"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"paths": ["a", "b"], "instructions": "look"})
        );
        let tool = tool_of(&["ask", "explore"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({})
        );
        let tool = tool_of(&["ask", "explore", "--focus", "auth", "--paths", "src"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"focus": "auth", "paths": ["src"]})
        );
    }

    #[test]
    fn dash_and_diff_files_are_read_through_the_reader() {
        let mut seen = Vec::new();
        let mut read = |source: Source<'_>| -> anyhow::Result<String> {
            seen.push(format!("{source:?}"));
            Ok(match source {
                Source::Stdin => "from stdin".into(),
                Source::File(name) => format!("contents of {name}"),
            })
        };
        let tool = tool_of(&["ask", "review_diff", "--diff", "change.patch"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut read).expect("arguments")),
            json!({"diff": "contents of change.patch"})
        );
        let tool = tool_of(&["ask", "consult", "-"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut read).expect("arguments")),
            json!({"question": "from stdin"})
        );
        assert_eq!(seen, ["File(\"change.patch\")", "Stdin"]);
    }

    #[test]
    fn permit_takes_a_decision_and_refuses_anything_else() {
        let tool = tool_of(&["ask", "permit", "deny", "--note", "use a dry run"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"decision": "deny", "note": "use a dry run"})
        );
        let error = Cli::try_parse_from(["codex-fusion", "ask", "permit", "maybe"]).expect_err("refused");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn dashed_aliases_and_the_workspace_flag_work() {
        for args in [
            &["ask", "--workspace", "/w", "review-plan", "p"][..],
            &["ask", "review_plan", "p", "--workspace", "/w"],
        ] {
            let Command::Ask(ask) = parse(args).command else {
                panic!("ask")
            };
            assert_eq!(ask.workspace.workspace, Some(PathBuf::from("/w")), "{args:?}");
            assert_eq!(ask.tool.name(), "review_plan");
        }
    }

    #[test]
    fn a_missing_required_text_is_a_usage_error() {
        let error = Cli::try_parse_from(["codex-fusion", "ask", "consult"]).expect_err("refused");
        assert_eq!(error.exit_code(), 2);
    }
}
