//! Figure 4: many workspaces at once. One shim and one fake-agent child per
//! workspace, all turning concurrently; the daemon's own memory (its pid
//! only: children are separate processes) and the per-turn latency against
//! the same turns on a daemon that serves a single workspace.
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
use crate::procfs::{mib, status_kib};
use crate::report::Row;
use crate::stats::{Samples, human};
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[
    ("4a", "scale: daemon RSS with every workspace live (children excluded)"),
    ("4b", "scale: per-turn latency, agent thinks 100 ms (fake:silent:100)"),
    ("4c", "scale: per-turn latency, instant agent (CPU-bound)"),
];

const THINK: &str = "scale turn fake:silent:100";
const INSTANT: &str = "scale turn";

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let workspaces = context.config.pick(50, 10);
    let rounds = context.config.pick(10, 2);
    let alone_turns = context.config.pick(20, 3);
    let running = Running::start(bench_env(), runtime);
    let env = &running.env;
    let pid = running.pid();
    let idle_rss = status_kib(pid, "VmRSS").context("daemon VmRSS")?;

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
    let live_rss = status_kib(pid, "VmRSS").context("daemon VmRSS")?;
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
    let busy_rss = status_kib(pid, "VmRSS").context("daemon VmRSS")?;
    let peak_rss = status_kib(pid, "VmHWM").context("daemon VmHWM")?;
    for shim in shims {
        shim.close()?;
    }

    let think_ratio = ratio(all_think.median(), alone_think.median());
    let instant_ratio = ratio(all_instant.median(), alone_instant.median());
    Ok(vec![
        Row::new(
            ROWS[0].0,
            format!("scale: daemon RSS with {workspaces} workspaces live (children excluded)"),
        )
        .measured(format!(
            "peak {} (VmHWM); {} after the turns, {} with all live before them",
            mib(peak_rss),
            mib(busy_rss),
            mib(live_rss)
        ))
        .baseline(format!("idle daemon, no workspace: {}", mib(idle_rss)))
        .budget("< 40 MiB", peak_rss < 40 * 1024),
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
