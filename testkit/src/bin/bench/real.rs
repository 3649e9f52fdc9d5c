//! Figure 5, with the real codex-acp pointed at `model-mock`, which answers
//! at once: every millisecond measured is codex-acp, Codex, or us. What an
//! MCP restart costs: the first `consult` on a new shim (daemon and Codex
//! session warm) against a `consult` on a shim that stayed; and the first
//! `consult` of a cold daemon (daemon start, `codex-acp cli doctor` for read
//! confinement, spawn, initialize, authenticate, session/new, mode, turn).
//! Context must survive every restart. Also the real-agent environment and
//! checks that figure 7 shares.

use std::time::{Duration, Instant};

use anyhow::bail;
use codex_fusion_testkit::real::{RealEnv, codex_acp};

use crate::mcp::ShimProcess;
use crate::report::Row;
use crate::stats::{Samples, human, human_diff};
use crate::{Context, PRODUCTION_LOG, watchdog};

pub const RESTART_ROWS: &[(&str, &str)] = &[
    (
        "5a",
        "restart: first consult after an MCP (shim) restart vs a live session",
    ),
    ("5b", "restart: first consult of a cold daemon"),
    ("5c", "restart: Codex context kept across restarts"),
];
pub const QUESTION: &str = "Is a per-workspace daemon a good idea?";

pub fn run_restart(
    context: &mut Context,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Row>> {
    let colds = context.config.pick(5, 1);
    let restarts = context.config.pick(20, 2);
    let warmups = context.config.pick(2, 1);
    codex_acp();
    let mut cold_total = Samples::new();
    let mut cold_call = Samples::new();
    let mut warm = None;
    for index in 0..colds {
        let real = real_env(runtime);
        let started = Instant::now();
        // The shim finds no daemon and starts one, as on a user's first call.
        let mut shim = ShimProcess::spawn(&real.env, &[])?;
        shim.lines().initialize()?;
        let called = Instant::now();
        let text = shim.lines().consult(QUESTION)?;
        let answered = Instant::now();
        expect_messages(&text, 1)?;
        cold_total.push(answered - started);
        cold_call.push(answered - called);
        if index + 1 == colds {
            warm = Some((real, shim));
        } else {
            shim.close()?;
        }
    }
    let (real, mut shim) = warm.expect("at least one cold start");

    let mut messages = 1;
    for _ in 0..warmups {
        messages += 1;
        expect_messages(&shim.lines().consult(QUESTION)?, messages)?;
    }
    let mut restart_starts = Samples::new();
    let mut after_restart = Samples::new();
    let mut live = Samples::new();
    for _ in 0..restarts {
        shim.close()?;
        let started = Instant::now();
        shim = ShimProcess::spawn(&real.env, &[])?;
        shim.lines().initialize()?;
        restart_starts.push(started.elapsed());
        for samples in [&mut after_restart, &mut live] {
            messages += 1;
            let called = Instant::now();
            let text = shim.lines().consult(QUESTION)?;
            samples.push(called.elapsed());
            expect_messages(&text, messages)?;
        }
    }
    context.note_shim_peak("fig 5, after two real consults", shim.pid());
    shim.close()?;
    drop(real);

    let added = after_restart.median().saturating_sub(live.median());
    let consults = 1 + warmups + 2 * restarts;
    Ok(vec![
        Row::new(RESTART_ROWS[0].0, RESTART_ROWS[0].1)
            .measured(format!(
                "{} ({} over live); the new shim's spawn → initialize took {} more",
                after_restart.range_summary(),
                human_diff(after_restart.median(), live.median()),
                human(restart_starts.median())
            ))
            .baseline(format!("live consult: {}", live.range_summary()))
            .budget("< 5 ms added", added < Duration::from_millis(5))
            .bun("≈435 ms after a restart, ≈90 ms warm; context lost"),
        Row::new(RESTART_ROWS[1].0, RESTART_ROWS[1].1)
            .measured(format!(
                "consult call {}; from the shim's spawn, daemon start and `cli doctor` included: {}",
                cold_call.range_summary(),
                human(cold_total.median())
            ))
            .baseline(format!("live consult median {}", human(live.median())))
            .bun("≈350 ms cold"),
        Row::new(RESTART_ROWS[2].0, RESTART_ROWS[2].1)
            .measured(format!(
                "user_messages grew by one on each of {consults} consults across {restarts} shim restarts (reached {messages})"
            ))
            .budget("kept every time", true)
            .bun("lost every time"),
    ])
}

/// A fresh real-agent environment with the production log filter.
pub fn real_env(runtime: &tokio::runtime::Runtime) -> RealEnv {
    let mut real = runtime.block_on(RealEnv::new(true));
    real.env.set("CODEX_FUSION_DAEMON_LOG", PRODUCTION_LOG);
    watchdog::track(&real.env.socket);
    real
}

/// Checks the mock's `user_messages=N`: the Codex thread holds every
/// earlier prompt.
pub fn expect_messages(text: &str, expected: usize) -> anyhow::Result<()> {
    expect_count(text, "user_messages=", expected)
}

/// Checks a `<label>N` count in an answer (the mock's `user_messages=`,
/// the fake's `prompts_seen=`).
pub fn expect_count(text: &str, label: &str, expected: usize) -> anyhow::Result<()> {
    let seen = text
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse::<usize>().ok());
    match seen {
        Some(seen) if seen == expected => Ok(()),
        Some(seen) => {
            bail!("context lost: expected user_messages={expected}, the answer says {seen}: {text}")
        }
        None => bail!("the answer has no user_messages count: {text}"),
    }
}
