//! Figure 6: what the daemon costs while nobody calls it. Ten workspaces
//! with live sessions (a fake-agent child each, a shim each still
//! connected), then a quiet window; the daemon's CPU time and wakeups over
//! it, next to the same counters for the ten shims and the ten agents.

use std::time::Duration;

use anyhow::Context as _;

use crate::mcp::ShimProcess;
use crate::procfs::{CpuUse, children_of};
use crate::report::Row;
use crate::stats::human;
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[("6", "idle: daemon CPU with 10 live sessions")];

const SESSIONS: usize = 10;
/// Idle CPU the budget tolerates: one USER_HZ tick per minute of idling
/// (10 ms / 60 s); "≈ 0" in the words.
const ALLOWED_PER_MINUTE: Duration = Duration::from_millis(10);
/// Left after the last turn before the window opens, so the tail of that
/// turn's work (the agent saving state, progress forwarders ending) is not
/// counted as idling.
const SETTLE: Duration = Duration::from_secs(2);

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let window = context.config.pick(Duration::from_secs(60), Duration::from_secs(3));
    let running = Running::start(bench_env(), runtime);
    let env = &running.env;
    let pid = running.pid();
    let mut shims = Vec::new();
    for index in 0..SESSIONS {
        let dir = env.dir(&format!("ws-{index:02}")).display().to_string();
        let mut shim = ShimProcess::initialized(env, &[("CODEX_FUSION_WORKSPACE", dir.as_str())])?;
        shim.lines().consult("start a session and stay idle")?;
        shims.push(shim);
    }
    std::thread::sleep(SETTLE);
    let agents = children_of(pid);
    let measure = || -> anyhow::Result<(CpuUse, CpuUse, CpuUse)> {
        let daemon = CpuUse::of(pid).context("daemon CPU counters")?;
        let mut shim_total = CpuUse::default();
        for shim in &shims {
            shim_total.add(&CpuUse::of(shim.pid()).context("shim CPU counters")?);
        }
        let mut agent_total = CpuUse::default();
        for agent in &agents {
            agent_total.add(&CpuUse::of(*agent).context("agent CPU counters")?);
        }
        Ok((daemon, shim_total, agent_total))
    };
    let (daemon_before, shims_before, agents_before) = measure()?;
    std::thread::sleep(window);
    let (daemon_after, shims_after, agents_after) = measure()?;
    for shim in shims {
        shim.close()?;
    }
    let agent_count = agents.len();
    let daemon = daemon_after.since(&daemon_before);
    let shims = shims_after.since(&shims_before);
    let agents = agents_after.since(&agents_before);
    let allowed = ALLOWED_PER_MINUTE.mul_f64(window.as_secs_f64() / 60.0);
    let used = daemon.ticks.max(daemon.scheduled);
    Ok(vec![
        Row::new(
            ROWS[0].0,
            format!(
                "idle: daemon CPU over {} s with {SESSIONS} live sessions",
                window.as_secs()
            ),
        )
        .measured(format!(
            "{} (utime+stime), {} on CPU (schedstat), {} wakeups",
            human(daemon.ticks),
            human(daemon.scheduled),
            daemon.switches
        ))
        .baseline(format!(
            "{SESSIONS} shims: {} on CPU, {} wakeups; {agent_count} fake agents: {} on CPU, {} wakeups",
            human(shims.scheduled),
            shims.switches,
            human(agents.scheduled),
            agents.switches
        ))
        .budget("≈ 0: ≤ 10 ms per idle minute", used <= allowed),
    ])
}
