//! What /proc says about the machine and about one process: load, memory,
//! CPU time and wakeups. Linux only, like the rest of the harness. What the
//! daemon itself reads (a status field, children, a process tree and its
//! memory) comes from `codex_fusion_protocol::procfs`, so the bench measures
//! with the same code `status` reports with.

use std::time::Duration;

pub use codex_fusion_protocol::procfs::{children_of, status_kib, tree, tree_rss_kb};

/// Linux reports utime and stime in USER_HZ ticks, which the kernel ABI
/// fixes at 100 per second on every architecture we run on.
const USER_HZ: u64 = 100;

/// The 1-, 5- and 15-minute load averages.
pub fn load() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|field| field.parse().unwrap_or(f64::NAN));
    [
        fields.next().unwrap_or(f64::NAN),
        fields.next().unwrap_or(f64::NAN),
        fields.next().unwrap_or(f64::NAN),
    ]
}

pub fn load_text() -> String {
    let [one, five, fifteen] = load();
    format!("{one:.2} {five:.2} {fifteen:.2}")
}

/// The CPU model from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// CPU a process has used so far, from the counters the kernel keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// utime + stime of the whole process (dead threads included), at
    /// USER_HZ resolution.
    pub ticks: Duration,
    /// Time on CPU of its live threads, from schedstat (nanoseconds).
    pub scheduled: Duration,
    /// Context switches of its live threads: each one is a wakeup.
    pub switches: u64,
}

impl CpuUse {
    pub fn of(pid: u32) -> Option<CpuUse> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which may hold spaces: utime and
        // stime are fields 14 and 15, that is 12 and 13 after `) S`.
        let after = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        let mut scheduled = 0u64;
        let mut switches = 0u64;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let path = task.path();
                if let Some(ns) = std::fs::read_to_string(path.join("schedstat"))
                    .ok()
                    .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
                {
                    scheduled += ns;
                }
                if let Ok(status) = std::fs::read_to_string(path.join("status")) {
                    for line in status.lines() {
                        if let Some(rest) = line
                            .strip_prefix("voluntary_ctxt_switches:")
                            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                        {
                            switches += rest.trim().parse::<u64>().unwrap_or(0);
                        }
                    }
                }
            }
        }
        Some(CpuUse {
            ticks: Duration::from_millis((utime + stime) * 1000 / USER_HZ),
            scheduled: Duration::from_nanos(scheduled),
            switches,
        })
    }

    /// What was used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuUse) -> CpuUse {
        CpuUse {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            scheduled: self.scheduled.saturating_sub(earlier.scheduled),
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }

    pub fn add(&mut self, other: &CpuUse) {
        self.ticks += other.ticks;
        self.scheduled += other.scheduled;
        self.switches += other.switches;
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Aggregate CPU counters of the machine (/proc/stat `cpu` line), in ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    total: u64,
    idle: u64,
    steal: u64,
}

impl MachineCpu {
    pub fn now() -> MachineCpu {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = text
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is
        // already counted in user).
        MachineCpu {
            total: (0..8).map(field).sum(),
            idle: field(3) + field(4),
            steal: field(7),
        }
    }

    /// "busy N%, steal M%" of all CPUs since `earlier`: how much of the
    /// machine was in use (by anyone, the bench included) and how much the
    /// hypervisor took.
    pub fn since_text(&self, earlier: &MachineCpu) -> String {
        let total = self.total.saturating_sub(earlier.total).max(1) as f64;
        let idle = self.idle.saturating_sub(earlier.idle) as f64;
        let steal = self.steal.saturating_sub(earlier.steal) as f64;
        format!(
            "busy {:.0}%, steal {:.0}%",
            100.0 * (total - idle) / total,
            100.0 * steal / total
        )
    }
}

/// The sum of every process's peak resident memory (VmHWM) in `root`'s
/// tree, in KiB: an upper bound of the tree's own peak, since the processes
/// need not have peaked at the same moment. `None` when `root` is gone.
pub fn tree_hwm_kb(root: u32) -> Option<u64> {
    status_kib(root, "VmHWM")?;
    Some(tree(root).into_iter().filter_map(|pid| status_kib(pid, "VmHWM")).sum())
}

/// The command line of `pid`, its arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|byte| *byte == 0)
                .filter(|arg| !arg.is_empty())
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
