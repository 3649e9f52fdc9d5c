//! Figure 9: the cold paths, side by side with the Bun original, with the
//! real codex-acp pointed at `model-mock` (issue 17). Every consult is timed
//! from the `tools/call` to its answer, the client (shim or original)
//! already initialized and its tools listed.
//!
//! One iteration of codex-fusion, in a fresh environment (state dir, Codex
//! home, mock):
//!
//! - 9b: a shim starts the daemon (empty state dir: nothing kept; the
//!   npm-installed codex-acp is not asked `cli doctor`, its layout names
//!   its codex) and the first consult ever opens codex-acp and its session.
//! - 9c: the consult right after it, same workspace; then a few more, the
//!   warm consults 9e is judged against.
//! - 9d: a second workspace's first consult, its shim new, the daemon
//!   running and the first workspace's codex-acp warm.
//! - 9e: Claude Code's SessionStart hook (`codex-fusion hook`, its JSON on
//!   stdin) for a third workspace that never used Codex; then `status` is
//!   polled until that workspace's Codex session is ready, at most a bound,
//!   and its first consult is timed. If nothing starts a session (the
//!   daemon warms only workspaces that used Codex before) or it does not
//!   become ready in time, the row says so and misses.
//! - 9a: every shim closes and the daemon is stopped (SIGTERM, as at a
//!   logout); a new shim starts a new daemon on the saved state and its
//!   first consult is timed (it restores the Codex session, so the answer
//!   must carry on the thread).
//!
//! Then one iteration of the original, when given (`crate::original`), in
//! a fresh environment of its own (and a stored Codex login, which it
//! needs: see there): spawn, initialize, tools/list, first
//! consult (codex-acp spawned, initialized, `session/new`, turn), second
//! consult. The two alternate, A B A B, so the machine's load falls on both
//! alike.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_testkit::env::is_alive;
use codex_fusion_testkit::real::codex_acp;
use codex_fusion_testkit::{TestEnv, binary};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::Context;
use crate::mcp::{Lines, ShimProcess};
use crate::original::{Original, OriginalProcess};
use crate::overhead::TurnLog;
use crate::real::{QUESTION, expect_messages, real_env};
use crate::report::Row;
use crate::stats::{Samples, human};

pub const ROWS: &[(&str, &str)] = &[
    (
        "9a",
        "cold: first consult of a new daemon on saved state (daemon stopped, a new shim starts it)",
    ),
    ("9b", "cold: first consult ever (empty state dir, fresh daemon)"),
    ("9c", "cold: the consult right after the first"),
    (
        "9d",
        "cold: a new workspace's first consult, daemon running, another workspace's agent warm",
    ),
    (
        "9e",
        "cold: first consult after the SessionStart hook, workspace that never used Codex",
    ),
];

/// Budgets, as multiples of the original's figure (9a–9d) or of
/// codex-fusion's warm consult (9e).
const SAVED_STATE_RATIO: f64 = 1.0;
const FIRST_EVER_RATIO: f64 = 1.2;
const SECOND_RATIO: f64 = 1.1;
const NEW_WORKSPACE_RATIO: f64 = 0.5;
const AFTER_HOOK_RATIO: f64 = 1.2;

/// codex-fusion's samples. Each `*_agent` is codex-acp's own
/// `session/prompt` inside the consult of the same name, from the daemon's
/// turn log: the rest of the consult is starting the agent, opening or
/// loading the session, and codex-fusion's own path.
#[derive(Default)]
struct Fusion {
    first_ever_agent: Samples,
    second_agent: Samples,
    new_workspace_agent: Samples,
    hooked_agent: Samples,
    saved_state_agent: Samples,
    /// 9b: the consult call, and from the shim's spawn.
    first_ever: Samples,
    first_ever_total: Samples,
    /// 9c.
    second: Samples,
    /// The consults after 9c on the same session.
    warm: Samples,
    /// 9d.
    new_workspace: Samples,
    /// 9e.
    hooks: Vec<Hooked>,
    /// 9a: the consult call, from the new shim's spawn, and whether the
    /// answer carried on the saved thread.
    saved_state: Samples,
    saved_state_total: Samples,
    restored: usize,
    restore_misses: Vec<String>,
    /// How long the daemon took to stop.
    stops: Samples,
}

/// One SessionStart hook and the first consult after it.
struct Hooked {
    /// The hook's run, spawn to exit.
    took: Duration,
    /// What it printed on stderr (one line).
    said: String,
    readiness: Readiness,
    consult: Duration,
}

/// What became of the workspace's Codex session after the hook.
enum Readiness {
    /// Ready this long after the hook exited.
    Ready(Duration),
    /// Not ready within `after`; the last state `status` gave.
    Not { after: Duration, state: String },
    /// Its start failed.
    Failed(String),
}

/// The original's samples.
#[derive(Default)]
struct Bun {
    /// Spawn → initialize answered.
    initialize: Samples,
    /// The first consult's call, and from the spawn.
    first: Samples,
    first_total: Samples,
    second: Samples,
}

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let config = &context.config;
    let iterations = config.pick(5, 1);
    let warm_consults = config.pick(3, 1);
    // After the hook: if `status` still says `stopped` this long after it,
    // nothing is starting the session; a start must reach `ready` within
    // `ready_limit`.
    let idle_grace = config.pick(Duration::from_secs(3), Duration::from_secs(2));
    let ready_limit = config.pick(Duration::from_secs(30), Duration::from_secs(15));
    let original = config.original.clone();
    codex_acp();
    binary("codex-fusion");
    let mut fusion = Fusion::default();
    let mut bun = Bun::default();
    for index in 0..iterations {
        fusion_iteration(runtime, index, warm_consults, (idle_grace, ready_limit), &mut fusion)
            .with_context(|| format!("codex-fusion, iteration {}", index + 1))?;
        if let Some(original) = &original {
            original_iteration(runtime, original, &mut bun)
                .with_context(|| format!("the Bun original, iteration {}", index + 1))?;
        }
    }
    if original.is_none() {
        context.notes.push(crate::original::HOW_TO_GET.to_owned());
    }
    Ok(rows(
        &mut fusion,
        original.as_ref().map(|original| (original, &mut bun)),
    ))
}

fn fusion_iteration(
    runtime: &tokio::runtime::Runtime,
    index: usize,
    warm_consults: usize,
    (idle_grace, ready_limit): (Duration, Duration),
    fusion: &mut Fusion,
) -> anyhow::Result<()> {
    let real = real_env(runtime);
    let env = &real.env;

    // 9b: the first consult ever; the shim finds no daemon and starts one.
    let started = Instant::now();
    let (mut shim, mut log) = logged_shim(env, &env.workspace, "first")?;
    let called = Instant::now();
    let text = shim.lines().consult(QUESTION)?;
    fusion.first_ever.push(called.elapsed());
    fusion.first_ever_total.push(started.elapsed());
    expect_messages(&text, 1)?;
    fusion.first_ever_agent.push(log.next_agent_time()?);

    // 9c, then the warm consults.
    let mut messages = 2;
    let called = Instant::now();
    let text = shim.lines().consult(QUESTION)?;
    fusion.second.push(called.elapsed());
    expect_messages(&text, messages)?;
    fusion.second_agent.push(log.next_agent_time()?);
    for _ in 0..warm_consults {
        messages += 1;
        let called = Instant::now();
        let text = shim.lines().consult(QUESTION)?;
        fusion.warm.push(called.elapsed());
        expect_messages(&text, messages)?;
        log.next_agent_time()?;
    }

    // 9d: another workspace, the first one's codex-acp warm.
    let second = env.dir("second-workspace");
    let (mut second_shim, mut second_log) = logged_shim(env, &second, "second")?;
    let called = Instant::now();
    let text = second_shim.lines().consult(QUESTION)?;
    fusion.new_workspace.push(called.elapsed());
    expect_messages(&text, 1).context("a new workspace gets its own Codex thread")?;
    fusion.new_workspace_agent.push(second_log.next_agent_time()?);

    // 9e: the SessionStart hook for a workspace that never used Codex.
    let hooked = env.dir("hooked-workspace");
    let claude_session = format!("{:08x}-0b1d-4c0e-9a3f-{:012x}", std::process::id(), index);
    let (took, said) = session_start_hook(env, &hooked, &claude_session)?;
    let readiness = wait_ready(runtime, env, &hooked, idle_grace, ready_limit);
    let (mut hooked_shim, mut hooked_log) = logged_shim(env, &hooked, "hooked")?;
    let called = Instant::now();
    let text = hooked_shim.lines().consult(QUESTION)?;
    let consult = called.elapsed();
    expect_messages(&text, 1)?;
    fusion.hooked_agent.push(hooked_log.next_agent_time()?);
    fusion.hooks.push(Hooked {
        took,
        said,
        readiness,
        consult,
    });

    // 9a: stop everything, then a new shim on the saved state.
    for shim in [shim, second_shim, hooked_shim] {
        shim.close()?;
    }
    fusion.stops.push(stop_daemon(env)?);
    let started = Instant::now();
    let (mut shim, mut log) = logged_shim(env, &env.workspace, "saved")?;
    let called = Instant::now();
    let text = shim.lines().consult(QUESTION)?;
    fusion.saved_state.push(called.elapsed());
    fusion.saved_state_total.push(started.elapsed());
    messages += 1;
    match expect_messages(&text, messages) {
        Ok(()) => fusion.restored += 1,
        Err(error) => fusion.restore_misses.push(format!("{error:#}")),
    }
    fusion.saved_state_agent.push(log.next_agent_time()?);
    shim.close()?;
    drop(real);
    Ok(())
}

fn original_iteration(runtime: &tokio::runtime::Runtime, original: &Original, bun: &mut Bun) -> anyhow::Result<()> {
    let real = real_env(runtime);
    crate::original::login(&real)?;
    let workspace = real.env.workspace.clone();
    let started = Instant::now();
    let mut process = OriginalProcess::spawn(original, &real, &workspace)?;
    process.lines().initialize()?;
    bun.initialize.push(started.elapsed());
    let tools = process.lines().tool_names()?;
    if !tools.iter().any(|tool| tool == "consult") {
        bail!("the original offers no consult tool (it lists {tools:?})");
    }
    let called = Instant::now();
    let text = process.lines().consult(QUESTION)?;
    bun.first.push(called.elapsed());
    bun.first_total.push(started.elapsed());
    expect_messages(&text, 1)?;
    let called = Instant::now();
    let text = process.lines().consult(QUESTION)?;
    bun.second.push(called.elapsed());
    expect_messages(&text, 2)?;
    process.close();
    drop(real);
    Ok(())
}

/// What Claude Code does after `initialize`: list the tools, and check that
/// `consult` is one of them.
fn ready_client<R: std::io::Read, W: std::io::Write>(lines: &mut Lines<R, W>) -> anyhow::Result<()> {
    lines.initialize()?;
    let tools = lines.tool_names()?;
    if !tools.iter().any(|tool| tool == "consult") {
        bail!("the shim offers no consult tool (it lists {tools:?})");
    }
    Ok(())
}

/// A shim for `workspace`, initialized, its tools listed, with a turn log
/// of its own (`name`).
fn logged_shim(env: &TestEnv, workspace: &Path, name: &str) -> anyhow::Result<(ShimProcess, TurnLog)> {
    let dir = workspace.to_str().context("a UTF-8 workspace path")?;
    let log = TurnLog::new(env.root().join(format!("turns-{name}.jsonl")));
    let mut shim = ShimProcess::spawn(
        env,
        &[("CODEX_FUSION_WORKSPACE", dir), ("CODEX_FUSION_LOG", &log.path_text()?)],
    )?;
    ready_client(shim.lines())?;
    Ok((shim, log))
}

/// "; codex-acp's prompt inside it X (turn log), the rest Y": medians.
fn split(consult: &mut Samples, agent: &mut Samples) -> String {
    let agent = agent.median();
    format!(
        "; of which codex-acp's prompt {} (turn log) and the rest {}",
        human(agent),
        human(consult.median().saturating_sub(agent))
    )
}

/// Runs `codex-fusion hook` as Claude Code runs its SessionStart hook: in
/// the project directory, Claude's JSON on stdin. Returns how long it took
/// and the line it printed on stderr.
fn session_start_hook(env: &TestEnv, workspace: &Path, claude_session: &str) -> anyhow::Result<(Duration, String)> {
    use std::io::Write as _;
    let input = json!({
        "session_id": claude_session,
        "cwd": workspace,
        "hook_event_name": "SessionStart",
        "source": "startup",
    })
    .to_string();
    let mut command = tokio::process::Command::new(binary("codex-fusion"));
    env.apply(&mut command);
    let mut command = command.into_std();
    // Claude Code names the project by the hook's `cwd`, not by this
    // variable, which belongs to the MCP server's configuration.
    command
        .arg("hook")
        .env_remove("CODEX_FUSION_WORKSPACE")
        .current_dir(workspace)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().context("spawning codex-fusion hook")?;
    let mut stdin = child.stdin.take().context("the hook's stdin")?;
    stdin.write_all(input.as_bytes()).context("writing the hook's input")?;
    drop(stdin);
    let output = child.wait_with_output().context("waiting for codex-fusion hook")?;
    let took = started.elapsed();
    if !output.status.success() {
        bail!("codex-fusion hook exited {}", output.status);
    }
    if !output.stdout.is_empty() {
        bail!(
            "codex-fusion hook printed on stdout, which Claude Code adds to its context: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    let said = String::from_utf8_lossy(&output.stderr).trim().replace('\n', " ");
    Ok((took, said))
}

/// Polls the daemon's status of `workspace` until its Codex session is
/// ready, it fails, it stays `stopped` for `idle_grace` (nothing is
/// starting it), or `limit` passes.
fn wait_ready(
    runtime: &tokio::runtime::Runtime,
    env: &TestEnv,
    workspace: &Path,
    idle_grace: Duration,
    limit: Duration,
) -> Readiness {
    let started = Instant::now();
    loop {
        let status = runtime.block_on(env.control(ControlRequest::Status {
            workspace: Some(workspace.to_path_buf()),
        }));
        let (state, error) = match status {
            ControlResponse::Status(status) => match status.workspaces.into_iter().next() {
                Some(workspace) => (workspace.agent_state, workspace.last_error),
                None => ("no session".to_owned(), None),
            },
            other => (format!("status answered {other:?}"), None),
        };
        let waited = started.elapsed();
        match state.as_str() {
            "ready" => return Readiness::Ready(waited),
            "failed" => return Readiness::Failed(error.unwrap_or_else(|| "no reason given".to_owned())),
            "stopped" | "no session" if waited >= idle_grace => return Readiness::Not { after: waited, state },
            _ if waited >= limit => return Readiness::Not { after: waited, state },
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Stops the daemon as a logout or `systemctl stop` does (SIGTERM; it
/// stops its agents and keeps its state) and waits until it is gone.
fn stop_daemon(env: &TestEnv) -> anyhow::Result<Duration> {
    let pid = env.daemon_pid().context("no daemon holds the lock")?;
    let started = Instant::now();
    kill(Pid::from_raw(pid), Signal::SIGTERM).context("signalling the daemon")?;
    let deadline = started + Duration::from_secs(10);
    while is_alive(pid) {
        if Instant::now() > deadline {
            bail!("the daemon (pid {pid}) did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(started.elapsed())
}

/// `a` over `b`, as a ratio.
fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// The budget text and verdict of a row judged against the original:
/// `measured ≤ ratio × original`, or no verdict without the original.
fn against(row: Row, budget: &'static str, measured: Duration, original: Option<Duration>, limit: f64) -> Row {
    match original {
        Some(original) => row.budget(budget, ratio(measured, original) <= limit),
        None => {
            let mut row = row.budget(budget, false);
            row.verdict = crate::report::Verdict::Info;
            row
        }
    }
}

fn rows(fusion: &mut Fusion, original: Option<(&Original, &mut Bun)>) -> Vec<Row> {
    let (first, second, bun_text) = match original {
        Some((original, bun)) => {
            let first = bun.first.median();
            let second = bun.second.median();
            let text = BunText {
                first: format!(
                    "first consult {}; spawn → answer {}, of which spawn → initialize {} (bun {})",
                    bun.first.range_summary(),
                    human(bun.first_total.median()),
                    human(bun.initialize.median()),
                    original.bun_version
                ),
                second: format!("second consult {}", bun.second.range_summary()),
            };
            (Some(first), Some(second), Some(text))
        }
        None => (None, None, None),
    };
    let ratio_text = |measured: Duration, baseline: Option<Duration>, what: &str| match baseline {
        Some(baseline) => format!("; {:.2}× the original's {what}", ratio(measured, baseline)),
        None => String::new(),
    };
    let bun_first = bun_text.as_ref().map_or("—".to_owned(), |text| text.first.clone());
    let bun_second = bun_text.as_ref().map_or("—".to_owned(), |text| text.second.clone());
    let warm = fusion.warm.median();

    let saved = fusion.saved_state.median();
    let runs = fusion.saved_state.len();
    let row_a = Row::new(ROWS[0].0, ROWS[0].1)
        .measured(format!(
            "consult call {}{}{}; from the new shim's spawn, daemon start included: {}; Codex thread carried on in {} of {runs}{}",
            fusion.saved_state.range_summary(),
            ratio_text(saved, first, "first consult"),
            split(&mut fusion.saved_state, &mut fusion.saved_state_agent),
            human(fusion.saved_state_total.median()),
            fusion.restored,
            if fusion.restore_misses.is_empty() {
                String::new()
            } else {
                format!(" ({})", fusion.restore_misses.join("; "))
            }
        ))
        .baseline(format!(
            "the daemon stopped in {} (SIGTERM → gone); the first consult ever (9b) {}",
            human(fusion.stops.median()),
            human(fusion.first_ever.median())
        ))
        .bun(bun_first.clone());
    let row_a = against(
        row_a,
        "≤ 1.0× the original's first consult",
        saved,
        first,
        SAVED_STATE_RATIO,
    );

    let first_ever = fusion.first_ever.median();
    let row_b = Row::new(ROWS[1].0, ROWS[1].1)
        .measured(format!(
            "consult call {}{}{}; from the shim's spawn, daemon start included: {}",
            fusion.first_ever.range_summary(),
            ratio_text(first_ever, first, "first consult"),
            split(&mut fusion.first_ever, &mut fusion.first_ever_agent),
            human(fusion.first_ever_total.median())
        ))
        .baseline(format!("warm consult {}", fusion.warm.range_summary()))
        .bun(bun_first.clone());
    let row_b = against(
        row_b,
        "≤ 1.2× the original's first consult",
        first_ever,
        first,
        FIRST_EVER_RATIO,
    );

    let second_median = fusion.second.median();
    let row_c = Row::new(ROWS[2].0, ROWS[2].1)
        .measured(format!(
            "{}{}{}",
            fusion.second.range_summary(),
            ratio_text(second_median, second, "second consult"),
            split(&mut fusion.second, &mut fusion.second_agent)
        ))
        .baseline(format!("the consults after it (warm): {}", fusion.warm.range_summary()))
        .bun(bun_second);
    let row_c = against(
        row_c,
        "≤ 1.1× the original's second consult",
        second_median,
        second,
        SECOND_RATIO,
    );

    let new_workspace = fusion.new_workspace.median();
    let row_d = Row::new(ROWS[3].0, ROWS[3].1)
        .measured(format!(
            "{}{}{}",
            fusion.new_workspace.range_summary(),
            ratio_text(new_workspace, first, "first consult"),
            split(&mut fusion.new_workspace, &mut fusion.new_workspace_agent)
        ))
        .baseline(format!(
            "first consult ever (9b) {}; warm consult {}",
            human(first_ever),
            human(warm)
        ))
        .bun(bun_first.clone());
    let row_d = against(
        row_d,
        "≤ 0.5× the original's first consult",
        new_workspace,
        first,
        NEW_WORKSPACE_RATIO,
    );

    vec![row_a, row_b, row_c, row_d, hook_row(fusion, warm, bun_first)]
}

/// The original's texts for the Bun column.
struct BunText {
    first: String,
    second: String,
}

fn hook_row(fusion: &mut Fusion, warm: Duration, bun_first: String) -> Row {
    let mut consults = Samples::new();
    let mut hooks = Samples::new();
    let mut ready_after = Samples::new();
    let mut not_ready: Vec<String> = Vec::new();
    let mut waited = Samples::new();
    for hooked in &fusion.hooks {
        consults.push(hooked.consult);
        hooks.push(hooked.took);
        match &hooked.readiness {
            Readiness::Ready(after) => ready_after.push(*after),
            Readiness::Not { after, state } => {
                waited.push(*after);
                not_ready.push(format!("status still `{state}`"));
            }
            Readiness::Failed(error) => not_ready.push(format!("its start failed: {error}")),
        }
    }
    let runs = fusion.hooks.len();
    let consult = consults.median();
    let allowed = warm.mul_f64(AFTER_HOOK_RATIO);
    let said = fusion.hooks.last().map_or(String::new(), |hooked| hooked.said.clone());
    let all_ready = not_ready.is_empty();
    let readiness = if all_ready {
        format!(
            "session ready in {runs} of {runs}, {} after the hook (median; max {})",
            human(ready_after.median()),
            human(ready_after.max())
        )
    } else {
        let missed = not_ready.len();
        let mut reasons = not_ready;
        reasons.sort();
        reasons.dedup();
        let waited = if waited.len() == 0 {
            String::new()
        } else {
            format!(" {}–{} after the hook", human(waited.min()), human(waited.max()))
        };
        format!(
            "MISS: no Codex session ready in {missed} of {runs} ({}{waited}); the consult then opened it itself",
            reasons.join("; ")
        )
    };
    Row::new(ROWS[4].0, ROWS[4].1)
        .measured(format!(
            "first consult {} ({} allowed; {:.2}× warm){}; {readiness}; the hook took {} and said: {said}",
            consults.range_summary(),
            human(allowed),
            ratio(consult, warm),
            split(&mut consults, &mut fusion.hooked_agent),
            human(hooks.median())
        ))
        .baseline(format!("warm consult of codex-fusion: {}", fusion.warm.range_summary()))
        .budget(
            "session ready after the hook; first consult ≤ 1.2× a warm consult",
            all_ready && consult <= allowed,
        )
        .bun(if bun_first == "—" {
            bun_first
        } else {
            format!("its hook does nothing on startup: {bun_first}")
        })
}
