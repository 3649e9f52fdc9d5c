//! Figure 1: the latency the shim adds. `tools/list` round trips through a
//! shim process and its socket, against the same requests on a connection
//! straight to the daemon's socket (hello, then MCP), interleaved in blocks
//! so that drifting load hits both alike.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::mcp::{Lines, ShimProcess, connect_direct};
use crate::report::Row;
use crate::stats::{Samples, human, human_diff};
use crate::{Context, Running, bench_env};

pub const ROWS: &[(&str, &str)] = &[
    ("1a", "shim: added latency of a tools/list round trip"),
    ("1b", "shim: whole tools/list round trip through the shim"),
];

/// Calls per block before switching to the other path.
const BLOCK: usize = 100;

pub fn run(context: &mut Context, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>> {
    let calls: usize = context.config.pick(5000, 200);
    let warmup = context.config.pick(500, 20);
    let running = Running::start(bench_env(), runtime);
    let env = &running.env;
    let mut shim = ShimProcess::initialized(env, &[])?;
    let mut direct = connect_direct(env, &env.workspace)?;
    direct.initialize()?;
    let mut via_shim = Samples::new();
    let mut via_socket = Samples::new();
    let mut scratch = Samples::new();
    round_trips(shim.lines(), warmup, &mut scratch)?;
    round_trips(&mut direct, warmup, &mut scratch)?;
    for block in 0..calls.div_ceil(BLOCK) {
        // Alternate which path goes first, so neither always follows a switch.
        if block % 2 == 0 {
            round_trips(shim.lines(), BLOCK, &mut via_shim)?;
            round_trips(&mut direct, BLOCK, &mut via_socket)?;
        } else {
            round_trips(&mut direct, BLOCK, &mut via_socket)?;
            round_trips(shim.lines(), BLOCK, &mut via_shim)?;
        }
    }
    context.note_shim_peak(
        &format!("fig 1, after {} tools/list", via_shim.len() + warmup),
        shim.pid(),
    );
    shim.close()?;
    let (shim_p50, socket_p50) = (via_shim.median(), via_socket.median());
    let (shim_p99, socket_p99) = (via_shim.quantile(0.99), via_socket.quantile(0.99));
    let added = shim_p50.saturating_sub(socket_p50);
    Ok(vec![
        Row::new(ROWS[0].0, ROWS[0].1)
            .measured(format!(
                "p50 {}, p99 {}",
                human_diff(shim_p50, socket_p50),
                human_diff(shim_p99, socket_p99)
            ))
            .baseline(format!("direct socket: {}", via_socket.tail_summary()))
            .budget("< 50 µs at p50", added < Duration::from_micros(50)),
        Row::new(ROWS[1].0, ROWS[1].1)
            .measured(via_shim.tail_summary())
            .baseline(format!("direct socket p50 {}", human(socket_p50)))
            .budget("< 150 µs", shim_p50 < Duration::from_micros(150))
            .bun("720 µs p50, 1.8 ms p99"),
    ])
}

/// `count` timed `tools/list` requests, one at a time.
fn round_trips<R: Read, W: Write>(lines: &mut Lines<R, W>, count: usize, samples: &mut Samples) -> anyhow::Result<()> {
    for _ in 0..count {
        let id = lines.id();
        let request = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/list\"}}\n");
        let started = Instant::now();
        lines.send(request.as_bytes()).context("sending tools/list")?;
        let line = lines.read_line().context("reading tools/list")?;
        let took = started.elapsed();
        // Checked after the clock stopped; the prefix is how rmcp writes it.
        let expected = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"tools\":");
        if !line.starts_with(expected.as_bytes()) {
            bail!(
                "unexpected answer to tools/list: {}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            );
        }
        samples.push(took);
    }
    Ok(())
}
