//! The prompts codex-fusion sends Codex: one block-structured text per tool
//! (role, task, material, grounding rules, output contract), plus the note
//! that tells Codex Claude denied an action. Pure string assembly.

use std::fmt::Write as _;
use std::path::Path;

use crate::tools::TurnTool;

/// The final line every deliberative answer must end with.
pub const VERDICT_RULE: &str = "End with exactly one final line, nothing after it:\n\
`VERDICT: CONSENSUS — <one sentence on what you and Claude agree on>` when you agree with Claude's \
direction (possibly with minor adjustments), or\n\
`VERDICT: OPEN — <the main point still in dispute>` when something important is unresolved.";

/// Builds the prompt for one turn of `tool` in `workspace`.
pub fn build(tool: &TurnTool, workspace: &Path) -> String {
    let mut prompt = String::new();
    let deliberative = !matches!(tool, TurnTool::Explore(_));
    section(&mut prompt, "Role", &role(workspace));
    match tool {
        TurnTool::Consult(args) => {
            section(
                &mut prompt,
                "Task",
                "Claude asks for an independent second opinion on the question below. Think it through \
yourself before weighing Claude's framing: say where you agree, where you would decide differently, \
and why. Check the code when the answer depends on it.",
            );
            section(&mut prompt, "Question", &args.question);
            optional(&mut prompt, "Context from Claude", args.context.as_deref());
            contract(
                &mut prompt,
                &[
                    "Open with your answer in one or two sentences, then the reasoning that matters.",
                    "Name concrete risks and the evidence for them (file:line where it comes from the code).",
                    "If the question rests on a wrong assumption, say so first.",
                ],
            );
        }
        TurnTool::ReviewPlan(args) => {
            section(
                &mut prompt,
                "Task",
                "Claude is about to implement the plan below and wants it critiqued first. Look for \
missing steps, wrong ordering, risky or irreversible moves, untested assumptions about the code, and a \
simpler route to the same goal.",
            );
            section(&mut prompt, "Plan", &args.plan);
            optional(&mut prompt, "Context from Claude", args.context.as_deref());
            contract(
                &mut prompt,
                &[
                    "Start with an overall judgement: sound, sound with changes, or needs rethinking.",
                    "List the problems by severity; for each, the step it concerns and a concrete fix.",
                    "Keep what is fine to one line; do not restate the plan.",
                ],
            );
        }
        TurnTool::ReviewDiff(args) => {
            let task = if args.diff.is_some() {
                "Claude asks you to review the code change below as a careful senior reviewer: \
correctness first, then error handling, tests, security, and clarity. Read the surrounding code in the \
workspace where the diff alone is not enough."
            } else {
                "Claude asks you to review the uncommitted changes in this workspace as a careful senior \
reviewer: correctness first, then error handling, tests, security, and clarity. Inspect them yourself \
(for example `git diff` and `git status`; running a command may need permission, so ask for it)."
            };
            section(&mut prompt, "Task", task);
            optional(&mut prompt, "Instructions from Claude", args.instructions.as_deref());
            if let Some(paths) = args.paths.as_ref().filter(|paths| !paths.is_empty()) {
                section(&mut prompt, "Focus on these paths", &bullets(paths));
            }
            if let Some(diff) = &args.diff {
                section(&mut prompt, "Diff", &fenced("diff", diff));
            }
            contract(
                &mut prompt,
                &[
                    "List findings by severity (blocker, should fix, nit), each with file:line and a concrete fix.",
                    "Say explicitly when you found no blocker.",
                    "Do not rewrite the change; point at what to change.",
                ],
            );
        }
        TurnTool::Brainstorm(args) => {
            section(
                &mut prompt,
                "Task",
                "Claude wants options before committing to one. Propose two to four genuinely different \
approaches to the problem below (not variations of one idea), grounded in how this codebase works.",
            );
            section(&mut prompt, "Problem", &args.problem);
            optional(&mut prompt, "Constraints", args.constraints.as_deref());
            contract(
                &mut prompt,
                &[
                    "For each approach: a name, how it works in two or three sentences, its costs and its risks.",
                    "Then recommend one and say what would change your mind.",
                ],
            );
        }
        TurnTool::Explore(args) => {
            section(
                &mut prompt,
                "Task",
                "Claude is new to this codebase and asks you to map it by reading the workspace: how it \
is laid out, its key components and how they depend on each other, how a typical request or command \
flows through it, and the conventions a newcomer must follow.",
            );
            optional(&mut prompt, "Focus", args.focus.as_deref());
            if let Some(paths) = args.paths.as_ref().filter(|paths| !paths.is_empty()) {
                section(&mut prompt, "Start from these paths", &bullets(paths));
            }
            contract(
                &mut prompt,
                &[
                    "Sections: Structure, Key components, Flow, Conventions, Where to start.",
                    "Name real files and symbols; mark anything you inferred rather than read.",
                ],
            );
        }
        TurnTool::Reply(args) => {
            section(
                &mut prompt,
                "Task",
                "This continues your debate with Claude in this session. Claude answered your last reply \
(below). Engage with its points on the merits: concede where it is right, hold your ground with evidence \
where it is not, and narrow down what is still open.",
            );
            section(&mut prompt, "Claude's reply", &args.message);
            contract(
                &mut prompt,
                &["Be brief: only what moves the discussion forward; do not repeat earlier answers."],
            );
        }
    }
    section(&mut prompt, "Grounding rules", GROUNDING);
    if deliberative {
        section(&mut prompt, "Verdict", VERDICT_RULE);
    }
    prompt.truncate(prompt.trim_end().len());
    prompt
}

/// What Codex is told after Claude denied an action, so the turn still ends
/// with an answer instead of silence.
pub fn denied(action: &str, note: Option<&str>) -> String {
    let mut prompt = String::new();
    section(
        &mut prompt,
        "Permission denied",
        &format!(
            "Claude denied your request: {action}. The action was not performed. Do not ask for it \
again in this turn; continue without it and answer as well as you can from what you already know, \
saying what remains unverified."
        ),
    );
    optional(&mut prompt, "Claude's note", note);
    prompt.truncate(prompt.trim_end().len());
    prompt
}

const GROUNDING: &str = "- Base claims about this codebase on files you actually read; cite them as path:line.\n\
- You are in read-only mode: do not modify files. If you truly need to run a command or touch \
something outside the workspace, ask for it; Claude decides.\n\
- Separate facts from opinions, and say plainly when you are unsure.\n\
- Claude can be wrong; so can you. Disagree when you have reason to.";

fn role(workspace: &Path) -> String {
    format!(
        "You are Codex, consulted mid-task by Claude, another coding agent, who is working in the \
repository at `{}`. Claude proposes, you review, Claude reconciles. You are a peer reviewer, not an \
assistant: be direct, specific and brief.",
        workspace.display()
    )
}

fn contract(prompt: &mut String, rules: &[&str]) {
    section(prompt, "Output contract", &bullets(rules));
}

fn section(prompt: &mut String, heading: &str, body: &str) {
    let _ = write!(prompt, "## {heading}\n{}\n\n", body.trim_end());
}

fn optional(prompt: &mut String, heading: &str, body: Option<&str>) {
    if let Some(body) = body.filter(|body| !body.trim().is_empty()) {
        section(prompt, heading, body);
    }
}

fn bullets<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|item| format!("- {}", item.as_ref()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Wraps `body` in a code fence longer than any backtick run inside it.
fn fenced(language: &str, body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{}\n{fence}", body.trim_end_matches('\n'))
}

/// How a deliberative answer ended, read from its last `VERDICT:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Consensus(String),
    Open(String),
}

impl Verdict {
    /// The verdict in `answer`, if its last non-empty lines carry one.
    pub fn parse(answer: &str) -> Option<Verdict> {
        let line = answer.lines().rev().map(str::trim).find(|line| !line.is_empty())?;
        let line = line.trim_matches(|c| c == '`' || c == '*');
        let rest = line.strip_prefix("VERDICT:")?.trim_start();
        let (kind, summary) = match rest.split_once(['—', '-', ':']) {
            Some((kind, summary)) => (kind.trim(), summary.trim()),
            None => (rest.trim(), ""),
        };
        match kind.to_ascii_uppercase().as_str() {
            "CONSENSUS" => Some(Verdict::Consensus(summary.to_owned())),
            "OPEN" => Some(Verdict::Open(summary.to_owned())),
            _ => None,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Consensus(_) => "CONSENSUS",
            Verdict::Open(_) => "OPEN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{ConsultArgs, ExploreArgs, ReplyArgs, ReviewDiffArgs};

    fn workspace() -> &'static Path {
        Path::new("/home/me/project")
    }

    #[test]
    fn consult_prompt_is_block_structured() {
        let prompt = build(
            &TurnTool::Consult(ConsultArgs {
                question: "Should the cache be per-request?".into(),
                context: Some("Latency matters more than memory.".into()),
                model: None,
                effort: None,
                agents: None,
            }),
            workspace(),
        );
        let headings: Vec<&str> = prompt.lines().filter(|line| line.starts_with("## ")).collect();
        assert_eq!(
            headings,
            [
                "## Role",
                "## Task",
                "## Question",
                "## Context from Claude",
                "## Output contract",
                "## Grounding rules",
                "## Verdict"
            ]
        );
        assert!(prompt.contains("Should the cache be per-request?"));
        assert!(prompt.contains("`/home/me/project`"));
        assert!(prompt.contains("VERDICT: CONSENSUS — "));
        assert!(prompt.contains("VERDICT: OPEN — "));
        assert!(!prompt.ends_with('\n'));
    }

    #[test]
    fn empty_optional_sections_are_left_out() {
        let prompt = build(
            &TurnTool::Consult(ConsultArgs {
                question: "q".into(),
                context: Some("   ".into()),
                model: None,
                effort: None,
                agents: None,
            }),
            workspace(),
        );
        assert!(!prompt.contains("Context from Claude"));
    }

    #[test]
    fn review_diff_without_diff_asks_codex_to_inspect_git() {
        let without = build(
            &TurnTool::ReviewDiff(ReviewDiffArgs {
                diff: None,
                paths: Some(vec!["src/lib.rs".into()]),
                instructions: None,
                model: None,
                effort: None,
                agents: None,
            }),
            workspace(),
        );
        assert!(without.contains("git diff"));
        assert!(without.contains("- src/lib.rs"));
        assert!(!without.contains("## Diff"));
        let with = build(
            &TurnTool::ReviewDiff(ReviewDiffArgs {
                diff: Some("+ let x = ```;\n".into()),
                paths: None,
                instructions: Some("check errors".into()),
                model: None,
                effort: None,
                agents: None,
            }),
            workspace(),
        );
        assert!(with.contains("## Diff\n````diff\n+ let x = ```;\n````"), "{with}");
        assert!(with.contains("check errors"));
    }

    #[test]
    fn explore_has_no_verdict_and_reply_has_one() {
        let explore = build(
            &TurnTool::Explore(ExploreArgs {
                focus: None,
                paths: None,
                model: None,
                effort: None,
                agents: None,
            }),
            workspace(),
        );
        assert!(!explore.contains("VERDICT"));
        let reply = build(
            &TurnTool::Reply(ReplyArgs {
                message: "I disagree".into(),
                model: None,
                effort: None,
                agents: None,
            }),
            workspace(),
        );
        assert!(reply.contains("## Claude's reply\nI disagree"));
        assert!(reply.contains("VERDICT: OPEN"));
    }

    #[test]
    fn denied_note_names_the_action_and_the_note() {
        let prompt = denied("run `rm -rf build`", Some("use cargo clean instead"));
        assert!(prompt.contains("Claude denied your request: run `rm -rf build`"));
        assert!(prompt.contains("## Claude's note\nuse cargo clean instead"));
    }

    #[test]
    fn verdict_parsing() {
        assert_eq!(
            Verdict::parse("text\n\nVERDICT: CONSENSUS — ship it\n"),
            Some(Verdict::Consensus("ship it".into()))
        );
        assert_eq!(
            Verdict::parse("VERDICT: OPEN - cache invalidation"),
            Some(Verdict::Open("cache invalidation".into()))
        );
        assert_eq!(Verdict::parse("**VERDICT: open — x**"), Some(Verdict::Open("x".into())));
        assert_eq!(Verdict::parse("VERDICT: CONSENSUS — a\nmore text"), None);
        assert_eq!(Verdict::parse(""), None);
    }
}
