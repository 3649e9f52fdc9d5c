//! Figure 7: what the shim and the daemon add to one call. A warm `consult`
//! through them, against the very prompt the daemon sent for it, sent by a
//! minimal ACP client straight to an agent set up the same way (same
//! environment, same mode), the two interleaved so that they share the
//! machine's ups and downs and the sessions grow alike.
//!
//! - 7a: the real codex-acp against `model-mock`, with the daemon's
//!   read-confining wrapper and mode. codex-acp's own turn varies by tens of
//!   milliseconds, more than the 1 ms budget, so the row also gives the
//!   spread of the paired differences.
//! - 7b: the same comparison with the fake agent, whose turns hardly vary:
//!   it resolves the daemon's and shim's share to tens of microseconds.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::acp_direct::{self, AgentCommand, Session, Setup};
use crate::mcp::ShimProcess;
use crate::real::{QUESTION, direct_agent, direct_setup, expect_count, last_prompt, real_env};
use crate::report::Row;
use crate::stats::{Samples, quantile_f64};
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[
    (
        "7a",
        "per-call overhead: warm consult via shim + daemon vs straight ACP (real codex-acp)",
    ),
    (
        "7b",
        "per-call overhead: the same with the fake agent (low-variance turns)",
    ),
];

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let real_pairs = context.config.pick(300, 2);
    let fake_pairs = context.config.pick(300, 5);
    let warmups = context.config.pick(3, 1);
    let real = real_comparison(context, runtime, real_pairs, warmups)?;
    let fake = fake_comparison(context, runtime, fake_pairs, warmups)?;
    Ok(vec![
        real.row(ROWS[0], "same prompt straight to codex-acp")
            .bun("adds 1–5 ms"),
        fake.row(ROWS[1], "same prompt straight to the fake agent"),
    ])
}

/// Interleaved timings of the two paths.
struct Comparison {
    via_daemon: Samples,
    direct: Samples,
    /// Daemon minus direct, pair by pair, in seconds.
    differences: Vec<f64>,
    /// Session updates the agent sent over all the direct turns (each one
    /// the daemon path relays as progress).
    updates: u64,
}

impl Comparison {
    fn row(mut self, (id, title): (&'static str, &'static str), baseline: &str) -> Row {
        let added = self.via_daemon.median().as_secs_f64() - self.direct.median().as_secs_f64();
        let updates = self.updates as f64 / self.direct.len().max(1) as f64;
        let paired = quantile_f64(&self.differences, 0.5);
        let (low, high) = (
            quantile_f64(&self.differences, 0.25),
            quantile_f64(&self.differences, 0.75),
        );
        let (interval_low, interval_high) = median_interval(&self.differences);
        Row::new(id, title)
            .measured(format!(
                "{}; {} over straight ACP (medians); paired differences: median {} (95% interval {} to {}), interquartile {} to {}",
                self.via_daemon.range_summary(),
                signed_ms(added),
                signed_ms(paired),
                signed_ms(interval_low),
                signed_ms(interval_high),
                signed_ms(low),
                signed_ms(high)
            ))
            .baseline(format!(
                "{baseline}: {}; {updates:.0} session updates per turn",
                self.direct.range_summary()
            ))
            // Judged on the pairs, which share the machine's moment: the
            // difference of two medians has no interval to speak of.
            .budget_interval("< 1 ms added", (interval_low, interval_high), 1e-3)
    }
}

fn real_comparison(
    context: &mut Context,
    runtime: &tokio::runtime::Runtime,
    pairs: usize,
    warmups: usize,
) -> anyhow::Result<Comparison> {
    let real = real_env(runtime);
    let mut shim = ShimProcess::initialized(&real.env, &[])?;
    // The first consult starts the daemon's codex-acp and its session.
    let answer = shim.lines().consult(QUESTION)?;
    expect_count(&answer, "user_messages=", 1)?;
    let prompt = last_prompt(runtime, &real)?;
    let agent = direct_agent(&real)?;
    let setup = direct_setup();
    let comparison = compare(
        runtime,
        shim,
        &prompt,
        &agent,
        &setup,
        "user_messages=",
        pairs,
        warmups,
        context,
        "fig 7a",
    )?;
    drop(real);
    Ok(comparison)
}

fn fake_comparison(
    context: &mut Context,
    runtime: &tokio::runtime::Runtime,
    pairs: usize,
    warmups: usize,
) -> anyhow::Result<Comparison> {
    let running = Running::start(bench_env(), runtime);
    let env = &running.env;
    let mut shim = ShimProcess::initialized(env, &[])?;
    let answer = shim.lines().consult(QUESTION)?;
    expect_count(&answer, "prompts_seen=", 1)?;
    let prompt = last_fake_prompt(&env.agent_state)?;
    let state = tempfile::Builder::new().prefix("cf-bench-fake-").tempdir()?;
    let agent = AgentCommand {
        program: codex_fusion_testkit::binary("fake-codex-acp"),
        args: vec!["--state-dir".into(), state.path().display().to_string()],
        env: Vec::new(),
        cwd: env.workspace.clone(),
    };
    let setup = Setup {
        authenticate: false,
        mode: "read-only",
    };
    compare(
        runtime,
        shim,
        &prompt,
        &agent,
        &setup,
        "prompts_seen=",
        pairs,
        warmups,
        context,
        "fig 7b",
    )
}

/// Runs `pairs` interleaved calls: `QUESTION` as a consult through `shim`
/// (which has answered one already), and `prompt` straight to `agent`.
#[allow(clippy::too_many_arguments)]
fn compare(
    runtime: &tokio::runtime::Runtime,
    shim: ShimProcess,
    prompt: &str,
    agent: &AgentCommand,
    setup: &Setup,
    counter: &'static str,
    pairs: usize,
    warmups: usize,
    context: &mut Context,
    label: &str,
) -> anyhow::Result<Comparison> {
    let shim = Arc::new(Mutex::new(shim));
    // Both sessions answer the same number of turns before the timed pairs.
    for index in 1..warmups {
        daemon_consult(shim.clone(), counter, index + 1)?;
    }
    let comparison = runtime.block_on(acp_direct::with_session(agent, setup, async |session| {
        for index in 0..warmups {
            direct_prompt(session, prompt, counter, index + 1).await?;
        }
        let mut comparison = Comparison {
            via_daemon: Samples::new(),
            direct: Samples::new(),
            differences: Vec::new(),
            updates: 0,
        };
        for index in 0..pairs {
            let turns = warmups + index + 1;
            // Alternate which goes first, so neither always runs right after
            // the other's turn.
            let (daemon_took, direct_took) = if index % 2 == 0 {
                let daemon_took = daemon_consult_async(&shim, counter, turns).await?;
                (daemon_took, direct_prompt(session, prompt, counter, turns).await?)
            } else {
                let direct_took = direct_prompt(session, prompt, counter, turns).await?;
                (daemon_consult_async(&shim, counter, turns).await?, direct_took)
            };
            let (direct_took, updates) = direct_took;
            comparison.updates += updates;
            comparison.via_daemon.push(daemon_took);
            comparison.direct.push(direct_took);
            comparison
                .differences
                .push(daemon_took.as_secs_f64() - direct_took.as_secs_f64());
        }
        Ok(comparison)
    }))?;
    let shim = Arc::into_inner(shim)
        .context("the shim is ours again")?
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    context.note_shim_peak(&format!("{label}, after the consults"), shim.pid());
    shim.close()?;
    Ok(comparison)
}

/// One timed consult through the shim, checking the session's turn count.
fn daemon_consult(shim: Arc<Mutex<ShimProcess>>, counter: &str, turns: usize) -> anyhow::Result<Duration> {
    let mut shim = shim.lock().unwrap_or_else(|poison| poison.into_inner());
    let called = Instant::now();
    let text = shim.lines().consult(QUESTION)?;
    let took = called.elapsed();
    expect_count(&text, counter, turns)?;
    Ok(took)
}

async fn daemon_consult_async(
    shim: &Arc<Mutex<ShimProcess>>,
    counter: &'static str,
    turns: usize,
) -> anyhow::Result<Duration> {
    let shim = shim.clone();
    // The MCP client blocks; the ACP connection must keep running meanwhile.
    tokio::task::spawn_blocking(move || daemon_consult(shim, counter, turns)).await?
}

/// One timed prompt straight to the agent: how long it took and how many
/// session updates came with it.
async fn direct_prompt(
    session: &Session,
    prompt: &str,
    counter: &str,
    turns: usize,
) -> anyhow::Result<(Duration, u64)> {
    let prompted = session.prompt(prompt).await?;
    expect_count(&prompted.text, counter, turns)?;
    Ok((prompted.took, prompted.updates))
}

/// The last prompt the daemon sent the fake, from the fake's saved session.
fn last_fake_prompt(state_dir: &Path) -> anyhow::Result<String> {
    for entry in std::fs::read_dir(state_dir)?.flatten() {
        let session: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.path())?)?;
        let prompt = session["history"]
            .as_array()
            .and_then(|history| history.iter().rev().find(|entry| entry["role"] == "user"))
            .and_then(|entry| entry["text"].as_str());
        if let Some(prompt) = prompt {
            return Ok(prompt.to_owned());
        }
    }
    bail!("the fake saved no prompt in {}", state_dir.display())
}

/// A distribution-free 95% confidence interval for the median of `values`:
/// the order statistics whose ranks bracket n/2 by 1.96·√n/2 (the normal
/// approximation to the binomial), so no shape of the differences is assumed.
fn median_interval(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let half_width = 0.98 * (n as f64).sqrt();
    let low = ((n as f64 / 2.0 - half_width).floor() as usize).clamp(1, n);
    let high = ((n as f64 / 2.0 + 1.0 + half_width).ceil() as usize).clamp(1, n);
    (sorted[low - 1], sorted[high - 1])
}

fn signed_ms(seconds: f64) -> String {
    let micros = seconds * 1e6;
    if micros.abs() < 1000.0 {
        format!("{micros:+.0} µs")
    } else {
        format!("{:+.2} ms", micros / 1000.0)
    }
}
