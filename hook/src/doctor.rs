//! `codex-fusion doctor`: checks what codex-fusion needs, one line each with
//! ✓ or ✗ and, for a problem, the command or setting that fixes it.
//!
//! Essential checks (codex-acp, a Codex login, the socket directory, a daemon
//! that answers if one runs) decide the exit code; the service and the Claude
//! Code registration are reported but optional, since the MCP server starts
//! the daemon on demand. Claude's files are only read.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use codex_fusion_protocol::command::{ACP_COMMAND_ENV, AcpCommand};
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::paths::SOCKET_ENV;
use codex_fusion_protocol::{API_KEY_VARS, CODEX_HOME_VAR, PACKAGE_VERSION, Role};
use codex_fusion_protocol::{allow, codex_doctor};
use serde_json::Value;

use crate::claude::{self, Registration};
use crate::dirs::{UserDirs, read_json};
use crate::link::{self, Answer, LinkError, start_hint};
use crate::locate;
use crate::output::stdout_text;
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
    let dirs = UserDirs::from_env();
    let project = crate::workspace_of(None)
        .or_else(|_| std::env::current_dir().map_err(anyhow::Error::from))
        .unwrap_or_else(|_| PathBuf::from("."));
    let claude_json = dirs.as_ref().ok().map(|dirs| read_json(&dirs.claude.claude_json));
    let project_mcp = read_json(&project.join(".mcp.json"));
    let registrations = claude::mcp_registrations(
        claude_json
            .as_ref()
            .and_then(|json| json.as_ref().ok())
            .and_then(Option::as_ref),
        project_mcp.as_ref().ok().and_then(Option::as_ref),
        &project,
    );
    let acp_command = configured_codex(&env);
    checks.push(codex_acp(&env, acp_command.as_ref()).await);
    let mut sources = Vec::new();
    if let Some(Configured {
        variable,
        command: Ok(command),
    }) = &acp_command
    {
        let mut vars = command.env.clone();
        vars.extend(env_program_vars(command));
        sources.push(EnvSource {
            label: variable.clone(),
            vars,
        });
    }
    for registration in &registrations {
        sources.push(EnvSource {
            label: format!("the env of the MCP server {registration}"),
            vars: registration.env.clone(),
        });
    }
    checks.extend(read_confinement(&env, acp_command.as_ref()).await);
    checks.extend(system_bubblewrap(&env).await);
    checks.push(agents_on_offer(&env));
    let home_dir = dirs.as_ref().ok().map(|dirs| dirs.home.clone());
    checks.extend(council_agents(&env, home_dir.as_deref()).await);
    let home = dirs.as_ref().ok().map(|dirs| dirs.home.clone());
    checks.push(codex_login(&env, home.as_deref(), &sources));
    let mut project_dirs: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    if !project_dirs.contains(&project) {
        project_dirs.push(project.clone());
    }
    checks.extend(project_permissions(&project_dirs));
    match crate::socket() {
        Ok(socket) => {
            checks.push(socket_directory(&socket, nix::unistd::getuid().as_raw()));
            checks.extend(runtime_dir(&env, &socket));
            checks.push(daemon(&socket).await);
        }
        Err(error) => {
            checks.push(Check::problem("socket", format!("{error:#}"), "fix or unset CODEX_FUSION_SOCKET").essential())
        }
    }
    match &dirs {
        Ok(dirs) => {
            checks.push(service(dirs).await);
            let files = ClaudeJsonFiles {
                claude_json: claude_json.unwrap_or(Ok(None)),
                project_mcp,
            };
            checks.push(claude_mcp(dirs, &project, &files, &registrations));
            checks.push(claude_hook(dirs, &project));
        }
        Err(error) => checks.push(Check::problem(
            "home",
            format!("{error:#}"),
            "set HOME to find the service and Claude Code's settings",
        )),
    }
    stdout_text(&render(&checks));
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

/// codex's command as set, and the variable that set it, read as the
/// daemon reads them (`protocol::agents`): `CODEX_FUSION_AGENT_CODEX`, else
/// `CODEX_FUSION_ACP_COMMAND`.
pub(crate) struct Configured {
    pub variable: String,
    pub command: Result<AcpCommand, codex_fusion_protocol::command::CommandError>,
}

pub(crate) fn configured_codex(env: &dyn Fn(&str) -> Option<OsString>) -> Option<Configured> {
    let own = codex_fusion_protocol::agents::command_variable(codex_fusion_protocol::agents::DEFAULT_AGENT);
    [own, ACP_COMMAND_ENV.to_owned()].into_iter().find_map(|variable| {
        let value = env(&variable).filter(|value| !value.is_empty())?;
        Some(Configured {
            command: AcpCommand::parse(&value.to_string_lossy()),
            variable,
        })
    })
}

/// codex-acp is found (as [`configured_codex`] says, else on PATH), and its version.
async fn codex_acp(env: &dyn Fn(&str) -> Option<OsString>, configured: Option<&Configured>) -> Check {
    const NAME: &str = "codex-acp";
    let install = format!("npm install -g {TESTED_CODEX_ACP}, or set {ACP_COMMAND_ENV} to how it is started");
    let command = match configured {
        None => AcpCommand::parse("codex-acp").expect("a plain word parses"),
        Some(Configured {
            command: Ok(command), ..
        }) => command.clone(),
        Some(Configured {
            variable,
            command: Err(error),
        }) => {
            return Check::problem(
                NAME,
                format!("{variable}: {}", error.reason),
                format!("quote it as a shell would, e.g. {variable}='npx -y @agentclientprotocol/codex-acp'"),
            )
            .essential();
        }
    };
    let Some(program) = locate::on_path(&command.program, env("PATH").as_deref()) else {
        let detail = match configured {
            Some(Configured { variable, .. }) => format!("`{}` (from {variable}) was not found", command.program),
            None => "codex-acp was not found on PATH".to_owned(),
        };
        return Check::problem(NAME, detail, install).essential();
    };
    let mut args: Vec<&str> = command.args.iter().map(String::as_str).collect();
    args.push("--version");
    let shown = format!("{} --version", command.display);
    let version = version_of(&program, &args, &command, &shown).await;
    let mut detail = format!("{} ({version})", program.display());
    if let Some(Configured { variable, .. }) = configured {
        detail.push_str(&format!(", from {variable}"));
    }
    Check::ok(NAME, detail).essential()
}

/// The agents `CODEX_FUSION_AGENTS` offers (`protocol::agents`), each
/// command looked up on PATH. codex's own command is checked above (its
/// version and login); this says what the list holds and what is missing.
pub fn agents_on_offer(env: &dyn Fn(&str) -> Option<OsString>) -> Check {
    use codex_fusion_protocol::agents::{self, BUILT_IN};
    const NAME: &str = "agents";
    let read = |name: &str| env(name).map(|value| value.to_string_lossy().into_owned());
    let offered = match agents::on_offer(read) {
        Ok(offered) => offered,
        Err(error) => {
            return Check::problem(
                NAME,
                error.to_string(),
                format!("fix {} (or unset it: codex alone is the default)", agents::AGENTS_ENV),
            )
            .essential();
        }
    };
    let path = env("PATH");
    let mut missing = Vec::new();
    let mut shown = Vec::new();
    for agent in &offered {
        shown.push(format!("{} ({})", agent.name, agent.command.display));
        if agent.name != agents::DEFAULT_AGENT && locate::on_path(&agent.command.program, path.as_deref()).is_none() {
            let install = BUILT_IN
                .iter()
                .find(|built_in| built_in.name == agent.name && agent.from.is_none())
                .map(|built_in| format!("install it (`npm install -g {}`) or ", built_in.package))
                .unwrap_or_default();
            missing.push(format!(
                "{}: `{}` is not on PATH; {install}set {} to its command",
                agent.name,
                agent.command.program,
                agents::command_variable(&agent.name)
            ));
        }
    }
    let detail = format!("on offer: {} (the first answers by default)", shown.join(", "));
    if missing.is_empty() {
        Check::ok(NAME, detail)
    } else {
        Check::problem(NAME, format!("{detail}; {}", missing.join("; ")), missing.join("; "))
    }
}

/// The first line `program args` prints (`args` ending in `--version`),
/// or why there is none; no hidden value of `command` is shown (the agent
/// may echo its arguments or environment: an unknown flag, a bad key).
async fn version_of(program: &Path, args: &[&str], command: &AcpCommand, shown: &str) -> String {
    let version = match locate::output_with_env(program, args, &command.env, VERSION_WAIT, shown).await {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| "version unknown".to_owned()),
        Ok(output) => format!("version unknown: `--version` failed: {}", locate::first_line(&output)),
        Err(error) => format!("version unknown: {error}"),
    };
    command.scrub(&version).into_owned()
}

/// Each agent on offer besides Codex (whose command, version and login have
/// checks of their own): its version (`<program> --version`) and whether it
/// can sign in (Claude: `ANTHROPIC_API_KEY`, `ANTHROPIC_AUTH_TOKEN` or a
/// Claude login; Gemini: `GEMINI_API_KEY`, `GOOGLE_API_KEY` or a Gemini
/// login), each with what to do about it. An agent whose command is not on
/// PATH is reported by `agents_on_offer`.
pub async fn council_agents(env: &dyn Fn(&str) -> Option<OsString>, home: Option<&Path>) -> Vec<Check> {
    use codex_fusion_protocol::agents;
    const NAME: &str = "agent";
    let read = |name: &str| env(name).map(|value| value.to_string_lossy().into_owned());
    let Ok(offered) = agents::on_offer(read) else {
        return Vec::new();
    };
    let path = env("PATH");
    let mut checks = Vec::new();
    for agent in offered.iter().filter(|agent| agent.name != agents::DEFAULT_AGENT) {
        let Some(program) = locate::on_path(&agent.command.program, path.as_deref()) else {
            continue;
        };
        let shown = format!("{} --version", agent.command.program);
        let version = version_of(&program, &["--version"], &agent.command, &shown).await;
        let has = |name: &str| {
            env(name).is_some_and(|value| !value.is_empty())
                || agent
                    .command
                    .env
                    .iter()
                    .any(|(key, value)| key == name && !value.is_empty())
        };
        let login = agent_login(&agent.name, &has, env, home);
        let detail = format!("{}: {} ({version}); {}", agent.name, program.display(), login.0);
        checks.push(match login.1 {
            None => Check::ok(NAME, detail),
            Some(fix) => Check::problem(NAME, detail, fix),
        });
    }
    checks
}

/// How agent `name` signs in, and what to do when it cannot.
fn agent_login(
    name: &str,
    has: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<OsString>,
    home: Option<&Path>,
) -> (String, Option<String>) {
    let keys: &[&str] = match name {
        "claude" => &["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"],
        "gemini" => &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        _ => return ("its login is its own (not checked)".to_owned(), None),
    };
    if let Some(key) = keys.iter().find(|key| has(key)) {
        return (format!("signs in with {key}"), None);
    }
    let login_file = match name {
        "claude" => env("CLAUDE_CONFIG_DIR")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.map(|home| home.join(".claude")))
            .map(|dir| dir.join(".credentials.json")),
        _ => home.map(|home| home.join(".gemini").join("oauth_creds.json")),
    };
    if let Some(file) = login_file.filter(|file| file.is_file()) {
        return (format!("signs in with its login ({})", file.display()), None);
    }
    let fix = match name {
        "claude" => {
            "set ANTHROPIC_API_KEY in the environment of the MCP server or the daemon, or sign in with `claude` (its /login)"
        }
        _ => "set GEMINI_API_KEY in the environment of the MCP server or the daemon, or sign in with `gemini`",
    };
    (
        format!("no {} and no login found", keys.join(" or ")),
        Some(fix.to_owned()),
    )
}

/// The system bubblewrap codex's sandbox uses instead of its own, if one is
/// installed (first `bwrap` on PATH, else `/usr/bin/bwrap`): one without
/// `--argv0` (older than 0.9, e.g. Debian 12's 0.8.0) cannot start codex's
/// sandbox helper, and every confined read and command fails with
/// "execvp codex-linux-sandbox: No such file or directory". `None` when
/// none is installed (codex uses the one it ships).
pub async fn system_bubblewrap(env: &dyn Fn(&str) -> Option<OsString>) -> Option<Check> {
    const NAME: &str = "bubblewrap";
    let program = locate::on_path("bwrap", env("PATH").as_deref()).or_else(|| {
        let system = PathBuf::from("/usr/bin/bwrap");
        system.is_file().then_some(system)
    })?;
    let help = match locate::output_with_env(&program, &["--help"], &[], VERSION_WAIT, "bwrap --help").await {
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => {
            return Some(Check::info(
                NAME,
                format!("{}: `--help` failed: {error}", program.display()),
            ));
        }
    };
    if help.contains("--argv0") {
        Some(Check::ok(
            NAME,
            format!("{} (codex's sandbox uses it; it has --argv0)", program.display()),
        ))
    } else {
        Some(Check::problem(
            NAME,
            format!(
                "{} has no --argv0 (older than 0.9), and codex's sandbox uses it instead of its own: every confined read and command fails with \"execvp codex-linux-sandbox: No such file or directory\"",
                program.display()
            ),
            "upgrade bubblewrap to 0.9 or later, or remove it (codex then uses the one it ships)",
        ))
    }
}

/// Whether the daemon can confine Codex's reads to the workspace: it needs
/// the codex binary behind codex-acp, which it learns from `<command> cli
/// doctor --json` (see `protocol::codex_doctor`). Without it codex-acp runs
/// in plain read-only mode, whose sandboxed commands read the whole disk
/// without asking. `None` when the agent command itself is unusable (the
/// codex-acp check reports that).
pub(crate) async fn read_confinement(
    env: &dyn Fn(&str) -> Option<OsString>,
    configured: Option<&Configured>,
) -> Option<Check> {
    let command = match configured.map(|configured| &configured.command) {
        None => AcpCommand::parse("codex-acp").expect("a plain word parses"),
        Some(Ok(command)) => command.clone(),
        Some(Err(_)) => return None,
    };
    let program = locate::on_path(&command.program, env("PATH").as_deref())?;
    let mut args: Vec<&str> = command.args.iter().map(String::as_str).collect();
    args.extend(codex_doctor::DOCTOR_ARGS);
    let shown = format!("{} {}", command.display, codex_doctor::DOCTOR_ARGS.join(" "));
    let answer = locate::output_with_env(&program, &args, &command.env, VERSION_WAIT, &shown).await;
    if let Ok(output) = &answer {
        remember_codex(env, &command, &output.stdout);
    }
    Some(confinement_check(&command, &shown, answer))
}

/// Keeps the codex binary the report names where the daemon looks for it
/// (`codex_doctor::DoctorCache`), so that the daemon's next first start
/// skips asking codex-acp again. Best effort: doctor reports, it does not
/// fail for a cache.
fn remember_codex(env: &dyn Fn(&str) -> Option<OsString>, command: &AcpCommand, report: &[u8]) {
    let Ok(codex) = codex_doctor::codex_executable(report) else {
        return;
    };
    let Ok(state_dir) = codex_fusion_protocol::paths::state_dir(env) else {
        return;
    };
    let path = env("PATH");
    let cache = codex_doctor::DoctorCache::new(&state_dir, command, path.as_deref().and_then(|path| path.to_str()));
    if let Some(cache) = cache
        && codex.is_file()
    {
        let _ = cache.store(&codex);
    }
}

/// The read-confinement check from the probe's outcome (a pure function of
/// it, but for whether the named executable exists).
pub fn confinement_check(command: &AcpCommand, shown: &str, answer: Result<std::process::Output, String>) -> Check {
    const NAME: &str = "read confinement";
    let reason = match answer {
        Err(error) => error,
        Ok(output) => match codex_doctor::codex_executable(&output.stdout) {
            Ok(codex) if codex.is_file() => {
                return Check::ok(
                    NAME,
                    format!(
                        "in force (codex at {}): Codex's sandboxed commands read only the workspace and system directories",
                        codex.display()
                    ),
                );
            }
            Ok(codex) => format!("`{shown}` names {}, which does not exist", codex.display()),
            Err(error) if output.status.success() => format!("{error} (`{shown}`)"),
            Err(error) => format!("{error}: `{shown}` failed: {}", locate::first_line(&output)),
        },
    };
    Check::problem(
        NAME,
        format!(
            "not in force: {}; Codex's sandboxed commands can then read files outside the workspace without asking",
            command.scrub(&reason)
        ),
        format!(
            "run codex-acp itself ({TESTED_CODEX_ACP}: npm install -g it, or point {ACP_COMMAND_ENV} at it), whose `cli doctor --json` names the codex executable; with another agent, only the reads it asks about are checked"
        ),
    )
}

/// `.mcp.json` files (of the current directory and the workspace) in which
/// our MCP server's `env` turns on a `CODEX_FUSION_ALLOW_*` switch. Such a
/// file comes with the repository: whoever can commit to it can let Codex
/// write or run commands without asking. `None` when none does.
fn project_permissions(dirs: &[PathBuf]) -> Option<Check> {
    let mut found = Vec::new();
    for dir in dirs {
        let path = dir.join(".mcp.json");
        if let Ok(Some(json)) = read_json(&path) {
            found.extend(project_grants(&json).into_iter().map(|grant| (path.clone(), grant)));
        }
    }
    permissions_check(&found)
}

/// A server of ours in an `.mcp.json` that turns switches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub server: String,
    /// The `CODEX_FUSION_ALLOW_*` names set on, in the file's order.
    pub switches: Vec<String>,
}

/// The switches each server of ours in `mcp_json` turns on.
pub fn project_grants(mcp_json: &Value) -> Vec<Grant> {
    let Some(servers) = mcp_json.get("mcpServers") else {
        return Vec::new();
    };
    claude::our_mcp_servers(servers)
        .into_iter()
        .filter_map(|(name, server)| {
            let switches: Vec<String> = server
                .get("env")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(variable, value)| {
                    variable.starts_with(allow::ALLOW_PREFIX) && value.as_str().and_then(allow::parse).unwrap_or(false)
                })
                .map(|(variable, _)| variable.clone())
                .collect();
            (!switches.is_empty()).then(|| Grant {
                server: name.to_owned(),
                switches,
            })
        })
        .collect()
}

/// The warning for `found` (file, grant) pairs, if any.
pub fn permissions_check(found: &[(PathBuf, Grant)]) -> Option<Check> {
    let (first_path, first) = found.first()?;
    let listed: Vec<String> = found
        .iter()
        .map(|(path, grant)| {
            format!(
                "{} turns on {} for the MCP server `{}`",
                path.display(),
                grant.switches.join(", "),
                grant.server
            )
        })
        .collect();
    let switch = &first.switches[0];
    Some(Check::problem(
        "project permissions",
        format!(
            "{}; a project's .mcp.json comes with the repository, so whoever can commit to it can let Codex act without asking you",
            listed.join("; ")
        ),
        format!(
            "delete {} from `env` in {} (or decline this project's MCP servers when Claude Code asks); to allow it yourself, set it in your own scope: claude mcp add {} -s user -e {switch}=1 -- {}",
            first.switches.join(", "),
            first_path.display(),
            claude::MCP_SERVER_NAME,
            claude::MCP_BINARY
        ),
    ))
}

/// The `NAME=value` words right after an `env` program (`env
/// OPENAI_API_KEY=… codex-acp`): the agent gets them as its environment.
fn env_program_vars(command: &AcpCommand) -> Vec<(String, String)> {
    if Path::new(&command.program).file_name() != Some(OsStr::new("env")) {
        return Vec::new();
    }
    command
        .args
        .iter()
        .map_while(|word| {
            let (name, value) = word.split_once('=')?;
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            valid.then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Variables that reach codex-acp from somewhere other than this shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSource {
    /// Where they are set, for a person.
    pub label: String,
    pub vars: Vec<(String, String)>,
}

/// An API key in the environment or in one of `sources` (the leading
/// `NAME=value` words of `CODEX_FUSION_ACP_COMMAND`, the MCP server's `env`
/// in Claude Code), or a login under the Codex home.
pub fn codex_login(env: &dyn Fn(&str) -> Option<OsString>, home: Option<&Path>, sources: &[EnvSource]) -> Check {
    const NAME: &str = "Codex login";
    for name in API_KEY_VARS {
        if env(name).is_some_and(|value| !value.is_empty()) {
            return Check::ok(NAME, format!("API key in {name}")).essential();
        }
    }
    for source in sources {
        if let Some((name, _)) = source
            .vars
            .iter()
            .find(|(name, value)| API_KEY_VARS.contains(&name.as_str()) && !value.is_empty())
        {
            return Check::ok(NAME, format!("API key in {name}, set in {}", source.label)).essential();
        }
    }
    let from_sources = sources.iter().find_map(|source| {
        source
            .vars
            .iter()
            .find(|(name, value)| name == CODEX_HOME_VAR && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    });
    let codex_home = from_sources
        .or_else(|| env(CODEX_HOME_VAR).filter(|value| !value.is_empty()).map(PathBuf::from))
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
    // Not following a symlink, as the daemon checks it (`paths::check_socket_dir`).
    let metadata = match std::fs::symlink_metadata(dir) {
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
    if metadata.file_type().is_symlink() {
        return Check::problem(
            NAME,
            format!(
                "{} is a symbolic link; the daemon refuses a socket directory that could lead anywhere",
                dir.display()
            ),
            format!(
                "remove {} (the daemon creates a real one), or set CODEX_FUSION_SOCKET to a path in a directory of your own",
                dir.display()
            ),
        )
        .essential();
    }
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

/// On Linux without `XDG_RUNTIME_DIR` (and without `CODEX_FUSION_SOCKET`),
/// this shell looks for the socket under /tmp, while a daemon started by the
/// systemd user manager, which sets the variable, listens under /run/user:
/// the two never meet.
fn runtime_dir(env: &dyn Fn(&str) -> Option<OsString>, socket: &Path) -> Option<Check> {
    let set = |name: &str| env(name).is_some_and(|value| !value.is_empty());
    if !cfg!(target_os = "linux") || set(SOCKET_ENV) || set("XDG_RUNTIME_DIR") {
        return None;
    }
    let uid = nix::unistd::getuid().as_raw();
    Some(Check::problem(
        "runtime dir",
        format!(
            "XDG_RUNTIME_DIR is not set, so this shell uses {} while the systemd service (and any shell that has it) uses /run/user/{uid}/codex-fusion/daemon.sock",
            socket.display()
        ),
        format!(
            "export XDG_RUNTIME_DIR=/run/user/{uid} (a login session sets it), or set {SOCKET_ENV} to the same path everywhere and run `codex-fusion install` again"
        ),
    ))
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

/// Claude Code's JSON files that name MCP servers, as read.
struct ClaudeJsonFiles {
    claude_json: Result<Option<Value>, String>,
    project_mcp: Result<Option<Value>, String>,
}

/// The MCP server is registered in one of Claude Code's scopes for
/// `project`, and the program it runs exists.
fn claude_mcp(dirs: &UserDirs, project: &Path, files: &ClaudeJsonFiles, registrations: &[Registration]) -> Check {
    const NAME: &str = "Claude Code MCP server";
    for file in [&files.claude_json, &files.project_mcp] {
        if let Err(problem) = file {
            return Check::problem(
                NAME,
                problem.clone(),
                "fix the file (Claude Code cannot read it either), then `codex-fusion install --claude`",
            );
        }
    }
    let ours = locate::ours(claude::MCP_BINARY)
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| claude::MCP_BINARY.to_owned());
    if registrations.is_empty() {
        return Check::problem(
            NAME,
            format!(
                "not registered for {} (looked in {} and .mcp.json)",
                project.display(),
                dirs.claude.claude_json.display()
            ),
            format!(
                "codex-fusion install --claude (or: claude mcp add {} -s user -- {ours})",
                claude::MCP_SERVER_NAME
            ),
        );
    }
    let path_var = crate::env_var("PATH");
    let fix = format!(
        "codex-fusion install --claude (re-registers the user-scope server with {ours}); in other scopes, point its command at {ours}"
    );
    for registration in registrations {
        let program = registration.program.as_deref().unwrap_or_default();
        if !program_exists(program, path_var.as_deref()) {
            return Check::problem(
                NAME,
                format!(
                    "registered as {registration}, but it runs `{program}`, which {}",
                    missing(program)
                ),
                fix,
            );
        }
        if !Path::new(program).is_absolute() {
            return Check::problem(
                NAME,
                format!(
                    "registered as {registration}, running `{program}` by name: Claude Code starts it only if its own PATH finds it, which a Claude Code started from a desktop launcher or an IDE may not"
                ),
                fix,
            );
        }
    }
    let found: Vec<String> = registrations.iter().map(ToString::to_string).collect();
    Check::ok(NAME, format!("registered as {}", found.join("; ")))
}

/// The SessionStart hook is in one of the settings files that apply, for
/// every source that changes Codex's session, and its program exists.
fn claude_hook(dirs: &UserDirs, project: &Path) -> Check {
    const NAME: &str = "Claude Code hook";
    let path_var = crate::env_var("PATH");
    let mut found = Vec::new();
    let mut limited = Vec::new();
    for file in claude::hook_settings_files(&dirs.claude, project) {
        let settings = match read_json(&file) {
            Ok(Some(settings)) => settings,
            Ok(None) => continue,
            Err(problem) => {
                return Check::problem(
                    NAME,
                    problem,
                    "fix the file (Claude Code cannot read it either), then `codex-fusion install --claude`",
                );
            }
        };
        for hook in claude::our_hooks(&settings) {
            let program = claude::program_of(&hook.command).unwrap_or_default();
            if !program_exists(&program, path_var.as_deref()) {
                return Check::problem(
                    NAME,
                    format!(
                        "the SessionStart hook in {} runs `{}`, but `{program}` {}",
                        file.display(),
                        hook.command,
                        missing(&program)
                    ),
                    "codex-fusion install --claude (points it at this codex-fusion)",
                );
            }
            if !Path::new(&program).is_absolute() {
                return Check::problem(
                    NAME,
                    format!(
                        "the SessionStart hook in {} runs `{}` by name: Claude Code runs it only if its own PATH finds `{program}`, which a Claude Code started from a desktop launcher or an IDE may not",
                        file.display(),
                        hook.command
                    ),
                    "codex-fusion install --claude (registers it by absolute path)",
                );
            }
            if hook.runs_for_every_start() {
                found.push(file.display().to_string());
            } else {
                limited.push(format!(
                    "{} (matcher `{}`)",
                    file.display(),
                    hook.matcher.unwrap_or_default()
                ));
            }
        }
    }
    if !found.is_empty() {
        found.dedup();
        return Check::ok(NAME, format!("SessionStart hook in {}", found.join(", ")));
    }
    if !limited.is_empty() {
        return Check::problem(
            NAME,
            format!(
                "the SessionStart hook runs only for some sources in {}, so /clear or --resume does not reach Codex",
                limited.join(", ")
            ),
            "codex-fusion install --claude (adds one for every source), or widen the matcher to startup|resume|clear",
        );
    }
    Check::problem(
        NAME,
        "no SessionStart hook runs `codex-fusion hook`, so /clear does not reset Codex",
        "codex-fusion install --claude",
    )
}

/// How a program that [`program_exists`] did not find is missing: a path
/// that does not exist, or a name that is not on PATH.
fn missing(program: &str) -> &'static str {
    if program.contains('/') {
        "does not exist"
    } else {
        "is not on PATH"
    }
}

/// Whether `program` (a path, or a name looked up on `path_var`) is an
/// executable that exists.
fn program_exists(program: &str, path_var: Option<&OsStr>) -> bool {
    !program.is_empty() && locate::on_path(program, path_var).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// doctor and install probe the codex command the daemon would run.
    #[test]
    fn the_codex_command_is_read_as_the_daemon_reads_it() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(known, _)| *known == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        assert!(configured_codex(&env(&[])).is_none());
        let old = configured_codex(&env(&[("CODEX_FUSION_ACP_COMMAND", "old-acp")])).expect("set");
        assert_eq!(old.variable, "CODEX_FUSION_ACP_COMMAND");
        let both = configured_codex(&env(&[
            ("CODEX_FUSION_ACP_COMMAND", "old-acp"),
            ("CODEX_FUSION_AGENT_CODEX", "new-acp"),
        ]))
        .expect("set");
        assert_eq!(both.variable, "CODEX_FUSION_AGENT_CODEX");
        assert_eq!(both.command.expect("parses").program, "new-acp");
    }

    /// Issue 15: the agents on offer, each command looked up on PATH, every
    /// mistake naming its variable.
    #[test]
    fn the_agents_on_offer_are_listed_and_a_missing_command_says_how_to_get_it() {
        let temp = tempfile::tempdir().expect("tempdir");
        let path = temp.path().to_string_lossy().into_owned();
        let check = agents_on_offer(&env_of(&[("PATH", &path)]));
        assert_eq!(check.state, State::Ok, "{}", check.detail);
        assert!(check.detail.contains("codex (codex-acp)"), "{}", check.detail);
        assert!(!check.detail.contains("not yet consulted"), "{}", check.detail);

        let council = env_of(&[("PATH", &path), ("CODEX_FUSION_AGENTS", "codex,claude")]);
        let check = agents_on_offer(&council);
        assert_eq!(check.state, State::Problem, "{}", check.detail);
        let fix = check.fix.clone().unwrap_or_default();
        assert!(
            fix.contains("npm install -g @agentclientprotocol/claude-agent-acp"),
            "{fix}"
        );
        assert!(fix.contains("CODEX_FUSION_AGENT_CLAUDE"), "{fix}");

        let program = temp.path().join("claude-agent-acp");
        std::fs::write(&program, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        let check = agents_on_offer(&council);
        assert_eq!(check.state, State::Ok, "{}", check.detail);

        let check = agents_on_offer(&env_of(&[("CODEX_FUSION_AGENTS", "codex;claude")]));
        assert_eq!(check.state, State::Problem);
        assert!(check.essential);
        assert!(check.detail.starts_with("CODEX_FUSION_AGENTS:"), "{}", check.detail);
    }

    /// A system bubblewrap without `--argv0` breaks codex's sandbox; one
    /// with it is fine; none is no line.
    #[tokio::test]
    async fn an_old_system_bubblewrap_is_a_problem_with_its_fix() {
        let temp = tempfile::tempdir().expect("tempdir");
        let bwrap = temp.path().join("bwrap");
        let path = temp.path().to_string_lossy().into_owned();
        let env = move |name: &str| (name == "PATH").then(|| OsString::from(&path));
        for (help, state) in [
            (
                "usage: bwrap [OPTIONS...] [--] COMMAND\n    --argv0 VALUE  Set argv[0]",
                State::Ok,
            ),
            (
                "usage: bwrap [OPTIONS...] [--] COMMAND\n    --unshare-user",
                State::Problem,
            ),
        ] {
            std::fs::write(&bwrap, format!("#!/bin/sh\necho '{help}'\n")).expect("write");
            std::fs::set_permissions(&bwrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
            let check = system_bubblewrap(&env).await.expect("a bubblewrap is found");
            assert_eq!(check.state, state, "{check:?}");
            if state == State::Problem {
                assert!(check.detail.contains("execvp codex-linux-sandbox"), "{}", check.detail);
                assert!(check.fix.as_deref().is_some_and(|fix| fix.contains("0.9")), "{check:?}");
                assert!(!check.essential);
            }
        }
    }

    /// Issue 15: each other agent's version and login, and how to fix a
    /// missing login.
    #[tokio::test]
    async fn each_council_agent_shows_its_version_and_login() {
        let temp = tempfile::tempdir().expect("tempdir");
        let bin = temp.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        for (program, version) in [("claude-agent-acp", "0.101.0"), ("gemini", "0.9.1")] {
            let path = bin.join(program);
            std::fs::write(&path, format!("#!/bin/sh\necho {version}\n")).expect("write");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        }
        let home = temp.path().join("home");
        std::fs::create_dir_all(home.join(".gemini")).expect("mkdir");
        let path = bin.to_string_lossy().into_owned();
        let env = env_of(&[
            ("PATH", &path),
            ("CODEX_FUSION_AGENTS", "codex,claude,gemini"),
            ("ANTHROPIC_API_KEY", "sk-ant-x"),
        ]);
        let checks = council_agents(&env, Some(&home)).await;
        assert_eq!(checks.len(), 2, "{checks:?}");
        assert_eq!(checks[0].state, State::Ok, "{checks:?}");
        assert!(
            checks[0].detail.contains("claude: ")
                && checks[0].detail.contains("(0.101.0); signs in with ANTHROPIC_API_KEY"),
            "{}",
            checks[0].detail
        );
        assert_eq!(checks[1].state, State::Problem, "{checks:?}");
        assert!(
            checks[1]
                .detail
                .contains("(0.9.1); no GEMINI_API_KEY or GOOGLE_API_KEY and no login found"),
            "{}",
            checks[1].detail
        );
        assert!(
            checks[1]
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("GEMINI_API_KEY")),
            "{checks:?}"
        );
        // A Gemini login counts.
        std::fs::write(home.join(".gemini/oauth_creds.json"), "{}").expect("write");
        let checks = council_agents(&env, Some(&home)).await;
        assert_eq!(checks[1].state, State::Ok, "{checks:?}");
        assert!(!checks[0].detail.contains("sk-ant-x"), "no key is shown");
    }
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
        let check = codex_login(&env_of(&[("OPENAI_API_KEY", "sk-x")]), Some(home), &[]);
        assert_eq!(check.state, State::Ok);
        assert!(check.detail.contains("OPENAI_API_KEY"));
        assert!(!check.detail.contains("sk-x"), "never shows the key");
        let check = codex_login(&env_of(&[("OPENAI_API_KEY", "")]), Some(home), &[]);
        assert_eq!(check.state, State::Problem, "an empty key is no key");
        assert!(check.essential);
        assert!(check.fix.as_deref().is_some_and(|fix| fix.contains("codex login")));
        std::fs::create_dir_all(home.join(".codex")).expect("mkdir");
        std::fs::write(home.join(".codex/auth.json"), "{}").expect("write");
        assert_eq!(codex_login(&env_of(&[]), Some(home), &[]).state, State::Ok);
        let elsewhere = home.join("elsewhere");
        let check = codex_login(
            &env_of(&[("CODEX_HOME", elsewhere.to_str().expect("utf8"))]),
            Some(home),
            &[],
        );
        assert_eq!(check.state, State::Problem, "CODEX_HOME wins over ~/.codex");
        assert!(check.detail.contains("elsewhere"), "{}", check.detail);
    }

    #[test]
    fn a_key_in_the_agent_command_or_the_mcp_servers_env_counts_as_a_login() {
        let temp = tempfile::tempdir().expect("tempdir");
        let sources = [
            EnvSource {
                label: "CODEX_FUSION_ACP_COMMAND".into(),
                vars: vec![("FOO".into(), "1".into())],
            },
            EnvSource {
                label: "the env of the MCP server `codex-fusion`, user scope (~/.claude.json)".into(),
                vars: vec![("CODEX_API_KEY".into(), "sk-y".into())],
            },
        ];
        let check = codex_login(&env_of(&[]), Some(temp.path()), &sources);
        assert_eq!(check.state, State::Ok, "{}", check.detail);
        assert!(
            check.detail.contains("CODEX_API_KEY, set in the env of the MCP server"),
            "{}",
            check.detail
        );
        assert!(!check.detail.contains("sk-y"));
        // A CODEX_HOME among those words is where the login is looked for.
        let elsewhere = temp.path().join("codex-home");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::fs::write(elsewhere.join("auth.json"), "{}").expect("write");
        let sources = [EnvSource {
            label: "CODEX_FUSION_ACP_COMMAND".into(),
            vars: vec![("CODEX_HOME".into(), elsewhere.to_string_lossy().into_owned())],
        }];
        let check = codex_login(&env_of(&[]), Some(temp.path()), &sources);
        assert_eq!(check.state, State::Ok, "{}", check.detail);
        assert!(check.detail.contains("codex-home"), "{}", check.detail);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_shell_without_xdg_runtime_dir_is_warned_that_the_service_listens_elsewhere() {
        let socket = Path::new("/tmp/codex-fusion-1000/daemon.sock");
        let check = runtime_dir(&env_of(&[]), socket).expect("a warning");
        assert_eq!(check.state, State::Problem);
        assert!(!check.essential);
        assert!(check.detail.contains("XDG_RUNTIME_DIR is not set"), "{}", check.detail);
        assert!(
            check.detail.contains("/tmp/codex-fusion-1000/daemon.sock"),
            "{}",
            check.detail
        );
        assert!(runtime_dir(&env_of(&[("XDG_RUNTIME_DIR", "/run/user/1000")]), socket).is_none());
        assert!(
            runtime_dir(&env_of(&[("CODEX_FUSION_SOCKET", "/s/daemon.sock")]), socket).is_none(),
            "an explicit socket is the same everywhere it is set"
        );
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
        // Issue 13: a symlink is what the daemon refuses; doctor says so.
        let link = temp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let check = socket_directory(&link.join("daemon.sock"), uid);
        assert_eq!(check.state, State::Problem);
        assert!(check.detail.contains("symbolic link"), "{}", check.detail);
        assert!(check.fix.as_deref().is_some_and(|fix| fix.contains("remove")));
    }

    /// Issue 13: a project file can turn the guardian's switches on for
    /// our server; doctor names the file, the switches and the way out.
    #[test]
    fn a_project_mcp_json_that_turns_switches_on_is_a_warning() {
        let json = serde_json::json!({"mcpServers": {
            "codex-fusion": {"command": "codex-fusion-mcp", "env": {
                "CODEX_FUSION_ALLOW_COMMANDS": "true",
                "CODEX_FUSION_ALLOW_EXTERNAL_READS": "0",
                "CODEX_FUSION_ALLOW_WRITES": "maybe",
                "CODEX_FUSION_WORKSPACE": "/w"
            }},
            "renamed": {"command": "/opt/bin/codex-fusion-mcp --x", "env": {"CODEX_FUSION_ALLOW_WRITES": "1"}},
            "other": {"command": "other", "env": {"CODEX_FUSION_ALLOW_COMMANDS": "1"}}
        }});
        let grants = project_grants(&json);
        assert_eq!(
            grants,
            [
                Grant {
                    server: "codex-fusion".into(),
                    switches: vec!["CODEX_FUSION_ALLOW_COMMANDS".into()],
                },
                Grant {
                    server: "renamed".into(),
                    switches: vec!["CODEX_FUSION_ALLOW_WRITES".into()],
                },
            ],
            "on values only, servers of ours only"
        );
        let path = PathBuf::from("/repo/.mcp.json");
        let found: Vec<_> = grants.into_iter().map(|grant| (path.clone(), grant)).collect();
        let check = permissions_check(&found).expect("a warning");
        assert_eq!(check.state, State::Problem);
        assert!(!check.essential);
        assert_eq!(
            check.detail,
            "/repo/.mcp.json turns on CODEX_FUSION_ALLOW_COMMANDS for the MCP server `codex-fusion`; \
             /repo/.mcp.json turns on CODEX_FUSION_ALLOW_WRITES for the MCP server `renamed`; \
             a project's .mcp.json comes with the repository, so whoever can commit to it can let Codex act without asking you"
        );
        let fix = check.fix.expect("a fix");
        assert!(
            fix.starts_with("delete CODEX_FUSION_ALLOW_COMMANDS from `env` in /repo/.mcp.json"),
            "{fix}"
        );
        assert!(
            fix.contains("claude mcp add codex-fusion -s user -e CODEX_FUSION_ALLOW_COMMANDS=1 -- codex-fusion-mcp"),
            "{fix}"
        );
        assert_eq!(permissions_check(&[]), None);
        assert!(project_grants(&serde_json::json!({"mcpServers": {"codex-fusion": {"command": "x"}}})).is_empty());
    }

    fn output(code: i32, stdout: &str, stderr: &str) -> std::process::Output {
        use std::os::unix::process::ExitStatusExt as _;
        std::process::Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    /// Issue 13: read confinement needs the codex executable that
    /// `cli doctor --json` names; without it doctor warns and says why,
    /// never quoting a key the command or the agent's output holds.
    #[test]
    fn read_confinement_is_in_force_only_when_the_report_names_an_existing_codex() {
        let temp = tempfile::tempdir().expect("tempdir");
        let codex = temp.path().join("codex");
        std::fs::write(&codex, "").expect("write");
        let command = AcpCommand::parse("codex-acp --api-key=sk-planted-123").expect("parses");
        let shown = format!("{} cli doctor --json", command.display);
        let report = |path: &Path| {
            serde_json::json!({"checks": {"installation": {"details": {"current executable": path}}}}).to_string()
        };
        let check = confinement_check(&command, &shown, Ok(output(0, &report(&codex), "")));
        assert_eq!(check.state, State::Ok, "{}", check.detail);
        assert!(check.detail.contains(&codex.display().to_string()), "{}", check.detail);

        let cases = [
            (
                Ok(output(0, &report(&temp.path().join("gone")), "")),
                "which does not exist",
            ),
            (
                Ok(output(2, "", "unknown flag `cli`; got --api-key=sk-planted-123")),
                "printed no JSON report: `codex-acp --api-key=… cli doctor --json` failed: unknown flag `cli`; got --api-key=…",
            ),
            (Ok(output(0, "{}", "")), "names no codex executable"),
            (
                Err("`codex-acp --api-key=… cli doctor --json` did not finish within 20 s".to_owned()),
                "did not finish within 20 s",
            ),
        ];
        for (answer, reason) in cases {
            let check = confinement_check(&command, &shown, answer);
            assert_eq!(check.state, State::Problem, "{}", check.detail);
            assert!(!check.essential);
            assert!(check.detail.starts_with("not in force: "), "{}", check.detail);
            assert!(check.detail.contains(reason), "{}", check.detail);
            assert!(!check.detail.contains("sk-planted"), "{}", check.detail);
            assert!(
                check.fix.as_deref().is_some_and(|fix| fix.contains(TESTED_CODEX_ACP)),
                "says what to do"
            );
        }
    }

    #[test]
    fn the_words_an_env_program_sets_reach_the_agent() {
        let command = AcpCommand::parse("/usr/bin/env OPENAI_API_KEY=sk-x A_1=2 codex-acp B=3").expect("parses");
        assert_eq!(
            env_program_vars(&command),
            [
                ("OPENAI_API_KEY".to_owned(), "sk-x".to_owned()),
                ("A_1".to_owned(), "2".to_owned())
            ]
        );
        let command = AcpCommand::parse("codex-acp OPENAI_API_KEY=sk-x").expect("parses");
        assert!(env_program_vars(&command).is_empty());
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
