//! Read confinement: a Codex permission profile that keeps Codex's sandboxed
//! commands from reading outside the workspace, so that such reads fail and
//! Codex has to ask (which reaches the guardian).
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
//! command line; the result is cached for the daemon's lifetime. Any agent
//! that does not answer it (the test fake, another ACP agent) simply runs
//! without confinement, in plain read-only mode.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::AcpCommand;

/// The permission profile codex-fusion defines.
pub const PROFILE: &str = "codex-fusion";
/// The codex-acp mode that selects it.
pub const PROFILE_MODE: &str = "permission-profile:codex-fusion";

/// How long `cli doctor` may take (npx may unpack the package first).
const DOCTOR_TIMEOUT: Duration = Duration::from_secs(20);
/// The doctor's report is a few kilobytes; more is not a report.
const DOCTOR_OUTPUT_MAX: u64 = 1024 * 1024;

/// A prepared wrapper: set `CODEX_PATH` to it for codex-acp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    pub wrapper: PathBuf,
    pub codex_binary: PathBuf,
}

/// Caches the outcome per agent command line: a prepared confinement, or
/// the fact that the agent is not codex-acp. A probe that failed for a
/// passing reason (a timeout, an I/O error) is tried again next time.
#[derive(Default)]
pub struct ConfinementCache {
    prepared: Mutex<HashMap<String, Option<Arc<Confinement>>>>,
    /// One probe at a time, so two workspaces starting together do not race
    /// on the same wrapper.
    probing: tokio::sync::Mutex<()>,
}

/// Why a probe found no confinement.
enum Unconfined {
    /// The agent is not codex-acp (or names no codex binary): remembered.
    NotCodex(String),
    /// Something that may pass: tried again at the next start.
    Transient(String),
}

impl ConfinementCache {
    /// The confinement for `command`, preparing it on first use. `None`
    /// when the agent is not codex-acp or its codex binary cannot be found.
    pub async fn get(&self, command: &AcpCommand, state_dir: &Path) -> Option<Arc<Confinement>> {
        let key = command.display.clone();
        let _probing = self.probing.lock().await;
        if let Some(known) = self.lock().get(&key) {
            return known.clone();
        }
        match prepare(command, state_dir).await {
            Ok(confinement) => {
                let confinement = Arc::new(confinement);
                self.lock().insert(key, Some(confinement.clone()));
                Some(confinement)
            }
            Err(Unconfined::NotCodex(reason)) => {
                tracing::info!(command = %command.display, %reason, "no read confinement for this agent; it runs in plain read-only mode");
                self.lock().insert(key, None);
                None
            }
            Err(Unconfined::Transient(reason)) => {
                tracing::warn!(command = %command.display, %reason, "read confinement not prepared this time (plain read-only mode); it is tried again at the next start");
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Arc<Confinement>>>> {
        self.prepared.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

async fn prepare(command: &AcpCommand, state_dir: &Path) -> Result<Confinement, Unconfined> {
    let cache = DoctorCache::new(state_dir, command);
    let codex_binary = match cache.as_ref().and_then(DoctorCache::load) {
        Some(path) => path,
        None => {
            let path = find_codex_binary(command).await?;
            if let Some(cache) = &cache {
                cache.store(&path);
            }
            path
        }
    };
    let wrapper = write_wrapper(&codex_binary, state_dir)
        .map_err(|error| Unconfined::Transient(format!("cannot write the codex wrapper: {error}")))?;
    tracing::info!(codex = %codex_binary.display(), wrapper = %wrapper.display(), "read confinement prepared");
    Ok(Confinement { wrapper, codex_binary })
}

/// Asks `codex-acp cli doctor --json` where its codex binary is. The probe
/// runs in a process group of its own, killed afterwards whatever happened,
/// so nothing it started (npx, node, a shell's background job) outlives it.
async fn find_codex_binary(command: &AcpCommand) -> Result<PathBuf, Unconfined> {
    let child = tokio::process::Command::new(&command.program)
        .args(&command.args)
        .args(["cli", "doctor", "--json"])
        .envs(command.env.iter().map(|(key, value)| (key, value)))
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
    let mut stdout = child.stdout.take().expect("stdout is piped");
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

/// What `cli doctor` said, remembered across daemon restarts (it costs
/// ~0.2 s of every cold start): valid while the agent program and the codex
/// binary it named are the same files, unchanged since.
struct DoctorCache {
    path: PathBuf,
    key: String,
}

impl DoctorCache {
    /// `None` when the program cannot be located (then nothing is cached).
    fn new(state_dir: &Path, command: &AcpCommand) -> Option<DoctorCache> {
        let program = which(&command.program)?;
        let stamp = file_stamp(&program)?;
        let key = format!("{}\u{0}{}\u{0}{stamp}", command.display, program.display());
        Some(DoctorCache {
            path: state_dir
                .join("codex-wrapper")
                .join(format!("doctor-{:016x}.json", fnv1a(key.as_bytes()))),
            key,
        })
    }

    fn load(&self) -> Option<PathBuf> {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&self.path).ok()?).ok()?;
        if saved.get("key")?.as_str()? != self.key {
            return None;
        }
        let binary = PathBuf::from(saved.get("codex")?.as_str()?);
        // The binary must be the very file the doctor named.
        (file_stamp(&binary)? == saved.get("codex_stamp")?.as_str()?).then_some(binary)
    }

    fn store(&self, binary: &Path) {
        let Some(stamp) = file_stamp(binary) else { return };
        let record = serde_json::json!({ "key": self.key, "codex": binary, "codex_stamp": stamp });
        let written = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&self.path, record.to_string()));
        if let Err(error) = written {
            tracing::debug!(%error, "cannot cache the doctor's answer");
        }
    }
}

/// `program` as the OS would find it: a path, or the first match on PATH.
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return std::fs::canonicalize(program).ok();
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .and_then(|found| std::fs::canonicalize(found).ok())
}

/// Size and modification time of a file, as a short fingerprint.
fn file_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}.{}",
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec()
    ))
}

/// Reads the codex executable from `cli doctor --json` output.
pub fn codex_binary_from_doctor(stdout: &[u8]) -> Result<PathBuf, String> {
    let report: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|_| "`cli doctor --json` printed no JSON report".to_owned())?;
    let path = report
        .pointer("/checks/installation/details/current executable")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "the doctor report names no codex executable".to_owned())?;
    let path = PathBuf::from(path);
    if !path.is_absolute() || !path.is_file() {
        return Err(format!("the codex executable {} does not exist", path.display()));
    }
    Ok(path)
}

/// Writes (or rewrites) the wrapper script for `codex_binary`.
fn write_wrapper(codex_binary: &Path, state_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = state_dir.join("codex-wrapper");
    std::fs::create_dir_all(&dir)?;
    let wrapper = dir.join(format!(
        "codex-{:016x}",
        fnv1a(codex_binary.as_os_str().as_encoded_bytes())
    ));
    let script = wrapper_script(codex_binary);
    if std::fs::read_to_string(&wrapper).ok().as_deref() != Some(script.as_str()) {
        // Unique, so another daemon writing the same wrapper cannot collide.
        let temporary = wrapper.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&temporary, &script)?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o700))?;
        std::fs::rename(&temporary, &wrapper)?;
    }
    Ok(wrapper)
}

/// The wrapper: the real codex binary with the profile defined and chosen
/// as the default. The profile may read the workspace roots, the system
/// directories every command needs (`:minimal`), and codex's own install
/// directory (the sandbox helper lives there); it writes nothing.
pub fn wrapper_script(codex_binary: &Path) -> String {
    // vendor/<triple>/bin/codex → vendor/<triple>, which also holds `rg`.
    let install_dir = codex_binary
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| codex_binary.parent().unwrap_or(Path::new("/")));
    let filesystem = format!(
        "permissions.{PROFILE}.filesystem={{\":minimal\"=\"read\",{}=\"read\",\":workspace_roots\"={{\".\"=\"read\"}}}}",
        toml_string(&install_dir.to_string_lossy())
    );
    format!(
        "#!/bin/sh\n# Written by codex-fusiond: codex with a read-confining permission profile.\nexec {} -c {} -c {} \"$@\"\n",
        shell_quote(&codex_binary.to_string_lossy()),
        shell_quote(&format!("default_permissions=\"{PROFILE}\"")),
        shell_quote(&filesystem)
    )
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

/// A stable, dependency-free hash for the wrapper's file name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
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

    #[test]
    fn the_doctor_cache_holds_while_the_files_are_unchanged() {
        let temp = tempfile::tempdir().expect("tempdir");
        let program = temp.path().join("codex-acp");
        let binary = temp.path().join("codex");
        std::fs::write(&program, "#!/bin/sh\n").expect("write");
        std::fs::write(&binary, "binary").expect("write");
        let command = AcpCommand::parse(program.to_str().expect("utf8")).expect("parses");
        let cache = DoctorCache::new(temp.path(), &command).expect("a cache");
        assert_eq!(cache.load(), None, "empty at first");
        cache.store(&binary);
        assert_eq!(cache.load(), Some(binary.clone()));
        // A changed codex binary (an upgrade) invalidates it.
        std::fs::write(&binary, "a newer binary").expect("write");
        assert_eq!(cache.load(), None);
        cache.store(&binary);
        // So does a changed agent program.
        std::fs::write(&program, "#!/bin/sh\n# upgraded\n").expect("write");
        let cache = DoctorCache::new(temp.path(), &command).expect("a cache");
        assert_eq!(cache.load(), None);
    }

    #[test]
    fn the_wrapper_defines_the_profile_and_survives_odd_paths() {
        let script = wrapper_script(Path::new("/opt/it's here/vendor/x86/bin/codex"));
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(
            script.contains(r"exec '/opt/it'\''s here/vendor/x86/bin/codex'"),
            "{script}"
        );
        assert!(script.contains(r#"'default_permissions="codex-fusion"'"#), "{script}");
        assert!(
            script.contains(r#"permissions.codex-fusion.filesystem={":minimal"="read","/opt/it'\''s here/vendor/x86"="read",":workspace_roots"={"."="read"}}"#),
            "{script}"
        );
        assert!(script.trim_end().ends_with("\"$@\""));
    }

    #[tokio::test]
    async fn a_wrapper_runs_the_binary_with_the_overrides() {
        let temp = tempfile::tempdir().expect("tempdir");
        let binary = temp.path().join("vendor/triple/bin/codex");
        std::fs::create_dir_all(binary.parent().expect("parent")).expect("mkdir");
        std::fs::write(&binary, "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\n").expect("write");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let wrapper = write_wrapper(&binary, &temp.path().join("state")).expect("wrapper");
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
        assert_eq!(args[4], "[app-server]");
        // Writing it again with the same content is a no-op.
        assert_eq!(
            write_wrapper(&binary, &temp.path().join("state")).expect("again"),
            wrapper
        );
    }
}
