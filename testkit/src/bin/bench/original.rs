//! The Bun original, Tritlo/codex-fusion-mcp, as an optional baseline for
//! figure 9. The bench never fetches it: it runs it only when given a
//! checkout whose dependencies are installed (`--original DIR` or
//! `$CODEX_FUSION_BENCH_ORIGINAL`) and a bun binary (`--bun PATH` or
//! `$CODEX_FUSION_BENCH_BUN`), both prepared beforehand (docs/PERFORMANCE.md,
//! figure 9). Bun runs with auto-install off, so a missing package is an
//! error rather than a download.
//!
//! The original is one stdio MCP server per Claude session
//! (`bun run src/index.ts`) that spawns codex-acp on its first tool call
//! and keeps one ACP session for its life. It reads its agent command from
//! `CODEX_FUSION_ACP_COMMAND` (split on whitespace) and its workspace from
//! `CODEX_FUSION_WORKSPACE` or its current directory, and its SessionStart
//! hook writes a reset nonce under the OS temp dir. The bench starts it as
//! it starts the shim: the environment of a [`RealEnv`] (the same pinned
//! codex-acp, the same `CODEX_HOME` with the mock's config, the same key,
//! a private `HOME`), plus a private `TMPDIR`.
//!
//! The original never sends ACP `authenticate`, and codex-acp 2.6.0 opens
//! no session for a provider that requires OpenAI auth without a stored
//! login ("Authentication required"), whatever the environment's key. Its
//! README asks for "a working Codex login (`codex login`, …)": [`login`]
//! makes that login in the env's `CODEX_HOME` with `codex login
//! --with-api-key` (the codex that codex-acp runs), before the original
//! starts and outside every timing. codex-fusion's daemon authenticates
//! with the key over ACP instead, inside its first consult.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use codex_fusion_testkit::real::{RealEnv, TEST_API_KEY, codex_acp};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt as _;

use crate::mcp::Lines;

pub const ORIGINAL_ENV: &str = "CODEX_FUSION_BENCH_ORIGINAL";
pub const BUN_ENV: &str = "CODEX_FUSION_BENCH_BUN";

/// How to get the original and bun, in one line.
pub const HOW_TO_GET: &str = "figure 9 ran without the Bun original: get it with `git clone https://github.com/Tritlo/codex-fusion-mcp DIR && git -C DIR checkout f6d1ab7 && (cd DIR && BUN install --frozen-lockfile)` and bun with `npm install --prefix ~/.cache/codex-fusion-ci/bun-1.x bun@1` (BUN = ~/.cache/codex-fusion-ci/bun-1.x/node_modules/.bin/bun), then pass `--original DIR --bun BUN` (or set CODEX_FUSION_BENCH_ORIGINAL and CODEX_FUSION_BENCH_BUN); see docs/PERFORMANCE.md, figure 9";

/// A checkout of the original and the bun that runs it.
#[derive(Debug, Clone)]
pub struct Original {
    pub dir: PathBuf,
    pub bun: PathBuf,
    /// What `bun --version` printed.
    pub bun_version: String,
}

impl Original {
    /// The original from the flags, else the environment. `Ok(None)` when
    /// neither names it; an error when it is named but cannot run.
    pub fn find(dir: Option<PathBuf>, bun: Option<PathBuf>) -> Result<Option<Original>, String> {
        let dir = dir.or_else(|| std::env::var_os(ORIGINAL_ENV).map(PathBuf::from));
        let bun = bun.or_else(|| std::env::var_os(BUN_ENV).map(PathBuf::from));
        let (dir, bun) = match (dir, bun) {
            (None, None) => return Ok(None),
            (Some(dir), Some(bun)) => (dir, bun),
            (Some(_), None) => {
                return Err(format!(
                    "the original's checkout is given but no bun to run it: pass --bun PATH or set {BUN_ENV}"
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "a bun is given but no checkout of the original: pass --original DIR or set {ORIGINAL_ENV}"
                ));
            }
        };
        let dir = std::fs::canonicalize(&dir).map_err(|error| format!("--original {}: {error}", dir.display()))?;
        if !dir.join("src/index.ts").is_file() {
            return Err(format!(
                "--original {}: no src/index.ts; this is not a checkout of Tritlo/codex-fusion-mcp",
                dir.display()
            ));
        }
        if !dir.join("node_modules/@modelcontextprotocol/sdk").is_dir()
            || !dir.join("node_modules/@agentclientprotocol/sdk").is_dir()
        {
            return Err(format!(
                "--original {}: its dependencies are not installed; run `{} install --frozen-lockfile` in it first (the bench fetches nothing)",
                dir.display(),
                bun.display()
            ));
        }
        let version = Command::new(&bun)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|error| format!("--bun {}: cannot run it: {error}", bun.display()))?;
        let bun_version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        if !version.status.success() || bun_version.is_empty() {
            return Err(format!(
                "--bun {}: `--version` failed ({})",
                bun.display(),
                version.status
            ));
        }
        Ok(Some(Original { dir, bun, bun_version }))
    }
}

/// `codex login --with-api-key` into `real`'s `CODEX_HOME`, with the key
/// codex-acp is given, as the original's user does once before using it.
pub fn login(real: &RealEnv) -> anyhow::Result<()> {
    use std::io::Write as _;
    let acp = codex_acp();
    let codex = acp.with_file_name("codex");
    if !codex.is_file() {
        bail!(
            "no codex next to {} to log in with (the original needs a stored Codex login)",
            acp.display()
        );
    }
    let mut child = Command::new(&codex)
        .args(["login", "--with-api-key"])
        .envs(&real.env.env)
        .current_dir(real.env.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {} login", codex.display()))?;
    let mut stdin = child.stdin.take().context("codex login's stdin")?;
    writeln!(stdin, "{TEST_API_KEY}").context("giving codex login the key")?;
    drop(stdin);
    let output = child.wait_with_output().context("waiting for codex login")?;
    if !output.status.success() || !real.codex_home.join("auth.json").is_file() {
        bail!(
            "`codex login --with-api-key` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A running original: `bun run src/index.ts` with its stdio as an MCP
/// pipe, in a process group of its own with the codex-acp it spawns.
pub struct OriginalProcess {
    child: Child,
    lines: Option<Lines<ChildStdout, ChildStdin>>,
}

impl OriginalProcess {
    /// Starts the original for `workspace` in `real`'s environment.
    pub fn spawn(original: &Original, real: &RealEnv, workspace: &Path) -> anyhow::Result<OriginalProcess> {
        let acp_command = real
            .env
            .env
            .get("CODEX_FUSION_ACP_COMMAND")
            .context("the real env names codex-acp")?;
        if acp_command.contains(char::is_whitespace) {
            // The original splits the variable on whitespace.
            bail!("the codex-acp path `{acp_command}` has whitespace, which the original cannot run");
        }
        let temp = real.env.dir("original-tmp");
        let stderr =
            std::fs::File::create(real.env.root().join("original-stderr.log")).context("the original's stderr log")?;
        let mut command = Command::new(&original.bun);
        command
            .arg("--no-install")
            .arg("run")
            .arg(original.dir.join("src/index.ts"))
            .envs(&real.env.env)
            .env("CODEX_FUSION_WORKSPACE", workspace)
            .env("TMPDIR", &temp)
            .current_dir(workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} run src/index.ts", original.bun.display()))?;
        let stdin = child.stdin.take().context("the original's stdin")?;
        let stdout = child.stdout.take().context("the original's stdout")?;
        Ok(OriginalProcess {
            child,
            lines: Some(Lines::new(stdout, stdin)),
        })
    }

    pub fn lines(&mut self) -> &mut Lines<ChildStdout, ChildStdin> {
        self.lines.as_mut().expect("open until closed")
    }

    /// Closes its stdin, then stops its whole group (its codex-acp too):
    /// SIGTERM, which it handles by killing codex-acp, then SIGKILL.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.lines = None;
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for OriginalProcess {
    fn drop(&mut self) {
        if self.lines.is_some() {
            self.shut();
        }
    }
}
