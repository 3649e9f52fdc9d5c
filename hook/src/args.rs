//! The command line: clap types for every subcommand, and the translation of
//! `ask TOOL …` into an MCP tool name and its JSON arguments. No I/O here
//! except through the reader the translation is given.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use codex_fusion_protocol::tools::ToolName;
use serde_json::{Map, Value};

/// `codex-fusion`: the shell side of codex-fusion.
#[derive(Debug, Parser)]
#[command(
    name = "codex-fusion",
    version,
    about = "Talk to the codex-fusion daemon from the shell: reset, status, hook, doctor, install, ask, stop, log, watch",
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
    /// List a workspace's recent Codex turns and where each full answer is kept
    #[command(long_about = "List a workspace's recent Codex turns, newest first: when each \
        ended, the tool, the verdict, tokens, duration, the agent's stop reason, and the file \
        that holds the full answer.\n\n\
        The daemon keeps every answer (and every 🔐 pause and failure) whole, even when \
        Claude never showed it: Claude Code moves an MCP call that runs longer than \
        CLAUDE_CODE_MCP_AUTO_BACKGROUND_MS (120 s by default) to the background, and its \
        result may then be ignored. It keeps the last 20 per workspace for 7 days, in \
        private files (0600) under the state directory's `recent/`. No CODEX_FUSION_LOG is \
        needed.\n\n\
        Asks the running daemon (which knows its own state directory); when none runs, \
        reads the files directly.\n\n\
        Examples:\n  \
        codex-fusion log                  the last 10 turns of this directory's workspace\n  \
        codex-fusion log -n 1             the last one\n  \
        cat \"$(codex-fusion log -n 1 --json | jq -r '.answers[0].file')\"")]
    Log {
        #[command(flatten)]
        workspace: WorkspaceArg,
        /// How many turns to list, newest first
        #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 10,
              value_parser = clap::value_parser!(u16).range(1..))]
        count: u16,
        /// Print the records as JSON (for scripts): workspace, state_dir, source, answers
        #[arg(long)]
        json: bool,
    },
    /// Follow a workspace's Codex turns live, until Ctrl-C
    #[command(long_about = "Follow a workspace's Codex turns live from another terminal, until \
        Ctrl-C: each turn's start and tool, Codex's reasoning (💭), activity (↳) and answer \
        text as Claude receives them, every 🔐 pause with what Codex wants, and how each turn \
        ended (verdict and footer, or the error).\n\n\
        It keeps going across turns and across daemon restarts: when no daemon runs it waits \
        quietly (it never starts one) and reconnects when the next Codex tool call starts it. \
        Watching never slows or changes a turn: a watcher that falls behind loses lines and \
        says how many (\"… 12 lines dropped\").\n\n\
        On a terminal a spinner shows the latest reasoning or text, with colours (unless \
        NO_COLOR is set); otherwise one plain line per event (reasoning and text at most once \
        a second). Notes about the connection go to stderr.\n\n\
        Examples:\n  \
        codex-fusion watch                          this directory's workspace\n  \
        codex-fusion watch --workspace ~/src/app    another one\n  \
        codex-fusion watch --json | jq -c 'select(.event == \"paused\")'")]
    Watch {
        #[command(flatten)]
        workspace: WorkspaceArg,
        /// One JSON object per event and line (for scripts), with an `event` field: turn_started, running, thought, activity, text, paused, answered, failed, dropped
        #[arg(long)]
        json: bool,
    },
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
    allow/deny on the terminal; without a terminal, or after Ctrl-C at that question, the \
    command exits (1, or 130 for Ctrl-C), the turn stays paused, and you resume it with \
    `codex-fusion ask permit allow|deny`. Ctrl-C while Codex works cancels the turn. Any text \
    argument given as `-` is read from stdin (one per command)."
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
        /// What Codex should know: the goal, what you tried, constraints (`-` reads stdin)
        #[arg(long)]
        context: Option<String>,
        #[command(flatten)]
        options: TurnOptions,
    },
    /// Critique a plan before implementing it
    #[command(name = ToolName::ReviewPlan.as_str(), visible_alias = "review-plan")]
    ReviewPlan {
        /// The plan, step by step (`-` reads stdin)
        plan: String,
        /// The goal and constraints the plan must meet (`-` reads stdin)
        #[arg(long)]
        context: Option<String>,
        #[command(flatten)]
        options: TurnOptions,
    },
    /// Review code changes; without --diff Codex inspects `git diff` itself
    #[command(name = ToolName::ReviewDiff.as_str(), visible_alias = "review-diff")]
    ReviewDiff {
        /// A unified diff file to review (`-` reads stdin)
        #[arg(long, value_name = "FILE")]
        diff: Option<String>,
        /// Files or directories to focus on
        #[arg(long, num_args = 1.., value_name = "PATH")]
        paths: Vec<String>,
        /// What to look for, or what the change is meant to do (`-` reads stdin)
        #[arg(long)]
        instructions: Option<String>,
        #[command(flatten)]
        options: TurnOptions,
    },
    /// Two to four approaches with trade-offs and one recommendation
    Brainstorm {
        /// The problem to find approaches for (`-` reads stdin)
        problem: String,
        /// Limits any approach must respect (`-` reads stdin)
        #[arg(long)]
        constraints: Option<String>,
        #[command(flatten)]
        options: TurnOptions,
    },
    /// Map an unfamiliar codebase: structure, components, flow, conventions
    Explore {
        /// What to understand: a feature, a flow, a question about the code (`-` reads stdin)
        #[arg(long)]
        focus: Option<String>,
        /// Files or directories to start from
        #[arg(long, num_args = 1.., value_name = "PATH")]
        paths: Vec<String>,
        #[command(flatten)]
        options: TurnOptions,
    },
    /// Continue the debate on the same Codex session
    Reply {
        /// Your answer to Codex's last reply (`-` reads stdin)
        message: String,
        #[command(flatten)]
        options: TurnOptions,
    },
    /// Resolve the permission Codex is waiting on, and resume its turn
    Permit {
        /// allow lets Codex do what it asked; deny refuses and Codex answers without it
        decision: Decision,
        /// A short note for Codex, e.g. what to do instead (`-` reads stdin)
        #[arg(long)]
        note: Option<String>,
        /// The pause this answers (the `id:` line of its 🔐); refused if
        /// another pause is waiting
        #[arg(long)]
        id: Option<String>,
        /// Which agent's pause this answers, when several agents of a
        /// council are paused
        #[arg(long)]
        agent: Option<String>,
    },
    /// Drop Codex's context for this workspace
    Reset,
    /// Health of this workspace's session, as Claude sees it
    Status,
}

/// `--model` and `--effort`, which every turn tool takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct TurnOptions {
    /// Model for this and later turns of the session (`codex-fusion status` lists what Codex offers)
    #[arg(long)]
    pub model: Option<String>,
    /// Reasoning effort for this and later turns, e.g. low, medium, high
    #[arg(long)]
    pub effort: Option<String>,
    /// Agents to ask, comma-separated (names from CODEX_FUSION_AGENTS); several make a council
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub agents: Vec<String>,
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
    /// The MCP tool this runs.
    pub fn tool(&self) -> ToolName {
        match self {
            Tool::Consult { .. } => ToolName::Consult,
            Tool::ReviewPlan { .. } => ToolName::ReviewPlan,
            Tool::ReviewDiff { .. } => ToolName::ReviewDiff,
            Tool::Brainstorm { .. } => ToolName::Brainstorm,
            Tool::Explore { .. } => ToolName::Explore,
            Tool::Reply { .. } => ToolName::Reply,
            Tool::Permit { .. } => ToolName::Permit,
            Tool::Reset => ToolName::Reset,
            Tool::Status => ToolName::Status,
        }
    }

    /// The MCP tool name.
    pub fn name(&self) -> &'static str {
        self.tool().as_str()
    }

    /// The tool's JSON arguments. `read` fetches the text of a `-` (stdin)
    /// or of the `--diff` file; its error is reported as is. At most one
    /// argument can come from stdin.
    pub fn arguments(
        &self,
        read: &mut dyn FnMut(Source<'_>) -> anyhow::Result<String>,
    ) -> anyhow::Result<Map<String, Value>> {
        let mut arguments = Arguments {
            map: Map::new(),
            read,
            from_stdin: None,
        };
        match self {
            Tool::Consult {
                question,
                context,
                options,
            } => {
                arguments.text("question", question)?;
                arguments.optional_text("context", context)?;
                arguments.options(options);
            }
            Tool::ReviewPlan { plan, context, options } => {
                arguments.text("plan", plan)?;
                arguments.optional_text("context", context)?;
                arguments.options(options);
            }
            Tool::ReviewDiff {
                diff,
                paths,
                instructions,
                options,
            } => {
                // `--diff` names a file (or `-`), never the diff itself: diffs
                // are too long and too full of quotes for a command line.
                if let Some(diff) = diff {
                    let source = if diff == "-" { Source::Stdin } else { Source::File(diff) };
                    let text = arguments.read("diff", source)?;
                    // An empty diff would still cost a whole turn, reviewing
                    // nothing.
                    if text.trim().is_empty() {
                        anyhow::bail!("the diff is empty; leave out --diff to let Codex inspect git itself");
                    }
                    arguments.map.insert("diff".into(), Value::String(text));
                }
                arguments.list("paths", paths);
                arguments.optional_text("instructions", instructions)?;
                arguments.options(options);
            }
            Tool::Brainstorm {
                problem,
                constraints,
                options,
            } => {
                arguments.text("problem", problem)?;
                arguments.optional_text("constraints", constraints)?;
                arguments.options(options);
            }
            Tool::Explore { focus, paths, options } => {
                arguments.optional_text("focus", focus)?;
                arguments.list("paths", paths);
                arguments.options(options);
            }
            Tool::Reply { message, options } => {
                arguments.text("message", message)?;
                arguments.options(options);
            }
            Tool::Permit {
                decision,
                note,
                id,
                agent,
            } => {
                arguments
                    .map
                    .insert("decision".into(), Value::String(decision.as_str().into()));
                arguments.optional_text("note", note)?;
                for (key, value) in [("id", id), ("agent", agent)] {
                    if let Some(value) = value {
                        arguments.map.insert(key.into(), Value::String(value.clone()));
                    }
                }
            }
            Tool::Reset | Tool::Status => {}
        }
        Ok(arguments.map)
    }
}

/// Where the text of an argument comes from when it is not on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    Stdin,
    File(&'a str),
}

/// A tool's arguments as they are collected.
struct Arguments<'r> {
    map: Map<String, Value>,
    read: &'r mut dyn FnMut(Source<'_>) -> anyhow::Result<String>,
    /// The field that took stdin, if one did: stdin can be read only once.
    from_stdin: Option<&'static str>,
}

impl Arguments<'_> {
    /// A text field; `-` means "read it from stdin".
    fn text(&mut self, key: &'static str, value: &str) -> anyhow::Result<()> {
        let value = if value == "-" {
            self.read(key, Source::Stdin)?
        } else {
            value.to_owned()
        };
        self.map.insert(key.to_owned(), Value::String(value));
        Ok(())
    }

    fn optional_text(&mut self, key: &'static str, value: &Option<String>) -> anyhow::Result<()> {
        match value {
            Some(value) => self.text(key, value),
            None => Ok(()),
        }
    }

    fn read(&mut self, key: &'static str, source: Source<'_>) -> anyhow::Result<String> {
        if source == Source::Stdin {
            if let Some(first) = self.from_stdin {
                anyhow::bail!("both `{first}` and `{key}` are `-`, but stdin can be read for only one argument");
            }
            self.from_stdin = Some(key);
        }
        (self.read)(source)
    }

    fn list(&mut self, key: &str, values: &[String]) {
        if !values.is_empty() {
            self.map.insert(
                key.to_owned(),
                Value::Array(values.iter().cloned().map(Value::String).collect()),
            );
        }
    }

    fn options(&mut self, options: &TurnOptions) {
        for (key, value) in [("model", &options.model), ("effort", &options.effort)] {
            if let Some(value) = value {
                self.map.insert(key.to_owned(), Value::String(value.clone()));
            }
        }
        let agents: Vec<Value> = options
            .agents
            .iter()
            .map(|agent| agent.trim())
            .filter(|agent| !agent.is_empty())
            .map(|agent| Value::String(agent.to_owned()))
            .collect();
        if !agents.is_empty() {
            self.map.insert("agents".to_owned(), Value::Array(agents));
        }
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

    /// `ask` offers every tool the daemon serves, under its MCP name, and no other.
    #[test]
    fn ask_has_one_subcommand_per_tool_named_as_mcp_names_it() {
        let command = Cli::command();
        let ask = command.find_subcommand("ask").expect("ask");
        let names: Vec<&str> = ask.get_subcommands().map(clap::Command::get_name).collect();
        assert_eq!(names, ToolName::ALL.map(ToolName::as_str));
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
    fn every_turn_tool_passes_model_and_effort() {
        for args in [
            &["ask", "consult", "Q", "--model", "gpt-x", "--effort", "high"][..],
            &["ask", "review_plan", "P", "--model", "gpt-x", "--effort", "high"],
            &["ask", "review_diff", "--model", "gpt-x", "--effort", "high"],
            &["ask", "brainstorm", "B", "--model", "gpt-x", "--effort", "high"],
            &["ask", "explore", "--model", "gpt-x", "--effort", "high"],
            &["ask", "reply", "R", "--model", "gpt-x", "--effort", "high"],
        ] {
            let arguments = tool_of(args).arguments(&mut no_reads).expect("arguments");
            assert_eq!(arguments.get("model"), Some(&json!("gpt-x")), "{args:?}");
            assert_eq!(arguments.get("effort"), Some(&json!("high")), "{args:?}");
        }
        let council = tool_of(&["ask", "consult", "Q", "--agents", "codex,claude", "--agents", "gemini"])
            .arguments(&mut no_reads)
            .expect("arguments");
        assert_eq!(council["agents"], json!(["codex", "claude", "gemini"]));
        let permit = tool_of(&["ask", "permit", "allow", "--id", "p1", "--agent", "claude"])
            .arguments(&mut no_reads)
            .expect("arguments");
        assert_eq!(permit["agent"], "claude");
        let arguments = tool_of(&["ask", "consult", "Q", "--effort", "low"])
            .arguments(&mut no_reads)
            .expect("arguments");
        assert_eq!(Value::Object(arguments), json!({"question": "Q", "effort": "low"}));
        for not_a_turn in [
            &["ask", "permit", "allow", "--model", "m"][..],
            &["ask", "reset", "--effort", "low"],
        ] {
            let error = Cli::try_parse_from(std::iter::once("codex-fusion").chain(not_a_turn.iter().copied()))
                .expect_err("refused");
            assert_eq!(error.exit_code(), 2, "{not_a_turn:?}");
        }
    }

    #[test]
    fn an_empty_diff_is_refused_before_any_turn() {
        let tool = tool_of(&["ask", "review_diff", "--diff", "-"]);
        let error = tool
            .arguments(&mut |_: Source<'_>| Ok(" \n\t\n".to_owned()))
            .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "the diff is empty; leave out --diff to let Codex inspect git itself"
        );
    }

    #[test]
    fn any_text_option_can_come_from_stdin_but_only_one() {
        let from_stdin = |_: Source<'_>| -> anyhow::Result<String> { Ok("from stdin".to_owned()) };
        for (args, key) in [
            (&["ask", "consult", "Q", "--context", "-"][..], "context"),
            (&["ask", "review_plan", "P", "--context", "-"], "context"),
            (&["ask", "review_diff", "--instructions", "-"], "instructions"),
            (&["ask", "brainstorm", "B", "--constraints", "-"], "constraints"),
            (&["ask", "explore", "--focus", "-"], "focus"),
            (&["ask", "permit", "deny", "--note", "-"], "note"),
        ] {
            let arguments = tool_of(args).arguments(&mut { from_stdin }).expect("arguments");
            assert_eq!(arguments.get(key), Some(&json!("from stdin")), "{args:?}");
        }
        let error = tool_of(&["ask", "consult", "-", "--context", "-"])
            .arguments(&mut { from_stdin })
            .expect_err("refused");
        assert!(error.to_string().contains("stdin can be read for only one"), "{error}");
        let error = tool_of(&["ask", "review_diff", "--diff", "-", "--instructions", "-"])
            .arguments(&mut { from_stdin })
            .expect_err("refused");
        assert!(error.to_string().contains("`diff` and `instructions`"), "{error}");
    }

    #[test]
    fn permit_takes_a_decision_and_refuses_anything_else() {
        let tool = tool_of(&["ask", "permit", "deny", "--note", "use a dry run"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"decision": "deny", "note": "use a dry run"})
        );
        let tool = tool_of(&["ask", "permit", "allow", "--id", "p3f9a"]);
        assert_eq!(
            Value::Object(tool.arguments(&mut no_reads).expect("arguments")),
            json!({"decision": "allow", "id": "p3f9a"})
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
