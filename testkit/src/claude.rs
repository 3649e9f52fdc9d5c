//! The real Claude Code for end-to-end tests: the pinned `claude` binary
//! (`$CODEX_FUSION_TEST_CLAUDE`, which `.ci/run` installs and sets), run
//! offline in a temporary HOME against `anthropic-mock`, with codex-fusion
//! registered the way `codex-fusion install --claude` registers it. On the
//! Codex side the real codex-acp and `model-mock` when
//! `$CODEX_FUSION_TEST_CODEX_ACP` is set, else the fake agent.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::env::{TestEnv, binary};
use crate::real::{self, ModelMock, RealEnv};

/// The Claude Code version CI runs against.
pub const CLAUDE_CODE_VERSION: &str = "2.1.330";
/// Where the suite finds the `claude` binary; unset, the Claude Code tests skip.
pub const CLAUDE_ENV: &str = "CODEX_FUSION_TEST_CLAUDE";
/// Longest one `claude` run may take: a cold codex-acp start on a busy
/// 2-core machine, plus a turn that thinks for seconds.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);
/// The tools `claude -p` may use without asking (as root, Claude Code
/// refuses `--dangerously-skip-permissions`).
const ALLOWED_TOOLS: &str = "mcp__codex-fusion";

/// The `claude` binary named by `$CODEX_FUSION_TEST_CLAUDE`, or `None` after
/// printing why the test is skipped. Panics if the variable names nothing.
pub fn claude_binary() -> Option<PathBuf> {
    let Some(path) = std::env::var_os(CLAUDE_ENV).filter(|path| !path.is_empty()) else {
        eprintln!(
            "SKIPPED: {CLAUDE_ENV} is not set, so the real Claude Code is not tested. .ci/run installs it; by hand:\n  \
             npm install --prefix ~/.cache/codex-fusion-ci/claude-code-{CLAUDE_CODE_VERSION} @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}\n  \
             export {CLAUDE_ENV}=~/.cache/codex-fusion-ci/claude-code-{CLAUDE_CODE_VERSION}/node_modules/.bin/claude"
        );
        return None;
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{CLAUDE_ENV}={} does not exist; unset it or install Claude Code there",
        path.display()
    );
    Some(path)
}

/// A running `anthropic-mock`; stops when dropped (its stdin closes).
pub struct AnthropicMock {
    _child: Child,
    pub port: u16,
}

impl AnthropicMock {
    pub async fn start() -> AnthropicMock {
        let mut child = tokio::process::Command::new(binary("anthropic-mock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn anthropic-mock");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("anthropic-mock starts within 10 s")
            .expect("read anthropic-mock's address");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("anthropic-mock printed `{line}`"));
        AnthropicMock { _child: child, port }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every Messages API request so far, as recorded (summary and body).
    pub async fn requests(&self) -> Vec<Value> {
        let body = real::http_get(self.port, "/_mock/requests").await;
        match serde_json::from_str(&body) {
            Ok(Value::Array(items)) => items,
            _ => panic!("anthropic-mock returned `{body}`"),
        }
    }

    /// The text of every tool result Claude Code sent back, in order.
    pub async fn tool_results(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for request in self.requests().await {
            for result in request["tool_results"].as_array().into_iter().flatten() {
                let text = result.as_str().unwrap_or_default().to_owned();
                if !seen.contains(&text) {
                    seen.push(text);
                }
            }
        }
        seen
    }
}

/// Which Codex answers, and how a test asks it for a behaviour.
pub enum Codex {
    /// `fake-codex-acp`, scripted by `fake:` markers.
    Fake,
    /// The real codex-acp against `model-mock`, scripted by `mock:` markers.
    Real { mock: ModelMock },
}

impl Codex {
    /// A turn that streams reasoning for `millis` before it answers.
    pub fn think(&self, millis: u64) -> String {
        match self {
            Codex::Fake => format!("fake:think:{millis}"),
            Codex::Real { .. } => format!("\nmock:think:{millis}\n"),
        }
    }

    /// A turn that asks to run `command` (outside the sandbox), then answers
    /// with its output.
    pub fn run_command(&self, command: &str) -> String {
        match self {
            Codex::Fake => format!("fake:permission:execute:{command}"),
            Codex::Real { .. } => format!("\nmock:exec:touch {command}\n"),
        }
    }

    /// What Codex says once `run_command(file)` ran.
    pub fn ran(&self, file: &str) -> String {
        match self {
            Codex::Fake => format!("ran touch {file}"),
            Codex::Real { .. } => format!("Ran `touch {file}` (exit code 0)"),
        }
    }

    /// Text every answer of this Codex contains.
    pub fn answer_mark(&self) -> &'static str {
        match self {
            Codex::Fake => "fake answer",
            Codex::Real { .. } => "Mock answer",
        }
    }

    /// How many prompts Codex's session had seen, from an answer.
    pub fn prompts_seen(&self, answer: &str) -> u32 {
        let key = match self {
            Codex::Fake => "prompts_seen=",
            Codex::Real { .. } => "user_messages=",
        };
        answer
            .split(key)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {answer}"))
    }
}

/// One `claude -p --output-format json` run.
#[derive(Debug)]
pub struct ClaudeRun {
    pub session_id: String,
    /// What Claude answered (the mock's final text).
    pub result: String,
    pub json: Value,
    pub elapsed: Duration,
}

/// A temporary HOME in which Claude Code runs against `anthropic-mock`,
/// with this suite's daemon socket and state dir.
pub struct ClaudeCode {
    pub env: TestEnv,
    pub codex: Codex,
    pub anthropic: AnthropicMock,
    pub home: PathBuf,
}

impl ClaudeCode {
    /// `None` (the test skips) when `$CODEX_FUSION_TEST_CLAUDE` is not set.
    pub async fn new() -> Option<ClaudeCode> {
        let claude = claude_binary()?;
        let (mut env, codex) = if std::env::var_os(real::CODEX_ACP_ENV).is_some() {
            let RealEnv { env, mock, .. } = RealEnv::new(true).await;
            (env, Codex::Real { mock })
        } else {
            (TestEnv::new(), Codex::Fake)
        };
        let anthropic = AnthropicMock::start().await;
        let home = env.dir("home");
        let bin = env.dir("claude-bin");
        std::os::unix::fs::symlink(&claude, bin.join("claude")).expect("link claude");
        // `install` must not reach the developer's own systemd user manager:
        // this one answers as a container's does.
        let systemctl = bin.join("systemctl");
        std::fs::write(&systemctl, "#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n").expect("fake systemctl");
        std::fs::set_permissions(&systemctl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        env.set("PATH", &format!("{}:{path}", bin.display()));
        env.set("HOME", home.to_str().expect("utf8 home"));
        env.set("XDG_CONFIG_HOME", home.join(".config").to_str().expect("utf8"));
        env.set("CLAUDE_CONFIG_DIR", "");
        for (name, value) in [
            ("DISABLE_AUTOUPDATER", "1"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("DISABLE_TELEMETRY", "1"),
            ("ANTHROPIC_API_KEY", "sk-ant-codex-fusion-test"),
        ] {
            env.set(name, value);
        }
        env.set("ANTHROPIC_BASE_URL", &anthropic.base_url());
        Some(ClaudeCode {
            env,
            codex,
            anthropic,
            home,
        })
    }

    /// `codex-fusion install --claude`, which must succeed.
    pub async fn install(&self) -> String {
        let output = self.env.cli(&["install", "--claude"], None).await;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "install failed:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    /// Runs `claude ARGS` in the workspace with only this env's variables.
    pub async fn claude(&self, args: &[&str]) -> Output {
        // The `claude` on the env's PATH, not on the test's own.
        let claude = self.env.env["PATH"]
            .split(':')
            .map(|dir| Path::new(dir).join("claude"))
            .find(|path| path.is_file())
            .expect("claude on the env's PATH");
        let mut command = std::process::Command::new(claude);
        command.env_clear();
        for (name, value) in &self.env.env {
            if !value.is_empty() {
                command.env(name, value);
            }
        }
        // The same daemon as every other process of this test; no
        // CODEX_FUSION_WORKSPACE: the shim and the hook take Claude's cwd.
        command
            .env("CODEX_FUSION_SOCKET", &self.env.socket)
            .env("CODEX_FUSION_STATE_DIR", &self.env.state_dir)
            .env("CODEX_FUSION_DAEMON_LOG", "debug,rmcp=info")
            .current_dir(&self.env.workspace)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        tokio::time::timeout(RUN_LIMIT, command.output())
            .await
            .unwrap_or_else(|_| panic!("claude {args:?} did not finish within {RUN_LIMIT:?}"))
            .expect("run claude")
    }

    /// `claude -p PROMPT --output-format json` (plus `extra`), which must succeed.
    pub async fn print(&self, prompt: &str, extra: &[&str]) -> ClaudeRun {
        let mut args = vec!["-p", prompt, "--output-format", "json", "--allowedTools", ALLOWED_TOOLS];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let output = self.claude(&args).await;
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
            panic!(
                "claude -p printed no JSON ({error}), {}:\n{stdout}\nstderr:\n{}\ndaemon:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr),
                self.env.daemon_logs()
            )
        });
        assert!(
            output.status.success() && json["is_error"] != Value::Bool(true),
            "claude -p failed ({}): {json}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        ClaudeRun {
            session_id: json["session_id"].as_str().expect("a session id").to_owned(),
            result: json["result"].as_str().unwrap_or_default().to_owned(),
            json,
            elapsed,
        }
    }
}
