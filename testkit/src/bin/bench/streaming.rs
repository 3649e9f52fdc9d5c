//! Figure 3: streaming throughput. The fake agent floods one turn with
//! `fake:flood:N` one-character text updates; an MCP client reading the
//! shim's stdout counts the progress notifications that reach it (the
//! daemon coalesces text into its latest tail, so fewer than N arrive) and
//! the final result, which must arrive every time. Baseline: the same flood
//! read straight from the fake agent over ACP.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::acp_direct::{self, AgentCommand, Setup};
use crate::mcp::{Lines, ShimProcess, connect_direct};
use crate::procfs::{CpuUse, children_of};
use crate::report::Row;
use crate::stats::{human, max_f64, median_f64, min_f64};
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[("3", "streaming: progress notifications/s reaching the MCP client")];

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let updates: u64 = context.config.pick(200_000, 5_000);
    let runs = context.config.pick(5, 1);
    let mut env = bench_env();
    // The whole flooded answer comes back, so the bench can check that none
    // of it was lost (the default cuts results at 40 000 characters).
    env.set("CODEX_FUSION_MAX_RESULT_CHARS", &(2 * updates).to_string());
    let running = Running::start(env, runtime);
    let env = &running.env;
    let daemon = running.pid();
    let mut shim = ShimProcess::initialized(env, &[])?;
    shim.lines().consult("warm up: start the agent")?;
    let agent_pid = *children_of(daemon).first().context("the daemon's agent child")?;
    let question = format!("fake:flood:{updates}");
    let mut through_shim = Floods::default();
    for _ in 0..runs {
        through_shim.run(shim.lines(), &question, updates, daemon, agent_pid)?;
    }
    context.note_shim_peak("fig 3, after the floods", shim.pid());
    shim.close()?;
    // The same floods read from the daemon's socket, no shim: the shim's share.
    let mut direct = connect_direct(env, &env.workspace)?;
    direct.initialize()?;
    let mut through_socket = Floods::default();
    for _ in 0..runs {
        through_socket.run(&mut direct, &question, updates, daemon, agent_pid)?;
    }
    drop(direct);
    drop(running);

    // The same flood, read straight from the fake agent.
    let state = tempfile::Builder::new().prefix("cf-bench-fake-").tempdir()?;
    let agent = AgentCommand {
        program: codex_fusion_testkit::binary("fake-codex-acp"),
        args: vec!["--state-dir".into(), state.path().display().to_string()],
        env: Vec::new(),
        cwd: std::env::temp_dir(),
    };
    let setup = Setup {
        authenticate: false,
        mode: "read-only",
    };
    let (agent_rates, agent_turns) = runtime.block_on(acp_direct::with_session(&agent, &setup, async |session| {
        session.prompt("warm up").await?;
        let mut rates = Vec::new();
        let mut turns = Vec::new();
        for _ in 0..runs {
            let prompted = session.prompt(&question).await?;
            let (Some(first), Some(last)) = (prompted.first_update, prompted.last_update) else {
                bail!("the fake sent no updates");
            };
            rates.push(rate(prompted.updates, last - first));
            turns.push(prompted.took.as_secs_f64());
        }
        Ok((rates, turns))
    }))?;

    let delivered = median_f64(&through_shim.rates);
    let per_update =
        |cpu: Duration, floods: &Floods| cpu.as_secs_f64() * 1e6 / (updates as f64 * floods.rates.len() as f64);
    let per_delivered =
        |cpu: Duration, floods: &Floods| cpu.as_secs_f64() * 1e6 / floods.counts.iter().sum::<f64>().max(1.0);
    Ok(vec![
        Row::new(ROWS[0].0, ROWS[0].1)
            .measured(format!(
                "{} /s (min {}, max {}, runs={runs}); {} of {updates} updates reached the client (median), result after {} every time; daemon CPU {:.1} µs per agent update, {:.1} µs per notification sent; fake agent CPU {:.1} µs per update",
                thousands(delivered),
                thousands(min_f64(&through_shim.rates)),
                thousands(max_f64(&through_shim.rates)),
                median_f64(&through_shim.counts) as u64,
                human(Duration::from_secs_f64(median_f64(&through_shim.turns))),
                per_update(through_shim.daemon_cpu, &through_shim),
                per_delivered(through_shim.daemon_cpu, &through_shim),
                per_update(through_shim.agent_cpu, &through_shim),
            ))
            .baseline(format!(
                "no shim (daemon socket): {} /s, {} of {updates} delivered, result after {}; fake agent straight over ACP: {} updates/s, turn {}",
                thousands(median_f64(&through_socket.rates)),
                median_f64(&through_socket.counts) as u64,
                human(Duration::from_secs_f64(median_f64(&through_socket.turns))),
                thousands(median_f64(&agent_rates)),
                human(Duration::from_secs_f64(median_f64(&agent_turns)))
            ))
            .budget("≥ 20 000/s, result never starved", delivered >= 20_000.0),
    ])
}

/// The outcomes of several floods over one connection.
#[derive(Default)]
struct Floods {
    /// Notifications per second between the first and the last to arrive.
    rates: Vec<f64>,
    /// Notifications that arrived, per flood.
    counts: Vec<f64>,
    /// Seconds from the call to its result.
    turns: Vec<f64>,
    /// CPU (utime+stime) the daemon and the agent used over all floods.
    daemon_cpu: Duration,
    agent_cpu: Duration,
}

impl Floods {
    fn run<R: std::io::Read, W: std::io::Write>(
        &mut self,
        lines: &mut Lines<R, W>,
        question: &str,
        updates: u64,
        daemon: u32,
        agent: u32,
    ) -> anyhow::Result<()> {
        let cpu = |pid| CpuUse::of(pid).with_context(|| format!("CPU counters of {pid}"));
        let (daemon_before, agent_before) = (cpu(daemon)?, cpu(agent)?);
        let sent = std::time::Instant::now();
        let outcome = lines.call("consult", json!({ "question": question }))?;
        self.daemon_cpu += cpu(daemon)?.since(&daemon_before).ticks;
        self.agent_cpu += cpu(agent)?.since(&agent_before).ticks;
        if outcome.is_error || !outcome.text.contains("VERDICT") || outcome.text.matches('x').count() < updates as usize
        {
            bail!(
                "the flooded turn's result is incomplete: {} chars, error {}",
                outcome.text.len(),
                outcome.is_error
            );
        }
        let (Some(first), Some(last)) = (outcome.first_progress, outcome.last_progress) else {
            bail!("no progress reached the client");
        };
        self.rates.push(rate(outcome.progress as u64, last - first));
        self.turns.push((outcome.answered - sent).as_secs_f64());
        self.counts.push(outcome.progress as f64);
        Ok(())
    }
}

fn rate(count: u64, over: Duration) -> f64 {
    count as f64 / over.as_secs_f64().max(1e-9)
}

fn thousands(value: f64) -> String {
    let digits = (value.round() as u64).to_string().into_bytes();
    let groups: Vec<&str> = digits
        .rchunks(3)
        .rev()
        .map(|group| std::str::from_utf8(group).unwrap_or_default())
        .collect();
    groups.join(" ")
}
