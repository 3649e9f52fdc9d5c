//! A deadline for each figure: blocking reads on a wedged daemon would
//! otherwise hang the bench (and CI) forever. When it fires it stops every
//! daemon the bench started, through their lock files, and exits.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Sockets of the daemons started so far.
static SOCKETS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Which arming is current; a guard's drop disarms only its own.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Remembers a daemon socket so the watchdog can stop its daemon.
pub fn track(socket: &Path) {
    SOCKETS
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .push(socket.to_path_buf());
}

/// Disarms its deadline when dropped.
pub struct Guard(u64);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = GENERATION.compare_exchange(self.0, self.0 + 1, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// Exits the bench (after stopping its daemons) if `what` runs past `limit`.
pub fn arm(what: &str, limit: Duration) -> Guard {
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst) + 1;
    let what = what.to_owned();
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        if GENERATION.load(Ordering::SeqCst) != generation {
            return;
        }
        eprintln!(
            "bench: {what} did not finish within {} s; stopping its daemons and giving up",
            limit.as_secs()
        );
        stop_all();
        std::process::exit(3);
    });
    Guard(generation)
}

fn stop_all() {
    let sockets = SOCKETS.lock().unwrap_or_else(|poison| poison.into_inner()).clone();
    for socket in sockets {
        let mut lock = socket.into_os_string();
        lock.push(".lock");
        if let Some(pid) = std::fs::read_to_string(&lock)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
}
