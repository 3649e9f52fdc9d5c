//! The command line of the two binaries that take no arguments
//! (`codex-fusiond`, `codex-fusion-mcp`): `--help`, `--version`, nothing else.

use std::process::ExitCode;

/// Handles `--help`/`-h` and `--version`/`-V` for the binary `name`; any
/// other argument is a usage error (exit 2). `None` means: no argument, run.
pub fn handle(name: &str, help: &str) -> Option<ExitCode> {
    match std::env::args().nth(1).as_deref() {
        Some("-h" | "--help") => {
            println!("{help}");
            Some(ExitCode::SUCCESS)
        }
        Some("-V" | "--version") => {
            println!("{name} {}", crate::PACKAGE_VERSION);
            Some(ExitCode::SUCCESS)
        }
        Some(other) => {
            eprintln!("{name}: unexpected argument `{other}`; see `{name} --help`");
            Some(ExitCode::from(2))
        }
        None => None,
    }
}
