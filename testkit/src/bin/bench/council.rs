//! Figure 10: a council's fan-out (issue 15). Three fake agents (`codex`,
//! `second`, `third`, each its own process) answer one prompt; each waits a
//! different time before answering (60, 80 and 100 ms, `fake@NAME:silent:`).
//! The council call is timed against the slowest agent's own turn through
//! the same shim and daemon (`agents: ["third"]`, same prompt), the two
//! alternating; the budget is the slowest turn plus 5 ms.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use crate::mcp::ShimProcess;
use crate::report::Row;
use crate::stats::{Samples, human, median_f64, median_interval};
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[(
    "10",
    "council: a fan-out to three fake agents vs the slowest agent's own turn",
)];

const QUESTION: &str = "council figure fake@codex:silent:60 fake@second:silent:80 fake@third:silent:100";
const AGENTS: [&str; 3] = ["codex", "second", "third"];
const BUDGET_MS: f64 = 5.0;

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let rounds = context.config.pick(40, 4);
    let mut env = bench_env();
    for agent in AGENTS {
        let command = env.fake_agent_command(&format!("--agent-name {agent}"));
        let variable = codex_fusion_protocol::agents::command_variable(agent);
        env.set(&variable, &command);
    }
    env.set("CODEX_FUSION_AGENTS", &AGENTS.join(","));
    let running = Running::start(env, runtime);
    let mut shim = ShimProcess::initialized(&running.env, &[])?;
    // Every agent started and its session open before anything is timed.
    for _ in 0..2 {
        timed(&mut shim, &AGENTS)?;
    }
    let mut council = Samples::new();
    let mut slowest = Samples::new();
    let mut differences = Vec::new();
    for round in 0..rounds {
        let (all, alone) = if round % 2 == 0 {
            let all = timed(&mut shim, &AGENTS)?;
            (all, timed(&mut shim, &["third"])?)
        } else {
            let alone = timed(&mut shim, &["third"])?;
            (timed(&mut shim, &AGENTS)?, alone)
        };
        council.push(all);
        slowest.push(alone);
        differences.push((all.as_secs_f64() - alone.as_secs_f64()) * 1000.0);
    }
    shim.close()?;
    let added = median_f64(&differences);
    let (low, high) = median_interval(&differences);
    Ok(vec![
        Row::new(ROWS[0].0, ROWS[0].1)
            .measured(format!(
                "council of 3: {}; paired, council − slowest alone: median {added:+.2} ms (95% interval {low:+.2} to {high:+.2} ms), n={}",
                council.range_summary(),
                differences.len()
            ))
            .baseline(format!("the slowest agent (100 ms) alone, same path: {}", slowest.range_summary()))
            .budget("≤ slowest + 5 ms", high <= BUDGET_MS),
    ])
}

/// One `consult` to `agents`; its time. Every agent must have answered.
fn timed(shim: &mut ShimProcess, agents: &[&str]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let outcome = shim
        .lines()
        .call("consult", json!({"question": QUESTION, "agents": agents}))?;
    let took = started.elapsed();
    if outcome.is_error {
        bail!("the council call failed: {}", outcome.text);
    }
    let answers = outcome.text.matches("fake answer").count();
    if answers != agents.len() {
        bail!(
            "{} of {} agents answered ({}): {}",
            answers,
            agents.len(),
            human(took),
            outcome.text
        );
    }
    Ok(took)
}
