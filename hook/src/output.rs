//! Writing to stdout and stderr without panicking: `println!` panics when
//! stdout is a closed pipe (`codex-fusion status | head -1`), and
//! `eprintln!` when stderr is. Here a closed stdout ends the process
//! quietly with success, as a Unix filter does when its reader goes away,
//! and a failed write to stderr is dropped (there is nowhere left to say it).

use std::fmt::Arguments;
use std::io::Write as _;

/// Prints a line on stdout (see [`say!`]).
pub fn stdout_line(args: Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| stdout.write_all(b"\n"));
    if let Err(error) = written.and_then(|()| stdout.flush()) {
        stdout_failed(&error);
    }
}

/// Prints `text` on stdout as it is.
pub fn stdout_text(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        stdout_failed(&error);
    }
}

/// Prints a line on stderr, if stderr takes it (see [`note!`]).
pub fn stderr_line(args: Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(args).and_then(|()| stderr.write_all(b"\n"));
}

fn stdout_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    stderr_line(format_args!("codex-fusion: cannot write to stdout: {error}"));
    std::process::exit(1);
}

/// `println!` that never panics: a closed stdout ends the process (exit 0).
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::stdout_line(::std::format_args!($($arg)*)) };
}

/// `eprintln!` that never panics: a closed stderr drops the line.
macro_rules! note {
    ($($arg:tt)*) => { $crate::output::stderr_line(::std::format_args!($($arg)*)) };
}

pub(crate) use {note, say};
