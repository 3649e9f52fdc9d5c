//! No helper outlives its agent (issue 17), against the real codex-acp and
//! the real Codex sandbox: a consult whose sandboxed command runs long, the
//! codex-acp tree found by pid (the daemon's `status`) and walked in /proc,
//! then codex-acp's group or the daemon itself SIGKILLed mid-command, and
//! every pid of that tree (matched with its start time, so a reused pid is
//! not counted) checked gone. Nothing is looked up by name outside the
//! tree of the agent the test started.

use std::collections::BTreeSet;
use std::time::Duration;

use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_testkit::real::RealEnv;
use codex_fusion_testkit::{Client, TestEnv, wait_until};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;

const CALL_LIMIT: Duration = Duration::from_secs(90);
/// The sandboxed command: long enough to be killed in the middle of.
const LONG_COMMAND: &str = "sleep 45";
/// How long what is left of a killed tree may take to be gone.
const GONE_WITHIN: Duration = Duration::from_secs(5);

/// One process of the agent's tree as /proc showed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: u32,
    start: u64,
    parent: u32,
    group: u32,
    session: u32,
    name: String,
    /// The inode of its PID namespace (`/proc/PID/ns/pid`).
    pid_ns: String,
    command: String,
}

impl Proc {
    fn read(pid: u32) -> Option<Proc> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let name = head.split_once('(')?.1.to_owned();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            return None;
        }
        let command = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " ").trim().to_owned())
            .unwrap_or_default();
        let pid_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .map(|link| link.display().to_string())
            .unwrap_or_default();
        Some(Proc {
            pid,
            start: fields.get(19)?.parse().ok()?,
            parent: fields.get(1)?.parse().ok()?,
            group: fields.get(2)?.parse().ok()?,
            session: fields.get(3)?.parse().ok()?,
            name,
            pid_ns,
            command: command.chars().take(100).collect(),
        })
    }

    /// Whether this very process still runs (same pid, same start time,
    /// not a zombie).
    fn alive(&self) -> bool {
        Proc::read(self.pid).is_some_and(|now| now.start == self.start)
    }
}

/// The live processes of `root`'s tree.
fn tree(root: u32) -> Vec<Proc> {
    codex_fusion_protocol::procfs::tree(root)
        .into_iter()
        .filter_map(Proc::read)
        .collect()
}

/// The pids of the daemon's agents.
async fn agent_pids(env: &TestEnv) -> Vec<u32> {
    match env.control(ControlRequest::Status { workspace: None }).await {
        ControlResponse::Status(status) => status.agents.iter().filter_map(|agent| agent.pid).collect(),
        other => panic!("status answered {other:?}"),
    }
}

/// Starts a consult whose sandboxed command runs long and waits until that
/// command runs: the agent's pid and its tree then.
async fn mid_command(real: &RealEnv, client: &Client) -> (u32, Vec<Proc>) {
    let handle = client
        .start_call(
            "consult",
            json!({ "question": format!("Wait for it.\nmock:exec-sandboxed:{LONG_COMMAND}") }),
        )
        .await;
    // The answer never comes whole (the agent is killed); it is not awaited.
    std::mem::forget(handle);
    let mut found = None;
    let deadline = tokio::time::Instant::now() + CALL_LIMIT;
    while found.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sandboxed command did not start; daemon log:\n{}",
            real.env.daemon_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        for root in agent_pids(&real.env).await {
            let processes = tree(root);
            if processes.iter().any(|proc| proc.command == LONG_COMMAND) {
                found = Some((root, processes));
            }
        }
    }
    let (root, _) = found.expect("found");
    // Let the sandbox settle (the helpers between codex and the command).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let processes = tree(root);
    eprintln!("the agent's tree mid-command (root {root}):");
    for proc in &processes {
        eprintln!(
            "  pid {} parent {} group {} session {} {} {} ({})",
            proc.pid, proc.parent, proc.group, proc.session, proc.pid_ns, proc.name, proc.command
        );
    }
    (root, processes)
}

/// A client whose consult runs a long sandboxed command, with the agent's
/// pid and tree then, which holds codex's sandbox helpers.
async fn in_sandboxed_command(real: &RealEnv) -> (Client, u32, Vec<Proc>) {
    let client = Client::start(&real.env, &[]).await;
    let (root, processes) = mid_command(real, &client).await;
    assert!(
        !sandbox_helpers(&processes).is_empty(),
        "codex ran the command in its sandbox: {processes:#?}"
    );
    (client, root, processes)
}

/// Waits until none of `processes` runs; panics naming the survivors.
async fn all_gone(processes: &[Proc], what: &str) {
    let deadline = tokio::time::Instant::now() + GONE_WITHIN;
    loop {
        let left: Vec<&Proc> = processes.iter().filter(|proc| proc.alive()).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of the agent's {} processes are still running: {left:#?}",
            left.len(),
            processes.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the daemon's record of its agents holds every one of
/// `processes` that still runs (it records a tree at most a refresh after
/// it changed; a helper that lived less than that may never be in it).
async fn wait_recorded(real: &RealEnv, processes: &[Proc]) {
    let record = real.env.state_dir.join("agent-processes.json");
    wait_until("the daemon records the agent's tree", Duration::from_secs(10), || {
        let Ok(text) = std::fs::read_to_string(&record) else {
            return false;
        };
        let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
            return false;
        };
        let recorded: BTreeSet<(u32, u64)> = state["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|member| Some((member["pid"].as_u64()? as u32, member["start"].as_u64()?)))
            .collect();
        processes
            .iter()
            .filter(|proc| proc.alive())
            .all(|proc| recorded.contains(&(proc.pid, proc.start)))
    })
    .await;
}

/// Kills the daemon (and with `with_agent`, that agent's group right
/// after), checks what of `processes` outlived it, then has a new daemon
/// started and checks it killed them: what the new daemon logged it killed.
/// (The shim starts the new daemon as soon as it loses the old one, so
/// what outlived the old daemon may be gone before this looks.)
async fn kill_daemon_then_restart(
    real: &RealEnv,
    client: &Client,
    processes: &[Proc],
    with_agent: Option<u32>,
) -> String {
    if let Some(root) = with_agent {
        // Both die at once: the daemon is stopped first, so it cannot
        // clean up after the agent.
        let daemon = real.env.daemon_pid().expect("a daemon runs");
        nix::sys::signal::kill(Pid::from_raw(daemon), Signal::SIGSTOP).expect("SIGSTOP");
        killpg(Pid::from_raw(root as i32), Signal::SIGKILL).expect("killpg");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    real.env.kill_daemon().await;
    // Left alone, what is left of the tree outlives its daemon.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let survivors: Vec<&Proc> = processes.iter().filter(|proc| proc.alive()).collect();
    eprintln!(
        "{} of the agent's {} processes outlived the SIGKILLed daemon: {:?}",
        survivors.len(),
        processes.len(),
        survivors
            .iter()
            .map(|proc| format!(
                "{} {} parent now {}",
                proc.pid,
                proc.name,
                Proc::read(proc.pid).map_or(0, |now| now.parent)
            ))
            .collect::<Vec<_>>()
    );
    // The next call starts a new daemon, which kills them at its start.
    let (error, text) = client
        .call_within(CALL_LIMIT, "consult", json!({ "question": "Still there?" }))
        .await;
    assert!(!error, "{text}");
    all_gone(processes, "after a new daemon started").await;
    let logs = real.env.daemon_logs();
    let killed: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("killed what an earlier daemon"))
        .collect();
    eprintln!("the new daemon: {killed:?}");
    killed.concat()
}

/// The sandbox helpers among `processes`, told by the program they were
/// started as (their `comm` says little: bwrap is exec'd from a file
/// descriptor and shows as its number, codex-linux-sandbox as `codex`).
fn sandbox_helpers(processes: &[Proc]) -> Vec<&Proc> {
    processes
        .iter()
        .filter(|proc| {
            let program = proc.command.split(' ').next().unwrap_or_default();
            let program = program.rsplit('/').next().unwrap_or_default();
            program == "bwrap" || program == "codex-linux-sandbox"
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agents_group_mid_command_leaves_no_helper() {
    let real = RealEnv::new(true).await;
    let (client, root, processes) = in_sandboxed_command(&real).await;
    let helpers = sandbox_helpers(&processes);
    let outside: Vec<&&Proc> = helpers.iter().filter(|proc| proc.group != root).collect();
    eprintln!(
        "{} sandbox helpers, {} of them outside the agent's group",
        helpers.len(),
        outside.len()
    );
    // A crash of codex-acp: its whole group dies at once.
    killpg(Pid::from_raw(root as i32), Signal::SIGKILL).expect("killpg");
    all_gone(&processes, "after codex-acp's group was SIGKILLed").await;
    // The daemon is fine and starts another agent.
    let (error, text) = client
        .call_within(CALL_LIMIT, "consult", json!({ "question": "Still there?" }))
        .await;
    assert!(!error, "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_command_has_its_leftovers_killed_by_the_next() {
    let real = RealEnv::new(true).await;
    let (client, _, processes) = in_sandboxed_command(&real).await;
    wait_recorded(&real, &processes).await;
    kill_daemon_then_restart(&real, &client, &processes, None).await;
    client.close().await;
}

/// The daemon's own stop mid-command, by SIGTERM (a logout) or
/// `codex-fusion stop`: it kills its agent's whole tree, the sandbox
/// helpers in their own PID namespace included, before it exits, and
/// leaves a next daemon nothing to kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_stopped_mid_command_leaves_no_helper() {
    for by_cli in [false, true] {
        let real = RealEnv::new(true).await;
        let (client, _, processes) = in_sandboxed_command(&real).await;
        let daemon = real.env.daemon_pid().expect("a daemon runs");
        if by_cli {
            let output = real.env.cli(&["stop"], None).await;
            assert!(output.status.success(), "{output:?}");
        } else {
            nix::sys::signal::kill(Pid::from_raw(daemon), Signal::SIGTERM).expect("SIGTERM");
        }
        wait_until("the daemon exits", Duration::from_secs(20), || {
            !codex_fusion_testkit::env::is_alive(daemon)
        })
        .await;
        all_gone(&processes, "after the daemon stopped").await;
        // The shim lost its daemon mid-call and starts a new one at once;
        // once that answers, it has run its start-up sweep, which would
        // have killed what the stop left and said so. (Waiting for it also
        // lets the env stop it: one still starting at the end would
        // outlive the test.)
        wait_until("the shim's new daemon runs", Duration::from_secs(20), || {
            real.env
                .daemon_pid()
                .is_some_and(|pid| pid != daemon && codex_fusion_testkit::env::is_alive(pid))
        })
        .await;
        let _ = agent_pids(&real.env).await;
        let logs = real.env.daemon_logs();
        assert!(
            !logs.contains("killed what an earlier daemon"),
            "by cli: {by_cli}\n{logs}"
        );
        client.close().await;
    }
}

/// Opening a session and a turn that runs no command start no sandbox
/// helper (issue 17: codex started about six while it opened a session, to
/// look for AGENTS.md through its sandboxed file helper, and left `bwrap`
/// under PID 1 when codex-acp died then; the daemon now reads AGENTS.md
/// itself). The agent's tree is watched every few milliseconds from the
/// call to its answer; a helper takes tens of them to start and stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_session_starts_no_sandbox_helper() {
    let real = RealEnv::new(true).await;
    std::fs::write(real.env.workspace.join("AGENTS.md"), "Be brief.\n").expect("AGENTS.md");
    let client = Client::start(&real.env, &[]).await;
    let handle = client
        .start_call("consult", json!({ "question": "Is anyone there?" }))
        .await;
    let response = tokio::spawn(handle.await_response());
    let deadline = tokio::time::Instant::now() + CALL_LIMIT;
    let mut seen: BTreeSet<Proc> = BTreeSet::new();
    let mut root = None;
    let answer = loop {
        assert!(tokio::time::Instant::now() < deadline, "no answer; seen: {seen:#?}");
        if root.is_none() {
            root = agent_pids(&real.env).await.first().copied();
        }
        if let Some(root) = root {
            seen.extend(tree(root));
        }
        if response.is_finished() {
            break response.await.expect("joined").expect("answered");
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    };
    let answer = codex_fusion_testkit::client::response_text(&answer);
    assert!(answer.contains("Mock answer"), "{answer}");
    let seen: Vec<Proc> = seen.into_iter().collect();
    assert!(
        seen.iter().any(|proc| proc.name == "codex"),
        "the tree was watched: {seen:#?}"
    );
    let helpers = sandbox_helpers(&seen);
    assert!(
        helpers.is_empty(),
        "sandbox helpers while opening a session: {helpers:#?}"
    );
    client.close().await;
}

/// At session start codex runs the user's login shell (`bash -lc`, to take
/// a snapshot of its environment) in a session of its own, outside the
/// agent's process group. A `.bashrc` that takes long keeps it running; a
/// SIGKILL of codex-acp's group then must not leave it (and what it runs)
/// behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_shell_codex_starts_dies_with_the_agent() {
    let (_real, client, root, processes) = slow_login_shell().await;
    let outside: Vec<&Proc> = processes.iter().filter(|proc| proc.group != root).collect();
    assert!(
        !outside.is_empty(),
        "the shell is outside the agent's group: {processes:#?}"
    );
    killpg(Pid::from_raw(root as i32), Signal::SIGKILL).expect("killpg");
    all_gone(
        &processes,
        "after codex-acp's group was SIGKILLed with the login shell running",
    )
    .await;
    client.close().await;
}

/// The daemon SIGKILLed while codex's login shell runs (see above), and
/// codex-acp with it: left alone, codex-acp ends when its stdin closes and
/// takes the shell with it, but one that dies with the daemon (the two
/// killed together, the daemon unable to clean up) leaves the shell, in a
/// session of its own, running. The next daemon kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_shell_left_by_a_killed_daemon_is_killed_by_the_next() {
    let (real, client, root, processes) = slow_login_shell().await;
    wait_recorded(&real, &processes).await;
    let killed = kill_daemon_then_restart(&real, &client, &processes, Some(root)).await;
    // The login shell and what its `.bashrc` runs: the shell's own session.
    // (A sandbox helper caught in the tree leads a group of its own too,
    // but dies with codex: `bwrap --die-with-parent`.)
    let shell_session = processes
        .iter()
        .find(|proc| proc.command == SHELL_SLEEP)
        .map(|proc| proc.session)
        .expect("the shell's sleep is in the tree");
    let shell: Vec<&Proc> = processes.iter().filter(|proc| proc.session == shell_session).collect();
    assert!(shell.len() >= 2, "the shell and its sleep: {shell:#?}");
    for proc in shell {
        assert!(
            killed.contains(&proc.pid.to_string()),
            "the new daemon killed {} ({}): {killed}",
            proc.pid,
            proc.name
        );
    }
    client.close().await;
}

/// Starts a consult and waits until the login shell codex starts runs the
/// slow `.bashrc`: the agent's pid and its tree then.
/// What the slow `.bashrc` of [`slow_login_shell`] runs.
const SHELL_SLEEP: &str = "sleep 47";

/// A daemon whose codex runs a login shell that takes long (its `.bashrc`
/// sleeps), with that shell running: the env, its client, the agent's
/// root pid and its tree.
/// An idle stop (`CODEX_FUSION_AGENT_IDLE_SECS`) of an agent whose login
/// shell still runs after the consult was answered: the shell, outside the
/// agent's group, goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stop_leaves_no_login_shell_behind() {
    let mut real = RealEnv::new(true).await;
    let home = real.env.dir("home");
    std::fs::write(home.join(".bashrc"), format!("{SHELL_SLEEP}\n")).expect(".bashrc");
    real.env.set("HOME", home.to_str().expect("utf8"));
    real.env.set("CODEX_FUSION_AGENT_IDLE_SECS", "2");
    let client = Client::start(&real.env, &[]).await;
    let (error, text) = client
        .call_within(CALL_LIMIT, "consult", json!({ "question": "Is anyone there?" }))
        .await;
    assert!(!error, "{text}");
    let root = agent_pids(&real.env).await.first().copied().expect("an agent");
    let processes = tree(root);
    assert!(
        processes
            .iter()
            .any(|proc| proc.command == SHELL_SLEEP && proc.group != root),
        "the login shell still runs, outside the agent's group: {processes:#?}"
    );
    wait_until("the idle agent stops", Duration::from_secs(20), || {
        !codex_fusion_testkit::env::is_alive(root as i32)
    })
    .await;
    all_gone(&processes, "after the idle agent stopped").await;
    client.close().await;
}

async fn slow_login_shell() -> (RealEnv, Client, u32, Vec<Proc>) {
    let mut real = RealEnv::new(true).await;
    let home = real.env.dir("home");
    std::fs::write(home.join(".bashrc"), format!("{SHELL_SLEEP}\n")).expect(".bashrc");
    real.env.set("HOME", home.to_str().expect("utf8"));
    let client = Client::start(&real.env, &[]).await;
    let (root, processes) = login_shell_running(&real, &client).await;
    (real, client, root, processes)
}

async fn login_shell_running(real: &RealEnv, client: &Client) -> (u32, Vec<Proc>) {
    let handle = client
        .start_call("consult", json!({ "question": "Is anyone there?" }))
        .await;
    std::mem::forget(handle);
    let deadline = tokio::time::Instant::now() + CALL_LIMIT;
    let (root, processes) = loop {
        assert!(tokio::time::Instant::now() < deadline, "the login shell did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(root) = agent_pids(&real.env).await.first().copied() else {
            continue;
        };
        let processes = tree(root);
        if processes.iter().any(|proc| proc.command == SHELL_SLEEP) {
            break (root, processes);
        }
    };
    eprintln!("the agent's tree with the login shell running (root {root}):");
    for proc in &processes {
        eprintln!(
            "  pid {} parent {} group {} session {} {} {} ({})",
            proc.pid, proc.parent, proc.group, proc.session, proc.pid_ns, proc.name, proc.command
        );
    }
    (root, processes)
}
