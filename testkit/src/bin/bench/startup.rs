//! Figure 2: a shim's start, daemon warm. From spawning `codex-fusion-mcp`
//! to its `initialize` response (what Claude Code waits for at every
//! start), against spawning and reaping `/bin/true` (what any process
//! start costs here). Also the shim's peak RSS, over every shim the run
//! measured.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;

use crate::mcp::{INITIALIZE, ShimProcess};
use crate::procfs::mib;
use crate::report::Row;
use crate::stats::Samples;
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[("2a", "shim start → initialize answered (daemon warm)")];

/// Shims kept apart from fig 2's own, for the RSS row.
const FIGURE_2: &str = "fig 2";

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let starts = context.config.pick(100, 5);
    let running = Running::start(bench_env(), runtime);
    let env = &running.env;
    // The daemon's first connection pays for lazy setup; not a warm start.
    ShimProcess::initialized(env, &[])?.close()?;
    let mut shim_starts = Samples::new();
    let mut process_starts = Samples::new();
    for _ in 0..starts {
        let started = Instant::now();
        let mut shim = ShimProcess::spawn(env, &[])?;
        shim.lines().send(INITIALIZE).context("sending initialize")?;
        shim.lines().wait_response(0).context("initialize response")?;
        shim_starts.push(started.elapsed());
        context.note_shim_peak(&format!("{FIGURE_2}, after initialize"), shim.pid());
        shim.close()?;

        let started = Instant::now();
        Command::new("/bin/true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("running /bin/true")?;
        process_starts.push(started.elapsed());
    }
    Ok(vec![
        Row::new(ROWS[0].0, ROWS[0].1)
            .measured(shim_starts.range_summary())
            .baseline(format!("spawn + exit of /bin/true: {}", process_starts.range_summary()))
            .budget(
                "< 10 ms median",
                shim_starts.median() < std::time::Duration::from_millis(10),
            )
            .bun("93 ms to initialize"),
    ])
}

/// Row 2b: the largest VmHWM of any shim measured in this run.
pub fn peak_rss_row(context: &Context) -> Row {
    let row = Row::new("2b", "shim peak RSS (VmHWM, read while it runs)").bun("68 MB");
    let Some((what, peak)) = context.shim_peaks.iter().max_by_key(|(_, kib)| *kib) else {
        let mut row = row.measured("error: no shim was measured");
        row.verdict = crate::report::Verdict::Error;
        return row;
    };
    let figure_2: Vec<u64> = context
        .shim_peaks
        .iter()
        .filter(|(name, _)| name.starts_with(FIGURE_2))
        .map(|(_, kib)| *kib)
        .collect();
    let mut row = row
        .measured(format!(
            "max {} ({what}; {} shims)",
            mib(*peak),
            context.shim_peaks.len()
        ))
        .budget("< 6 MiB", *peak < 6 * 1024);
    if let (Some(low), Some(high)) = (figure_2.iter().min(), figure_2.iter().max()) {
        row = row.baseline(format!(
            "fig 2 shims right after initialize: {}–{}",
            mib(*low),
            mib(*high)
        ));
    }
    row.load = "whole run".into();
    row
}
