//! Figure 4: many workspaces at once. One shim per workspace, all turning
//! concurrently; the memory of the whole process tree (the daemon and every
//! process below it: the pool's fake agents, one per
//! `CODEX_FUSION_AGENT_MAX_SESSIONS` workspaces) and the per-turn latency
//! against the same turns on a daemon that serves a single workspace.
//!
//! 4a used to count the daemon's pid alone ("children excluded"). With the
//! agent pool what workspaces cost is mostly decided by how many agent
//! processes the daemon keeps, so the tree is what is judged; the daemon's
//! own peak is still shown beside it.
//!
//! Two kinds of turn: one where the agent thinks for 100 ms before it
//! answers (a real Codex turn is mostly waiting on the model, so this is
//! what tells whether workspaces wait for each other), and one the fake
//! answers at once (pure CPU: on a 2-core machine fifty of them contend for
//! the cores whatever the daemon does).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::mcp::ShimProcess;
use crate::procfs::{mib, status_kib, tree, tree_hwm_kb, tree_rss_kb};
use crate::report::Row;
use crate::stats::{Samples, human};
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[
    (
        "4a",
        "scale: memory of the whole tree (daemon + agents) with every workspace live",
    ),
    ("4b", "scale: per-turn latency, agent thinks 100 ms (fake:silent:100)"),
    ("4c", "scale: per-turn latency, instant agent (CPU-bound)"),
];

/// The daemon's own budget of before (40 MiB) plus room for the agents the
/// pool keeps for 50 workspaces: four fake agents at 16 sessions each.
const TREE_BUDGET_MIB: u64 = 60;
const TREE_BUDGET: &str = "< 60 MiB";

const THINK: &str = "scale turn fake:silent:100";
const INSTANT: &str = "scale turn";

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let workspaces = context.config.pick(50, 10);
    let rounds = context.config.pick(10, 2);
    let alone_turns = context.config.pick(20, 3);
    let running = Running::start(bench_env(), runtime);
    let env = &running.env;
    let pid = running.pid();
    let idle_rss = tree_rss_kb(pid).context("daemon tree RSS")?;

    let dirs: Vec<String> = (0..workspaces)
        .map(|index| env.dir(&format!("ws-{index:02}")).display().to_string())
        .collect();
    let start_shim = |dir: &str| -> anyhow::Result<ShimProcess> {
        let mut shim = ShimProcess::initialized(env, &[("CODEX_FUSION_WORKSPACE", dir)])?;
        shim.lines().consult("warm up: start this workspace's agent")?;
        Ok(shim)
    };

    // One workspace, alone in its daemon.
    let mut first = start_shim(&dirs[0])?;
    let mut alone_think = Samples::new();
    let mut alone_instant = Samples::new();
    for _ in 0..alone_turns {
        alone_think.push(timed_consult(&mut first, THINK)?);
        alone_instant.push(timed_consult(&mut first, INSTANT)?);
    }

    // Every workspace live, then turning at once.
    let mut shims = vec![first];
    for dir in &dirs[1..] {
        shims.push(start_shim(dir)?);
    }
    let live_rss = tree_rss_kb(pid).context("daemon tree RSS")?;
    let barrier = Barrier::new(workspaces);
    let results: Vec<anyhow::Result<(Samples, Samples)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shims
            .iter_mut()
            .map(|shim| {
                let barrier = &barrier;
                scope.spawn(move || -> anyhow::Result<(Samples, Samples)> {
                    let mut think = Samples::new();
                    let mut instant = Samples::new();
                    for _ in 0..rounds {
                        barrier.wait();
                        think.push(timed_consult(shim, THINK)?);
                    }
                    for _ in 0..rounds {
                        barrier.wait();
                        instant.push(timed_consult(shim, INSTANT)?);
                    }
                    Ok((think, instant))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a workspace thread panicked")))
            })
            .collect()
    });
    let mut all_think = Samples::new();
    let mut all_instant = Samples::new();
    for result in results {
        let (think, instant) = result?;
        all_think.extend(&think);
        all_instant.extend(&instant);
    }
    let busy_rss = tree_rss_kb(pid).context("daemon tree RSS")?;
    let peak_rss = tree_hwm_kb(pid).context("daemon tree VmHWM")?;
    let daemon_peak = status_kib(pid, "VmHWM").context("daemon VmHWM")?;
    let descendants = tree(pid).len() - 1;
    for shim in shims {
        shim.close()?;
    }

    let think_ratio = ratio(all_think.median(), alone_think.median());
    let instant_ratio = ratio(all_instant.median(), alone_instant.median());
    Ok(vec![
        Row::new(
            ROWS[0].0,
            format!("scale: memory of the whole tree (daemon + agents) with {workspaces} workspaces live"),
        )
        .measured(format!(
            "peak at most {} (Σ VmHWM of the daemon and its {descendants} descendants); VmRSS of the tree {} after the turns, {} with all live before them; the daemon's own peak {}",
            mib(peak_rss),
            mib(busy_rss),
            mib(live_rss),
            mib(daemon_peak)
        ))
        .baseline(format!("idle daemon, no workspace (no descendant): {}", mib(idle_rss)))
        .budget(
            TREE_BUDGET,
            peak_rss < TREE_BUDGET_MIB * 1024,
        ),
        Row::new(
            ROWS[1].0,
            format!("scale: per-turn latency, {workspaces} at once vs 1, agent thinks 100 ms"),
        )
        .measured(format!(
            "{workspaces} at once: median {} (p90 {}, max {}, n={}); {think_ratio:.2}× of 1",
            human(all_think.median()),
            human(all_think.quantile(0.9)),
            human(all_think.max()),
            all_think.len()
        ))
        .baseline(format!("1 workspace: {}", alone_think.range_summary()))
        .budget("≤ 2× of 1 workspace", think_ratio <= 2.0),
        Row::new(
            ROWS[2].0,
            format!("scale: per-turn latency, {workspaces} at once vs 1, instant agent (CPU-bound)"),
        )
        .measured(format!(
            "{workspaces} at once: median {} (p90 {}, max {}, n={}); {instant_ratio:.2}× of 1",
            human(all_instant.median()),
            human(all_instant.quantile(0.9)),
            human(all_instant.max()),
            all_instant.len()
        ))
        .baseline(format!("1 workspace: {}", alone_instant.range_summary())),
    ])
}

fn timed_consult(shim: &mut ShimProcess, question: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let text = shim.lines().consult(question)?;
    let took = started.elapsed();
    if !text.contains("VERDICT") {
        bail!("a scale turn answered without a verdict: {text}");
    }
    Ok(took)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}
