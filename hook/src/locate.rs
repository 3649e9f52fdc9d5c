//! Finding programs (our own binaries next to this executable, then on PATH;
//! other programs on PATH) and running other programs with a deadline.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

/// One of our binaries (`codex-fusiond`, `codex-fusion-mcp`): next to this
/// executable, as `cargo install` and `scripts/install.sh` put them, else on
/// PATH. Always an absolute path.
pub fn ours(name: &str) -> Option<PathBuf> {
    sibling(name).or_else(|| on_path(name, crate::env_var("PATH").as_deref()))
}

/// `name` in the directory of this executable.
pub fn sibling(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.join(name);
    is_executable(&candidate).then_some(candidate)
}

/// The first executable `name` in the directories of `path_var`, made
/// absolute. A `name` with a slash is taken as a path.
pub fn on_path(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if name.contains('/') {
        let path = Path::new(name);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(path)
        };
        return is_executable(&path).then_some(path);
    }
    std::env::split_paths(path_var?)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// A regular file (after symlinks) with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// How long another program (`systemctl`, `launchctl`, `claude`, `codex-acp
/// --version`) may take before we give up on it and kill it.
pub const PROGRAM_WAIT: Duration = Duration::from_secs(30);

/// Runs `program ARGS` with no stdin and returns its output, or a one-line
/// reason it could not run. A program still running after `wait` is killed.
pub async fn output(program: &Path, args: &[&str], wait: Duration) -> Result<Output, String> {
    let shown = format!("{} {}", program.display(), args.join(" "));
    run(program, args, &[], wait, &shown, false).await
}

/// [`output`], with `env` added to the program's environment, and the
/// command named `shown` in the reason (the agent's command line may hold a
/// key, so its callers pass its redacted `display`).
///
/// For the agent command: it runs from `/` (not the directory doctor was
/// started in, a repository whose `node_modules` or `.npmrc` would decide
/// what `npx` runs) with only the absolute entries of PATH, as the daemon
/// starts agents.
pub async fn output_with_env(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    wait: Duration,
    shown: &str,
) -> Result<Output, String> {
    run(program, args, env, wait, shown, true).await
}

async fn run(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    wait: Duration,
    shown: &str,
    neutral: bool,
) -> Result<Output, String> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let path = env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| std::ffi::OsString::from(value))
        .or_else(|| crate::env_var("PATH"))
        .filter(|_| neutral);
    if neutral {
        command.current_dir("/");
    }
    if let Some(path) = path {
        let absolute: Vec<PathBuf> = std::env::split_paths(&path).filter(|dir| dir.is_absolute()).collect();
        if let Ok(joined) = std::env::join_paths(absolute) {
            command.env("PATH", joined);
        }
    }
    let shown = || format!("`{shown}`");
    let child = command
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", shown()))?;
    let group = child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32));
    match tokio::time::timeout(wait, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(error)) => Err(format!("{} failed: {error}", shown())),
        Err(_) => {
            if let Some(group) = group {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
            Err(format!("{} did not finish within {} s", shown(), wait.as_secs()))
        }
    }
}

/// The first non-empty line of a program's stderr, else of its stdout.
pub fn first_line(output: &Output) -> String {
    [&output.stderr, &output.stdout]
        .iter()
        .flat_map(|bytes| {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(str::trim)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|line| !line.is_empty())
        .unwrap_or_else(|| format!("it exited with {}", output.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_skips_non_executables_and_relative_dirs() {
        let temp = tempfile::tempdir().expect("tempdir");
        let first = temp.path().join("a");
        let second = temp.path().join("b");
        std::fs::create_dir_all(&first).expect("mkdir");
        std::fs::create_dir_all(&second).expect("mkdir");
        std::fs::write(first.join("tool"), "not executable").expect("write");
        std::fs::write(second.join("tool"), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(second.join("tool"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path_var = std::env::join_paths(["relative".as_ref(), first.as_path(), second.as_path()]).expect("join");
        assert_eq!(on_path("tool", Some(&path_var)), Some(second.join("tool")));
        assert_eq!(on_path("missing", Some(&path_var)), None);
        assert_eq!(on_path("tool", None), None);
    }
}
