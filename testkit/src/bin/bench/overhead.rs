//! Figure 7: what the shim and the daemon add to one call. A warm `consult`
//! through them, against the very prompt the daemon sent for it, sent by a
//! minimal ACP client straight to an agent set up the same way (same
//! environment, same mode), the two interleaved so that they share the
//! machine's ups and downs and the sessions grow alike.
//!
//! Each consult is also split by the daemon's own clock: its turn log
//! (`CODEX_FUSION_LOG`) gives `agent_ms`, the time from sending
//! `session/prompt` to its response, measured where the straight client
//! measures it. The consult minus that is codex-fusion's share (shim,
//! socket, MCP, the session, progress, the result), free of the agent's
//! own jitter.
//!
//! - 7a: the real codex-acp against `model-mock`, with the daemon's
//!   read-confining wrapper and mode. codex-acp's turn varies by ±5 ms from
//!   one call to the next, so a difference of two turns cannot resolve 1 ms
//!   in any affordable number of pairs; the row is judged on codex-fusion's
//!   share, and shows the end-to-end pairs and codex-acp's turn inside the
//!   consult against the straight one (the check that the daemon does not
//!   slow the agent itself).
//! - 7b: the same with the fake agent, whose turns hardly vary: there the
//!   end-to-end pairs resolve tens of microseconds, and are judged; the
//!   share is shown beside them, to check the split against them.

use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::acp_direct::{self, AgentCommand, Session, Setup};
use crate::mcp::ShimProcess;
use crate::real::{QUESTION, direct_agent, direct_setup, expect_count, last_prompt, real_env};
use crate::report::Row;
use crate::stats::{Samples, median_interval, quantile_f64};
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
    let real_pairs = context.config.pairs.unwrap_or(context.config.pick(300, 2));
    let fake_pairs = context.config.pairs.unwrap_or(context.config.pick(300, 5));
    let warmups = context.config.pick(3, 1);
    let real = real_comparison(context, runtime, real_pairs, warmups)?;
    let fake = fake_comparison(context, runtime, fake_pairs, warmups)?;
    Ok(vec![real.share_row(ROWS[0]), fake.paired_row(ROWS[1])])
}

/// Interleaved timings of the two paths.
struct Comparison {
    via_daemon: Samples,
    direct: Samples,
    /// Daemon minus direct, pair by pair, in seconds.
    differences: Vec<f64>,
    /// Each consult minus the agent's time inside it (the turn log's
    /// `agent_ms`), in seconds: codex-fusion's share.
    share: Vec<f64>,
    /// The agent's time inside each consult minus its straight turn of the
    /// same pair, in seconds.
    agent_differences: Vec<f64>,
    /// Session updates the agent sent over all the direct turns (each one
    /// the daemon path relays as progress).
    updates: u64,
}

impl Comparison {
    /// 7a: judged on codex-fusion's share; the pairs are shown.
    fn share_row(mut self, (id, title): (&'static str, &'static str)) -> Row {
        let interval = median_interval(&self.share);
        Row::new(id, title)
            .measured(format!(
                "codex-fusion's share (consult − codex-acp's turn inside it): {}; consult {}",
                summary(&self.share),
                self.via_daemon.range_summary()
            ))
            .baseline(format!(
                "same prompt straight to codex-acp: {}, {}; end to end, consult − straight (paired): {}; codex-acp's turn inside the consult − straight (paired): {}",
                self.direct.range_summary(),
                self.updates_per_turn(),
                pairs_summary(&self.differences),
                pairs_summary(&self.agent_differences)
            ))
            .budget_interval("< 1 ms added", interval, 1e-3)
            .bun("adds 1–5 ms")
    }

    /// 7b: judged on the end-to-end pairs; the share is shown beside them.
    fn paired_row(mut self, (id, title): (&'static str, &'static str)) -> Row {
        let added = self.via_daemon.median().as_secs_f64() - self.direct.median().as_secs_f64();
        // Judged on the pairs, which share the machine's moment: the
        // difference of two medians has no interval to speak of.
        let interval = median_interval(&self.differences);
        Row::new(id, title)
            .measured(format!(
                "{}; {} over straight ACP (medians); paired: {}; codex-fusion's share by the turn log: {}",
                self.via_daemon.range_summary(),
                signed_ms(added),
                pairs_summary(&self.differences),
                summary(&self.share)
            ))
            .baseline(format!(
                "same prompt straight to the fake agent: {}, {}",
                self.direct.range_summary(),
                self.updates_per_turn()
            ))
            .budget_interval("< 1 ms added", interval, 1e-3)
    }

    fn updates_per_turn(&self) -> String {
        let updates = self.updates as f64 / self.direct.len().max(1) as f64;
        format!("{updates:.0} session updates per turn")
    }
}

/// "median X (95% interval A to B)" of values in seconds.
fn median_with_interval(values: &[f64]) -> String {
    let (low, high) = median_interval(values);
    format!(
        "median {} (95% interval {} to {})",
        signed_ms(quantile_f64(values, 0.5)),
        signed_ms(low),
        signed_ms(high)
    )
}

/// The median with its interval, then p99 and count.
fn summary(values: &[f64]) -> String {
    format!(
        "{}, p99 {}, n={}",
        median_with_interval(values),
        signed_ms(quantile_f64(values, 0.99)),
        values.len()
    )
}

/// The median of paired differences with its interval, then their
/// interquartile range.
fn pairs_summary(values: &[f64]) -> String {
    format!(
        "{}, interquartile {} to {}",
        median_with_interval(values),
        signed_ms(quantile_f64(values, 0.25)),
        signed_ms(quantile_f64(values, 0.75))
    )
}

fn real_comparison(
    context: &mut Context,
    runtime: &tokio::runtime::Runtime,
    pairs: usize,
    warmups: usize,
) -> anyhow::Result<Comparison> {
    let real = real_env(runtime);
    let log = TurnLog::new(real.env.root().join("turns.jsonl"));
    let mut shim = ShimProcess::initialized(&real.env, &[("CODEX_FUSION_LOG", &log.path_text()?)])?;
    // The first consult starts the daemon's codex-acp and its session.
    let answer = shim.lines().consult(QUESTION)?;
    expect_count(&answer, "user_messages=", 1)?;
    let prompt = last_prompt(runtime, &real)?;
    let agent = direct_agent(&real)?;
    let setup = direct_setup();
    let comparison = compare(
        runtime,
        Daemon { shim, log },
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
    let log = TurnLog::new(env.root().join("turns.jsonl"));
    let mut shim = ShimProcess::initialized(env, &[("CODEX_FUSION_LOG", &log.path_text()?)])?;
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
        Daemon { shim, log },
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

/// The daemon path: a shim that has answered one consult, and the turn log
/// its connection writes.
struct Daemon {
    shim: ShimProcess,
    log: TurnLog,
}

/// One consult through the daemon: how long it took, and how long the
/// agent took inside it.
struct Consulted {
    took: Duration,
    agent: Duration,
}

/// Pairs per session: Codex compacts a thread of some 500 turns, which
/// would break the turn counts that prove every call is a real turn of
/// the same session. Longer runs start both sessions afresh every batch.
const PAIRS_PER_SESSION: usize = 300;

/// Runs `pairs` interleaved calls: `QUESTION` as a consult through the
/// daemon (which has answered one already), and `prompt` straight to
/// `agent`, in batches of at most [`PAIRS_PER_SESSION`].
#[allow(clippy::too_many_arguments)]
fn compare(
    runtime: &tokio::runtime::Runtime,
    daemon: Daemon,
    prompt: &str,
    agent: &AgentCommand,
    setup: &Setup,
    counter: &'static str,
    pairs: usize,
    warmups: usize,
    context: &mut Context,
    label: &str,
) -> anyhow::Result<Comparison> {
    let mut daemon = daemon;
    // The consult that started the session is logged too.
    daemon.log.next_agent_time()?;
    let daemon = Arc::new(Mutex::new(daemon));
    let mut comparison = Comparison {
        via_daemon: Samples::new(),
        direct: Samples::new(),
        differences: Vec::new(),
        share: Vec::new(),
        agent_differences: Vec::new(),
        updates: 0,
    };
    let mut left = pairs;
    let mut first = true;
    while left > 0 {
        let batch = left.min(PAIRS_PER_SESSION);
        left -= batch;
        if !std::mem::take(&mut first) {
            fresh_daemon_session(&daemon, counter)?;
        }
        // Both sessions answer the same number of turns before the timed pairs.
        for index in 1..warmups {
            daemon_consult(daemon.clone(), counter, index + 1)?;
        }
        runtime.block_on(acp_direct::with_session(agent, setup, async |session| {
            for index in 0..warmups {
                direct_prompt(session, prompt, counter, index + 1).await?;
            }
            for index in 0..batch {
                let turns = warmups + index + 1;
                // Alternate which goes first, so neither always runs right
                // after the other's turn.
                let (consulted, direct_took) = if index % 2 == 0 {
                    let consulted = daemon_consult_async(&daemon, counter, turns).await?;
                    (consulted, direct_prompt(session, prompt, counter, turns).await?)
                } else {
                    let direct_took = direct_prompt(session, prompt, counter, turns).await?;
                    (daemon_consult_async(&daemon, counter, turns).await?, direct_took)
                };
                comparison.push(consulted, direct_took);
            }
            Ok(())
        }))?;
    }
    let daemon = Arc::into_inner(daemon)
        .context("the shim is ours again")?
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    context.note_shim_peak(&format!("{label}, after the consults"), daemon.shim.pid());
    daemon.shim.close()?;
    Ok(comparison)
}

impl Comparison {
    /// Adds one pair: a consult, and the straight turn's time and updates.
    fn push(&mut self, consulted: Consulted, (direct_took, updates): (Duration, u64)) {
        self.updates += updates;
        self.via_daemon.push(consulted.took);
        self.direct.push(direct_took);
        self.differences
            .push(consulted.took.as_secs_f64() - direct_took.as_secs_f64());
        self.share
            .push(consulted.took.as_secs_f64() - consulted.agent.as_secs_f64());
        self.agent_differences
            .push(consulted.agent.as_secs_f64() - direct_took.as_secs_f64());
    }
}

/// Drops the daemon's Codex session (`reset`) and starts the next with one
/// consult, untimed.
fn fresh_daemon_session(daemon: &Arc<Mutex<Daemon>>, counter: &str) -> anyhow::Result<()> {
    let mut daemon = daemon.lock().unwrap_or_else(|poison| poison.into_inner());
    let reset = daemon.shim.lines().call("reset", serde_json::json!({}))?;
    if reset.is_error {
        bail!("reset answered with an error: {}", reset.text);
    }
    let text = daemon.shim.lines().consult(QUESTION)?;
    expect_count(&text, counter, 1)?;
    daemon.log.next_agent_time()?;
    Ok(())
}

/// One timed consult through the shim, checking the session's turn count,
/// then the agent's time inside it from the turn log (not timed).
fn daemon_consult(daemon: Arc<Mutex<Daemon>>, counter: &str, turns: usize) -> anyhow::Result<Consulted> {
    let mut daemon = daemon.lock().unwrap_or_else(|poison| poison.into_inner());
    let called = Instant::now();
    let text = daemon.shim.lines().consult(QUESTION)?;
    let took = called.elapsed();
    expect_count(&text, counter, turns)?;
    let agent = daemon.log.next_agent_time()?;
    if agent > took {
        bail!("the turn log says the agent took {agent:?} of a consult that took {took:?}");
    }
    Ok(Consulted { took, agent })
}

async fn daemon_consult_async(
    daemon: &Arc<Mutex<Daemon>>,
    counter: &'static str,
    turns: usize,
) -> anyhow::Result<Consulted> {
    let daemon = daemon.clone();
    // The MCP client blocks; the ACP connection must keep running meanwhile.
    tokio::task::spawn_blocking(move || daemon_consult(daemon, counter, turns)).await?
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

/// The daemon's per-turn JSONL log (`CODEX_FUSION_LOG`), read record by
/// record as the turns finish (figures 7 and 8).
pub struct TurnLog {
    path: PathBuf,
    read: u64,
}

/// How long to wait for a turn's record: the daemon appends it right after
/// the answer goes out.
const RECORD_WAIT: Duration = Duration::from_secs(5);

impl TurnLog {
    pub fn new(path: PathBuf) -> TurnLog {
        TurnLog { path, read: 0 }
    }

    pub fn path_text(&self) -> anyhow::Result<String> {
        self.path
            .to_str()
            .map(str::to_owned)
            .context("the turn log's path is not UTF-8")
    }

    /// `agent_ms` of the next record, waiting for it to be written.
    pub fn next_agent_time(&mut self) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + RECORD_WAIT;
        loop {
            if let Some(line) = self.next_line()? {
                let record: serde_json::Value = serde_json::from_str(&line).context("a turn log record")?;
                let agent_ms = record["agent_ms"]
                    .as_f64()
                    .with_context(|| format!("a turn log record without agent_ms: {line}"))?;
                return Ok(Duration::from_secs_f64(agent_ms / 1e3));
            }
            if Instant::now() > deadline {
                bail!("no turn record in {} within {RECORD_WAIT:?}", self.path.display());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// The next whole line after what was read, if it is there yet.
    fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).context("opening the turn log"),
        };
        file.seek(SeekFrom::Start(self.read))?;
        let mut line = String::new();
        BufReader::new(file).read_line(&mut line)?;
        if !line.ends_with('\n') {
            return Ok(None);
        }
        self.read += line.len() as u64;
        Ok(Some(line))
    }
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

fn signed_ms(seconds: f64) -> String {
    let micros = seconds * 1e6;
    if micros.abs() < 1000.0 {
        format!("{micros:+.0} µs")
    } else {
        format!("{:+.2} ms", micros / 1000.0)
    }
}
