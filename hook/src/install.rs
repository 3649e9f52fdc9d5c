//! `codex-fusion install [--claude] [--dry-run]`: the user service, and with
//! `--claude` the MCP server and the SessionStart hook in Claude Code.
//!
//! Every step first looks at what is there and only changes what differs,
//! so a second run changes nothing and says so. Each step prints one line:
//! `✓` done, `=` already so, `→` would be done (dry run), `!` left for you
//! (with the command to run), `✗` failed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use codex_fusion_protocol::Role;
use codex_fusion_protocol::control::{ControlRequest, ControlResponse};
use codex_fusion_protocol::paths::{SOCKET_ENV, STATE_DIR_ENV};

use crate::claude::{self, HookChange, MCP_BINARY, MCP_SERVER_NAME};
use crate::dirs::{UserDirs, read_json};
use crate::link::{self, LinkError};
use crate::locate::{self, PROGRAM_WAIT};
use crate::output::{note, say};
use crate::service::{self, LAUNCHD_LABEL, SYSTEMD_UNIT, ServiceManager};

/// Suffix of the copy of a Claude settings file taken before our first change.
pub const BACKUP_SUFFIX: &str = ".codex-fusion-backup";

/// PATH for the service when the installer's own environment has none.
const FALLBACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How long a daemon found on the socket gets to answer a ping; one that
/// does not is wedged, and `install` must not hang on it.
const PING_WAIT: Duration = Duration::from_secs(3);

pub async fn run(claude: bool, dry_run: bool) -> ExitCode {
    let mut report = Report::new(dry_run);
    let dirs = match UserDirs::from_env() {
        Ok(dirs) => dirs,
        Err(error) => return crate::fail(format_args!("{error:#}")),
    };
    let installer = Installer { dirs, dry_run };
    installer.service(&mut report).await;
    installer.codex_binary(&mut report).await;
    if claude {
        installer.mcp_server(&mut report).await;
        installer.hook(&mut report);
    } else {
        report.note("Claude Code registration skipped; `codex-fusion install --claude` registers the MCP server and the SessionStart hook");
    }
    report.finish()
}

struct Installer {
    dirs: UserDirs,
    dry_run: bool,
}

impl Installer {
    /// Asks codex-acp where its codex binary is, as doctor does, which
    /// keeps the answer where the daemon's first start looks for it.
    async fn codex_binary(&self, report: &mut Report) {
        if self.dry_run {
            report.would("ask codex-acp where its codex binary is, for the daemon's first start".to_owned());
            return;
        }
        let env = crate::env_var;
        let configured = crate::doctor::configured_codex(&env);
        match crate::doctor::read_confinement(&env, configured.as_ref()).await {
            Some(check) if check.state == crate::doctor::State::Ok => {
                report.did(format!("read confinement: {}", check.detail));
            }
            Some(check) => report.note(&format!(
                "read confinement: {}; {}",
                check.detail,
                check.fix.unwrap_or_default()
            )),
            None => report
                .note("codex-acp was not found, so read confinement could not be prepared; see `codex-fusion doctor`"),
        }
    }
    /// Writes the service file and enables the service where the manager runs.
    async fn service(&self, report: &mut Report) {
        let Some(manager) = ServiceManager::native() else {
            report.note("no supported service manager on this system (systemd or launchd); the MCP server starts codex-fusiond on demand");
            return;
        };
        let Some(daemon) = locate::ours("codex-fusiond") else {
            report.failed(format!(
                "codex-fusiond was found neither next to {} nor on PATH; build it (`cargo build --release`) or run scripts/install.sh",
                current_exe_display()
            ));
            return;
        };
        let path_var = crate::env_var("PATH")
            .map(|path| path.to_string_lossy().into_owned())
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| FALLBACK_PATH.to_owned());
        // The socket and state dir this shell's commands use must be the
        // service's too, or they would never meet.
        let mut env = vec![("PATH".to_owned(), path_var)];
        for name in [SOCKET_ENV, STATE_DIR_ENV] {
            if let Some(value) = crate::env_var(name).filter(|value| !value.is_empty()) {
                env.push((name.to_owned(), value.to_string_lossy().into_owned()));
            }
        }
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let contents = manager.render(&daemon, &env, &self.dirs.home);
        let unit_path = manager.unit_path(&self.dirs.home, &self.dirs.config_home);
        let changed = std::fs::read_to_string(&unit_path).ok().as_deref() != Some(contents.as_str());
        if !changed {
            report.already(format!("service file {} is up to date", unit_path.display()));
        } else if self.dry_run {
            report.would(format!("write {} (runs {})", unit_path.display(), daemon.display()));
        } else {
            match write_file(&unit_path, &contents) {
                Ok(()) => report.did(format!("wrote {} (runs {})", unit_path.display(), daemon.display())),
                Err(error) => {
                    report.failed(format!("cannot write {}: {error}", unit_path.display()));
                    return;
                }
            }
        }
        match manager {
            ServiceManager::Systemd => self.enable_systemd(report, changed).await,
            ServiceManager::Launchd => self.load_launchd(report, &unit_path, changed).await,
        }
    }

    async fn enable_systemd(&self, report: &mut Report, changed: bool) {
        let manual = "systemctl --user daemon-reload && systemctl --user enable --now codex-fusiond";
        let Some(systemctl) = locate::on_path("systemctl", crate::env_var("PATH").as_deref()) else {
            report.manual(format!("systemctl not found; enable the service yourself: {manual}"));
            return;
        };
        let systemctl = Systemctl(systemctl);
        if !systemctl
            .query(&["show-environment"])
            .await
            .is_ok_and(|output| output.status.success())
        {
            report.manual(format!(
                "the systemd user manager is not reachable here (no login session?); once it is: {manual}"
            ));
            return;
        }
        if changed {
            self.run_step(
                report,
                &systemctl.0,
                &["--user", "daemon-reload"],
                "reloaded the systemd user manager",
            )
            .await;
        }
        let enabled = systemctl.state("is-enabled").await.as_deref() == Some("enabled");
        if enabled {
            report.already(format!("{SYSTEMD_UNIT} is enabled (starts at login)"));
        } else {
            self.run_step(
                report,
                &systemctl.0,
                &["--user", "enable", SYSTEMD_UNIT],
                &format!("enabled {SYSTEMD_UNIT}"),
            )
            .await;
        }
        let active = systemctl.state("is-active").await.as_deref() == Some("active");
        if active && changed {
            self.run_step(
                report,
                &systemctl.0,
                &["--user", "restart", SYSTEMD_UNIT],
                &format!("restarted {SYSTEMD_UNIT} to use the new unit"),
            )
            .await;
        } else if active {
            report.already(format!("{SYSTEMD_UNIT} is running"));
        } else {
            match on_demand_daemon().await {
                OnDemand::Running(pid) => report.manual(format!(
                    "a codex-fusiond started on demand runs (pid {pid}), so the service was not started beside it; it takes over at your next login, or now with: codex-fusion stop && systemctl --user start codex-fusiond"
                )),
                OnDemand::Wedged(problem) => report.manual(format!(
                    "{problem}, so the service was not started beside it; once `codex-fusion stop` has stopped it: systemctl --user start codex-fusiond"
                )),
                OnDemand::None => {
                    self.run_step(
                        report,
                        &systemctl.0,
                        &["--user", "start", SYSTEMD_UNIT],
                        &format!("started {SYSTEMD_UNIT}"),
                    )
                    .await;
                }
            }
        }
    }

    async fn load_launchd(&self, report: &mut Report, plist: &Path, changed: bool) {
        let uid = nix::unistd::getuid().as_raw();
        let domain = format!("gui/{uid}");
        let target = format!("{domain}/{LAUNCHD_LABEL}");
        let plist_text = plist.to_string_lossy().into_owned();
        let manual = format!("launchctl bootstrap {domain} {plist_text}");
        let log_dir = service::launchd_log_dir(&self.dirs.home);
        if !self.dry_run
            // The daemon's stdout and stderr land here: private, as its state.
            && let Err(error) = codex_fusion_protocol::private::create_dir(&log_dir)
        {
            report.failed(format!("cannot prepare the service's log directory: {error}"));
            return;
        }
        let Some(launchctl) = locate::on_path("launchctl", crate::env_var("PATH").as_deref()) else {
            report.manual(format!("launchctl not found; load the agent yourself: {manual}"));
            return;
        };
        let loaded = locate::output(&launchctl, &["print", &target], PROGRAM_WAIT)
            .await
            .is_ok_and(|output| output.status.success());
        if loaded && !changed {
            report.already(format!("LaunchAgent {LAUNCHD_LABEL} is loaded"));
            return;
        }
        if loaded {
            self.run_step(
                report,
                &launchctl,
                &["bootout", &target],
                &format!("unloaded the old {LAUNCHD_LABEL}"),
            )
            .await;
        } else {
            match on_demand_daemon().await {
                OnDemand::Running(pid) => {
                    report.manual(format!(
                        "a codex-fusiond started on demand runs (pid {pid}), so the agent was not loaded beside it; it loads at your next login, or now with: codex-fusion stop && {manual}"
                    ));
                    return;
                }
                OnDemand::Wedged(problem) => {
                    report.manual(format!(
                        "{problem}, so the agent was not loaded beside it; once `codex-fusion stop` has stopped it: {manual}"
                    ));
                    return;
                }
                OnDemand::None => {}
            }
        }
        self.run_step(
            report,
            &launchctl,
            &["bootstrap", &domain, &plist_text],
            &format!("loaded LaunchAgent {LAUNCHD_LABEL}"),
        )
        .await;
    }

    /// Registers the MCP server with `claude mcp add`, unless it already is
    /// with this `codex-fusion-mcp`; a user-scope registration of another
    /// path (the binaries moved) is replaced, or left for the user with the
    /// commands when replacing it would lose their settings.
    async fn mcp_server(&self, report: &mut Report) {
        let Some(shim) = locate::ours(MCP_BINARY) else {
            report.failed(format!(
                "{MCP_BINARY} was found neither next to {} nor on PATH; build it (`cargo build --release`) or run scripts/install.sh",
                current_exe_display()
            ));
            return;
        };
        let shim_text = shim.to_string_lossy().into_owned();
        let add = ["mcp", "add", MCP_SERVER_NAME, "-s", "user", "--", shim_text.as_str()];
        let claude_json_path = &self.dirs.claude.claude_json;
        let claude_json = match read_json(claude_json_path) {
            Ok(claude_json) => claude_json,
            Err(problem) => {
                report.failed(format!(
                    "{problem}; left it alone (Claude Code cannot read it either). Fix it, then run install again"
                ));
                return;
            }
        };
        let claude = locate::on_path("claude", crate::env_var("PATH").as_deref());
        if let Some(registration) = claude_json.as_ref().and_then(claude::user_registration) {
            let program = registration.program.clone().unwrap_or_default();
            // A program named without a path runs only where Claude Code's
            // PATH finds it: registered again by path, like a moved one.
            if Path::new(&program).is_absolute() && same_program(&program, &shim) {
                report.already(format!(
                    "MCP server `{}` is registered with Claude Code ({})",
                    registration.name,
                    claude_json_path.display()
                ));
                return;
            }
            let remove = ["mcp", "remove", registration.name.as_str(), "-s", "user"];
            let commands = format!("claude {} && claude {}", shell_words(&remove), shell_words(&add));
            let why_manual = if registration.name != MCP_SERVER_NAME {
                Some(format!("it is registered as `{}`", registration.name))
            } else if registration.customised {
                Some("its args or env would be lost (add them back with -e NAME=value)".to_owned())
            } else if claude.is_none() {
                Some("the claude CLI was not found on PATH".to_owned())
            } else {
                None
            };
            let stale = format!(
                "MCP server `{}` (user scope) runs `{program}`, not {shim_text}",
                registration.name
            );
            let Some(claude) = claude.filter(|_| why_manual.is_none()) else {
                report.manual(format!(
                    "{stale}; register this one yourself ({}): {commands}",
                    why_manual.unwrap_or_default()
                ));
                return;
            };
            if self.dry_run {
                report.would(format!("re-register it ({stale}): {commands}"));
                return;
            }
            match locate::output(&claude, &remove, PROGRAM_WAIT).await {
                Ok(output) if output.status.success() => {}
                Ok(output) => {
                    report.failed(format!(
                        "{stale}; `claude {}` failed: {}",
                        shell_words(&remove),
                        locate::first_line(&output)
                    ));
                    return;
                }
                Err(error) => {
                    report.failed(error);
                    return;
                }
            }
            self.run_step(
                report,
                &claude,
                &add,
                &format!(
                    "re-registered the MCP server (it ran `{program}`): claude {}",
                    shell_words(&add)
                ),
            )
            .await;
            return;
        }
        let Some(claude) = claude else {
            report.manual(format!(
                "the claude CLI was not found on PATH; register the MCP server yourself: claude {}",
                shell_words(&add)
            ));
            return;
        };
        let registered = locate::output(&claude, &["mcp", "get", MCP_SERVER_NAME], PROGRAM_WAIT)
            .await
            .is_ok_and(|output| output.status.success());
        if registered {
            report.already(format!(
                "MCP server `{MCP_SERVER_NAME}` is registered with Claude Code (claude mcp get)"
            ));
            return;
        }
        self.run_step(
            report,
            &claude,
            &add,
            &format!("registered the MCP server: claude {}", shell_words(&add)),
        )
        .await;
    }

    /// Adds the SessionStart hook to the user's Claude settings, keeping a
    /// backup of the file as it was before our first change.
    fn hook(&self, report: &mut Report) {
        let settings = self.dirs.claude.user_settings();
        let command = hook_command();
        let text = match std::fs::read_to_string(&settings) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                report.failed(format!("cannot read {}: {error}", settings.display()));
                return;
            }
        };
        let path_var = crate::env_var("PATH");
        let exists = |program: &str| locate::on_path(program, path_var.as_deref()).is_some();
        let (merged, change) = match claude::add_session_start_hook(text.as_deref(), &command, &exists) {
            Ok(Some(merged)) => merged,
            Ok(None) => {
                report.already(format!("SessionStart hook is registered in {}", settings.display()));
                return;
            }
            Err(problem) => {
                report.failed(format!(
                    "{} {problem}; left it alone. Add the hook by hand: {{\"hooks\": {{\"SessionStart\": [{{\"hooks\": [{{\"type\": \"command\", \"command\": \"{command}\"}}]}}]}}}}",
                    settings.display()
                ));
                return;
            }
        };
        let what = match &change {
            HookChange::Added => format!("the SessionStart hook `{command}` to {}", settings.display()),
            HookChange::Repaired { old } => format!(
                "the SessionStart hook in {} at `{command}` (it ran `{old}`, which no longer exists)",
                settings.display()
            ),
            HookChange::MadeAbsolute { old } => format!(
                "the SessionStart hook in {} at `{command}` (it ran `{old}`, found only if Claude Code's PATH has it)",
                settings.display()
            ),
        };
        let verb = match change {
            HookChange::Added => ("add", "added"),
            HookChange::Repaired { .. } | HookChange::MadeAbsolute { .. } => ("point", "pointed"),
        };
        if self.dry_run {
            report.would(format!("{} {what}", verb.0));
            return;
        }
        let mut backup_note = String::new();
        if text.is_some() {
            let backup = backup_path(&settings);
            if backup.exists() {
                backup_note = format!(
                    "; the backup from before the first change stays at {}",
                    backup.display()
                );
            } else if let Err(error) = std::fs::copy(&settings, &backup) {
                report.failed(format!(
                    "cannot back up {} to {}: {error}; left it alone",
                    settings.display(),
                    backup.display()
                ));
                return;
            } else {
                backup_note = format!("; backup of the original: {}", backup.display());
            }
        }
        match write_file(&settings, &merged) {
            Ok(()) => report.did(format!("{} {what}{backup_note}", verb.1)),
            Err(error) => report.failed(format!("cannot write {}: {error}", settings.display())),
        }
    }

    /// Runs one changing command (or says it would) and reports it.
    async fn run_step(&self, report: &mut Report, program: &Path, args: &[&str], done: &str) {
        let name = program
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self.dry_run {
            report.would(format!("run {name} {}", shell_words(args)));
            return;
        }
        match locate::output(program, args, PROGRAM_WAIT).await {
            Ok(output) if output.status.success() => report.did(done.to_owned()),
            Ok(output) => report.failed(format!(
                "`{name} {}` failed: {}",
                shell_words(args),
                locate::first_line(&output)
            )),
            Err(error) => report.failed(error),
        }
    }
}

/// `systemctl --user` queries.
struct Systemctl(PathBuf);

impl Systemctl {
    async fn query(&self, args: &[&str]) -> Result<std::process::Output, String> {
        let mut full = vec!["--user"];
        full.extend_from_slice(args);
        locate::output(&self.0, &full, PROGRAM_WAIT).await
    }

    /// The one-word answer of `is-enabled`/`is-active` for our unit.
    async fn state(&self, verb: &str) -> Option<String> {
        let output = self.query(&[verb, SYSTEMD_UNIT]).await.ok()?;
        Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// What holds the daemon's socket.
enum OnDemand {
    /// Nothing answers there.
    None,
    /// A daemon answers, with this pid.
    Running(u32),
    /// Something holds the socket but does not answer; the text says so.
    Wedged(String),
}

/// Whether a daemon (one started on demand, since the service is not
/// active) holds the socket, asked with a deadline.
async fn on_demand_daemon() -> OnDemand {
    let Ok(socket) = crate::socket() else {
        return OnDemand::None;
    };
    match link::exchange(&socket, Role::Cli, &ControlRequest::Ping, PING_WAIT, "a ping").await {
        Ok(answer) => match answer.response {
            ControlResponse::Pong { pid, .. } => OnDemand::Running(pid),
            _ => OnDemand::Running(answer.pid),
        },
        Err(LinkError::NotRunning { .. }) => OnDemand::None,
        // A daemon of another version refuses our hello, but it runs.
        Err(LinkError::Refused { .. }) => {
            OnDemand::Wedged(format!("a codex-fusiond of another version holds {}", socket.display()))
        }
        Err(_) => OnDemand::Wedged(format!(
            "a daemon holds the socket {} but does not answer",
            socket.display()
        )),
    }
}

/// Whether `registered` (a command's program: a path, or a name on PATH)
/// is the binary at `ours`.
fn same_program(registered: &str, ours: &Path) -> bool {
    let Some(found) = locate::on_path(registered, crate::env_var("PATH").as_deref()) else {
        return false;
    };
    match (std::fs::canonicalize(found), std::fs::canonicalize(ours)) {
        (Ok(found), Ok(ours)) => found == ours,
        _ => false,
    }
}

/// The hook's command line: this binary's absolute path and `hook`, like
/// the MCP server's registration, so the hook runs whatever PATH Claude
/// Code has (one started from a desktop launcher may lack `~/.cargo/bin`).
pub fn hook_command() -> String {
    let exe = std::env::current_exe()
        .map(|exe| exe.to_string_lossy().into_owned())
        .unwrap_or_else(|_| claude::HOOK_BINARY.to_owned());
    let quoted = shlex::try_quote(&exe).map(|quoted| quoted.into_owned()).unwrap_or(exe);
    format!("{quoted} {}", claude::HOOK_ARGUMENT)
}

pub fn backup_path(settings: &Path) -> PathBuf {
    let mut name = settings.as_os_str().to_owned();
    name.push(BACKUP_SUFFIX);
    PathBuf::from(name)
}

/// Writes `contents` to `path` through a temporary file in the same
/// directory, so a crash never leaves half a file; keeps the old file's
/// permissions. A symlink (a settings file kept in a dotfiles repository)
/// is written through: its target gets the new contents and the link stays.
fn write_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let target = symlink_target(path);
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temporary = target.as_os_str().to_owned();
    temporary.push(".codex-fusion-tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, contents)?;
    if let Ok(metadata) = std::fs::metadata(&target) {
        std::fs::set_permissions(&temporary, metadata.permissions())?;
    }
    std::fs::rename(&temporary, &target)
}

/// The file `path` finally names: itself, or its symlinks' target, even
/// when that target does not exist yet.
fn symlink_target(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    match std::fs::read_link(path) {
        Ok(target) if target.is_absolute() => target,
        Ok(target) => path.parent().unwrap_or(Path::new(".")).join(target),
        Err(_) => path.to_path_buf(),
    }
}

fn shell_words(words: &[&str]) -> String {
    shlex::try_join(words.iter().copied()).unwrap_or_else(|_| words.join(" "))
}

fn current_exe_display() -> String {
    std::env::current_exe()
        .map(|exe| exe.display().to_string())
        .unwrap_or_else(|_| "codex-fusion".into())
}

/// What install did, printed as it goes, and the exit code at the end.
struct Report {
    dry_run: bool,
    changed: usize,
    manual: usize,
    failed: usize,
}

impl Report {
    fn new(dry_run: bool) -> Report {
        Report {
            dry_run,
            changed: 0,
            manual: 0,
            failed: 0,
        }
    }

    fn did(&mut self, what: String) {
        self.changed += 1;
        say!("✓ {what}");
    }

    fn would(&mut self, what: String) {
        self.changed += 1;
        say!("→ would {what}");
    }

    fn already(&mut self, what: String) {
        say!("= {what}");
    }

    fn manual(&mut self, what: String) {
        self.manual += 1;
        say!("! {what}");
    }

    fn note(&mut self, what: &str) {
        say!("· {what}");
    }

    fn failed(&mut self, what: String) {
        self.failed += 1;
        say!("✗ {what}");
    }

    fn finish(self) -> ExitCode {
        if self.failed > 0 {
            note!(
                "codex-fusion: install incomplete: {} step{} failed (above)",
                self.failed,
                if self.failed == 1 { "" } else { "s" }
            );
            return ExitCode::FAILURE;
        }
        let left = match self.manual {
            0 => String::new(),
            1 => " One step is left for you (marked !).".to_owned(),
            count => format!(" {count} steps are left for you (marked !)."),
        };
        if self.dry_run {
            say!("Dry run: nothing was changed.{left}");
        } else if self.changed == 0 {
            say!("Nothing to change: everything install does was already in place.{left}");
        } else {
            say!("Done.{left} Check the result with `codex-fusion doctor`.");
        }
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_settings_file_is_written_through_and_stays_a_link() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dotfiles = temp.path().join("dotfiles");
        std::fs::create_dir(&dotfiles).expect("mkdir");
        let target = dotfiles.join("claude-settings.json");
        std::fs::write(&target, "{}").expect("write");
        let claude = temp.path().join(".claude");
        std::fs::create_dir(&claude).expect("mkdir");
        let link = claude.join("settings.json");
        std::os::unix::fs::symlink("../dotfiles/claude-settings.json", &link).expect("symlink");
        write_file(&link, "{\"new\": true}\n").expect("written");
        assert!(
            std::fs::symlink_metadata(&link).expect("stat").file_type().is_symlink(),
            "the link stays a link"
        );
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "{\"new\": true}\n");
        assert!(
            std::fs::read_dir(&claude).expect("list").count() == 1,
            "no temporary file is left next to the link"
        );
        // A link whose target does not exist yet gets it created.
        let dangling = claude.join("other.json");
        std::os::unix::fs::symlink(dotfiles.join("later.json"), &dangling).expect("symlink");
        write_file(&dangling, "x").expect("written");
        assert!(
            std::fs::symlink_metadata(&dangling)
                .expect("stat")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(dotfiles.join("later.json")).expect("read"), "x");
    }
}
