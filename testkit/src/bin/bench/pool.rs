//! Figure 8: the agent pool with the real codex-acp against `model-mock`.
//! Workspaces whose agent command and environment match share one
//! codex-acp, each on its own ACP session (issue 14, "Budgets"). One daemon,
//! one shim per workspace:
//!
//! - 8a: the memory of the daemon's whole process tree (the daemon and every
//!   descendant, found through /proc parent links) once one workspace has
//!   been consulted, then once every workspace has been consulted once;
//!   each read once codex's helpers have ended.
//! - 8b: each later workspace's first consult, while the first workspace's
//!   codex-acp is warm: it must spawn no agent process (the agents `status`
//!   lists, and the daemon's children and grandchildren, codex-acp and its
//!   codex app-server, are the same before and after it; codex's own
//!   short-lived helpers below them do not count), and cost at most a warm consult plus what codex-acp itself
//!   takes to open a session (`session/new` and setting the mode, timed on
//!   a straight codex-acp set up like the daemon's), plus 10 %.
//! - 8c: turns on different workspaces still run side by side: two slow
//!   answers (`mock:slow`, about 3 s each) on two workspaces at once, against
//!   one of them alone.
//!
//! `--quick` runs two workspaces, one straight session (on a codex-acp
//! that has not answered a prompt before) and 0.5 s streams.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use codex_fusion_protocol::control::{AgentProcessStatus, ControlRequest, ControlResponse};
use codex_fusion_testkit::TestEnv;
use codex_fusion_testkit::real::{SlowPacing, codex_acp};
use serde_json::json;

use crate::Context;
use crate::acp_direct::{self, Opened};
use crate::mcp::ShimProcess;
use crate::overhead::TurnLog;
use crate::procfs::{children_of, cmdline, mib, tree, tree_rss_kb};
use crate::real::{QUESTION, direct_agent, direct_setup, expect_messages, last_prompt, real_env_paced};
use crate::report::Row;
use crate::stats::{Samples, human, human_diff};

pub const ROWS: &[(&str, &str)] = &[
    (
        "8a",
        "agent pool: whole tree's memory, every workspace consulted once vs one (real codex-acp)",
    ),
    (
        "8b",
        "agent pool: a new workspace's first consult while another's codex-acp is warm",
    ),
    ("8c", "agent pool: two slow turns on two workspaces at once"),
];

/// 8a's budget: the tree with every workspace over the tree with one.
const MEMORY_RATIO: f64 = 1.3;
/// 8b's budget: the first consult over a warm one plus the agent's own
/// session opening.
const FIRST_CONSULT_RATIO: f64 = 1.1;
/// 8c's budget: what the pair may take beyond one stream's length.
const OVERLAP_SLACK: Duration = Duration::from_secs(1);
/// The slow question: the mock streams `tick 1` … `tick N`, then a verdict.
const SLOW: &str = "Stream your answer slowly.\nmock:slow";

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let config = &context.config;
    let quick = config.quick;
    let workspaces = config.pick(10, 2);
    let direct_sessions = config.pick(10, 1);
    // With a new session codex runs helpers for a moment (a login shell for
    // its environment snapshot, `rg` through `codex-linux-sandbox` for the
    // profile's globs): the tree's memory is read once they have ended and
    // its processes stayed the same for `quiet`.
    let quiet = config.pick(Duration::from_millis(500), Duration::from_millis(200));
    let quiet_limit = config.pick(Duration::from_secs(15), Duration::from_secs(3));
    let pacing = config.pick(
        SlowPacing {
            interval: Duration::from_millis(100),
            chunks: 30,
        },
        SlowPacing {
            interval: Duration::from_millis(50),
            chunks: 10,
        },
    );
    codex_acp();
    let real = real_env_paced(runtime, pacing);
    let env = &real.env;
    let dirs: Vec<PathBuf> = (0..workspaces)
        .map(|index| env.dir(&format!("pool-{index:02}")))
        .collect();
    // Each workspace's shim with its own turn log, which tells how long
    // codex-acp's prompt took inside each consult.
    let start_shim = |dir: &Path| -> anyhow::Result<(ShimProcess, TurnLog)> {
        let name = dir.file_name().context("a workspace name")?.to_string_lossy();
        let log = TurnLog::new(env.root().join(format!("turns-{name}.jsonl")));
        let dir = dir.to_str().context("a UTF-8 workspace path")?;
        let shim = ShimProcess::initialized(
            env,
            &[("CODEX_FUSION_WORKSPACE", dir), ("CODEX_FUSION_LOG", &log.path_text()?)],
        )?;
        Ok((shim, log))
    };

    // One workspace: its first consult starts the daemon and its codex-acp.
    let (shim, mut log) = start_shim(&dirs[0])?;
    let mut shims = vec![shim];
    expect_messages(&shims[0].lines().consult(QUESTION)?, 1)?;
    log.next_agent_time()?;
    let mut logs = vec![log];
    let daemon = env.daemon_pid().context("the shim started a daemon")? as u32;
    let mut unsettled = Vec::new();
    if !wait_quiet(daemon, quiet, quiet_limit) {
        unsettled.push("one");
    }
    let one = Snapshot::take(runtime, env, daemon)?;
    if one.agents.len() != 1 {
        bail!(
            "one workspace consulted, yet {} agent processes: {:?}",
            one.agents.len(),
            one.agents
        );
    }

    // Every other workspace's first consult, on the warm codex-acp.
    let mut first = Samples::new();
    let mut first_agent = Samples::new();
    let mut first_rest = Samples::new();
    let mut spawned = Vec::new();
    let mut helpers = 0;
    for dir in &dirs[1..] {
        let (mut shim, mut log) = start_shim(dir)?;
        let before = Snapshot::take(runtime, env, daemon)?;
        let started = Instant::now();
        let text = shim.lines().consult(QUESTION)?;
        let took = started.elapsed();
        first.push(took);
        expect_messages(&text, 1).context("a new workspace gets its own Codex thread")?;
        let agent = log.next_agent_time()?;
        first_agent.push(agent);
        first_rest.push(took.saturating_sub(agent));
        logs.push(log);
        let after = Snapshot::take(runtime, env, daemon)?;
        let (agents, transient) = after.spawned_since(&before);
        helpers += transient;
        spawned.extend(agents);
        shims.push(shim);
    }
    if !wait_quiet(daemon, quiet, quiet_limit) {
        unsettled.push("all");
    }
    let all = Snapshot::take(runtime, env, daemon)?;

    // Warm consults: each workspace's second, right after.
    let mut warm = Samples::new();
    let mut warm_agent = Samples::new();
    for (shim, log) in shims.iter_mut().zip(&mut logs) {
        let started = Instant::now();
        let text = shim.lines().consult(QUESTION)?;
        warm.push(started.elapsed());
        expect_messages(&text, 2)?;
        warm_agent.push(log.next_agent_time()?);
    }

    // What codex-acp itself takes to open a session once it is warm: a
    // straight codex-acp set up as the daemon's (same environment, wrapper
    // and mode), one session opened and prompted first, then fresh sessions
    // in fresh directories, as new workspaces, each prompted once as the
    // daemon's are (its first prompt timed too), then prompted again.
    let prompt = last_prompt(runtime, &real)?;
    let agent = direct_agent(&real)?;
    let direct_dirs: Vec<PathBuf> = (0..direct_sessions)
        .map(|index| env.dir(&format!("direct-{index:02}")))
        .collect();
    let direct: Vec<(Opened, Duration, Duration)> =
        runtime.block_on(acp_direct::with_agent(&agent, &direct_setup(), async |agent| {
            // (Not in --quick, where its times mean nothing and CI waits.)
            if !quick {
                let (session, _) = agent.open_session(&env.dir("direct-warm")).await?;
                expect_messages(&session.prompt(&prompt).await?.text, 1)?;
            }
            let mut sessions = Vec::new();
            for dir in &direct_dirs {
                let (session, opened) = agent.open_session(dir).await?;
                let prompted = session.prompt(&prompt).await?;
                expect_messages(&prompted.text, 1)?;
                sessions.push((session, opened, prompted.took));
            }
            let mut direct = Vec::new();
            for (session, opened, first_prompt) in sessions {
                let prompted = session.prompt(&prompt).await?;
                expect_messages(&prompted.text, 2)?;
                direct.push((opened, first_prompt, prompted.took));
            }
            Ok(direct)
        }))?;
    let mut session_new = Samples::new();
    let mut set_mode = Samples::new();
    let mut new_and_mode = Samples::new();
    let mut authenticate = Samples::new();
    let mut direct_first = Samples::new();
    let mut direct_second = Samples::new();
    for (step, first_prompt, second_prompt) in &direct {
        direct_first.push(*first_prompt);
        direct_second.push(*second_prompt);
        session_new.push(step.session_new);
        set_mode.push(step.set_mode);
        new_and_mode.push(step.new_and_mode());
        if let Some(took) = step.authenticate {
            authenticate.push(took);
        }
    }

    // Two slow turns at once, against one alone.
    let stream = pacing.interval * pacing.chunks as u32;
    let alone = slow_consult(&mut shims[0], pacing.chunks)?;
    let pair: Vec<anyhow::Result<Slow>> = {
        let barrier = Barrier::new(2);
        let (left, right) = shims.split_at_mut(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = [&mut left[0], &mut right[0]]
                .into_iter()
                .map(|shim| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        slow_consult(shim, pacing.chunks)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a slow consult's thread panicked")))
                })
                .collect()
        })
    };
    let pair: Vec<Slow> = pair.into_iter().collect::<anyhow::Result<_>>()?;
    let pair_started = pair
        .iter()
        .map(|slow| slow.started)
        .min()
        .context("two slow consults")?;
    let pair_ended = pair.iter().map(|slow| slow.ended).max().context("two slow consults")?;
    let pair_took = pair_ended - pair_started;
    // Both streams were under way at once: each one's progress began
    // before the other's ended.
    let overlapped = pair[0].first_progress < pair[1].last_progress && pair[1].first_progress < pair[0].last_progress;

    for shim in shims {
        shim.close()?;
    }
    drop(logs);
    drop(real);

    let ratio = all.tree_kb as f64 / one.tree_kb.max(1) as f64;
    let per_workspace = all.tree_kb.saturating_sub(one.tree_kb) / (workspaces as u64 - 1).max(1);
    let allowed = (warm.median() + new_and_mode.median()).mul_f64(FIRST_CONSULT_RATIO);
    let first_median = first.median();
    // What the daemon asks of codex-acp for a new workspace, straight:
    // authenticate, session/new, the mode, and the session's first prompt.
    let straight_first = authenticate.median() + new_and_mode.median() + direct_first.median();
    let no_spawn = spawned.is_empty() && all.agents.len() == 1;
    Ok(vec![
        Row::new(
            ROWS[0].0,
            format!("agent pool: whole tree's memory, {workspaces} workspaces consulted once each vs one (real codex-acp)"),
        )
        .measured(format!(
            "{workspaces} workspaces: {} in {} ({ratio:.2}× of one; +{} per added workspace); `status`: {}{}",
            mib(all.tree_kb),
            all.processes_text(),
            mib(per_workspace),
            all.agents_text(),
            if unsettled.is_empty() {
                format!("; each read once the tree's processes stayed the same for {}", human(quiet))
            } else {
                format!(
                    "; the tree never stayed the same for {} within {} ({}), read anyway",
                    human(quiet),
                    human(quiet_limit),
                    unsettled.join(", ")
                )
            }
        ))
        .baseline(format!(
            "1 workspace: {} in {}; `status`: {}",
            mib(one.tree_kb),
            one.processes_text(),
            one.agents_text()
        ))
        .budget("≤ 1.3× of one workspace", ratio <= MEMORY_RATIO),
        Row::new(ROWS[1].0, ROWS[1].1)
            .measured(format!(
                "first consult {} ({} allowed), of which codex-acp's prompt {} (by the turn log) and the rest {} (the session's opening, codex-fusion's share); against the same steps straight to codex-acp (authenticate + session/new + mode + the session's first prompt, medians, {}): {}; agent processes spawned: {}{}",
                first.range_summary(),
                human(allowed),
                human(first_agent.median()),
                human(first_rest.median()),
                human(straight_first),
                human_diff(first_median, straight_first),
                if spawned.is_empty() {
                    "none (the same codex-acp and codex app-server pids before and after each, one agent in `status`)".to_owned()
                } else {
                    spawned.join("; ")
                },
                if helpers == 0 {
                    String::new()
                } else {
                    format!("; {helpers} short-lived processes came and went")
                }
            ))
            .baseline(format!(
                "warm consult (each workspace's second): {}, codex-acp's prompt inside it {}; straight codex-acp, warm, per new session: session/new + mode {} (session/new {}, mode {}), authenticate {} (the daemon sends it too), the session's first prompt {}, its second {}",
                warm.range_summary(),
                human(warm_agent.median()),
                new_and_mode.range_summary(),
                human(session_new.median()),
                human(set_mode.median()),
                human(authenticate.median()),
                direct_first.range_summary(),
                human(direct_second.median())
            ))
            .budget(
                "spawns nothing; ≤ (warm consult + session/new + mode) × 1.1",
                no_spawn && first_median <= allowed,
            ),
        Row::new(ROWS[2].0, ROWS[2].1)
            .measured(format!(
                "both answered {} after they were sent together ({} and {}; {} and {} progress notifications; streams overlapped: {})",
                human(pair_took),
                human(pair[0].took),
                human(pair[1].took),
                pair[0].progress,
                pair[1].progress,
                if overlapped { "yes" } else { "no" }
            ))
            .baseline(format!(
                "one alone: {} ({} progress notifications); the mock streams {} deltas {} apart ({})",
                human(alone.took),
                alone.progress,
                pacing.chunks,
                human(pacing.interval),
                human(stream)
            ))
            .budget(
                "< stream + 1 s (4 s for two 3 s streams)",
                overlapped && pair_took < stream + OVERLAP_SLACK,
            ),
    ])
}

/// The daemon's process tree and its agents at one moment.
struct Snapshot {
    /// VmRSS of the daemon and every descendant, in KiB.
    tree_kb: u64,
    /// How many processes the tree holds.
    processes: usize,
    /// Their names (/proc/PID/comm), counted.
    names: BTreeMap<String, usize>,
    /// The agent processes below the daemon: its children (codex-acp's
    /// node, while it runs `cli doctor` that too) and theirs (the codex
    /// app-server). What codex starts below that (its shell snapshot, `rg`,
    /// `codex-linux-sandbox`) are helpers that come and go.
    agent_pids: BTreeSet<u32>,
    /// What `status` lists.
    agents: Vec<AgentProcessStatus>,
}

impl Snapshot {
    fn take(runtime: &tokio::runtime::Runtime, env: &TestEnv, daemon: u32) -> anyhow::Result<Snapshot> {
        let tree_kb = tree_rss_kb(daemon).context("the daemon is gone")?;
        let pids = tree(daemon);
        let agent_pids = agent_processes(daemon);
        let mut names = BTreeMap::new();
        for pid in &pids {
            *names.entry(comm(*pid)).or_insert(0) += 1;
        }
        let agents = match runtime.block_on(env.control(ControlRequest::Status { workspace: None })) {
            ControlResponse::Status(status) => status.agents,
            other => bail!("status answered {other:?}"),
        };
        Ok(Snapshot {
            tree_kb,
            processes: pids.len(),
            names,
            agent_pids,
            agents,
        })
    }

    /// Agent processes in `self` that `earlier` did not have, and how many
    /// came and went again within half a second (`cli doctor`, say).
    fn spawned_since(&self, earlier: &Snapshot) -> (Vec<String>, usize) {
        let mut spawned = Vec::new();
        let pids =
            |snapshot: &Snapshot| -> BTreeSet<Option<u32>> { snapshot.agents.iter().map(|agent| agent.pid).collect() };
        for pid in pids(self).difference(&pids(earlier)) {
            spawned.push(format!("`status` lists a new agent process {pid:?}"));
        }
        let mut transient = 0;
        let new: Vec<u32> = self.agent_pids.difference(&earlier.agent_pids).copied().collect();
        if !new.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
            for pid in new {
                if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    spawned.push(format!("new agent process {pid} ({})", cmdline(pid)));
                } else {
                    transient += 1;
                }
            }
        }
        (spawned, transient)
    }

    /// "N processes (name ×count, …)".
    fn processes_text(&self) -> String {
        let names: Vec<String> = self
            .names
            .iter()
            .map(|(name, count)| {
                if *count == 1 {
                    name.clone()
                } else {
                    format!("{name} ×{count}")
                }
            })
            .collect();
        format!("{} processes ({})", self.processes, names.join(", "))
    }

    /// "N agent process(es), pid P with W workspaces, R" from `status`.
    fn agents_text(&self) -> String {
        let each: Vec<String> = self
            .agents
            .iter()
            .map(|agent| {
                format!(
                    "pid {} with {} workspaces, {}",
                    agent.pid.map_or("?".to_owned(), |pid| pid.to_string()),
                    agent.workspaces.len(),
                    agent.rss_kb.map_or("RSS unknown".to_owned(), mib)
                )
            })
            .collect();
        format!("{} agent process(es): {}", self.agents.len(), each.join(", "))
    }
}

/// The daemon's children and grandchildren: codex-acp (node) and the codex
/// app-server it runs.
fn agent_processes(daemon: u32) -> BTreeSet<u32> {
    let children = children_of(daemon);
    let grandchildren: Vec<u32> = children.iter().flat_map(|pid| children_of(*pid)).collect();
    children.into_iter().chain(grandchildren).collect()
}

/// Waits until the daemon's tree holds the same processes for `quiet` (the
/// helpers codex starts with a session have ended), at most `limit`;
/// whether it did.
fn wait_quiet(daemon: u32, quiet: Duration, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut last = tree(daemon);
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = tree(daemon);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

/// The name the kernel gives `pid` (/proc/PID/comm).
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|name| name.trim_end().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

/// One slow consult: when it was sent and answered, and its progress.
struct Slow {
    started: Instant,
    ended: Instant,
    took: Duration,
    progress: usize,
    first_progress: Option<Instant>,
    last_progress: Option<Instant>,
}

fn slow_consult(shim: &mut ShimProcess, chunks: usize) -> anyhow::Result<Slow> {
    let started = Instant::now();
    let outcome = shim.lines().call("consult", json!({ "question": SLOW }))?;
    let ended = outcome.answered;
    if outcome.is_error {
        bail!("the slow consult answered with an error: {}", outcome.text);
    }
    if !outcome.text.contains(&format!("tick {chunks}")) || !outcome.text.contains("VERDICT") {
        bail!("the slow consult's answer is not the whole stream: {}", outcome.text);
    }
    Ok(Slow {
        started,
        ended,
        took: ended - started,
        progress: outcome.progress,
        first_progress: outcome.first_progress,
        last_progress: outcome.last_progress,
    })
}
