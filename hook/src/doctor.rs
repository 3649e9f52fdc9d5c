//! `codex-fusion doctor`: checks what codex-fusion needs, one line each with
//! ✓ or ✗ and, for a problem, the command or setting that fixes it.
//!
//! Essential checks (codex-acp, a Codex login, the socket directory, a daemon
//! that answers if one runs) decide the exit code; the service and the Claude
//! Code registration are reported but optional, since the MCP server starts
//! the daemon on demand. Claude's files are only read.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::{PACKAGE_VERSION, Role};

use crate::claude;
use crate::dirs::UserDirs;
use crate::link::{self, Answer, LinkError, start_hint};
use crate::locate;
use crate::service::{LAUNCHD_LABEL, SYSTEMD_UNIT, ServiceManager};

/// How long `codex-acp --version` may take (`npx` may have to fetch it).
const VERSION_WAIT: Duration = Duration::from_secs(20);
/// How long the daemon gets to answer a ping.
const PING_WAIT: Duration = Duration::from_secs(3);

/// The codex-acp release codex-fusion is tested against.
pub const TESTED_CODEX_ACP: &str = "@agentclientprotocol/codex-acp@2.6.0";

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub state: State,
    pub detail: String,
    /// What to do about a problem.
    pub fix: Option<String>,
    /// Whether a problem here makes `doctor` exit 1.
    pub essential: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok,
    Problem,
    /// Neither good nor bad, e.g. a daemon that is not running yet.
    Info,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            state: State::Ok,
            detail: detail.into(),
            fix: None,
            essential: false,
        }
    }

    fn info(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            state: State::Info,
            ..Check::ok(name, detail)
        }
    }

    fn problem(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            state: State::Problem,
            fix: Some(fix.into()),
            ..Check::ok(name, detail)
        }
    }

    fn essential(mut self) -> Check {
        self.essential = true;
        self
    }
}

pub async fn run() -> ExitCode {
    let env = crate::env_var;
    let mut checks = Vec::new();
    checks.push(codex_acp(&env).await);
    let dirs = UserDirs::from_env();
    let home = dirs.as_ref().ok().map(|dirs| dirs.home.clone());
    checks.push(codex_login(&env, home.as_deref()));
    match crate::socket() {
        Ok(socket) => {
            checks.push(socket_directory(&socket, nix::unistd::getuid().as_raw()));
            checks.push(daemon(&socket).await);
        }
        Err(error) => {
            checks.push(Check::problem("socket", format!("{error:#}"), "fix or unset CODEX_FUSION_SOCKET").essential())
        }
    }
    match &dirs {
        Ok(dirs) => {
            checks.push(service(dirs).await);
            let project = crate::workspace_of(None)
                .or_else(|_| std::env::current_dir().map_err(anyhow::Error::from))
                .unwrap_or_else(|_| PathBuf::from("."));
            checks.push(claude_mcp(dirs, &project));
            checks.push(claude_hook(dirs, &project));
        }
        Err(error) => checks.push(Check::problem(
            "home",
            format!("{error:#}"),
            "set HOME to find the service and Claude Code's settings",
        )),
    }
    print!("{}", render(&checks));
    if checks
        .iter()
        .any(|check| check.essential && check.state == State::Problem)
    {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The report: one line per check, its fix indented below, a summary last.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let mark = match check.state {
            State::Ok => "✓",
            State::Problem => "✗",
            State::Info => "·",
        };
        let _ = writeln!(out, "{mark} {}: {}", check.name, check.detail);
        if let (State::Problem, Some(fix)) = (check.state, &check.fix) {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    let failed = |essential: bool| {
        checks
            .iter()
            .filter(|check| check.state == State::Problem && check.essential == essential)
            .count()
    };
    let (essential, optional) = (failed(true), failed(false));
    out.push('\n');
    if essential > 0 {
        let _ = writeln!(
            out,
            "{essential} essential check{} failed: fix {} and run `codex-fusion doctor` again.",
            plural(essential),
            if essential == 1 { "it" } else { "them" }
        );
    } else {
        out.push_str("Everything codex-fusion needs is in place.");
        if optional > 0 {
            let _ = write!(
                out,
                " {optional} optional item{} can be fixed too (above).",
                plural(optional)
            );
        }
        out.push('\n');
    }
    out
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// codex-acp is found (as `CODEX_FUSION_ACP_COMMAND` says, else on PATH), and its version.
async fn codex_acp(env: &dyn Fn(&str) -> Option<OsString>) -> Check {
    const NAME: &str = "codex-acp";
    let install = format!("npm install -g {TESTED_CODEX_ACP}, or set CODEX_FUSION_ACP_COMMAND to how it is started");
    let configured = env("CODEX_FUSION_ACP_COMMAND").map(|value| value.to_string_lossy().into_owned());
    let command = configured.clone().unwrap_or_else(|| "codex-acp".to_owned());
    let Some(words) = shlex::split(&command).filter(|words| !words.is_empty()) else {
        return Check::problem(
            NAME,
            format!("CODEX_FUSION_ACP_COMMAND cannot be split into words: `{command}`"),
            "quote it as a shell would, e.g. CODEX_FUSION_ACP_COMMAND='npx -y @agentclientprotocol/codex-acp'",
        )
        .essential();
    };
    let Some(program) = locate::on_path(&words[0], env("PATH").as_deref()) else {
        let detail = match &configured {
            Some(_) => format!("`{}` (from CODEX_FUSION_ACP_COMMAND) was not found", words[0]),
            None => "codex-acp was not found on PATH".to_owned(),
        };
        return Check::problem(NAME, detail, install).essential();
    };
    let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    args.push("--version");
    let version = match locate::output(&program, &args, VERSION_WAIT).await {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| "version unknown".to_owned()),
        Ok(output) => format!("version unknown: `--version` failed: {}", locate::first_line(&output)),
        Err(error) => format!("version unknown: {error}"),
    };
    let mut detail = format!("{} ({version})", program.display());
    if configured.is_some() {
        detail.push_str(", from CODEX_FUSION_ACP_COMMAND");
    }
    Check::ok(NAME, detail).essential()
}

/// An API key in the environment, or a login under the Codex home.
pub fn codex_login(env: &dyn Fn(&str) -> Option<OsString>, home: Option<&Path>) -> Check {
    const NAME: &str = "Codex login";
    for name in ["CODEX_API_KEY", "OPENAI_API_KEY"] {
        if env(name).is_some_and(|value| !value.is_empty()) {
            return Check::ok(NAME, format!("API key in {name}")).essential();
        }
    }
    let codex_home = env("CODEX_HOME")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|home| home.join(".codex")));
    let Some(codex_home) = codex_home else {
        return Check::problem(
            NAME,
            "no API key in the environment, and no HOME or CODEX_HOME to look for a login",
            "export OPENAI_API_KEY, or set CODEX_HOME to where `codex login` stored its login",
        )
        .essential();
    };
    let auth = codex_home.join("auth.json");
    if auth.is_file() {
        return Check::ok(NAME, format!("logged in ({})", auth.display())).essential();
    }
    Check::problem(
        NAME,
        format!(
            "no API key (CODEX_API_KEY, OPENAI_API_KEY) and no login in {}",
            codex_home.display()
        ),
        "run `codex login` (or `npx @openai/codex login`), or export OPENAI_API_KEY",
    )
    .essential()
}

/// The socket's directory, if it exists, is ours and private.
pub fn socket_directory(socket: &Path, uid: u32) -> Check {
    const NAME: &str = "socket";
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Check::ok(
                NAME,
                format!(
                    "{} (its directory is created with mode 0700 when the daemon starts)",
                    socket.display()
                ),
            )
            .essential();
        }
        Err(error) => {
            return Check::problem(
                NAME,
                format!("cannot inspect {}: {error}", dir.display()),
                "check the permissions of its parent directories, or set CODEX_FUSION_SOCKET",
            )
            .essential();
        }
    };
    if !metadata.is_dir() {
        return Check::problem(
            NAME,
            format!("{} is not a directory", dir.display()),
            "remove it, or set CODEX_FUSION_SOCKET elsewhere",
        )
        .essential();
    }
    if metadata.uid() != uid {
        return Check::problem(
            NAME,
            format!(
                "{} belongs to uid {}, not to you (uid {uid})",
                dir.display(),
                metadata.uid()
            ),
            format!(
                "remove {} (the daemon recreates it), or set CODEX_FUSION_SOCKET",
                dir.display()
            ),
        )
        .essential();
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Check::problem(
            NAME,
            format!(
                "{} has mode {mode:04o}; other users could reach the daemon",
                dir.display()
            ),
            format!("chmod 700 {}", dir.display()),
        )
        .essential();
    }
    Check::ok(
        NAME,
        format!("{} (directory private, mode {mode:04o})", socket.display()),
    )
    .essential()
}

/// Whether a daemon answers, and whether it is this version.
async fn daemon(socket: &Path) -> Check {
    const NAME: &str = "daemon";
    let answer = link::exchange(socket, Role::Cli, &ControlRequest::Ping, PING_WAIT, "a ping").await;
    match answer.map(|Answer { response, .. }| response) {
        Ok(ControlResponse::Pong { daemon_version, pid }) if daemon_version == PACKAGE_VERSION => {
            Check::ok(NAME, format!("codex-fusiond {daemon_version} answers (pid {pid})")).essential()
        }
        Ok(ControlResponse::Pong { daemon_version, pid }) => Check::problem(
            NAME,
            format!("codex-fusiond {daemon_version} answers (pid {pid}), but this codex-fusion is {PACKAGE_VERSION}"),
            "restart it so both are the same version: `codex-fusion stop` (it starts again on demand or from the service)",
        ),
        Ok(other) => Check::problem(
            NAME,
            format!("codex-fusiond answered a ping with {other:?}"),
            "restart it: `codex-fusion stop`",
        )
        .essential(),
        Err(LinkError::NotRunning { .. }) => Check::info(NAME, format!("not running; {}", start_hint())),
        Err(LinkError::NotAnswering { socket, .. }) => Check::problem(
            NAME,
            format!(
                "a daemon holds the socket {} but does not answer (waited {} s)",
                socket.display(),
                PING_WAIT.as_secs()
            ),
            "`codex-fusion stop` (it signals a daemon that does not answer), then let it start again",
        )
        .essential(),
        Err(error) => {
            Check::problem(NAME, error.to_string(), "`codex-fusion stop`, then let it start again").essential()
        }
    }
}

/// The user service file is installed, points at a binary that exists, and
/// is enabled.
async fn service(dirs: &UserDirs) -> Check {
    const NAME: &str = "service";
    let Some(manager) = ServiceManager::native() else {
        return Check::info(
            NAME,
            "no supported service manager here; the MCP server starts the daemon on demand",
        );
    };
    let path = manager.unit_path(&dirs.home, &dirs.config_home);
    let Ok(contents) = std::fs::read_to_string(&path) else {
        return Check::problem(
            NAME,
            format!(
                "not installed ({} is missing); the MCP server starts the daemon on demand meanwhile",
                path.display()
            ),
            "codex-fusion install",
        );
    };
    if let Some(daemon) = service_program(manager, &contents)
        && !locate::is_executable(Path::new(&daemon))
    {
        return Check::problem(
            NAME,
            format!("{} runs {daemon}, which does not exist", path.display()),
            "codex-fusion install (rewrites it with the current path)",
        );
    }
    let path_var = crate::env_var("PATH");
    match manager {
        ServiceManager::Systemd => {
            let wants = dirs
                .config_home
                .join("systemd/user/default.target.wants")
                .join(SYSTEMD_UNIT);
            let enabled = match locate::on_path("systemctl", path_var.as_deref()) {
                Some(systemctl) => {
                    match locate::output(
                        &systemctl,
                        &["--user", "is-enabled", SYSTEMD_UNIT],
                        locate::PROGRAM_WAIT,
                    )
                    .await
                    {
                        Ok(output) if !output.stdout.is_empty() || output.status.success() => {
                            String::from_utf8_lossy(&output.stdout).trim() == "enabled"
                        }
                        _ => wants.exists(),
                    }
                }
                None => wants.exists(),
            };
            if enabled {
                Check::ok(NAME, format!("{} installed and enabled", path.display()))
            } else {
                Check::problem(
                    NAME,
                    format!("{} installed but not enabled", path.display()),
                    "systemctl --user enable --now codex-fusiond",
                )
            }
        }
        ServiceManager::Launchd => {
            let uid = nix::unistd::getuid().as_raw();
            let target = format!("gui/{uid}/{LAUNCHD_LABEL}");
            let loaded = match locate::on_path("launchctl", path_var.as_deref()) {
                Some(launchctl) => locate::output(&launchctl, &["print", &target], locate::PROGRAM_WAIT)
                    .await
                    .is_ok_and(|output| output.status.success()),
                None => false,
            };
            if loaded {
                Check::ok(NAME, format!("{} installed and loaded", path.display()))
            } else {
                Check::problem(
                    NAME,
                    format!("{} installed but not loaded", path.display()),
                    format!("launchctl bootstrap gui/{uid} {}", path.display()),
                )
            }
        }
    }
}

/// The program a rendered service file runs.
fn service_program(manager: ServiceManager, contents: &str) -> Option<String> {
    match manager {
        ServiceManager::Systemd => {
            let value = contents
                .lines()
                .find_map(|line| line.trim().strip_prefix("ExecStart="))?;
            shlex::split(value)?
                .into_iter()
                .next()
                .map(|word| word.replace("%%", "%").replace("$$", "$"))
        }
        ServiceManager::Launchd => {
            // The first <string> after ProgramArguments, unescaped enough for
            // the paths `install` writes.
            let after = contents.split("<key>ProgramArguments</key>").nth(1)?;
            let start = after.find("<string>")? + "<string>".len();
            let end = after[start..].find("</string>")? + start;
            Some(
                after[start..end]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            )
        }
    }
}

/// The MCP server is registered in one of Claude Code's scopes for `project`.
fn claude_mcp(dirs: &UserDirs, project: &Path) -> Check {
    const NAME: &str = "Claude Code MCP server";
    let claude_json = read_json(&dirs.claude.claude_json);
    let project_mcp = read_json(&project.join(".mcp.json"));
    let found = claude::mcp_registrations(claude_json.as_ref(), project_mcp.as_ref(), project);
    if found.is_empty() {
        Check::problem(
            NAME,
            format!(
                "not registered for {} (looked in {} and .mcp.json)",
                project.display(),
                dirs.claude.claude_json.display()
            ),
            format!(
                "codex-fusion install --claude (or: claude mcp add {} -s user -- {})",
                claude::MCP_SERVER_NAME,
                locate::ours(claude::MCP_BINARY)
                    .map(|path| path.display().to_string())
                    .unwrap_or_else(|| claude::MCP_BINARY.to_owned())
            ),
        )
    } else {
        Check::ok(NAME, format!("registered as {}", found.join("; ")))
    }
}

/// The SessionStart hook is in one of the settings files that apply.
fn claude_hook(dirs: &UserDirs, project: &Path) -> Check {
    const NAME: &str = "Claude Code hook";
    let files = claude::hook_settings_files(&dirs.claude, project);
    let found: Vec<String> = files
        .iter()
        .filter(|file| read_json(file).is_some_and(|settings| claude::has_our_hook(&settings)))
        .map(|file| file.display().to_string())
        .collect();
    if found.is_empty() {
        Check::problem(
            NAME,
            "no SessionStart hook runs `codex-fusion hook`, so /clear does not reset Codex",
            "codex-fusion install --claude",
        )
    } else {
        Check::ok(NAME, format!("SessionStart hook in {}", found.join(", ")))
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), OsString::from(value)))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn login_is_a_key_or_an_auth_file() {
        let temp = tempfile::tempdir().expect("tempdir");
        let home = temp.path();
        let check = codex_login(&env_of(&[("OPENAI_API_KEY", "sk-x")]), Some(home));
        assert_eq!(check.state, State::Ok);
        assert!(check.detail.contains("OPENAI_API_KEY"));
        assert!(!check.detail.contains("sk-x"), "never shows the key");
        let check = codex_login(&env_of(&[("OPENAI_API_KEY", "")]), Some(home));
        assert_eq!(check.state, State::Problem, "an empty key is no key");
        assert!(check.essential);
        assert!(check.fix.as_deref().is_some_and(|fix| fix.contains("codex login")));
        std::fs::create_dir_all(home.join(".codex")).expect("mkdir");
        std::fs::write(home.join(".codex/auth.json"), "{}").expect("write");
        assert_eq!(codex_login(&env_of(&[]), Some(home)).state, State::Ok);
        let elsewhere = home.join("elsewhere");
        let check = codex_login(
            &env_of(&[("CODEX_HOME", elsewhere.to_str().expect("utf8"))]),
            Some(home),
        );
        assert_eq!(check.state, State::Problem, "CODEX_HOME wins over ~/.codex");
        assert!(check.detail.contains("elsewhere"), "{}", check.detail);
    }

    #[test]
    fn the_socket_directory_must_be_private_and_ours() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("run");
        let socket = dir.join("daemon.sock");
        let uid = nix::unistd::getuid().as_raw();
        assert_eq!(
            socket_directory(&socket, uid).state,
            State::Ok,
            "a missing dir is created later"
        );
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let check = socket_directory(&socket, uid);
        assert_eq!(check.state, State::Problem);
        assert_eq!(check.fix, Some(format!("chmod 700 {}", dir.display())));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(socket_directory(&socket, uid).state, State::Ok);
        let check = socket_directory(&socket, uid + 1);
        assert_eq!(check.state, State::Problem);
        assert!(check.detail.contains("not to you"), "{}", check.detail);
    }

    #[test]
    fn the_report_shows_fixes_and_counts_only_essential_failures() {
        let checks = vec![
            Check::ok("codex-acp", "/usr/bin/codex-acp (2.6.0)").essential(),
            Check::problem("Codex login", "no key", "export OPENAI_API_KEY").essential(),
            Check::info("daemon", "not running"),
            Check::problem("service", "not installed", "codex-fusion install"),
        ];
        assert_eq!(
            render(&checks),
            "✓ codex-acp: /usr/bin/codex-acp (2.6.0)\n\
             ✗ Codex login: no key\n    fix: export OPENAI_API_KEY\n\
             · daemon: not running\n\
             ✗ service: not installed\n    fix: codex-fusion install\n\
             \n\
             1 essential check failed: fix it and run `codex-fusion doctor` again.\n"
        );
        let text = render(&checks[2..]);
        assert!(
            text.ends_with("Everything codex-fusion needs is in place. 1 optional item can be fixed too (above).\n"),
            "{text}"
        );
    }

    #[test]
    fn the_service_program_is_read_back_from_what_install_writes() {
        let daemon = Path::new("/opt/my tools/100%/codex-fusiond");
        let unit = crate::service::render_systemd_unit(daemon, &[("PATH", "/bin")]);
        assert_eq!(
            service_program(ServiceManager::Systemd, &unit).as_deref(),
            Some("/opt/my tools/100%/codex-fusiond")
        );
        let plist =
            crate::service::render_launchd_plist(Path::new("/a&b/codex-fusiond"), &[("PATH", "/bin")], Path::new("/l"));
        assert_eq!(
            service_program(ServiceManager::Launchd, &plist).as_deref(),
            Some("/a&b/codex-fusiond")
        );
    }
}
