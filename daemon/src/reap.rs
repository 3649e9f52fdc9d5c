//! Nothing an agent started outlives it (issue 17).
//!
//! Codex runs sandboxed commands through helpers (`bwrap`,
//! `codex-linux-sandbox`) that leave the agent's process group, sit first in
//! a PID namespace of their own and ignore SIGTERM, so the group kill in
//! [`crate::agent`] misses them (docs/notes/sandbox-helpers.md). Three
//! things catch them:
//!
//! - The daemon is its own children's subreaper (`PR_SET_CHILD_SUBREAPER`):
//!   whatever an agent's tree orphans is re-parented to the daemon, not to
//!   PID 1, so it stays findable and is reaped here.
//! - Every agent's tree is followed: its members (pid and start time, so a
//!   reused pid is never mistaken for one) are taken from /proc when it
//!   starts, every [`REFRESH`] while agents talk (and [`ACTIVE_FOR`]
//!   after; an idle daemon walks nothing) and right before it is
//!   stopped; a member that was orphaned stays a member, and so does what
//!   it starts. When the agent stops (any way: a requested stop, a crash, an
//!   idle stop, shutdown) every member still alive is SIGKILLed — SIGKILL
//!   from the parent namespace ends a namespace's first process — along
//!   with every orphan re-parented to the daemon that no running agent
//!   claims, and the ones re-parented to the daemon are reaped.
//! - The members of every running agent are kept in a private state file;
//!   a daemon that was SIGKILLed cannot clean up, so the next one kills
//!   what is left of them when it starts: only processes whose pid and
//!   start time both match and that belong to this user.
//!
//! Reaping waits only for pids known to be orphans (`waitpid(pid)`), never
//! for any child (`waitpid(-1)`), so tokio's own reaping of the processes
//! it started is untouched; a process the daemon started itself (an agent,
//! the `cli doctor` probe) leads a process group of its own in the daemon's
//! session and is never taken for an orphan.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// How often the trees of running agents are read again.
pub const REFRESH: Duration = Duration::from_secs(1);
/// The state file, in the daemon's state directory.
pub const STATE_FILE: &str = "agent-processes.json";
/// How long a stopped agent's leftovers get to die and be reaped before
/// they are left to the next sweep.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// One process, told from a later one with the same pid by its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat: clock ticks after boot.
    pub start: u64,
}

impl Member {
    /// `pid` as it is now, if it runs.
    pub fn of(pid: u32) -> Option<Member> {
        Some(Member {
            pid,
            start: Stat::read(pid)?.start,
        })
    }

    /// Whether this very process still exists (not a zombie) and is this
    /// user's.
    pub fn is_live(&self) -> bool {
        Stat::read(self.pid).is_some_and(|stat| stat.start == self.start && stat.state != 'Z')
            && owner(self.pid) == Some(own_uid())
    }
}

/// What the state file holds.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The daemon that wrote it.
    pub daemon: u32,
    pub members: Vec<Member>,
}

/// The fields of /proc/PID/stat used here.
#[derive(Debug, Clone, Copy)]
struct Stat {
    state: char,
    parent: u32,
    group: u32,
    session: u32,
    start: u64,
}

impl Stat {
    fn read(pid: u32) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses.
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        Some(Stat {
            state: fields.first()?.chars().next()?,
            parent: fields.get(1)?.parse().ok()?,
            group: fields.get(2)?.parse().ok()?,
            session: fields.get(3)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
        })
    }
}

fn owner(pid: u32) -> Option<u32> {
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|metadata| metadata.uid())
}

fn own_uid() -> u32 {
    codex_fusion_protocol::peer::own_uid()
}

/// `members` and everything now below them, alive, this user's. One pass
/// over /proc, however many members.
fn grow(members: &BTreeSet<Member>) -> BTreeSet<Member> {
    let mut grown: BTreeSet<Member> = members.iter().copied().filter(Member::is_live).collect();
    if grown.is_empty() {
        return grown;
    }
    let me = own_uid();
    if codex_fusion_protocol::procfs::lists_children() {
        // Down from each member through its threads' `children` files: a
        // few reads per process of the tree, whatever else runs on the
        // machine (a walk of /proc is a few reads per process of the
        // machine, every second while agents talk).
        let mut frontier: Vec<u32> = grown.iter().map(|member| member.pid).collect();
        while let Some(parent) = frontier.pop() {
            for pid in codex_fusion_protocol::procfs::children_of(parent) {
                let Some(stat) = Stat::read(pid) else { continue };
                if stat.state == 'Z' || owner(pid) != Some(me) {
                    continue;
                }
                if grown.insert(Member { pid, start: stat.start }) {
                    frontier.push(pid);
                }
            }
        }
        return grown;
    }
    let all: Vec<(Member, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = Stat::read(pid)?;
            (stat.state != 'Z' && owner(pid) == Some(me)).then_some((Member { pid, start: stat.start }, stat.parent))
        })
        .collect();
    let mut frontier: Vec<u32> = grown.iter().map(|member| member.pid).collect();
    while let Some(parent) = frontier.pop() {
        for (child, _) in all.iter().filter(|(_, of)| *of == parent) {
            if grown.insert(*child) {
                frontier.push(child.pid);
            }
        }
    }
    grown
}

/// SIGKILLs each of `members` that is still that process; the ones killed.
fn kill_members(members: &BTreeSet<Member>) -> Vec<Member> {
    let mut killed = Vec::new();
    for member in members {
        if member.is_live() && kill(Pid::from_raw(member.pid as i32), Signal::SIGKILL).is_ok() {
            killed.push(*member);
        }
    }
    killed
}

/// Kills what is left of the processes recorded in the state file at
/// `path` (an earlier daemon's agents), and what they started since. Only
/// a process whose pid and start time match a record, or that descends
/// from one, and is this user's, is killed. Returns what was killed.
pub fn kill_leftovers(path: &Path) -> Vec<Member> {
    let state: State = match codex_fusion_protocol::private::read(path) {
        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring an unreadable agent process record");
                return Vec::new();
            }
        },
        Ok(None) => return Vec::new(),
        Err(error) => {
            tracing::warn!("ignoring the agent process record: {error}");
            return Vec::new();
        }
    };
    let recorded: BTreeSet<Member> = state.members.into_iter().collect();
    let mut killed = Vec::new();
    // Twice: a parent killed first may have started one more child.
    for _ in 0..2 {
        killed.extend(kill_members(&grow(&recorded)));
    }
    killed.sort();
    killed.dedup();
    killed
}

/// The daemon's registry of agent trees.
pub struct Reaper {
    me: u32,
    session: u32,
    /// The daemon's own process group.
    group: u32,
    state_file: Option<PathBuf>,
    agents: Mutex<Agents>,
    /// Held while the state file is written, so writes do not cross.
    writer: Mutex<()>,
    /// When an agent last said something (ms since `epoch`): trees are
    /// read again only while agents are active, so an idle daemon does not
    /// walk /proc (docs/PERFORMANCE.md, figure 6).
    activity: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
    /// Wakes the refresh loop when activity resumes.
    wake: tokio::sync::Notify,
}

/// How long after an agent's last message its tree is still read every
/// [`REFRESH`]: what a turn starts (a command, its helpers, the shell
/// snapshot) starts while the agent talks, or just after.
const ACTIVE_FOR: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Agents {
    /// Each running agent's members, by the pid of its root.
    trees: HashMap<u32, BTreeSet<Member>>,
    /// What the state file holds now.
    written: Vec<Member>,
}

static REAPER: OnceLock<Reaper> = OnceLock::new();

/// Makes the daemon its children's subreaper, kills what an earlier daemon
/// left (recorded in `state_dir`), and starts following agent trees. Call
/// once, holding the daemon's lock (so no other daemon's agents are
/// running), inside the runtime.
pub fn init(state_dir: &Path) {
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(%error, "cannot become the subreaper of agent processes; orphaned helpers go to PID 1");
    }
    let state_file = state_dir.join(STATE_FILE);
    let killed = kill_leftovers(&state_file);
    if !killed.is_empty() {
        let pids: Vec<u32> = killed.iter().map(|member| member.pid).collect();
        tracing::info!(?pids, "killed what an earlier daemon's agents left running");
    }
    let reaper = REAPER.get_or_init(|| Reaper::new(Some(state_file)));
    reaper.write_state();
    tokio::spawn(async move {
        loop {
            if reaper.quiet_for() > ACTIVE_FOR {
                // Nothing to follow until an agent speaks (or starts).
                reaper.wake.notified().await;
            } else {
                tokio::time::sleep(REFRESH).await;
            }
            let _ = tokio::task::spawn_blocking(move || reaper.refresh()).await;
        }
    });
}

/// The daemon's reaper; one without a state file when [`init`] was not
/// called (unit tests).
pub fn reaper() -> &'static Reaper {
    REAPER.get_or_init(|| Reaper::new(None))
}

impl Reaper {
    fn new(state_file: Option<PathBuf>) -> Reaper {
        let me = std::process::id();
        let stat = Stat::read(me);
        Reaper {
            me,
            session: stat.map_or(0, |stat| stat.session),
            group: stat.map_or(0, |stat| stat.group),
            state_file,
            agents: Mutex::new(Agents::default()),
            writer: Mutex::new(()),
            activity: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// An agent said something (or started): its tree may be changing.
    /// Cheap enough for every message: one atomic swap, and a wake-up of
    /// the refresh loop at most every [`REFRESH`].
    pub fn poke(&self) {
        use std::sync::atomic::Ordering;
        let now = self.now_ms();
        let before = self.activity.swap(now, Ordering::Relaxed);
        if now.saturating_sub(before) >= REFRESH.as_millis() as u64 {
            self.wake.notify_one();
        }
    }

    fn quiet_for(&self) -> Duration {
        let last = self.activity.load(std::sync::atomic::Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Agents> {
        self.agents.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Starts following the tree of the agent `root` (just spawned).
    pub fn track(&self, root: u32) {
        let Some(member) = Member::of(root) else {
            return;
        };
        self.lock().trees.insert(root, BTreeSet::from([member]));
        self.write_state();
        self.poke();
    }

    /// Reads every running agent's tree again, reaps orphans that exited on
    /// their own, and rewrites the state file if anything changed.
    pub fn refresh(&self) {
        let roots: Vec<(u32, BTreeSet<Member>)> = {
            let agents = self.lock();
            if agents.trees.is_empty() {
                drop(agents);
                self.reap_exited_orphans();
                return;
            }
            agents
                .trees
                .iter()
                .map(|(root, members)| (*root, members.clone()))
                .collect()
        };
        let grown: Vec<(u32, BTreeSet<Member>)> = roots
            .into_iter()
            .map(|(root, members)| (root, grow(&members)))
            .collect();
        {
            let mut agents = self.lock();
            for (root, members) in grown {
                // Only a tree still followed: the agent may have stopped
                // meanwhile.
                if let Some(tree) = agents.trees.get_mut(&root) {
                    tree.extend(members);
                    tree.retain(Member::is_live);
                }
            }
        }
        self.reap_exited_orphans();
        self.write_state();
    }

    /// Reads the tree of the agent `root` again now (right before it is
    /// stopped, so what it started since the last refresh is known).
    pub fn update(&self, root: u32) {
        let Some(members) = self.lock().trees.get(&root).cloned() else {
            return;
        };
        let grown = grow(&members);
        if let Some(tree) = self.lock().trees.get_mut(&root) {
            tree.extend(grown);
        }
    }

    /// Kills everything left of the agent `root`'s tree, and every orphan
    /// no other agent claims; reaps the ones re-parented to the daemon and
    /// stops following the tree. Call once the agent's group was killed
    /// and its root reaped: the group's other members die and are
    /// re-parented here a moment later, so this sweeps until the group is
    /// empty and everything it killed is gone (or [`REAP_WAIT`] passed).
    pub async fn finish(&self, root: u32) {
        let members = self.lock().trees.get(&root).cloned().unwrap_or_default();
        let mut killed: BTreeSet<Member> = BTreeSet::new();
        let began = tokio::time::Instant::now();
        let deadline = began + REAP_WAIT;
        let mut passes = 0;
        loop {
            passes += 1;
            let mut doomed = grow(&members);
            doomed.extend(grow(&killed));
            doomed.extend(self.unclaimed_orphans(root));
            // The root is the agent's own child, killed with its group and
            // reaped by tokio.
            doomed.retain(|member| member.pid != root && member.is_live());
            let group_gone = kill(Pid::from_raw(-(root as i32)), None) == Err(nix::errno::Errno::ESRCH);
            // Done once the group is empty and a sweep finds nothing left
            // (a killed process's children are re-parented here only as it
            // dies, so they show in a later sweep).
            if group_gone && doomed.is_empty() {
                self.reap_exited_orphans();
                break;
            }
            killed.extend(kill_members(&doomed));
            self.reap_exited_orphans();
            if tokio::time::Instant::now() >= deadline {
                let left: Vec<u32> = killed
                    .iter()
                    .filter(|member| member.is_live())
                    .map(|member| member.pid)
                    .collect();
                tracing::warn!(root, ?left, "what the agent left running did not die in time");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pids: Vec<u32> = killed.iter().map(|member| member.pid).collect();
        // One pass, about 5 to 10 ms in a debug build, when nothing is left.
        tracing::debug!(root, ?pids, passes, took = ?began.elapsed(), "swept what the agent left running");
        self.lock().trees.remove(&root);
        self.write_state();
    }

    /// Stops following `root` without killing anything (an agent whose
    /// spawn failed before it was tracked, or one that is gone).
    pub fn forget(&self, root: u32) {
        self.lock().trees.remove(&root);
        self.write_state();
    }

    /// Whether `stat` (a child of the daemon) is a process the daemon
    /// started itself: those lead a process group in the daemon's session,
    /// or, in the moment between their fork and their `setpgid`, are still
    /// in the daemon's own group (a sweep that took an agent being spawned
    /// then for an orphan killed it right after it started). What agents
    /// orphan is never in the daemon's group: agents lead groups of their
    /// own.
    fn started_here(&self, pid: u32, stat: &Stat) -> bool {
        stat.session == self.session && (stat.group == pid || stat.group == self.group)
    }

    /// Children of the daemon it did not start, that no running agent
    /// other than `except` claims.
    fn unclaimed_orphans(&self, except: u32) -> BTreeSet<Member> {
        let claimed: BTreeSet<Member> = {
            let agents = self.lock();
            agents
                .trees
                .iter()
                .filter(|(root, _)| **root != except)
                .flat_map(|(root, members)| members.iter().copied().chain(Member::of(*root)))
                .collect()
        };
        let roots: BTreeSet<u32> = self.lock().trees.keys().copied().collect();
        let mut orphans = BTreeSet::new();
        for pid in codex_fusion_protocol::procfs::children_of(self.me) {
            let Some(stat) = Stat::read(pid) else { continue };
            if roots.contains(&pid) || self.started_here(pid, &stat) || stat.state == 'Z' {
                continue;
            }
            let member = Member { pid, start: stat.start };
            if !claimed.contains(&member) && member.is_live() {
                orphans.insert(member);
            }
        }
        orphans
    }

    /// Reaps orphans re-parented to the daemon that have exited.
    fn reap_exited_orphans(&self) {
        let roots: BTreeSet<u32> = self.lock().trees.keys().copied().collect();
        for pid in codex_fusion_protocol::procfs::children_of(self.me) {
            let Some(stat) = Stat::read(pid) else { continue };
            if stat.state == 'Z' && !roots.contains(&pid) && !self.started_here(pid, &stat) {
                let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
            }
        }
    }

    /// Records every running agent's members in the state file, if it
    /// changed. Not synced to disk: the record is for a daemon that was
    /// killed, whose writes the kernel still has; after a machine crash its
    /// pids mean nothing. The trees' lock is not held while writing.
    fn write_state(&self) {
        let Some(path) = &self.state_file else { return };
        let _writer = self.writer.lock().unwrap_or_else(|poison| poison.into_inner());
        let mut members: Vec<Member> = {
            let agents = self.lock();
            if agents.trees.is_empty() && agents.written.is_empty() && path.exists() {
                return;
            }
            agents.trees.values().flatten().copied().collect()
        };
        members.sort();
        members.dedup();
        if members == self.lock().written && path.exists() {
            return;
        }
        let state = State {
            daemon: self.me,
            members: members.clone(),
        };
        let bytes = serde_json::to_vec(&state).unwrap_or_default();
        match codex_fusion_protocol::private::write_atomically_unsynced(path, &bytes) {
            Ok(()) => self.lock().written = members,
            Err(error) => tracing::warn!("cannot record the agent processes: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs")
    }

    fn running(child: &mut std::process::Child) -> bool {
        child.try_wait().expect("try_wait").is_none()
    }

    /// A child in the daemon's own group is one it is starting (forked,
    /// not yet in a group of its own); a child in a group or session of its
    /// own that no agent claims is an orphan to sweep.
    #[test]
    fn a_child_still_in_the_daemons_group_is_not_an_orphan() {
        use std::os::unix::process::CommandExt as _;
        let reaper = Reaper::new(None);
        let mut starting = sleeper();
        let mut leader = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep runs");
        let mut orphan = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .spawn()
            .expect("setsid runs");
        let orphan_pid = orphan.id();
        let mut found = BTreeSet::new();
        for _ in 0..100 {
            found = reaper
                .unclaimed_orphans(0)
                .into_iter()
                .map(|member| member.pid)
                .collect();
            if found.contains(&orphan_pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(found.contains(&orphan_pid), "{found:?}");
        assert!(!found.contains(&starting.id()), "{found:?}");
        assert!(!found.contains(&leader.id()), "{found:?}");
        for child in [&mut starting, &mut leader, &mut orphan] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[test]
    fn a_member_is_its_pid_and_start_time() {
        let mut child = sleeper();
        let member = Member::of(child.id()).expect("running");
        assert!(member.is_live());
        let other = Member {
            start: member.start + 1,
            ..member
        };
        assert!(!other.is_live(), "a different start time is another process");
        let _ = child.kill();
        let _ = child.wait();
        assert!(!member.is_live());
        assert_eq!(Member::of(child.id()), None);
    }

    /// Only processes whose pid and start time both match a record are
    /// killed; a reused pid (same pid, another start time) is left alone.
    #[test]
    fn leftovers_are_killed_only_when_pid_and_start_time_match() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_FILE);
        let mut recorded = sleeper();
        let mut reused = sleeper();
        let reused_now = Member::of(reused.id()).expect("running");
        let state = State {
            daemon: 1,
            members: vec![
                Member::of(recorded.id()).expect("running"),
                // A record of another process that had this pid.
                Member {
                    start: reused_now.start + 1,
                    ..reused_now
                },
                // A pid nobody has.
                Member {
                    pid: u32::MAX - 1,
                    start: 1,
                },
            ],
        };
        assert_ne!(state.members[1], reused_now);
        codex_fusion_protocol::private::write_atomically(&path, &serde_json::to_vec(&state).expect("json"))
            .expect("written");
        let killed = kill_leftovers(&path);
        assert_eq!(killed, vec![state.members[0]]);
        let status = recorded.wait().expect("wait");
        assert!(!status.success(), "the recorded process was killed: {status}");
        assert!(running(&mut reused), "the reused pid was left alone");
        let _ = reused.kill();
        let _ = reused.wait();
    }

    #[test]
    fn no_state_file_and_a_broken_one_kill_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_FILE);
        assert!(kill_leftovers(&path).is_empty());
        std::fs::write(&path, b"{not json").expect("written");
        assert!(kill_leftovers(&path).is_empty());
    }

    /// What a recorded process started after the record is killed with it.
    #[test]
    fn leftovers_include_what_the_recorded_started_since() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_FILE);
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("sh runs");
        let state = State {
            daemon: 1,
            members: vec![Member::of(shell.id()).expect("running")],
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let grandchild = loop {
            if let Some(pid) = codex_fusion_protocol::procfs::children_of(shell.id()).first() {
                break *pid;
            }
            assert!(std::time::Instant::now() < deadline, "sh started sleep");
            std::thread::sleep(Duration::from_millis(10));
        };
        let grandchild = Member::of(grandchild).expect("running");
        codex_fusion_protocol::private::write_atomically(&path, &serde_json::to_vec(&state).expect("json"))
            .expect("written");
        let killed = kill_leftovers(&path);
        assert!(killed.contains(&grandchild), "{killed:?}");
        let _ = shell.wait();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while grandchild.is_live() {
            assert!(std::time::Instant::now() < deadline, "the grandchild died");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_state_file_is_private_and_lists_the_tracked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(STATE_FILE);
        let reaper = Reaper::new(Some(path.clone()));
        let mut child = sleeper();
        reaper.track(child.id());
        let state: State = serde_json::from_slice(&std::fs::read(&path).expect("written")).expect("json");
        assert_eq!(state.members, vec![Member::of(child.id()).expect("running")]);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        reaper.forget(child.id());
        let state: State = serde_json::from_slice(&std::fs::read(&path).expect("written")).expect("json");
        assert!(state.members.is_empty());
        let _ = child.kill();
        let _ = child.wait();
    }
}
