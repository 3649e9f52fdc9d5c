//! The text of tool results: an answer with its one-line footer, a `🔐`
//! pause (`pause.rs`), and the status report. Pure formatting.

mod pause;

pub use pause::{DIFF_LINES_PER_FILE, pause, pause_to_save, pause_within};

use std::fmt::Write as _;

pub use codex_fusion_protocol::control::thousands;
use codex_fusion_protocol::control::{DaemonStatus, WorkspaceStatus};

use crate::turn::Answer;

/// Prefix of every pause result (SPEC: results start with it).
pub use codex_fusion_protocol::PAUSE_PREFIX;

/// The answer followed by a blank line and the footer.
pub fn answer(answer: &Answer) -> String {
    format!("{}\n\n{}", answer.text.trim_end(), footer(answer))
}

/// What a text costs against the result budget: one per ASCII character,
/// three per other character. Claude's tokenizer gives English and code
/// about four characters a token, but a CJK or Cyrillic character can take
/// a token or more, so a budget in plain characters would let such an
/// answer past Claude's token cap.
pub fn cost(text: &str) -> usize {
    text.chars().map(cost_of).sum()
}

/// The byte index where `text`'s first `budget` cost ends (on a character
/// boundary).
fn index_within(text: &str, budget: usize) -> usize {
    let mut spent = 0;
    for (index, c) in text.char_indices() {
        spent += cost_of(c);
        if spent > budget {
            return index;
        }
    }
    text.len()
}

fn cost_of(c: char) -> usize {
    if c.is_ascii() { 1 } else { 3 }
}

/// `answer` within `limit` (as [`cost`] counts). A longer text is cut at the
/// last paragraph break that fits (else a line break, else a character),
/// then one line says so and where the full text is (`saved`, if it could
/// be saved), the verdict line is kept, and the footer names the file.
pub fn answer_within(answer: &Answer, limit: usize, saved: Option<&std::path::Path>) -> String {
    cut_answer(answer, limit, saved, true)
}

/// A council member's answer within `limit`: as [`answer_within`], without
/// the footer (the council has one for all).
pub fn member_answer_within(answer: &Answer, limit: usize, saved: Option<&std::path::Path>) -> String {
    cut_answer(answer, limit, saved, false)
}

fn cut_answer(answer: &Answer, limit: usize, saved: Option<&std::path::Path>, with_footer: bool) -> String {
    let text = answer.text.trim_end();
    let whole = if with_footer {
        self::answer(answer)
    } else {
        text.to_owned()
    };
    if cost(&whole) <= limit {
        return whole;
    }
    let total = text.chars().count();
    let where_ = match saved {
        Some(path) => format!("the full answer is in {}", path.display()),
        None => "the full answer could not be saved; ask Codex to continue with `reply`".to_owned(),
    };
    let notice = |shown: usize| {
        format!("[… answer cut at {shown} of {total} characters to fit Claude's tool-output limit; {where_}]")
    };
    let mut trimmed = answer.clone();
    if let Some(path) = saved {
        trimmed.notes.push(format!("full answer: {}", path.display()));
    }
    let footer = if with_footer { footer(&trimmed) } else { String::new() };
    let verdict_line = answer
        .verdict
        .as_ref()
        .and_then(|_| text.lines().rev().map(str::trim).find(|line| !line.is_empty()))
        // A verdict line too long to repeat is left in the saved file.
        .filter(|line| cost(line) <= limit / 4);
    // Everything after the kept text, at its longest (the notice's count can
    // only be shorter than `total`): two blank-line breaks, the notice, the
    // verdict line and the footer.
    let reserve = 4 + cost(&notice(total)) + verdict_line.map_or(0, |line| cost(line) + 1) + cost(&footer);
    let byte_limit = index_within(text, limit.saturating_sub(reserve));
    let head = &text[..byte_limit];
    let cut = head
        .rfind("\n\n")
        .or_else(|| head.rfind('\n'))
        .filter(|index| *index > byte_limit / 2)
        .unwrap_or(byte_limit);
    let shown = text[..cut].trim_end();
    let mut out = format!("{shown}\n\n{}", notice(shown.chars().count()));
    if let Some(line) = verdict_line
        && !shown.ends_with(line)
    {
        out.push('\n');
        out.push_str(line);
    }
    if with_footer {
        out.push_str("\n\n");
        out.push_str(&footer);
    } else if let Some(path) = saved {
        let _ = write!(out, "\n(full answer: {})", path.display());
    }
    // Only a footer longer than the whole budget (absurd notes) gets here.
    fit(out, limit)
}

/// Any result text within `limit` (as [`cost`] counts): a longer one keeps
/// its head and its last lines (where a pause says how to resume) and says
/// how much was left out between them.
pub fn fit(text: String, limit: usize) -> String {
    if cost(&text) <= limit {
        return text;
    }
    let tail_budget = limit / 4;
    let tail_start = {
        // The last `tail_budget` of cost, from a line start where possible.
        let mut spent = 0;
        let mut start = text.len();
        for (index, c) in text.char_indices().rev() {
            spent += cost_of(c);
            if spent > tail_budget {
                break;
            }
            start = index;
        }
        match text[start..].find('\n') {
            Some(newline) if start + newline + 1 < text.len() => start + newline + 1,
            _ => start,
        }
    };
    let tail = &text[tail_start..];
    let left_out = |head_end: usize| text[head_end..tail_start].chars().count();
    let marker = |count: usize| format!("\n[… {count} characters left out to fit Claude's tool-output limit …]\n");
    let head_budget = limit.saturating_sub(cost(tail) + cost(&marker(text.chars().count())));
    let head_end = index_within(&text[..tail_start], head_budget);
    format!("{}{}{tail}", &text[..head_end], marker(left_out(head_end)))
}

/// One line: latency, tokens, verdict, notes.
pub fn footer(answer: &Answer) -> String {
    let mut parts = vec![format!("codex-fusion · {:.1} s", answer.elapsed.as_secs_f64())];
    if let Some(usage) = answer.usage {
        let mut tokens = format!(
            "{} in · {} out",
            thousands(usage.input_tokens),
            thousands(usage.output_tokens)
        );
        if usage.reasoning_tokens > 0 {
            let _ = write!(tokens, " · {} reasoning", thousands(usage.reasoning_tokens));
        }
        parts.push(format!("{tokens} tokens"));
    }
    if let Some(verdict) = &answer.verdict {
        parts.push(verdict.label().to_owned());
    }
    parts.extend(answer.notes.iter().cloned());
    format!("— {}", parts.join(" · "))
}

/// What `reset` did: which agents' sessions it dropped, which had none.
pub fn reset(dropped: &[&str], had_none: &[&str]) -> String {
    let names = |agents: &[&str]| {
        let names: Vec<String> = agents
            .iter()
            .map(|agent| codex_fusion_protocol::agents::display_name(agent))
            .collect();
        names.join(", ")
    };
    match (dropped, had_none) {
        ([], [only]) => format!(
            "There was no {} session for this workspace; the next call starts a fresh one.",
            names(&[only])
        ),
        ([only], []) => format!(
            "{}'s session for this workspace was dropped; the next call starts a fresh one.",
            names(&[only])
        ),
        ([], _) => format!(
            "No agent had a session for this workspace ({}); the next call starts fresh ones.",
            names(had_none)
        ),
        (_, []) => format!(
            "Dropped the sessions of {} for this workspace; the next call starts fresh ones.",
            names(dropped)
        ),
        (_, _) => format!(
            "Dropped the sessions of {} for this workspace ({} had none); the next call starts fresh ones.",
            names(dropped),
            names(had_none)
        ),
    }
}

/// The share of a council's result budget each of `costs` gets: what it
/// needs when that is no more than an equal share of what is left, the
/// smaller ones served first so that what they leave goes to the longer.
pub fn fair_shares(costs: &[usize], budget: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|index| costs[*index]);
    let mut shares = vec![0; costs.len()];
    let mut left = budget;
    for (served, index) in order.iter().enumerate() {
        let equal = left / (costs.len() - served);
        let share = costs[*index].min(equal);
        shares[*index] = share;
        left -= share;
    }
    shares
}

/// How a council member's turn ended, for the tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Consensus,
    Open,
    /// Answered without a VERDICT line (`explore`, or an agent that left it out).
    NoVerdict,
    Paused,
    Failed,
}

impl Standing {
    const ORDER: [Standing; 5] = [
        Standing::Consensus,
        Standing::Open,
        Standing::NoVerdict,
        Standing::Paused,
        Standing::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            Standing::Consensus => "CONSENSUS",
            Standing::Open => "OPEN",
            Standing::NoVerdict => "NO VERDICT",
            Standing::Paused => "PAUSED",
            Standing::Failed => "FAILED",
        }
    }
}

/// One line counting the council's verdicts: `2 CONSENSUS · 1 OPEN`.
pub fn tally(standings: &[Standing]) -> String {
    let counts: Vec<String> = Standing::ORDER
        .iter()
        .filter_map(|standing| {
            let count = standings.iter().filter(|other| *other == standing).count();
            (count > 0).then(|| format!("{count} {}", standing.label()))
        })
        .collect();
    counts.join(" · ")
}

/// The heading of agent `agent`'s section in a council's result.
pub fn member_heading(agent: &str) -> String {
    format!("── {} ({agent}) ──", codex_fusion_protocol::agents::display_name(agent))
}

/// A council's one footer: the whole call's time, then each agent's time
/// and tokens (or how its turn ended), and each answer's notes.
pub fn council_footer(elapsed: std::time::Duration, members: &[(&str, Option<&Answer>, Standing)]) -> String {
    let mut parts = vec![format!(
        "codex-fusion · council of {} · {:.1} s",
        members.len(),
        elapsed.as_secs_f64()
    )];
    for (agent, answer, standing) in members {
        let part = match answer {
            Some(answer) => {
                let mut part = format!("{agent} {:.1} s", answer.elapsed.as_secs_f64());
                if let Some(usage) = answer.usage {
                    let _ = write!(
                        part,
                        ", {} in / {} out tokens",
                        thousands(usage.input_tokens),
                        thousands(usage.output_tokens)
                    );
                }
                for note in &answer.notes {
                    let _ = write!(part, ", {note}");
                }
                part
            }
            None => format!("{agent} {}", standing.label().to_ascii_lowercase()),
        };
        parts.push(part);
    }
    format!("— {}", parts.join(" · "))
}

/// The `status` tool's report for one workspace.
pub fn status(daemon: &DaemonStatus, workspace: &WorkspaceStatus) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "workspace: {}", workspace.workspace.display());
    let guardian = &workspace.guardian;
    let _ = writeln!(
        text,
        "guardian: external reads {}, writes {}, commands {} (reads inside the workspace are always allowed)",
        on_off(guardian.allow_external_reads),
        on_off(guardian.allow_writes),
        on_off(guardian.allow_commands)
    );
    let agent = match (&workspace.agent_pid, workspace.agent_state.as_str()) {
        (Some(pid), state) => format!("{state} (pid {pid})"),
        (None, state) => state.to_owned(),
    };
    let program = match workspace.agent_name() {
        codex_fusion_protocol::agents::DEFAULT_AGENT => "codex-acp".to_owned(),
        other => format!("agent {other}"),
    };
    let _ = writeln!(text, "{program}: {agent}");
    if !workspace.shared_with.is_empty() {
        let _ = writeln!(
            text,
            "shares its codex-acp process with: {}",
            workspace.shared_with_text()
        );
    }
    if let Some(command) = &workspace.agent_command {
        let _ = writeln!(text, "command: {command}");
    }
    match &workspace.session_id {
        Some(id) => {
            let origin = workspace.session_origin.as_deref().unwrap_or("fresh");
            if origin == "to restore" {
                let _ = writeln!(text, "session: {id} (to restore: the next call loads it)");
            } else {
                let _ = writeln!(
                    text,
                    "session: {id} ({origin}, {} turn{}, last used {})",
                    workspace.turns,
                    if workspace.turns == 1 { "" } else { "s" },
                    workspace
                        .last_used_secs_ago
                        .map_or_else(|| "never".to_owned(), |secs| format!("{} ago", duration(secs)))
                );
            }
        }
        None => {
            let _ = writeln!(text, "session: none yet (the next call starts one)");
        }
    }
    if let Some(claude) = &workspace.claude_session_id {
        let _ = writeln!(text, "paired Claude session: {claude}");
    }
    if let Some(mode) = &workspace.mode {
        let _ = writeln!(text, "codex mode: {mode}");
    }
    if let Some(reason) = &workspace.unconfined {
        let _ = writeln!(
            text,
            "warning: reads are not confined to the workspace ({reason}); the agent's sandboxed commands may read any file without asking"
        );
    }
    if let Some(model) = &workspace.model {
        let effort = workspace
            .effort
            .as_deref()
            .map(|effort| format!(", effort {effort}"))
            .unwrap_or_default();
        let _ = writeln!(text, "model: {model}{effort}");
    }
    if !workspace.available_models.is_empty() {
        let _ = writeln!(text, "models offered: {}", workspace.available_models.join(", "));
    }
    if !workspace.available_efforts.is_empty() {
        let _ = writeln!(text, "efforts offered: {}", workspace.available_efforts.join(", "));
    }
    let usage = &workspace.usage;
    let _ = write!(
        text,
        "tokens this session: {} in · {} out · {} reasoning",
        thousands(usage.input_tokens),
        thousands(usage.output_tokens),
        thousands(usage.reasoning_tokens)
    );
    if let (Some(used), Some(size)) = (usage.context_used, usage.context_size) {
        let _ = write!(text, " · context {} / {}", thousands(used), thousands(size));
    }
    text.push('\n');
    match (&workspace.running_turn, workspace.queued_turns) {
        (Some(tool), queued) => {
            let _ = writeln!(text, "running: {tool} ({queued} queued)");
        }
        (None, 0) => {
            let _ = writeln!(text, "running: nothing");
        }
        (None, queued) => {
            let _ = writeln!(text, "running: nothing ({queued} queued)");
        }
    }
    match &workspace.pending_permission {
        Some(pending) => {
            let _ = writeln!(text, "pending permission: {pending} (call `permit`)");
        }
        None => {
            let _ = writeln!(text, "pending permission: none");
        }
    }
    if let Some(error) = &workspace.last_error {
        let _ = writeln!(text, "last error: {error}");
    }
    if let Some(last) = daemon.last_answer(&workspace.workspace) {
        let now = codex_fusion_protocol::answers::millis_since_epoch(std::time::SystemTime::now());
        let _ = writeln!(
            text,
            "last answer: {} · full text in {} (`codex-fusion log` lists the recent ones)",
            last.summary(now),
            last.file.display()
        );
    }
    let _ = writeln!(
        text,
        "daemon: codex-fusiond {} (pid {}), up {}, {}, {}",
        daemon.daemon_version,
        daemon.pid,
        duration(daemon.uptime_secs),
        counted(daemon.workspaces.len() as u64, "workspace"),
        counted(daemon.connections as u64, "connection")
    );
    if workspace.stderr_tail.is_empty() {
        let _ = write!(text, "recent {program} stderr: none");
    } else {
        let _ = write!(text, "recent {program} stderr:");
        let start = workspace.stderr_tail.len().saturating_sub(10);
        for line in &workspace.stderr_tail[start..] {
            let _ = write!(text, "\n  {line}");
        }
    }
    text
}

fn on_off(on: bool) -> &'static str {
    if on { "allowed" } else { "ask" }
}

/// `1234567` as `1,234,567`.
/// `1 turn`, `2 turns`.
fn counted(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `3725` seconds as `1h 2m`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d {}h", secs / 86400, (secs % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guardian::{ActionKind, PermissionRequest, ResolvedPath};
    use crate::prompts::Verdict;
    use crate::turn::Pause;
    use crate::turn::TurnUsage;
    use std::time::Duration;

    #[test]
    fn footer_is_one_line_with_latency_tokens_and_verdict() {
        let text = answer(&Answer {
            text: "Looks right.\n\nVERDICT: CONSENSUS — ship it\n".into(),
            elapsed: Duration::from_millis(2345),
            usage: Some(TurnUsage {
                input_tokens: 12345,
                output_tokens: 678,
                reasoning_tokens: 90,
            }),
            verdict: Some(Verdict::Consensus("ship it".into())),
            notes: vec!["new Codex session".into()],
            stop_reason: "end_turn",
        });
        assert_eq!(
            text,
            "Looks right.\n\nVERDICT: CONSENSUS — ship it\n\n— codex-fusion · 2.3 s · 12,345 in · 678 out · 90 reasoning tokens · CONSENSUS · new Codex session"
        );
    }

    #[test]
    fn a_long_answer_is_cut_at_a_paragraph_and_keeps_its_verdict() {
        // Paragraphs of uneven length, so that a plain character cut would
        // land mid-paragraph.
        let body = (0..60)
            .map(|index| format!("paragraph {index}: {}end.", "word ".repeat(10 + index * 7 % 31)))
            .collect::<Vec<_>>()
            .join("\n\n");
        let text = format!("{body}\n\nVERDICT: OPEN — too long");
        let long = Answer {
            verdict: Verdict::parse(&text),
            text: text.clone(),
            elapsed: Duration::from_secs(1),
            usage: None,
            notes: vec![],
            stop_reason: "end_turn",
        };
        let path = std::path::Path::new("/state/answers/a.md");
        for limit in [1000, 3000, 3001, 3017, 5000] {
            let shown = answer_within(&long, limit, Some(path));
            assert!(cost(&shown) <= limit, "{} over {limit}", cost(&shown));
            let (kept, rest) = shown.split_once("\n\n[… answer cut at ").expect("cut notice");
            assert!(
                text.starts_with(kept) && text[kept.len()..].starts_with("\n\n"),
                "cut exactly at a paragraph break: …{:?}",
                &kept[kept.len().saturating_sub(30)..]
            );
            assert!(rest.contains("the full answer is in /state/answers/a.md]"), "{rest}");
            assert!(
                rest.contains("\nVERDICT: OPEN — too long\n"),
                "the verdict stays: {rest}"
            );
            assert!(
                shown
                    .lines()
                    .last()
                    .expect("footer")
                    .contains("full answer: /state/answers/a.md")
            );
        }
        // Short answers are untouched.
        let short = Answer {
            text: "ok".into(),
            verdict: None,
            ..long.clone()
        };
        assert_eq!(answer_within(&short, 3000, Some(path)), answer(&short));
    }

    #[test]
    fn text_outside_ascii_costs_more_and_is_cut_sooner() {
        assert_eq!(cost("abc"), 3);
        assert_eq!(cost("日本"), 6);
        let text = "日本語の段落です。".repeat(400);
        let long = Answer {
            text: format!("{text}\n\n{text}"),
            verdict: None,
            elapsed: Duration::from_secs(1),
            usage: None,
            notes: vec![],
            stop_reason: "end_turn",
        };
        let shown = answer_within(&long, 5000, None);
        assert!(cost(&shown) <= 5000, "{}", cost(&shown));
        assert!(
            shown.chars().count() < 2000,
            "{} characters kept",
            shown.chars().count()
        );
    }

    #[test]
    fn any_result_fits_keeping_its_head_and_its_last_lines() {
        let long = format!(
            "🔐 Codex paused: it wants to run a command.\ncommand: {}\n\nCall `permit` to resume.",
            "x".repeat(50_000)
        );
        let shown = fit(long.clone(), 2000);
        assert!(cost(&shown) <= 2000, "{}", cost(&shown));
        assert!(shown.starts_with("🔐 Codex paused: it wants to run a command.\ncommand: xxx"));
        assert!(shown.ends_with("\n\nCall `permit` to resume."), "{shown}");
        assert!(shown.contains("characters left out to fit Claude's tool-output limit"));
        let short = "fine".to_owned();
        assert_eq!(fit(short.clone(), 2000), short);
        // A text without line breaks is cut anywhere, still within budget.
        let flat = "é".repeat(10_000);
        assert!(cost(&fit(flat, 1000)) <= 1000);
    }

    #[test]
    fn pause_describes_the_action_and_how_to_resume() {
        let text = pause(&Pause {
            id: "p3f9a".into(),
            agent: "codex".into(),
            request: PermissionRequest {
                kind: ActionKind::Execute,
                title: "touch x".into(),
                command: Some("touch x".into()),
                cwd: Some(ResolvedPath {
                    raw: "/w".into(),
                    resolved: "/w".into(),
                    inside_workspace: true,
                    entry_inside_workspace: true,
                    ..ResolvedPath::default()
                }),
                paths: vec![ResolvedPath {
                    raw: "link/secret".into(),
                    resolved: "/etc/secret".into(),
                    inside_workspace: false,
                    entry_inside_workspace: true,
                    credential_store: Some("/etc/secret".into()),
                    ..ResolvedPath::default()
                }],
                reason: Some("to test".into()),
                ..PermissionRequest::default()
            },
            why: "it runs a command (CODEX_FUSION_ALLOW_COMMANDS is off)".into(),
        });
        assert!(
            text.starts_with("🔐 Codex paused: it wants to run a command."),
            "{text}"
        );
        assert!(text.contains("command: touch x\n"));
        assert!(
            text.contains("path: link/secret → /etc/secret (OUTSIDE the workspace; a credential store: /etc/secret)"),
            "{text}"
        );
        assert!(text.contains("Codex's reason (indented):\n    to test\n"), "{text}");
        assert!(text.contains("\nid: p3f9a\n"), "{text}");
        assert!(text.contains("Pass `id` `p3f9a`"), "{text}");
        assert!(text.contains("`permit`"));
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m 1s");
        assert_eq!(duration(3725), "1h 2m");
        assert_eq!(duration(90000), "1d 1h");
    }

    #[test]
    fn a_council_budget_goes_first_to_what_fits_and_the_rest_to_the_long() {
        // Two short answers take what they need; the long one gets the rest.
        assert_eq!(fair_shares(&[100, 5_000, 200], 3_000), [100, 2_700, 200]);
        // Two long ones split evenly.
        assert_eq!(fair_shares(&[9_000, 9_000], 3_000), [1_500, 1_500]);
        // Everything fits: each gets its own.
        assert_eq!(fair_shares(&[10, 20, 30], 1_000), [10, 20, 30]);
        assert!(fair_shares(&[], 1_000).is_empty());
        let shares = fair_shares(&[700, 400, 2_000, 50], 1_000);
        assert!(shares.iter().sum::<usize>() <= 1_000, "{shares:?}");
        assert_eq!(shares[3], 50);
    }

    #[test]
    fn the_tally_counts_each_standing_in_a_fixed_order() {
        use Standing::*;
        assert_eq!(tally(&[Open, Consensus, Consensus]), "2 CONSENSUS · 1 OPEN");
        assert_eq!(tally(&[Paused, Consensus, Failed]), "1 CONSENSUS · 1 PAUSED · 1 FAILED");
        assert_eq!(tally(&[NoVerdict, NoVerdict]), "2 NO VERDICT");
    }

    #[test]
    fn the_council_footer_names_each_agent_with_its_time_and_tokens() {
        let codex = Answer {
            text: "ok\n\nVERDICT: CONSENSUS — fine".into(),
            elapsed: Duration::from_millis(1_100),
            usage: Some(TurnUsage {
                input_tokens: 1_200,
                output_tokens: 34,
                reasoning_tokens: 0,
            }),
            verdict: Some(Verdict::Consensus("fine".into())),
            notes: vec![],
            stop_reason: "end_turn",
        };
        let footer = council_footer(
            Duration::from_millis(2_300),
            &[
                ("codex", Some(&codex), Standing::Consensus),
                ("claude", None, Standing::Paused),
            ],
        );
        assert!(
            footer.starts_with("— codex-fusion · council of 2 · 2.3 s · codex 1.1 s, "),
            "{footer}"
        );
        assert!(footer.contains("1,200 in / 34 out tokens"), "{footer}");
        assert!(footer.ends_with("claude paused"), "{footer}");
    }

    #[test]
    fn reset_says_whose_sessions_went() {
        assert_eq!(
            reset(&["codex"], &[]),
            "Codex's session for this workspace was dropped; the next call starts a fresh one."
        );
        assert_eq!(
            reset(&[], &["codex"]),
            "There was no Codex session for this workspace; the next call starts a fresh one."
        );
        assert_eq!(
            reset(&["codex", "claude"], &["gemini"]),
            "Dropped the sessions of Codex, Claude for this workspace (Gemini had none); the next call starts fresh ones."
        );
    }
}
