//! Figure 5, with the real codex-acp pointed at `model-mock`, which answers
//! at once: every millisecond measured is codex-acp, Codex, or us. What an
//! MCP restart costs: the first `consult` on a new shim (daemon and Codex
//! session warm) against a `consult` on a shim that stayed; and the first
//! `consult` of a cold daemon (daemon start, finding codex for read
//! confinement, spawn, initialize, authenticate, session/new, mode, turn).
//! Context must survive every restart. Also the real-agent environment and
//! checks that figure 7 shares.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use codex_fusion_testkit::real::{RealEnv, SlowPacing, TEST_API_KEY, codex_acp};

use crate::acp_direct::{self, AgentCommand, Setup};
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
/// The mode the daemon puts codex-acp sessions in when read confinement is
/// available (daemon `confine::PROFILE_MODE`).
pub const PROFILE_MODE: &str = "permission-profile:codex-fusion";

pub fn run_restart(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let colds = context.config.pick(5, 1);
    let restarts = context.config.pick(20, 2);
    let warmups = context.config.pick(2, 1);
    codex_acp();
    let mut cold_total = Samples::new();
    let mut cold_call = Samples::new();
    let mut cold_direct = Samples::new();
    let mut doctor = Samples::new();
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
        // The same first turn without us: a fresh codex-acp, set up as the
        // daemon sets it up, and the prompt the daemon sent.
        let prompt = last_prompt(runtime, &real)?;
        let agent = direct_agent(&real)?;
        let started = Instant::now();
        runtime.block_on(acp_direct::with_session(&agent, &direct_setup(), async |session| {
            let prompted = session.prompt(&prompt).await?;
            expect_messages(&prompted.text, 1)
        }))?;
        cold_direct.push(started.elapsed());
        // What the daemon's first start adds before it spawns codex-acp.
        let started = Instant::now();
        let report = std::process::Command::new(codex_acp())
            .args(["cli", "doctor", "--json"])
            .envs(agent.env.iter().map(|(key, value)| (key, value)))
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .context("running codex-acp cli doctor")?;
        doctor.push(started.elapsed());
        if !report.stdout.starts_with(b"{") {
            bail!("`codex-acp cli doctor --json` printed no report");
        }
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
                "consult call {}; from the shim's spawn, daemon start included: {}",
                cold_call.range_summary(),
                human(cold_total.median())
            ))
            .baseline(format!(
                "straight ACP, spawn → first prompt answered: {}; `codex-acp cli doctor --json` alone: {}; live consult median {}",
                cold_direct.range_summary(),
                doctor.range_summary(),
                human(live.median())
            ))
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
    real_env_paced(runtime, SlowPacing::default())
}

/// The same, with the mock's `mock:slow` answers paced by `pacing`.
pub fn real_env_paced(runtime: &tokio::runtime::Runtime, pacing: SlowPacing) -> RealEnv {
    let mut real = runtime.block_on(RealEnv::new_paced(true, pacing));
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

/// The last prompt the mock received: the one the daemon built.
pub fn last_prompt(runtime: &tokio::runtime::Runtime, real: &RealEnv) -> anyhow::Result<String> {
    let turns = runtime.block_on(real.mock.turns());
    let prompt = turns
        .last()
        .and_then(|turn| turn["last_user_text"].as_str())
        .context("the mock saw no turn")?;
    if !prompt.contains(QUESTION) {
        bail!("the mock's last prompt is not the daemon's consult prompt: {prompt}");
    }
    Ok(prompt.to_owned())
}

/// codex-acp as the daemon starts it in `real`: same environment, same
/// read-confining wrapper, same workspace.
pub fn direct_agent(real: &RealEnv) -> anyhow::Result<AgentCommand> {
    Ok(AgentCommand {
        program: codex_acp(),
        args: Vec::new(),
        env: vec![
            ("CODEX_HOME".into(), real.codex_home.display().to_string()),
            ("OPENAI_API_KEY".into(), TEST_API_KEY.into()),
            ("CODEX_API_KEY".into(), String::new()),
            ("INITIAL_AGENT_MODE".into(), PROFILE_MODE.into()),
            ("CODEX_PATH".into(), wrapper(&real.env.state_dir)?.display().to_string()),
        ],
        cwd: real.env.workspace.clone(),
    })
}

/// The session setup the daemon does with a key at hand.
pub fn direct_setup() -> Setup {
    Setup {
        authenticate: true,
        mode: PROFILE_MODE,
    }
}

/// The read-confining codex wrapper the daemon wrote (`confine::write_wrapper`).
fn wrapper(state_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = state_dir.join("codex-wrapper");
    std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_none())
        .with_context(|| format!("no codex wrapper in {}", dir.display()))
}
