//! Read confinement: a Codex permission profile that keeps Codex's sandboxed
//! commands from reading outside the workspace (so that such reads fail and
//! Codex has to ask, which reaches the guardian), masks credential stores
//! everywhere (even from approved escalations), and pins what Codex may
//! reach without asking: no web search unless external reads are allowed,
//! no network in the sandbox, commands that see only the core environment
//! variables, none of the user's own Codex MCP servers or hooks.
//!
//! codex-acp's read-only mode lets sandboxed commands read the whole disk
//! without asking. Codex's permission profiles can limit reads to the
//! workspace roots plus the system directories every command needs. The
//! profile cannot be passed through `CODEX_CONFIG` (codex-acp only lists
//! profiles the app-server knows at start), so codex-acp is pointed, through
//! `CODEX_PATH`, at a small wrapper that starts the real codex binary with
//! `-c` overrides defining the profile. See docs/adr/0004.
//!
//! Finding the codex binary runs `codex-acp cli doctor --json` once per
//! command line; the result is cached for the daemon's lifetime (and on
//! disk). An agent that does not answer it (the test fake, another ACP
//! agent) runs without confinement, in plain read-only mode; a codex-acp
//! that cannot be confined is refused (`session/start.rs`).
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codex_fusion_protocol::codex_doctor::DoctorCache;
use codex_fusion_protocol::private;

use crate::config::AcpCommand;

/// The permission profile codex-fusion defines.
pub const PROFILE: &str = "codex-fusion";
/// The codex-acp mode that selects it.
pub const PROFILE_MODE: &str = "permission-profile:codex-fusion";

/// How long `cli doctor` may take (npx may unpack the package first).
const DOCTOR_TIMEOUT: Duration = Duration::from_secs(20);
/// The doctor's report is a few kilobytes; more is not a report.
const DOCTOR_OUTPUT_MAX: u64 = 1024 * 1024;

/// How deep below each base (workspace root, home, CODEX_HOME, state dir)
/// Codex looks for files matching the profile's deny patterns. Codex expands
/// the patterns before every sandboxed command (and at `session/new`), by
/// walking the tree: unbounded, a 50 000-file workspace cost 1.4 s per
/// command; at 4 it costs nothing measurable. Files deeper than this are
/// not masked (docs/adr/0004 says so).
pub const DENY_SCAN_DEPTH: u32 = 4;

/// A prepared wrapper: set `CODEX_PATH` to it for codex-acp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    pub wrapper: PathBuf,
    pub codex_binary: PathBuf,
}

/// What the profile needs to know about the user's machine and the
/// connection's policy, resolved before the wrapper is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileFacts {
    /// The user's home, whose credential stores are masked.
    pub home: Option<PathBuf>,
    /// Codex's own home (config, login, session transcripts), masked.
    pub codex_home: Option<PathBuf>,
    /// The daemon's state dir, masked.
    pub state_dir: PathBuf,
    /// What the connection lets Codex have beyond the pins.
    pub choice: ProfileChoice,
    /// The user's own Codex MCP servers (from `$CODEX_HOME/config.toml`),
    /// disabled by name unless `choice.codex_config`.
    pub user_mcp_servers: Vec<String>,
    /// The credential files at the top of `home` when the wrapper is
    /// written, masked by their exact paths.
    pub home_stores: HomeStores,
}

/// The credential files at the top of a home directory (`~/.netrc`,
/// `~/.env`, `~/server.pem`, …) as they are at one moment.
///
/// They are masked by exact path, not by pattern: Codex expands a pattern
/// by walking its base directory before every sandboxed command and at
/// every `session/new`, and a pattern at the top of the home walks the
/// whole home (to [`DENY_SCAN_DEPTH`]), which on a developer's machine is
/// tens of thousands of files (docs/notes/session-start-cost.md). An exact
/// path cannot mask a file created later, so an agent carries the stores
/// it was started with in its pool key, and a workspace whose stores have
/// changed moves its session to an agent started with the new ones before
/// its next turn ([`HomeStores::changed`]).
#[derive(Debug, Clone, Default)]
pub struct HomeStores {
    pub home: Option<PathBuf>,
    /// Sorted; only regular files and directories. A symlink is left as
    /// the patterns left it (their walk, `rg --files` without `--follow`,
    /// never listed one), since a deny across a symlink can keep Codex's
    /// escalated commands from starting.
    pub present: Vec<PathBuf>,
    /// The home directory as it was when a listing last matched
    /// `present`, so that [`HomeStores::changed`] lists it again only when
    /// it has changed since. Not part of what the stores are.
    checked: Arc<Mutex<Option<DirStamp>>>,
}

impl PartialEq for HomeStores {
    fn eq(&self, other: &HomeStores) -> bool {
        self.home == other.home && self.present == other.present
    }
}

impl Eq for HomeStores {}

impl std::hash::Hash for HomeStores {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.home.hash(state);
        self.present.hash(state);
    }
}

impl HomeStores {
    /// What `home` holds now (nothing without a home).
    pub fn now(home: Option<&Path>) -> HomeStores {
        let before = home.and_then(DirStamp::of);
        let present = home.map(top_level_stores).unwrap_or_default();
        HomeStores {
            home: home.map(Path::to_path_buf),
            present,
            checked: Arc::new(Mutex::new(before.and_then(DirStamp::settled))),
        }
    }

    /// Whether the home holds other credential files than these now.
    ///
    /// Called before every turn, so the home is listed only when its
    /// directory has changed (another inode, or another change time) since
    /// the last listing that matched. A change time can be as coarse as a
    /// second or two, and a file created in the same tick as a listing
    /// leaves it as it was; so a stamp counts only when the listing came
    /// [`DirStamp::SETTLED`] after it, and until then every call lists.
    pub fn changed(&self) -> bool {
        let Some(home) = self.home.as_deref() else {
            return false;
        };
        let stamp = DirStamp::of(home);
        let mut checked = self.checked.lock().unwrap_or_else(|poison| poison.into_inner());
        if let (Some(now), Some(seen)) = (stamp, *checked)
            && now.dir == seen.dir
        {
            return false;
        }
        let changed = top_level_stores(home) != self.present;
        *checked = if changed {
            None
        } else {
            stamp.and_then(DirStamp::settled)
        };
        changed
    }
}

/// Which directory a path named, and when its entries last changed.
#[derive(Debug, Clone, Copy)]
struct DirStamp {
    dir: (u64, u64, i64, i64),
    /// Seconds since the epoch, from the wall clock, when it was read.
    read_at: f64,
}

impl DirStamp {
    /// How long after its change time a directory's stamp is trusted: a
    /// change in the same tick of a coarse clock would not show.
    const SETTLED: f64 = 3.0;

    fn of(dir: &Path) -> Option<DirStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let metadata = std::fs::metadata(dir).ok()?;
        let read_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(DirStamp {
            dir: (metadata.dev(), metadata.ino(), metadata.ctime(), metadata.ctime_nsec()),
            read_at,
        })
    }

    /// This stamp, if it was read long enough after the change it shows.
    fn settled(self) -> Option<DirStamp> {
        let changed_at = self.dir.2 as f64 + self.dir.3 as f64 / 1e9;
        (self.read_at - changed_at >= DirStamp::SETTLED).then_some(self)
    }
}

#[cfg(test)]
thread_local! {
    /// How many times this thread listed a home, for the tests.
    static LISTINGS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The entries of `home` named like a credential file.
fn top_level_stores(home: &Path) -> Vec<PathBuf> {
    #[cfg(test)]
    LISTINGS.with(|count| count.set(count.get() + 1));
    let Ok(entries) = std::fs::read_dir(home) else {
        return Vec::new();
    };
    let mut present: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { return false };
            let credential = crate::sensitive::CREDENTIAL_FILES.contains(&name)
                || crate::sensitive::ENV_FILES.contains(&name)
                || crate::sensitive::CREDENTIAL_SUFFIXES
                    .iter()
                    .any(|suffix| name.len() > suffix.len() && name.ends_with(suffix));
            credential && entry.file_type().is_ok_and(|kind| !kind.is_symlink())
        })
        .map(|entry| entry.path())
        .collect();
    present.sort();
    present
}

/// The settings of a connection that change an agent's profile, so two
/// clients that differ in them never share an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ProfileChoice {
    /// `CODEX_FUSION_ALLOW_EXTERNAL_READS`: Codex may search the web.
    pub web_search: bool,
    /// `CODEX_FUSION_ALLOW_CODEX_CONFIG`: Codex loads the MCP servers,
    /// hooks and rules of the user's and the project's Codex config.
    pub codex_config: bool,
}

/// Caches the codex binary each agent command line names (or the fact that
/// the agent is not codex-acp). A probe that failed for a passing reason
/// (a timeout, an I/O error) is tried again next time.
#[derive(Default)]
pub struct ConfinementCache {
    binaries: Mutex<HashMap<String, Result<PathBuf, String>>>,
    /// One probe at a time per command, so two workspaces starting the same
    /// agent together probe it once; other commands do not wait.
    probing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Why no confinement was prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unconfined {
    /// The agent is not codex-acp (or names no codex binary): remembered.
    NotCodex(String),
    /// Something that may pass: tried again at the next start.
    Transient(String),
    /// The codex binary lives where granting its directory would expose
    /// the user's files.
    Unsafe(String),
}

impl std::fmt::Display for Unconfined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unconfined::NotCodex(reason) | Unconfined::Transient(reason) | Unconfined::Unsafe(reason) => {
                f.write_str(reason)
            }
        }
    }
}

impl ConfinementCache {
    /// The confinement for `command` started with `env`, preparing it on
    /// first use.
    pub async fn get(
        &self,
        command: &AcpCommand,
        env: &[(String, String)],
        cwd: &Path,
        facts: &ProfileFacts,
    ) -> Result<Arc<Confinement>, Unconfined> {
        // The whole command (its hidden words included: another CODEX_PATH
        // names another binary), never shown.
        let key = format!("{:?}", (&command.env, &command.program, &command.args));
        let codex_binary = {
            let known = self.lock().get(&key).cloned();
            let gate = match known {
                Some(_) => None,
                None => Some(
                    self.probing
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .entry(key.clone())
                        .or_default()
                        .clone(),
                ),
            };
            let _probing = match &gate {
                Some(gate) => Some(gate.lock().await),
                None => None,
            };
            let known = self.lock().get(&key).cloned();
            match known {
                Some(Ok(binary)) => binary,
                Some(Err(reason)) => return Err(Unconfined::NotCodex(reason)),
                None => match probe(command, env, cwd, &facts.state_dir).await {
                    Ok(binary) => {
                        self.lock().insert(key, Ok(binary.clone()));
                        binary
                    }
                    Err(Unconfined::NotCodex(reason)) => {
                        tracing::info!(command = %command.display, %reason, "no read confinement for this agent; it runs in plain read-only mode");
                        self.lock().insert(key, Err(reason.clone()));
                        return Err(Unconfined::NotCodex(reason));
                    }
                    Err(other) => {
                        tracing::warn!(command = %command.display, reason = %other, "read confinement not prepared this time; it is tried again at the next start");
                        return Err(other);
                    }
                },
            }
        };
        // Judged where it really is (the facts are canonical too).
        let codex_binary = std::fs::canonicalize(&codex_binary).unwrap_or(codex_binary);
        let readable = readable_install_dir(&codex_binary, facts).map_err(Unconfined::Unsafe)?;
        let wrapper = write_wrapper(&wrapper_script(&codex_binary, &readable, facts), &facts.state_dir)
            .map_err(|error| Unconfined::Transient(format!("cannot write the codex wrapper: {error}")))?;
        tracing::debug!(codex = %codex_binary.display(), wrapper = %wrapper.display(), "read confinement prepared");
        Ok(Arc::new(Confinement { wrapper, codex_binary }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Result<PathBuf, String>>> {
        self.binaries.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// The codex binary `command` names, from the doctor's answer saved on disk
/// or by asking it.
async fn probe(
    command: &AcpCommand,
    env: &[(String, String)],
    cwd: &Path,
    state_dir: &Path,
) -> Result<PathBuf, Unconfined> {
    let path = env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value.as_str());
    if let Some(binary) = bundled_codex(command, env, path) {
        tracing::debug!(codex = %binary.display(), "codex-acp's bundled codex found by its npm layout");
        return Ok(binary);
    }
    let cache = DoctorCache::new(state_dir, command, path);
    if let Some(binary) = cache.as_ref().and_then(DoctorCache::load) {
        return Ok(binary);
    }
    tracing::info!(command = %command.display, "asking `cli doctor` where codex-acp's codex binary is (once; the answer is kept)");
    let binary = find_codex_binary(command, env, cwd).await?;
    if let Some(cache) = &cache
        && let Err(error) = cache.store(&binary)
    {
        tracing::debug!(%error, "cannot cache the doctor's answer");
    }
    Ok(binary)
}

/// The directory the profile lets sandboxed commands read so that codex's
/// sandbox helper (and `rg`) can run: `vendor/<triple>` for the npm layout
/// (`vendor/<triple>/bin/codex`), else the binary's own directory. Never
/// one that would expose the user's files: `/`, the home directory or any
/// directory above it, `~/.local`, `~/.cargo`, or anything holding the
/// state dir or CODEX_HOME.
pub fn readable_install_dir(codex_binary: &Path, facts: &ProfileFacts) -> Result<PathBuf, String> {
    let own = codex_binary.parent().unwrap_or(Path::new("/"));
    let vendor = own
        .file_name()
        .filter(|name| *name == "bin")
        .and_then(|_| own.parent())
        .filter(|triple| {
            triple
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|name| name == "vendor")
        });
    let unsafe_because = |dir: &Path| -> Option<String> {
        if dir.parent().is_none() {
            return Some("it is the root directory".into());
        }
        if let Some(home) = &facts.home {
            if home.starts_with(dir) {
                return Some(format!("it holds the home directory {}", home.display()));
            }
            for name in [".local", ".cargo"] {
                if dir == home.join(name) {
                    return Some(format!("it is ~/{name}, which holds more than codex"));
                }
            }
        }
        let stores = [Some(&facts.state_dir), facts.codex_home.as_ref()];
        stores
            .into_iter()
            .flatten()
            .find(|store| store.starts_with(dir) || dir.starts_with(store))
            .map(|store| format!("it overlaps {}", store.display()))
    };
    let mut refusals = Vec::new();
    for candidate in vendor.into_iter().chain([own]) {
        match unsafe_because(candidate) {
            None => return Ok(candidate.to_path_buf()),
            Some(reason) => refusals.push(format!("{} ({reason})", candidate.display())),
        }
    }
    Err(format!(
        "codex's binary {} lives where codex-fusion will not let Codex's sandbox read: {}. Install codex-acp with npm (`npm install -g @agentclientprotocol/codex-acp`), which keeps codex in a directory of its own",
        codex_binary.display(),
        refusals.join("; ")
    ))
}

/// The codex binary an npm-installed codex-acp runs, found the way it
/// finds it, without starting node (`cli doctor` costs two node starts and
/// codex's network checks, 0.4–1 s on the first use ever). Only for the
/// plain case: the command is codex-acp's own script, named directly or
/// found on `path` (the agent's PATH), with no arguments and no
/// `CODEX_PATH` of its own.
/// codex-acp resolves `@openai/codex/bin/codex.js` from its `dist`
/// directory by node's rule (each `node_modules` above it, nearest first);
/// codex.js takes the platform package's
/// `vendor/<triple>/bin/codex`, resolved by the same rule from its own
/// real directory, else its own `vendor/`. Anything else asks the doctor.
pub fn bundled_codex(command: &AcpCommand, env: &[(String, String)], path: Option<&str>) -> Option<PathBuf> {
    if !command.args.is_empty() || env.iter().any(|(name, _)| name == "CODEX_PATH") {
        return None;
    }
    // A relative path would be taken from the daemon's directory, not the
    // agent's.
    if command.program.contains('/') && !Path::new(&command.program).is_absolute() {
        return None;
    }
    let script = codex_fusion_protocol::codex_doctor::which(&command.program, path)?;
    let dist = script.parent()?;
    let package = dist.parent()?;
    if script.file_name()? != "index.js"
        || dist.file_name()? != "dist"
        || package_name(&package.join("package.json")).as_deref() != Some("@agentclientprotocol/codex-acp")
    {
        return None;
    }
    let codex_package = std::fs::canonicalize(node_resolve(dist, "@openai/codex")?).ok()?;
    let (platform_package, triple) = codex_platform()?;
    let vendor = match node_resolve(&codex_package.join("bin"), platform_package) {
        Some(platform) => platform.join("vendor"),
        None => codex_package.join("vendor"),
    };
    let binary = vendor.join(triple).join("bin").join("codex");
    binary.is_file().then_some(binary)
}

/// The package directory node's `require.resolve("<name>/package.json")`
/// finds from `from`: `<dir>/node_modules/<name>` for each directory from
/// `from` up, skipping directories that are themselves `node_modules`.
fn node_resolve(from: &Path, name: &str) -> Option<PathBuf> {
    from.ancestors()
        .filter(|dir| dir.file_name().is_none_or(|base| base != "node_modules"))
        .map(|dir| dir.join("node_modules").join(name))
        .find(|candidate| candidate.join("package.json").is_file())
}

/// The `name` a package.json gives.
fn package_name(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("name")?.as_str().map(str::to_owned)
}

/// codex.js's platform package and target triple for this machine.
fn codex_platform() -> Option<(&'static str, &'static str)> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some(("@openai/codex-linux-x64", "x86_64-unknown-linux-musl")),
        ("linux", "aarch64") => Some(("@openai/codex-linux-arm64", "aarch64-unknown-linux-musl")),
        ("macos", "x86_64") => Some(("@openai/codex-darwin-x64", "x86_64-apple-darwin")),
        ("macos", "aarch64") => Some(("@openai/codex-darwin-arm64", "aarch64-apple-darwin")),
        _ => None,
    }
}

/// Asks `codex-acp cli doctor --json` where its codex binary is. The probe
/// runs with the agent's own environment and directory, in a process group
/// of its own, killed afterwards whatever happened, so nothing it started
/// (npx, node, a shell's background job) outlives it.
async fn find_codex_binary(command: &AcpCommand, env: &[(String, String)], cwd: &Path) -> Result<PathBuf, Unconfined> {
    let child = tokio::process::Command::new(&command.program)
        .args(&command.args)
        .args(codex_fusion_protocol::codex_doctor::DOCTOR_ARGS)
        .env_clear()
        .envs(env.iter().map(|(key, value)| (key, value)))
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| Unconfined::Transient(format!("cannot run `cli doctor`: {error}")))?;
    let mut child = child;
    let _group = child
        .id()
        .map(|pid| crate::agent::GroupGuard(nix::unistd::Pid::from_raw(pid as i32)));
    let Some(mut stdout) = child.stdout.take() else {
        return Err(Unconfined::Transient("`cli doctor` has no stdout".into()));
    };
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut report = Vec::new();
        let _ = (&mut stdout).take(DOCTOR_OUTPUT_MAX).read_to_end(&mut report).await;
        report
    });
    tokio::time::timeout(DOCTOR_TIMEOUT, child.wait())
        .await
        .map_err(|_| Unconfined::Transient("`cli doctor` did not answer in time".to_owned()))?
        .map_err(|error| Unconfined::Transient(format!("`cli doctor` failed: {error}")))?;
    // A background process of the probe may hold stdout open; what the
    // probe printed is there once it exited.
    let report = tokio::time::timeout(Duration::from_millis(500), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    codex_binary_from_doctor(&report).map_err(Unconfined::NotCodex)
}

/// Reads the codex executable from `cli doctor --json` output, which must
/// exist.
pub fn codex_binary_from_doctor(stdout: &[u8]) -> Result<PathBuf, String> {
    let path = codex_fusion_protocol::codex_doctor::codex_executable(stdout).map_err(|error| error.to_string())?;
    if !path.is_file() {
        return Err(format!("the codex executable {} does not exist", path.display()));
    }
    Ok(path)
}

/// Writes the wrapper script (named after its content, so wrappers for
/// different facts never overwrite each other) in the private wrapper
/// directory; an existing one with the same content is kept.
fn write_wrapper(script: &str, state_dir: &Path) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    let dir = state_dir.join("codex-wrapper");
    private::own_dir(&dir).map_err(std::io::Error::other)?;
    let wrapper = dir.join(format!(
        "codex-{:016x}",
        codex_fusion_protocol::fnv1a(script.as_bytes())
    ));
    let current = private::read(&wrapper).ok().flatten();
    if current.as_deref() != Some(script.as_bytes()) {
        // Unique, so another daemon, or another start of this one, writing
        // the same wrapper cannot collide; executable before it takes the
        // wrapper's name.
        let temporary = private::temporary_beside(&wrapper);
        let _ = std::fs::remove_file(&temporary);
        let mut file = private::open(&temporary, private::Access::CreateNew).map_err(std::io::Error::other)?;
        file.write_all(script.as_bytes())?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o700))?;
        std::fs::rename(&temporary, &wrapper)?;
    }
    Ok(wrapper)
}

/// Relative patterns (below every workspace root) and the same anchored at
/// the home directory: credential stores Codex never reads, not even in an
/// approved escalation. Only file patterns (`dir/**`, never a bare
/// directory): codex masks each match, and masking a file inside a
/// directory already masked makes the sandbox fail to start. Codex's own
/// home is masked by [`CODEX_HOME_SECRETS`] instead of as a whole.
fn credential_patterns() -> Vec<String> {
    use crate::sensitive::{
        CREDENTIAL_DIRS, CREDENTIAL_FILES, CREDENTIAL_NESTED_DIRS, CREDENTIAL_NESTED_FILES, CREDENTIAL_SUFFIXES,
    };
    let mut patterns: Vec<String> = CREDENTIAL_DIRS
        .iter()
        .filter(|dir| **dir != ".codex")
        .map(|dir| format!("**/{dir}/**"))
        .collect();
    patterns.extend(
        CREDENTIAL_NESTED_DIRS
            .iter()
            .map(|(outer, inner)| format!("**/{outer}/{inner}/**")),
    );
    patterns.extend(
        CREDENTIAL_NESTED_FILES
            .iter()
            .map(|(outer, inner)| format!("**/{outer}/{inner}")),
    );
    patterns.extend(CREDENTIAL_FILES.iter().map(|name| format!("**/{name}")));
    patterns.extend(crate::sensitive::ENV_FILES.iter().map(|name| format!("**/{name}")));
    patterns.extend(CREDENTIAL_SUFFIXES.iter().map(|suffix| format!("**/*{suffix}")));
    patterns
}

/// `path` as a pattern that matches only what exists: an exact path is
/// written with its last character in brackets (`.netr[c]`). Codex masks an
/// exact deny path even when it does not exist, by mounting over its first
/// missing directory, which fails in the escalated sandbox ("Can't bind
/// mount … on …/.cargo") and with it the command; a pattern is expanded to
/// the files there are.
fn as_pattern(path: &str) -> String {
    if path.contains(['*', '?', '[']) {
        return path.to_owned();
    }
    match path.char_indices().next_back() {
        Some((index, last)) if last != '/' => format!("{}[{last}]", &path[..index]),
        _ => path.to_owned(),
    }
}

/// Where a pattern's store lies under a home directory, when that is not
/// at its top (git's credential store is `~/.config/git/credentials`).
fn at_home(pattern: &str) -> &str {
    match pattern {
        "git/credentials" => ".config/git/credentials",
        other => other,
    }
}

/// What of a Codex home is masked: its login, its config (MCP servers'
/// tokens), its history and session transcripts, its state databases. Not
/// the whole directory: codex keeps the symlinks it runs its own helpers
/// through in `tmp/`, and a deny across a writable symlink makes every
/// escalated command fail ("cannot enforce sandbox deny-read path").
pub const CODEX_HOME_SECRETS: &[&str] = &[
    "auth.json",
    ".credentials.json",
    "config.toml",
    "history.jsonl",
    "sessions/**",
    "archived_sessions/**",
    "log/**",
    // The environment codex saved of the user's login shell.
    "shell_snapshots/**",
    "*.sqlite",
    "*.sqlite-wal",
    "*.sqlite-shm",
];

/// The wrapper: the real codex binary with the profile defined and chosen
/// as the default. The profile may read the workspace roots, the system
/// directories every command needs (`:minimal`), and codex's own install
/// directory (the sandbox helper lives there); it writes nothing, masks
/// credential stores, has no network. Commands get the core variables only
/// (no key the agent was started with); web search is off unless the
/// policy allows external reads; the user's Codex MCP servers and hooks
/// are not loaded.
pub fn wrapper_script(codex_binary: &Path, readable: &Path, facts: &ProfileFacts) -> String {
    let deny = |path: String| format!("{}=\"deny\"", toml_string(&as_pattern(&path)));
    // A tree that exists is masked whole: its pattern would be walked and
    // every file in it masked one by one before every sandboxed command
    // (a Codex home's transcripts grow with every session). Its files are
    // Codex's or ours, never named like a credential, so no other entry
    // masks a file inside it (which would keep the sandbox from starting).
    let deny_tree = |path: String| match path.strip_suffix("/**") {
        Some(tree) if std::fs::symlink_metadata(tree).is_ok_and(|meta| meta.is_dir()) => {
            format!("{}=\"deny\"", toml_string(tree))
        }
        _ => deny(path),
    };
    let mut filesystem = vec![
        "\":minimal\"=\"read\"".to_owned(),
        format!("{}=\"read\"", toml_string(&readable.to_string_lossy())),
    ];
    let patterns = credential_patterns();
    if let Some(home) = &facts.home {
        let home = home.to_string_lossy();
        let home = home.trim_end_matches('/');
        // Patterns below a directory of the home (`.ssh/**`,
        // `.docker/config.json`) are walked from that directory, which is
        // small or missing; those at its top are the exact stores.
        filesystem.extend(
            patterns
                .iter()
                .map(|pattern| at_home(pattern.trim_start_matches("**/")))
                .filter(|pattern| pattern.contains('/'))
                .map(|pattern| deny(format!("{home}/{pattern}"))),
        );
        filesystem.extend(
            facts
                .home_stores
                .present
                .iter()
                .map(|store| format!("{}=\"deny\"", toml_string(&store.to_string_lossy()))),
        );
    }
    let default_codex_home = facts.home.as_ref().map(|home| home.join(".codex"));
    let mut codex_homes = vec![facts.codex_home.as_ref(), default_codex_home.as_ref()];
    codex_homes.dedup();
    for codex_home in codex_homes.into_iter().flatten() {
        let codex_home = codex_home.to_string_lossy();
        let codex_home = codex_home.trim_end_matches('/');
        filesystem.extend(
            CODEX_HOME_SECRETS
                .iter()
                .map(|secret| deny_tree(format!("{codex_home}/{secret}"))),
        );
    }
    filesystem.push(deny_tree(format!(
        "{}/**",
        facts.state_dir.to_string_lossy().trim_end_matches('/')
    )));
    filesystem.push(format!("glob_scan_max_depth={DENY_SCAN_DEPTH}"));
    let mut roots = vec!["\".\"=\"read\"".to_owned()];
    roots.extend(patterns.into_iter().map(deny));
    filesystem.push(format!("\":workspace_roots\"={{{}}}", roots.join(",")));
    let mut overrides = vec![
        format!("default_permissions=\"{PROFILE}\""),
        format!("permissions.{PROFILE}.filesystem={{{}}}", filesystem.join(",")),
        format!("permissions.{PROFILE}.network.enabled=false"),
        "shell_environment_policy.inherit=\"core\"".to_owned(),
        "shell_environment_policy.ignore_default_excludes=false".to_owned(),
        // Codex's own search for AGENTS.md runs one sandbox launch per file
        // it looks at under a profile; the daemon reads the file instead
        // (crate::instructions).
        "project_doc_max_bytes=0".to_owned(),
    ];
    if !facts.choice.web_search {
        overrides.push("web_search=\"disabled\"".to_owned());
    }
    // Tools that reach the network or other people's data without a
    // request to approve: connectors, plugins and what installs them, a
    // browser, memories that carry one workspace's facts to another.
    for feature in [
        "apps",
        "plugins",
        "tool_suggest",
        "skill_mcp_dependency_install",
        "browser_use",
        "computer_use",
        "memories",
    ] {
        overrides.push(format!("features.{feature}=false"));
    }
    if !facts.choice.codex_config {
        // Hooks run commands outside the sandbox; `notify` runs a program
        // after every turn; MCP servers start outside the sandbox and
        // their tools answer without asking.
        overrides.push("features.hooks=false".to_owned());
        overrides.push("notify=[]".to_owned());
        if !facts.user_mcp_servers.is_empty() {
            let disabled: Vec<String> = facts
                .user_mcp_servers
                .iter()
                .map(|name| format!("{}={{enabled=false}}", toml_string(name)))
                .collect();
            overrides.push(format!("mcp_servers={{{}}}", disabled.join(",")));
        }
    }
    let mut script = format!(
        "#!/bin/sh\n# Written by codex-fusiond: codex with a read-confining permission profile.\nexec {}",
        shell_quote(&codex_binary.to_string_lossy())
    );
    for value in overrides {
        script.push_str(" -c ");
        script.push_str(&shell_quote(&value));
    }
    script.push_str(" \"$@\"\n");
    script
}

/// `$CODEX_HOME/config.toml`, parsed once for everything a start reads of
/// it; `None` when it is missing or does not parse (Codex itself would
/// refuse it).
pub fn codex_config(codex_home: &Path) -> Option<toml::Table> {
    let text = std::fs::read_to_string(codex_home.join("config.toml")).ok()?;
    match text.parse::<toml::Table>() {
        Ok(table) => Some(table),
        Err(error) => {
            tracing::debug!(%error, "cannot parse Codex's config.toml");
            None
        }
    }
}

/// The names of the MCP servers Codex's config defines.
pub fn mcp_servers_in(config: &toml::Table) -> Vec<String> {
    match config.get("mcp_servers") {
        Some(toml::Value::Table(servers)) => servers.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A project Codex configuration that Codex would load for `workspace`
/// (codex-acp marks every session root trusted): a `.codex` directory with
/// a `config.toml` (MCP servers that start outside the sandbox, hooks),
/// `rules` (exec policies that let commands run without asking) or
/// `hooks.json`, in the workspace or a directory above it up to the
/// nearest one holding `.git` (all the way up when there is none). Codex's
/// own home is the user's configuration, not a project's.
pub fn project_codex_config(workspace: &Path, codex_home: Option<&Path>) -> Option<PathBuf> {
    let mut directories: Vec<&Path> = Vec::new();
    for directory in workspace.ancestors() {
        directories.push(directory);
        if directory.join(".git").exists() {
            break;
        }
    }
    directories.into_iter().find_map(|directory| {
        let dot_codex = directory.join(".codex");
        if codex_home.is_some_and(|home| home == dot_codex) {
            return None;
        }
        ["config.toml", "rules", "hooks.json"]
            .iter()
            .map(|name| dot_codex.join(name))
            .find(|path| path.exists())
    })
}

fn toml_string(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doctor_report_names_the_binary() {
        let temp = tempfile::tempdir().expect("tempdir");
        let binary = temp.path().join("vendor/x86_64/bin/codex");
        std::fs::create_dir_all(binary.parent().expect("parent")).expect("mkdir");
        std::fs::write(&binary, "").expect("write");
        let report = serde_json::json!({"checks": {"installation": {"details": {"current executable": binary}}}});
        assert_eq!(
            codex_binary_from_doctor(report.to_string().as_bytes()),
            Ok(binary.clone())
        );
        assert!(codex_binary_from_doctor(b"usage: fake").is_err());
        let missing =
            serde_json::json!({"checks": {"installation": {"details": {"current executable": "/nope/codex"}}}});
        assert!(codex_binary_from_doctor(missing.to_string().as_bytes()).is_err());
    }

    fn facts(web_search: bool) -> ProfileFacts {
        ProfileFacts {
            home: Some(PathBuf::from("/home/u")),
            codex_home: Some(PathBuf::from("/home/u/.codex")),
            state_dir: PathBuf::from("/home/u/.local/state/codex-fusion"),
            choice: ProfileChoice {
                web_search,
                codex_config: false,
            },
            user_mcp_servers: vec!["github".into(), "odd.name".into()],
            home_stores: HomeStores {
                home: Some(PathBuf::from("/home/u")),
                present: vec![PathBuf::from("/home/u/.netrc"), PathBuf::from("/home/u/it's.pem")],
                ..HomeStores::default()
            },
        }
    }

    #[test]
    fn the_wrapper_defines_the_profile_and_survives_odd_paths() {
        let script = wrapper_script(
            Path::new("/opt/it's here/vendor/x86/bin/codex"),
            Path::new("/opt/it's here/vendor/x86"),
            &facts(false),
        );
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(
            script.contains(r"exec '/opt/it'\''s here/vendor/x86/bin/codex'"),
            "{script}"
        );
        assert!(script.contains(r#"'default_permissions="codex-fusion"'"#), "{script}");
        assert!(
            script.contains(
                r#"permissions.codex-fusion.filesystem={":minimal"="read","/opt/it'\''s here/vendor/x86"="read","#
            ),
            "{script}"
        );
        assert!(
            script.contains(r#"":workspace_roots"={"."="read","**/.ssh/**"="deny","#),
            "{script}"
        );
        assert!(script.contains(r#""**/*.pem"="deny""#), "{script}");
        assert!(script.contains(r#""**/.env"="deny""#), "{script}");
        assert!(
            !script.contains(r#"".env.example"#),
            "templates stay readable: {script}"
        );
        assert!(script.contains(r#""/home/u/.ssh/**"="deny""#), "{script}");
        assert!(script.contains(r#""/home/u/.config/gh/**"="deny""#), "{script}");
        assert!(
            script.contains(r#""/home/u/.config/git/credential[s]"="deny""#),
            "{script}"
        );
        assert!(
            script.contains(r#""/home/u/.netrc"="deny""#) && script.contains(r#""/home/u/it'\''s.pem"="deny""#),
            "the home's own stores are masked by exact path: {script}"
        );
        for pattern in [".netr[c]", "*.pem", ".en[v]", "id_rs[a]"] {
            assert!(
                !script.contains(&format!("\"/home/u/{pattern}\"")),
                "a pattern at the top of the home walks the whole home: {script}"
            );
        }
        assert!(script.contains(r#""**/.env.prod"="deny""#), "{script}");
        assert!(
            script.contains(r#""/home/u/.codex/shell_snapshots/**"="deny""#),
            "{script}"
        );
        assert!(script.contains(r#""/home/u/.codex/auth.jso[n]"="deny""#), "{script}");
        assert!(script.contains(r#""/home/u/.codex/sessions/**"="deny""#), "{script}");
        assert!(
            !script.contains(r#"".codex/**"#),
            "codex's own home is not denied whole: {script}"
        );
        assert!(
            script.contains(r#""/home/u/.local/state/codex-fusion/**"="deny""#),
            "{script}"
        );
        assert!(script.contains("glob_scan_max_depth=4"), "{script}");
        assert!(
            script.contains("'permissions.codex-fusion.network.enabled=false'"),
            "{script}"
        );
        assert!(
            script.contains(r#"'shell_environment_policy.inherit="core"'"#),
            "{script}"
        );
        assert!(script.contains(r#"'web_search="disabled"'"#), "{script}");
        // The daemon reads AGENTS.md itself (crate::instructions).
        assert!(script.contains("-c 'project_doc_max_bytes=0' "), "{script}");
        // No bare directory is denied: codex cannot mask a file inside a
        // masked directory, and would fail to start.
        let dirs = crate::sensitive::CREDENTIAL_DIRS
            .iter()
            .copied()
            .chain(crate::sensitive::CREDENTIAL_NESTED_DIRS.iter().map(|(_, inner)| *inner));
        for dir in dirs {
            assert!(
                !script.contains(&format!("/{dir}\"=\"deny\"")),
                "{dir} denied as a directory: {script}"
            );
        }
        for store in ["/home/u/.codex", "/home/u/.local/state/codex-fusion"] {
            assert!(
                !script.contains(&format!("\"{store}\"=")),
                "{store} denied as a directory: {script}"
            );
        }
        assert!(script.trim_end().ends_with("\"$@\""));
        assert!(script.contains("'features.hooks=false'"), "{script}");
        assert!(script.contains("'notify=[]'"), "{script}");
        assert!(script.contains("'features.apps=false'"), "{script}");
        assert!(
            script.contains(r#"'mcp_servers={"github"={enabled=false},"odd.name"={enabled=false}}'"#),
            "{script}"
        );
        // External reads allowed: web search is left to Codex's own config.
        let open = wrapper_script(Path::new("/x/bin/codex"), Path::new("/x/bin"), &facts(true));
        assert!(!open.contains("web_search"), "{open}");
        // The user's own extensions, on request.
        let trusted = ProfileFacts {
            choice: ProfileChoice {
                web_search: false,
                codex_config: true,
            },
            ..facts(false)
        };
        let trusting = wrapper_script(Path::new("/x/bin/codex"), Path::new("/x/bin"), &trusted);
        assert!(
            !trusting.contains("mcp_servers") && !trusting.contains("features.hooks"),
            "{trusting}"
        );
        assert!(
            trusting.contains("'features.apps=false'"),
            "pinned whatever the choice: {trusting}"
        );
    }

    #[test]
    fn the_homes_own_stores_are_what_is_there_and_a_change_is_seen() {
        let home = tempfile::tempdir().expect("tempdir");
        let path = home.path();
        for name in [".netrc", "server.pem", ".env", ".env.example", "notes.txt", ".pem"] {
            std::fs::write(path.join(name), "x").expect("write");
        }
        std::fs::create_dir(path.join("keys.key")).expect("mkdir");
        std::fs::create_dir(path.join(".ssh")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/hostname", path.join(".npmrc")).expect("symlink");
        let stores = HomeStores::now(Some(path));
        let names: Vec<_> = stores
            .present
            .iter()
            .map(|store| {
                store
                    .strip_prefix(path)
                    .expect("in home")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, [".env", ".netrc", "keys.key", "server.pem"]);
        assert!(!stores.changed());
        std::fs::write(path.join(".pgpass"), "x").expect("write");
        assert!(stores.changed(), "a new store is a change");
        let stores = HomeStores::now(Some(path));
        std::fs::remove_file(path.join(".netrc")).expect("remove");
        assert!(stores.changed(), "a store gone is a change too");
        assert!(!HomeStores::now(None).changed());
        assert!(HomeStores::now(Some(&path.join("missing"))).present.is_empty());
    }

    #[test]
    fn a_home_is_listed_again_only_once_it_has_changed() {
        let listings = || LISTINGS.with(std::cell::Cell::get);
        let home = tempfile::tempdir().expect("tempdir");
        let path = home.path();
        std::fs::write(path.join(".netrc"), "x").expect("write");
        let stores = HomeStores::now(Some(path));
        // Just created: its change time is too recent to trust, so every
        // check lists.
        let before = listings();
        assert!(!stores.changed());
        assert!(!stores.changed());
        assert_eq!(listings() - before, 2);

        // As if the stores had been read a while after the last change.
        let mut settled = DirStamp::of(path).expect("stamp");
        settled.read_at += 10.0;
        *stores.checked.lock().expect("lock") = settled.settled();
        let before = listings();
        assert!(!stores.changed());
        assert!(!stores.changed());
        assert_eq!(listings(), before, "an unchanged home is not listed");

        // Past a tick of the coarsest clock the kernel stamps with.
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(path.join("notes.txt"), "x").expect("write");
        assert!(!stores.changed(), "a file that is no store changes nothing");
        assert_eq!(listings() - before, 1);
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(path.join(".pgpass"), "x").expect("write");
        assert!(stores.changed(), "a new store is seen through the stamp");
        assert!(stores.changed(), "and seen again: a change is never cached");
        assert_eq!(listings() - before, 3);

        let clone = HomeStores::now(Some(path));
        assert_eq!(
            clone,
            HomeStores::now(Some(path)),
            "the stamp is not part of the stores"
        );
    }

    #[test]
    fn trees_that_exist_are_masked_whole_and_missing_ones_by_pattern() {
        let root = tempfile::tempdir().expect("tempdir");
        let codex_home = root.path().join("codex");
        std::fs::create_dir_all(codex_home.join("sessions/2026/12")).expect("mkdir");
        let state_dir = root.path().join("state");
        std::fs::create_dir(&state_dir).expect("mkdir");
        let facts = ProfileFacts {
            codex_home: Some(codex_home.clone()),
            state_dir: state_dir.clone(),
            ..facts(false)
        };
        let script = wrapper_script(Path::new("/opt/codex/bin/codex"), Path::new("/opt/codex"), &facts);
        let entry = |path: &Path, suffix: &str| format!("\"{}{suffix}\"=\"deny\"", path.display());
        assert!(script.contains(&entry(&codex_home.join("sessions"), "")), "{script}");
        assert!(script.contains(&entry(&codex_home.join("log"), "/**")), "{script}");
        assert!(script.contains(&entry(&state_dir, "")), "{script}");
        assert!(!script.contains(&entry(&state_dir, "/**")), "{script}");
        assert!(
            script.contains(&entry(&codex_home.join("auth.json"), "").replace("auth.json", "auth.jso[n]")),
            "{script}"
        );
    }

    #[test]
    fn the_install_directory_never_exposes_the_users_files() {
        let facts = facts(false);
        let dir = |binary: &str| readable_install_dir(Path::new(binary), &facts);
        assert_eq!(
            dir("/home/u/.npm/lib/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"),
            Ok(PathBuf::from(
                "/home/u/.npm/lib/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl"
            ))
        );
        assert_eq!(dir("/usr/local/bin/codex"), Ok(PathBuf::from("/usr/local/bin")));
        // ~/.cargo/bin/codex: not ~/.cargo (no vendor layout), but its bin.
        assert_eq!(dir("/home/u/.cargo/bin/codex"), Ok(PathBuf::from("/home/u/.cargo/bin")));
        // A vendor layout whose triple is ~/.local is refused; its bin is fine.
        assert_eq!(dir("/home/u/vendor/x/bin/codex"), Ok(PathBuf::from("/home/u/vendor/x")));
        for refused in [
            "/codex",
            "/home/codex",
            "/home/u/codex",
            "/home/u/.codex/bin/codex",
            "/home/u/.local/state/codex",
        ] {
            let error = dir(refused).expect_err(refused);
            assert!(error.contains("npm install"), "{error}");
        }
        let local = ProfileFacts {
            home: Some(PathBuf::from("/home/u")),
            ..facts.clone()
        };
        assert!(readable_install_dir(Path::new("/home/u/.local/codex"), &local).is_err());
    }

    #[test]
    fn the_users_mcp_servers_are_read_by_name() {
        let user_mcp_servers = |home: &Path| codex_config(home).as_ref().map(mcp_servers_in).unwrap_or_default();
        let temp = tempfile::tempdir().expect("tempdir");
        assert!(user_mcp_servers(temp.path()).is_empty(), "no config");
        std::fs::write(
            temp.path().join("config.toml"),
            "model = \"x\"\n[mcp_servers.github]\ncommand = \"gh-mcp\"\n[mcp_servers.\"a.b\"]\nurl = \"http://x\"\n",
        )
        .expect("write");
        assert_eq!(user_mcp_servers(temp.path()), ["a.b", "github"]);
        std::fs::write(temp.path().join("config.toml"), "not [toml").expect("write");
        assert!(user_mcp_servers(temp.path()).is_empty());
    }

    #[test]
    fn a_project_codex_config_is_found_up_to_the_git_root() {
        let temp = tempfile::tempdir().expect("tempdir");
        let repo = temp.path().join("repo");
        let workspace = repo.join("packages/app");
        std::fs::create_dir_all(&workspace).expect("mkdir");
        std::fs::create_dir_all(repo.join(".git")).expect("mkdir");
        assert_eq!(project_codex_config(&workspace, None), None);
        // Above the git root: not the project's.
        std::fs::create_dir_all(temp.path().join(".codex")).expect("mkdir");
        std::fs::write(temp.path().join(".codex/config.toml"), "").expect("write");
        assert_eq!(project_codex_config(&workspace, None), None);
        // In the repository, at any level down to the workspace.
        std::fs::create_dir_all(repo.join(".codex/rules")).expect("mkdir");
        assert_eq!(project_codex_config(&workspace, None), Some(repo.join(".codex/rules")));
        std::fs::create_dir_all(workspace.join(".codex")).expect("mkdir");
        std::fs::write(workspace.join(".codex/hooks.json"), "{}").expect("write");
        assert_eq!(
            project_codex_config(&workspace, None),
            Some(workspace.join(".codex/hooks.json"))
        );
        // Codex's own home is the user's config, not a project's.
        let other = tempfile::tempdir().expect("tempdir");
        let home = other.path().join("home");
        std::fs::create_dir_all(home.join(".codex")).expect("mkdir");
        std::fs::write(home.join(".codex/config.toml"), "").expect("write");
        assert_eq!(project_codex_config(&home, Some(&home.join(".codex"))), None);
        assert_eq!(project_codex_config(&home, None), Some(home.join(".codex/config.toml")));
    }

    #[tokio::test]
    async fn a_wrapper_runs_the_binary_with_the_overrides_in_a_private_directory() {
        let temp = tempfile::tempdir().expect("tempdir");
        let binary = temp.path().join("vendor/triple/bin/codex");
        std::fs::create_dir_all(binary.parent().expect("parent")).expect("mkdir");
        std::fs::write(&binary, "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\n").expect("write");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let state = temp.path().join("state");
        let script = wrapper_script(&binary, &temp.path().join("vendor/triple"), &facts(false));
        let wrapper = write_wrapper(&script, &state).expect("wrapper");
        let dir_mode = std::fs::metadata(state.join("codex-wrapper"))
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(&wrapper).expect("wrapper").permissions().mode() & 0o777,
            0o700
        );
        let output = std::process::Command::new(&wrapper)
            .arg("app-server")
            .output()
            .expect("runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        let args: Vec<&str> = printed.lines().collect();
        assert_eq!(args[0], "[-c]");
        assert_eq!(args[1], "[default_permissions=\"codex-fusion\"]");
        assert_eq!(args[2], "[-c]");
        assert!(args[3].contains(":workspace_roots"));
        assert_eq!(args.last().copied(), Some("[app-server]"));
        // Writing it again with the same content is a no-op; other facts
        // make another wrapper.
        assert_eq!(write_wrapper(&script, &state).expect("again"), wrapper);
        let other = wrapper_script(&binary, &temp.path().join("vendor/triple"), &facts(true));
        assert_ne!(write_wrapper(&other, &state).expect("other"), wrapper);
    }
}

#[cfg(test)]
mod bundled_tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn file(path: &Path, text: &str, mode: u32) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn package(dir: &Path, name: &str) {
        file(&dir.join("package.json"), &format!("{{\"name\":\"{name}\"}}"), 0o644);
    }

    /// An npm prefix as `npm install @agentclientprotocol/codex-acp` lays
    /// it out; returns the `.bin` link and the platform binary.
    fn layout(prefix: &Path) -> (PathBuf, PathBuf) {
        let modules = prefix.join("node_modules");
        let acp = modules.join("@agentclientprotocol/codex-acp");
        package(&acp, "@agentclientprotocol/codex-acp");
        file(&acp.join("dist/index.js"), "#!/usr/bin/env node\n", 0o755);
        std::fs::create_dir_all(modules.join(".bin")).expect("mkdir");
        let link = modules.join(".bin/codex-acp");
        symlink("../@agentclientprotocol/codex-acp/dist/index.js", &link).expect("link");
        package(&modules.join("@openai/codex"), "@openai/codex");
        let (platform, triple) = codex_platform().expect("a platform codex ships for");
        let platform_dir = modules.join(platform);
        package(&platform_dir, "@openai/codex");
        let binary = platform_dir.join("vendor").join(triple).join("bin/codex");
        file(&binary, "#!/bin/sh\n", 0o755);
        (link, binary)
    }

    fn command(text: &str) -> AcpCommand {
        AcpCommand::parse(text).expect("command")
    }

    #[test]
    fn an_npm_codex_acp_names_its_platform_codex() {
        let temp = tempfile::tempdir().expect("tempdir");
        let prefix = std::fs::canonicalize(temp.path()).expect("canonical");
        let (link, binary) = layout(&prefix);
        let direct = command(&link.to_string_lossy());
        assert_eq!(bundled_codex(&direct, &[], None), Some(binary.clone()));
        // Found on PATH.
        let path = format!("/nowhere:{}", link.parent().expect("bin").display());
        assert_eq!(
            bundled_codex(&command("codex-acp"), &[], Some(&path)),
            Some(binary.clone())
        );
        // Not the plain case: the doctor is asked.
        assert_eq!(
            bundled_codex(&command(&format!("{} --flag", link.display())), &[], None),
            None
        );
        let own = vec![("CODEX_PATH".to_owned(), "/opt/codex".to_owned())];
        assert_eq!(bundled_codex(&direct, &own, None), None);
        assert_eq!(bundled_codex(&command("codex-acp"), &[], None), None);
        // Without the platform binary there is nothing to name.
        std::fs::remove_file(&binary).expect("rm");
        assert_eq!(bundled_codex(&direct, &[], None), None);
    }

    #[test]
    fn the_nearest_node_modules_wins_and_codex_falls_back_to_its_own_vendor() {
        let temp = tempfile::tempdir().expect("tempdir");
        let prefix = std::fs::canonicalize(temp.path()).expect("canonical");
        let (link, _) = layout(&prefix);
        // A codex nested under codex-acp is the one node resolves first;
        // with no platform package near it or above, its own vendor.
        let nested = prefix.join("node_modules/@agentclientprotocol/codex-acp/node_modules/@openai/codex");
        package(&nested, "@openai/codex");
        let (platform, triple) = codex_platform().expect("platform");
        std::fs::remove_dir_all(prefix.join("node_modules").join(platform)).expect("rm");
        let own = nested.join("vendor").join(triple).join("bin/codex");
        file(&own, "#!/bin/sh\n", 0o755);
        assert_eq!(bundled_codex(&command(&link.to_string_lossy()), &[], None), Some(own));
    }

    #[test]
    fn another_package_or_script_is_not_taken_for_codex_acp() {
        let temp = tempfile::tempdir().expect("tempdir");
        let prefix = std::fs::canonicalize(temp.path()).expect("canonical");
        let (link, _) = layout(&prefix);
        package(
            &prefix.join("node_modules/@agentclientprotocol/codex-acp"),
            "not-codex-acp",
        );
        assert_eq!(bundled_codex(&command(&link.to_string_lossy()), &[], None), None);
        let script = prefix.join("codex-acp.sh");
        file(&script, "#!/bin/sh\n", 0o755);
        assert_eq!(bundled_codex(&command(&script.to_string_lossy()), &[], None), None);
    }
}
