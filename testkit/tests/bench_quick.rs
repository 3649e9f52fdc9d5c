//! The benchmark harness runs: `bench --quick` (debug build) completes and
//! prints every row of its table. Times are not asserted; a benchmark is
//! not a timed test (issue 7).

use std::process::Command;
use std::time::{Duration, Instant};

/// Every row the table must have, figure by figure. Figure 9 runs without
/// the Bun original here (CI gives none): its rows prove the harness, with
/// codex-fusion's side measured and the original's column empty.
const ROWS: [&str; 20] = [
    "1a", "1b", "2a", "2b", "3", "4a", "4b", "4c", "5a", "5b", "5c", "6", "7a", "7b", "9a", "9b", "9c", "9d", "9e",
    "10",
];

#[test]
fn bench_quick_prints_every_row() {
    // The bench finds the daemon, shim, fake agent and mock next to itself.
    for name in [
        "codex-fusiond",
        "codex-fusion-mcp",
        "codex-fusion",
        "fake-codex-acp",
        "model-mock",
    ] {
        codex_fusion_testkit::binary(name);
    }
    // Installs codex-acp into the cache first if needed (figures 5 and 7),
    // so that time is not charged to the bench's own deadline.
    codex_fusion_testkit::real::codex_acp();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--quick")
        // Figure 9 compares with the Bun original only when given one.
        .env_remove("CODEX_FUSION_BENCH_ORIGINAL")
        .env_remove("CODEX_FUSION_BENCH_BUN")
        .output()
        .expect("run bench --quick");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench --quick failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for row in ROWS {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(&format!("| {row} |")))
            .unwrap_or_else(|| panic!("row {row} missing from the table:\n{stdout}\n{stderr}"));
        assert!(!line.contains("| ERROR |"), "row {row} failed: {line}");
    }
    eprintln!("bench --quick took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "bench --quick should take seconds, took {:?}",
        started.elapsed()
    );
}
