//! `bench`: measures codex-fusion's own cost against its budgets (issue 7)
//! and prints one table. Every figure is compared, in the same run, with a
//! baseline that leaves out the part being measured. See docs/PERFORMANCE.md.
//!
//! Run it with the release binaries built:
//! `cargo build --release --workspace --bins && cargo run --release -p codex-fusion-testkit --bin bench`.
//! `--quick` runs every figure with a few iterations (CI proves the harness
//! works with it; it asserts no times).

mod acp_direct;
mod cold;
mod council;
mod idle;
mod latency;
mod mcp;
mod original;
mod overhead;
mod pool;
mod procfs;
mod real;
mod report;
mod scale;
mod startup;
mod stats;
mod streaming;
mod watchdog;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codex_fusion_testkit::{DaemonProcess, TestEnv};
use report::{Row, Verdict};

const USAGE: &str = "bench — codex-fusion's performance figures (issue 7)

USAGE:
    bench [--quick] [--only LIST] [--pairs N] [--original DIR --bun PATH]

    --quick      few iterations per figure (seconds, not minutes); times are
                 not comparable with a full run
    --only LIST  comma-separated figures to run, e.g. `1,2,7` (default: all)
    --pairs N    pairs of calls figure 7 times on each agent (default: 300,
                 or 2 and 5 with --quick); more pairs narrow the end-to-end
                 intervals, at about 0.13 s per pair
    --original DIR
                 a checkout of the Bun original (Tritlo/codex-fusion-mcp at
                 f6d1ab7) with its dependencies installed (`bun install`);
                 figure 9 then runs it beside codex-fusion, alternating.
                 Also $CODEX_FUSION_BENCH_ORIGINAL. Nothing is fetched.
    --bun PATH   the bun that runs it (also $CODEX_FUSION_BENCH_BUN)

Needs the daemon, shim, CLI, fake agent and model mock built next to it:
    cargo build --release --workspace --bins
Figures 5, 7, 8 and 9 run the real codex-acp (see testkit::real::codex_acp).";

/// The daemon's own default log filter: figures are taken with the logging
/// a user runs, not the debug logging of the test suite.
pub const PRODUCTION_LOG: &str = "info,rmcp=warn,agent_client_protocol=warn";

/// What a run was asked to do.
pub struct Config {
    pub quick: bool,
    /// `--pairs`: figure 7's pair count, instead of its default.
    pub pairs: Option<usize>,
    /// The Bun original figure 9 compares with, when given.
    pub original: Option<original::Original>,
}

impl Config {
    /// `full` in a full run, `quick` with `--quick`.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// State shared across figures.
pub struct Context {
    pub config: Config,
    /// Peak RSS (VmHWM, KiB) of every shim measured, with where it came from.
    pub shim_peaks: Vec<(String, u64)>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

impl Context {
    pub fn note_shim_peak(&mut self, what: &str, pid: u32) {
        if let Some(kib) = procfs::status_kib(pid, "VmHWM") {
            self.shim_peaks.push((what.to_owned(), kib));
        }
    }
}

/// A test environment with the daemon's production log filter.
pub fn bench_env() -> TestEnv {
    let mut env = TestEnv::new();
    env.set("CODEX_FUSION_DAEMON_LOG", PRODUCTION_LOG);
    env
}

/// A daemon the bench started, with its environment. Dropping it stops
/// the daemon gracefully (SIGTERM through its lock file, so it stops its
/// agents too) before the child handle's kill-on-drop could SIGKILL it:
/// fields drop in declaration order.
pub struct Running {
    pub env: TestEnv,
    pub daemon: DaemonProcess,
}

impl Running {
    pub fn start(env: TestEnv, runtime: &tokio::runtime::Runtime) -> Running {
        watchdog::track(&env.socket);
        let daemon = runtime.block_on(env.start_daemon());
        Running { env, daemon }
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid() as u32
    }
}

/// One figure: its number, the rows it prints (id, title) and how it runs.
struct Figure {
    number: u8,
    rows: &'static [(&'static str, &'static str)],
    run: fn(&mut Context, &tokio::runtime::Runtime) -> anyhow::Result<Vec<Row>>,
}

const FIGURES: &[Figure] = &[
    Figure {
        number: 1,
        rows: latency::ROWS,
        run: latency::run,
    },
    Figure {
        number: 2,
        rows: startup::ROWS,
        run: startup::run,
    },
    Figure {
        number: 3,
        rows: streaming::ROWS,
        run: streaming::run,
    },
    Figure {
        number: 4,
        rows: scale::ROWS,
        run: scale::run,
    },
    Figure {
        number: 5,
        rows: real::RESTART_ROWS,
        run: real::run_restart,
    },
    Figure {
        number: 6,
        rows: idle::ROWS,
        run: idle::run,
    },
    Figure {
        number: 7,
        rows: overhead::ROWS,
        run: overhead::run,
    },
    Figure {
        number: 8,
        rows: pool::ROWS,
        run: pool::run,
    },
    Figure {
        number: 9,
        rows: cold::ROWS,
        run: cold::run,
    },
    Figure {
        number: 10,
        rows: council::ROWS,
        run: council::run,
    },
];

fn main() -> std::process::ExitCode {
    let mut quick = false;
    let mut only: Option<Vec<u8>> = None;
    let mut pairs: Option<usize> = None;
    let mut original_dir: Option<PathBuf> = None;
    let mut bun: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let list = args.next().unwrap_or_default();
                let parsed: Result<Vec<u8>, _> = list.split(',').map(str::parse).collect();
                match parsed {
                    Ok(figures) => only = Some(figures),
                    Err(_) => {
                        eprintln!("bench: --only expects figure numbers like `1,2,7`, got `{list}`");
                        return std::process::ExitCode::from(2);
                    }
                }
            }
            "--pairs" => {
                let count = args.next().unwrap_or_default();
                match count.parse() {
                    Ok(count) if count > 0 => pairs = Some(count),
                    _ => {
                        eprintln!("bench: --pairs expects a positive number of pairs, got `{count}`");
                        return std::process::ExitCode::from(2);
                    }
                }
            }
            "--original" | "--bun" => {
                let Some(path) = args.next().filter(|path| !path.is_empty()) else {
                    eprintln!("bench: {arg} expects a path");
                    return std::process::ExitCode::from(2);
                };
                if arg == "--original" {
                    original_dir = Some(path.into());
                } else {
                    bun = Some(path.into());
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return std::process::ExitCode::SUCCESS;
            }
            other => {
                eprintln!("bench: unexpected argument `{other}`\n\n{USAGE}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    if let Err(message) = check_binaries() {
        eprintln!("bench: {message}");
        return std::process::ExitCode::FAILURE;
    }
    let original = match original::Original::find(original_dir, bun) {
        Ok(original) => original,
        Err(message) => {
            eprintln!("bench: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    match &original {
        Some(found) => eprintln!(
            "bench: figure 9 runs the Bun original in {} with bun {} ({})",
            found.dir.display(),
            found.bun_version,
            found.bun.display()
        ),
        None if only.as_ref().is_none_or(|only| only.contains(&9)) => {
            eprintln!("bench: {}", original::HOW_TO_GET);
        }
        None => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut context = Context {
        config: Config { quick, pairs, original },
        shim_peaks: Vec::new(),
        notes: Vec::new(),
    };
    let started = Instant::now();
    let load_at_start = procfs::load_text();
    eprintln!(
        "bench: {} mode on {} × {}, load {load_at_start}",
        if quick { "quick" } else { "full" },
        procfs::cpus(),
        procfs::cpu_model()
    );
    let mut rows = Vec::new();
    let mut failed = false;
    for Figure {
        number,
        rows: titles,
        run: figure,
    } in FIGURES
    {
        if only.as_ref().is_some_and(|only| !only.contains(number)) {
            continue;
        }
        let before = procfs::load()[0];
        let cpu_before = procfs::MachineCpu::now();
        eprintln!("bench: figure {number} (load {before:.2})");
        let limit = context.config.pick(Duration::from_secs(900), Duration::from_secs(120));
        let guard = watchdog::arm(&format!("figure {number}"), limit);
        let figure_started = Instant::now();
        let result = figure(&mut context, &runtime);
        drop(guard);
        let after = procfs::load()[0];
        let load = format!(
            "{before:.2}→{after:.2}; {}",
            procfs::MachineCpu::now().since_text(&cpu_before)
        );
        match result {
            Ok(mut figure_rows) => {
                for row in &mut figure_rows {
                    row.load.clone_from(&load);
                }
                rows.extend(figure_rows);
            }
            Err(error) => {
                failed = true;
                eprintln!("bench: figure {number} failed: {error:#}");
                for (id, title) in *titles {
                    let mut row = Row::new(id, *title).measured(format!("error: {error:#}"));
                    row.verdict = Verdict::Error;
                    row.load.clone_from(&load);
                    rows.push(row);
                }
            }
        }
        eprintln!(
            "bench: figure {number} took {:.1} s",
            figure_started.elapsed().as_secs_f64()
        );
    }
    if only.as_ref().is_none_or(|only| only.contains(&2)) {
        let row = startup::peak_rss_row(&context);
        let position = rows
            .iter()
            .position(|row| row.id == "2a")
            .map_or(rows.len(), |index| index + 1);
        rows.insert(position, row);
    }
    println!(
        "codex-fusion bench ({} mode): {} × {}; load at start {load_at_start}, at end {}; {:.0} s",
        if quick { "quick" } else { "full" },
        procfs::cpus(),
        procfs::cpu_model(),
        procfs::load_text(),
        started.elapsed().as_secs_f64()
    );
    println!();
    report::print(&rows);
    for note in &context.notes {
        println!();
        println!("Note: {note}.");
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// The binaries the figures run, next to this executable.
fn check_binaries() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|error| format!("cannot find my own path: {error}"))?;
    let mut dir: PathBuf = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let release = dir.ends_with("release");
    let missing: Vec<&str> = [
        "codex-fusiond",
        "codex-fusion-mcp",
        "codex-fusion",
        "fake-codex-acp",
        "model-mock",
    ]
    .into_iter()
    .filter(|name| !dir.join(name).is_file())
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} missing from {}; build them first with `cargo build {}--workspace --bins`",
        missing.join(", "),
        dir.display(),
        if release { "--release " } else { "" }
    ))
}
