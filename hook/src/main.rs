//! `codex-fusion`: parse the command line and hand it to the library; clap
//! answers `--help` (exit 0) and usage errors (exit 2) itself.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    codex_fusion::run(codex_fusion::Cli::parse())
}
