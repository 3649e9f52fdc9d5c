//! Soak: a day of use compressed into about a minute. 2 000 turns across 20
//! workspaces (one long-lived MCP client each, through real shims) while
//! 500 shims connect and disconnect (half close their stdin, half are
//! killed), against the fake agent. The daemon's open file descriptors and
//! RSS after warm-up and at the end must stay within a small constant, no
//! turn may be lost, and nothing may be left running once the daemon stops.
//!
//! The figures are printed as `FIGURE …` lines (docs/RELIABILITY.md):
//! `cargo nextest run -p codex-fusion-testkit --test soak --success-output final`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::{Channel, Hello, HelloReply, Role, frame};
use codex_fusion_testkit::env::{is_alive, processes_matching};
use codex_fusion_testkit::{Client, TestEnv};
use nix::sys::signal::Signal;
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const WORKSPACES: usize = 20;
/// Turns per workspace while warming up, then in the measured run.
const WARM_TURNS: usize = 5;
const TURNS: usize = 95;
/// Shim connect/disconnect cycles while warming up, then measured.
const WARM_CYCLES: usize = 20;
const CYCLES: usize = 480;
/// Cycles run side by side (the machine has two cores).
const CYCLE_LANES: usize = 4;
/// Allowed growth between warm-up and the end.
const FD_SLACK: usize = 10;
const RSS_SLACK_KIB: u64 = 20 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_2000_turns_and_500_reconnects_keep_fds_and_memory_flat() {
    let env = TestEnv::new();
    let mut daemon = env.start_daemon().await;
    let pid = daemon.pid();
    let workspaces: Vec<PathBuf> = (0..WORKSPACES)
        .map(|index| env.dir(&format!("ws-{index:02}")))
        .collect();
    let clients = futures::future::join_all(workspaces.iter().map(|workspace| {
        let workspace = workspace.to_str().expect("utf-8 path").to_owned();
        let env = &env;
        async move { Client::start(env, &[("CODEX_FUSION_WORKSPACE", workspace.as_str())]).await }
    }))
    .await;
    let started = Instant::now();
    let mut shims = Vec::new();

    // Warm-up: every session started, every code path taken once.
    run_turns(&clients, 0, WARM_TURNS).await;
    shims.extend(run_cycles(&env, WARM_CYCLES).await);
    wait_for_connections(&env, WORKSPACES).await;
    let warm = Sample::take(pid);
    let warm_at = started.elapsed();

    let measured = Instant::now();
    let ((), cycled) = tokio::join!(run_turns(&clients, WARM_TURNS, TURNS), run_cycles(&env, CYCLES));
    let run_took = measured.elapsed();
    shims.extend(cycled);
    wait_for_connections(&env, WORKSPACES).await;
    let end = Sample::take(pid);

    // No turn was lost: each workspace's session saw every prompt.
    for (client, workspace) in clients.iter().zip(&workspaces) {
        let text = client.text("consult", json!({"question": "how many?"})).await;
        let expected = WARM_TURNS + TURNS + 1;
        assert!(
            text.contains(&format!("prompts_seen={expected}")),
            "{}: expected prompt {expected}: {text}",
            workspace.display()
        );
    }
    println!(
        "FIGURE soak: {} turns over {WORKSPACES} workspaces and {} shim cycles ({CYCLE_LANES} lanes, half killed) in {run_took:?} after a {warm_at:?} warm-up",
        WORKSPACES * (WARM_TURNS + TURNS),
        WARM_CYCLES + CYCLES
    );
    println!(
        "FIGURE soak daemon after warm-up: {} fds, RSS {} KiB; at the end: {} fds, RSS {} KiB (peak {} KiB, {} threads)",
        warm.fds, warm.rss_kib, end.fds, end.rss_kib, end.hwm_kib, end.threads
    );
    assert!(
        end.fds <= warm.fds + FD_SLACK,
        "fds grew from {} to {}",
        warm.fds,
        end.fds
    );
    assert!(
        end.rss_kib <= warm.rss_kib + RSS_SLACK_KIB,
        "RSS grew from {} KiB to {} KiB",
        warm.rss_kib,
        end.rss_kib
    );

    let agents = agent_pids(&env);
    // Shared: 16 workspaces per process by default (pool::DEFAULT_MAX_SESSIONS).
    assert_eq!(
        agents.len(),
        WORKSPACES.div_ceil(16),
        "the workspaces share codex-acp processes: {agents:?}"
    );
    for client in clients {
        shims.push(client.shim.id().map_or(0, |pid| pid as i32));
        client.close().await;
    }
    let status = daemon.signal_and_wait(Signal::SIGTERM).await;
    assert!(status.success(), "{status}");
    let left: Vec<i32> = agents.iter().copied().filter(|pid| is_alive(*pid)).collect();
    assert!(left.is_empty(), "codex-acp children outlived the daemon: {left:?}");
    assert!(agent_pids(&env).is_empty(), "{:?}", agent_pids(&env));
    let shims_left: Vec<i32> = shims.iter().copied().filter(|pid| *pid > 0 && is_alive(*pid)).collect();
    assert!(shims_left.is_empty(), "shims still running: {shims_left:?}");
    assert!(!env.socket.exists());
}

/// Runs `count` turns on every client concurrently (each client's own
/// turns in sequence), numbered from `first`, checking every answer.
async fn run_turns(clients: &[Client], first: usize, count: usize) {
    futures::future::join_all(clients.iter().map(|client| async move {
        for index in first..first + count {
            let (tool, arguments) = match index % 10 {
                3 => ("reply", json!({"message": format!("and turn {index}?")})),
                7 => ("consult", json!({"question": format!("turn {index} fake:reason")})),
                _ => ("consult", json!({"question": format!("turn {index}")})),
            };
            let text = client.text(tool, arguments).await;
            assert!(
                text.contains(&format!("prompts_seen={}", index + 1)),
                "turn {index}: {text}"
            );
        }
    }))
    .await;
}

/// `count` shim lifetimes in CYCLE_LANES lanes: start, initialize, list
/// tools or ask for status, then close stdin (even) or SIGKILL (odd).
/// Returns the shims' pids.
async fn run_cycles(env: &TestEnv, count: usize) -> Vec<i32> {
    let lanes = futures::future::join_all((0..CYCLE_LANES).map(|lane| async move {
        let mut pids = Vec::new();
        for index in (lane..count).step_by(CYCLE_LANES) {
            let mut client = Client::start(env, &[]).await;
            pids.push(client.shim.id().map_or(0, |pid| pid as i32));
            if index % 5 == 0 {
                assert!(client.text("status", json!({})).await.contains("daemon: codex-fusiond"));
            } else {
                assert_eq!(client.service.list_all_tools().await.expect("tools/list").len(), 9);
            }
            if index % 2 == 0 {
                assert!(client.close().await.success());
            } else {
                client.shim.start_kill().expect("kill the shim");
                let _ = client.shim.wait().await;
            }
        }
        pids
    }))
    .await;
    lanes.into_iter().flatten().collect()
}

/// Waits until the daemon counts exactly the long-lived clients (plus the
/// control connection asking), so closed shims are really gone.
async fn wait_for_connections(env: &TestEnv, clients: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let connections = daemon_connections(env).await;
        if connections == clients + 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon still counts {connections} connections"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn daemon_connections(env: &TestEnv) -> usize {
    let stream = tokio::net::UnixStream::connect(&env.socket).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(&frame::encode(&Hello::new(Role::Cli, Channel::Control)))
        .await
        .expect("hello");
    write
        .write_all(&frame::encode(&ControlRequest::Status { workspace: None }))
        .await
        .expect("status");
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).await.expect("hello reply");
    assert!(matches!(
        frame::decode::<HelloReply>(&line),
        Ok(HelloReply::Accepted { .. })
    ));
    line.clear();
    reader.read_until(b'\n', &mut line).await.expect("status");
    match frame::decode::<ControlResponse>(&line) {
        Ok(ControlResponse::Status(status)) => status.connections,
        other => panic!("{other:?}"),
    }
}

/// The daemon's resources at one moment, from /proc.
struct Sample {
    fds: usize,
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
}

impl Sample {
    fn take(pid: i32) -> Sample {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name}:")))
                .and_then(|value| value.split_whitespace().next())
                .and_then(|value| value.parse().ok())
                .expect("a /proc status field")
        };
        Sample {
            fds: std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc fd").count(),
            rss_kib: field("VmRSS"),
            hwm_kib: field("VmHWM"),
            threads: field("Threads"),
        }
    }
}

/// Live fake agents of this env (their command line names its state dir).
fn agent_pids(env: &TestEnv) -> Vec<i32> {
    let needle = env.agent_state.display().to_string();
    processes_matching(&needle)
        .into_iter()
        .filter(|(_, command)| command.contains("fake-codex-acp"))
        .map(|(pid, _)| pid)
        .collect()
}
