//! No answer is ever lost (issue 16): the daemon keeps every turn's answer
//! whole, `status` names the last one, and `codex-fusion log` lists them,
//! through the daemon or, when none runs, from the files. The real
//! binaries and the fake agent on a private socket.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use codex_fusion_protocol::answers::{AnswerRecord, Outcome};
use codex_fusion_protocol::control::DaemonStatus;
use codex_fusion_testkit::{Client, TestEnv};
use serde_json::{Value, json};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `codex-fusion log ARGS --json`, parsed: its source and its records.
async fn log_json(env: &TestEnv, args: &[&str]) -> (String, Vec<AnswerRecord>) {
    let mut all = vec!["log", "--json"];
    all.extend_from_slice(args);
    let output = env.cli(&all, None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let answers = serde_json::from_value(report["answers"].clone()).expect("records");
    (report["source"].as_str().expect("source").to_owned(), answers)
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_in_log_whole_and_status_names_the_last() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[("CODEX_FUSION_MAX_RESULT_CHARS", "2000")]).await;
    let short = client.text("consult", json!({"question": "first"})).await;
    assert!(short.contains("prompts_seen=1"), "{short}");
    // Longer than Claude may see: the result is cut, the kept file is whole.
    let long = client.text("review_plan", json!({"plan": "fake:big:6000"})).await;
    assert!(long.contains("answer cut at"), "{long}");

    let (source, records) = log_json(&env, &[]).await;
    assert_eq!(source, "daemon");
    assert_eq!(records.len(), 2, "{records:?}");
    let (newest, oldest) = (&records[0], &records[1]);
    assert_eq!(newest.tool, "review_plan", "{records:#?}");
    assert_eq!(oldest.tool, "consult");
    assert!(newest.cut && !oldest.cut);
    for record in &records {
        assert_eq!(record.outcome, Outcome::Answer);
        assert_eq!(record.workspace, env.workspace);
        assert_eq!(record.verdict.as_deref(), Some("CONSENSUS"));
        assert_eq!(record.verdict_summary.as_deref(), Some("fake agrees"));
        assert_eq!(record.stop_reason.as_deref(), Some("end_turn"));
        assert!(record.duration_ms.is_some() && record.tokens.is_some(), "{record:?}");
        assert!(
            record.file.starts_with(env.state_dir.join("recent")),
            "{}",
            record.file.display()
        );
        assert_eq!(mode(&record.file), 0o600);
        assert_eq!(mode(record.file.parent().expect("dir")), 0o700);
    }
    let full = std::fs::read_to_string(&newest.file).expect("the kept answer");
    assert!(
        full.chars().count() > 6000,
        "the whole answer: {} chars",
        full.chars().count()
    );
    assert!(full.trim_end().ends_with("VERDICT: CONSENSUS — fake agrees"));
    assert_eq!(newest.chars, full.chars().count() as u64);
    assert!(
        long.contains(&newest.file.display().to_string()),
        "the cut result names the kept file: {long}"
    );
    assert!(
        std::fs::read_to_string(&oldest.file)
            .expect("kept")
            .contains("prompts_seen=1")
    );

    // -n keeps the newest.
    let (_, one) = log_json(&env, &["-n", "1"]).await;
    assert_eq!(one, vec![newest.clone()]);

    // The terminal form: the facts and the file.
    let output = env.cli(&["log"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "The last 2 turns of {} (newest first):",
            env.workspace.display()
        )),
        "{text}"
    );
    assert!(text.contains("· review_plan · CONSENSUS · "), "{text}");
    assert!(text.contains("· end_turn"), "{text}");
    assert!(
        text.contains(&format!("full answer (Claude got it cut): {}", newest.file.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("full answer: {}", oldest.file.display())),
        "{text}"
    );

    // status, as JSON and as text, and the MCP tool, name the last answer.
    let output = env.cli(&["status", "--json"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let status: DaemonStatus = serde_json::from_slice(&output.stdout).expect("status JSON");
    assert_eq!(status.last_answer(&env.workspace), Some(newest));
    let output = env.cli(&["status"], None).await;
    let text = stdout(&output);
    assert!(text.contains("last answer    review_plan · CONSENSUS · "), "{text}");
    assert!(text.contains(&newest.file.display().to_string()), "{text}");
    let text = client.text("status", json!({})).await;
    assert!(
        text.contains(&format!("full text in {}", newest.file.display())),
        "{text}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_and_the_answer_permit_brings_are_kept_under_the_tool_that_asked() {
    let env = TestEnv::new();
    let client = Client::start(&env, &[]).await;
    let paused = client
        .text(
            "review_diff",
            json!({"instructions": "fake:permission:execute:made.txt"}),
        )
        .await;
    assert!(paused.starts_with("🔐 Codex paused"), "{paused}");
    let answer = client.text("permit", json!({"decision": "allow"})).await;
    assert!(answer.contains("fake answer"), "{answer}");
    let (_, records) = log_json(&env, &[]).await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1].outcome, Outcome::Paused);
    assert_eq!(records[1].tool, "review_diff");
    assert!(
        std::fs::read_to_string(&records[1].file)
            .expect("kept")
            .contains("made.txt")
    );
    assert_eq!(records[0].outcome, Outcome::Answer);
    assert_eq!(records[0].tool, "review_diff");
    assert!(records[0].after_permit);
    let output = env.cli(&["log"], None).await;
    let text = stdout(&output);
    assert!(text.contains("· review_diff (after permit) · CONSENSUS"), "{text}");
    assert!(text.contains("· review_diff · PAUSED"), "{text}");
    assert!(text.contains("the pause: "), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_reads_the_files_when_no_daemon_runs_and_says_when_there_is_nothing() {
    let env = TestEnv::new();
    // Nothing yet, and no daemon: a clear message, success, no daemon started.
    let output = env.cli(&["log"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "No answers kept for {} yet. Each Codex tool call's answer is kept once it finishes \
             (the last 20 per workspace, for 7 days) in {}.\n",
            env.workspace.display(),
            env.state_dir.join("recent").display()
        )
    );
    assert!(env.daemon_pid().is_none(), "log never starts the daemon");

    let client = Client::start(&env, &[]).await;
    client.text("consult", json!({"question": "keep me"})).await;
    client.close().await;
    let output = env.cli(&["stop"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let (source, records) = log_json(&env, &[]).await;
    assert_eq!(source, "files", "read directly once the daemon is gone");
    assert_eq!(records.len(), 1);
    assert!(
        std::fs::read_to_string(&records[0].file)
            .expect("kept")
            .contains("fake answer")
    );
    // Another workspace has none, and is told where some are.
    let other = env.dir("other");
    let output = env
        .cli(&["log", "--workspace", other.to_str().expect("utf8")], None)
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("No answers kept for {} yet.", other.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("  {} (last ", env.workspace.display())),
        "{text}"
    );
    let output = env.cli(&["status"], None).await;
    assert!(
        stderr(&output).contains("not running"),
        "log did not start the daemon: {}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_help_explains_what_is_kept_and_bad_counts_are_usage_errors() {
    let env = TestEnv::new();
    let output = env.cli(&["log", "--help"], None).await;
    assert!(output.status.success());
    let help = stdout(&output);
    for needle in [
        "CLAUDE_CODE_MCP_AUTO_BACKGROUND_MS",
        "last 20 per workspace for 7 days",
        "-n, --count <N>",
        "--json",
        "--workspace <DIR>",
        "reads the files directly",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let output = env.cli(&["--help"], None).await;
    assert!(stdout(&output).contains("log"), "{}", stdout(&output));
    for bad in ["0", "-3", "many"] {
        let output = env.cli(&["log", "-n", bad], None).await;
        assert_eq!(output.status.code(), Some(2), "-n {bad}: {}", stderr(&output));
    }
}
