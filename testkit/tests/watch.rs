//! `codex-fusion watch` end to end: the real CLI following the real daemon
//! (and the fake agent) — a turn's start, reasoning, text and answer; a
//! pause; a watcher that never reads does not slow the turn and later says
//! what it dropped; a daemon restart.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use codex_fusion_testkit::{Client, TestEnv, binary};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout};

fn consult(question: &str) -> Value {
    json!({ "question": question })
}

/// A running `codex-fusion watch --json`: its stderr is read as it comes;
/// its stdout once [`Watcher::read`] is called (until then nobody reads it).
struct Watcher {
    _child: Child,
    stdout: Option<ChildStdout>,
    events: Arc<Mutex<Vec<Value>>>,
    notes: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    fn start(env: &TestEnv) -> Watcher {
        let mut command = tokio::process::Command::new(binary("codex-fusion"));
        env.apply(&mut command);
        command
            .args(["watch", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn codex-fusion watch");
        let notes = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let into = notes.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                into.lock().expect("lock").push(line);
            }
        });
        Watcher {
            stdout: child.stdout.take(),
            _child: child,
            events: Arc::new(Mutex::new(Vec::new())),
            notes,
        }
    }

    /// Starts reading stdout: every line must be one JSON object.
    fn read(&mut self) {
        let mut stdout = BufReader::new(self.stdout.take().expect("read once")).lines();
        let into = self.events.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let event: Value = serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"));
                into.lock().expect("lock").push(event);
            }
        });
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().expect("lock").clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.lock().expect("lock").clone()
    }

    fn of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|event| event["event"] == kind)
            .collect()
    }

    async fn wait_for(&self, what: &str, condition: impl Fn(&Watcher) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !condition(self) {
            assert!(
                Instant::now() < deadline,
                "watch never showed {what}; events: {:#?}; notes: {:#?}",
                self.events(),
                self.notes()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many times it has connected.
    fn connections(&self) -> usize {
        self.notes().iter().filter(|note| note.contains("watching ")).count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_a_turn_start_reason_stream_and_answer() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let mut watcher = Watcher::start(&env);
    watcher.read();
    watcher.wait_for("that it connected", |w| w.connections() == 1).await;
    let text = client.text("consult", consult("fake:reason fake:slow:600")).await;
    assert!(text.contains("fake answer"), "{text}");
    watcher.wait_for("the answer", |w| !w.of("answered").is_empty()).await;
    let events = watcher.events();
    let kinds: Vec<&str> = events.iter().filter_map(|event| event["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"turn_started"), "{kinds:?}");
    assert_eq!(events[0]["tool"], "consult");
    assert_eq!(kinds.last(), Some(&"answered"), "{kinds:?}");
    let thoughts = watcher.of("thought");
    assert!(
        thoughts.iter().any(|event| event["tail"]
            .as_str()
            .unwrap_or_default()
            .contains("weighing the options")),
        "{thoughts:?}"
    );
    let texts = watcher.of("text");
    assert!(
        texts
            .iter()
            .any(|event| event["tail"].as_str().unwrap_or_default().contains("streaming 2")),
        "{texts:?}"
    );
    let answered = &watcher.of("answered")[0];
    assert_eq!(answered["verdict"], "CONSENSUS");
    assert!(
        answered["footer"]
            .as_str()
            .unwrap_or_default()
            .starts_with("— codex-fusion"),
        "{answered}"
    );
    // The next turn shows up on the same watch.
    client.text("consult", consult("again")).await;
    watcher
        .wait_for("the second turn", |w| w.of("answered").len() == 2)
        .await;
    assert_eq!(watcher.of("turn_started").len(), 2);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_and_its_permit_show_in_the_watch() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let mut watcher = Watcher::start(&env);
    watcher.read();
    watcher.wait_for("that it connected", |w| w.connections() == 1).await;
    let text = client.text("consult", consult("fake:permission:execute:touch x")).await;
    assert!(text.starts_with("🔐 Codex paused"), "{text}");
    watcher.wait_for("the pause", |w| !w.of("paused").is_empty()).await;
    let paused = &watcher.of("paused")[0];
    assert!(
        paused["summary"].as_str().unwrap_or_default().contains("touch"),
        "{paused}"
    );
    assert!(
        paused["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("🔐 Codex paused"),
        "{paused}"
    );
    assert!(paused["id"].as_str().is_some_and(|id| text.contains(id)), "{paused}");
    let text = client.text("permit", json!({"decision": "allow"})).await;
    assert!(text.contains("fake answer"), "{text}");
    watcher
        .wait_for("the answer after the permit", |w| !w.of("answered").is_empty())
        .await;
    let activities = watcher.of("activity");
    assert!(
        activities
            .iter()
            .any(|event| event["line"].as_str().unwrap_or_default().starts_with("permit allow:")),
        "{activities:?}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_does_not_slow_the_turn_and_later_says_what_it_dropped() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    // Enough streamed chunks (one event each) to fill the watcher's pipe,
    // its socket and the daemon's backlog many times over.
    let flood = consult("fake:flood:20000");
    client.text("consult", consult("warm up")).await;
    let started = Instant::now();
    client.text("consult", flood.clone()).await;
    let unwatched = started.elapsed();
    let mut watcher = Watcher::start(&env);
    watcher.wait_for("that it connected", |w| w.connections() == 1).await;
    let started = Instant::now();
    let text = client.text("consult", flood).await;
    let watched = started.elapsed();
    assert!(text.contains("fake answer"), "{text}");
    assert!(
        watched < unwatched * 3 + Duration::from_secs(3),
        "a stalled watcher slowed the turn: {watched:?} against {unwatched:?} unwatched"
    );
    watcher.read();
    watcher.wait_for("dropped lines", |w| !w.of("dropped").is_empty()).await;
    let dropped = watcher.of("dropped")[0]["count"].as_u64().unwrap_or_default();
    assert!(dropped > 0);
    watcher.wait_for("the answer", |w| !w.of("answered").is_empty()).await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_waits_for_a_daemon_and_survives_its_restart() {
    let env = TestEnv::new();
    let mut watcher = Watcher::start(&env);
    watcher.read();
    watcher
        .wait_for("that it waits", |w| {
            w.notes().iter().any(|note| note.contains("waiting for codex-fusiond"))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(env.daemon_pid().is_none(), "watching starts no daemon");
    assert_eq!(
        watcher.notes().iter().filter(|note| note.contains("waiting")).count(),
        1,
        "said once: {:?}",
        watcher.notes()
    );
    let client = Client::start(&env, &[]).await;
    client.text("consult", consult("first")).await;
    watcher.wait_for("that it connected", |w| w.connections() == 1).await;
    let first = env.daemon_pid().expect("a daemon");
    env.kill_daemon().await;
    watcher
        .wait_for("that it noticed", |w| {
            w.notes().iter().any(|note| note.contains("went away"))
        })
        .await;
    // The next call starts a new daemon; the watcher finds it and sees the
    // turn (from its start, or as one under way).
    let text = client.text("consult", consult("fake:slow:1500 second")).await;
    assert!(text.contains("fake answer"), "{text}");
    assert_ne!(env.daemon_pid(), Some(first));
    watcher.wait_for("that it reconnected", |w| w.connections() == 2).await;
    watcher
        .wait_for("the second answer", |w| !w.of("answered").is_empty())
        .await;
    assert!(
        !watcher.of("turn_started").is_empty() || !watcher.of("running").is_empty(),
        "{:?}",
        watcher.events()
    );
    client.close().await;
}
