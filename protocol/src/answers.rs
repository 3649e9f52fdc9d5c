//! The recent answers of every workspace, kept by the daemon so that no
//! answer is lost when the client does not show it (Claude Code moves an MCP
//! call that runs past `CLAUDE_CODE_MCP_AUTO_BACKGROUND_MS` to the
//! background, and the model may ignore the result that then arrives).
//!
//! Layout, under the daemon's state directory:
//!
//! ```text
//! recent/<workspace name>-<hash>/<stamp>-<tool>.md    the full text, as Codex gave it
//! recent/<workspace name>-<hash>/<stamp>-<tool>.json  its AnswerRecord
//! ```
//!
//! The daemon writes ([`save`]) and prunes (by count and age, on every
//! write); `codex-fusion log` reads ([`list`]), through the daemon or
//! directly when none runs. Every file and directory is the user's alone
//! (0600 / 0700 through [`crate::private`]); a symlink planted at any of
//! their names is refused or replaced, never followed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::private::{self, PrivateError};

/// The directory of the store inside the state directory.
pub const DIR: &str = "recent";
/// How many answers are kept per workspace by default.
pub const KEEP_COUNT: usize = 20;
/// How long an answer is kept by default.
pub const KEEP_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

const TEXT_EXT: &str = "md";
const RECORD_EXT: &str = "json";

/// How much the store keeps per workspace; older or surplus answers are
/// removed when a new one is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub count: usize,
    pub age: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            count: KEEP_COUNT,
            age: KEEP_AGE,
        }
    }
}

/// How the turn behind a record ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Codex answered.
    #[default]
    Answer,
    /// Codex paused for a `permit`; the file holds the 🔐 text.
    Paused,
    /// The turn failed; the file holds the error.
    Failed,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Answer => "answer",
            Outcome::Paused => "paused",
            Outcome::Failed => "failed",
        }
    }
}

/// Tokens one turn used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
}

/// One kept answer: what `log` lists and `status` names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnswerRecord {
    /// The file stem, unique in its workspace's directory.
    pub id: String,
    /// When the result was rendered, in milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
    /// The same instant in UTC, `2026-01-15T10:15:02Z`, for people and scripts.
    pub finished_at: String,
    pub workspace: PathBuf,
    /// The tool of the turn (`consult`, …); for a turn resumed by `permit`,
    /// the tool that started it where known, with `after_permit` set.
    pub tool: String,
    pub after_permit: bool,
    pub outcome: Outcome,
    /// `CONSENSUS` or `OPEN`, when the answer ends with a VERDICT line.
    pub verdict: Option<String>,
    /// The verdict line's summary.
    pub verdict_summary: Option<String>,
    pub tokens: Option<Tokens>,
    pub duration_ms: Option<u64>,
    /// Why the agent ended the turn (`end_turn`, `max_tokens`, …), where known.
    pub stop_reason: Option<String>,
    /// Characters of the full text.
    pub chars: u64,
    /// Whether the result Claude received was cut to fit its limit (the
    /// full text is in `file` either way).
    pub cut: bool,
    /// The full text.
    pub file: PathBuf,
}

impl AnswerRecord {
    /// One line for `status`: `consult · CONSENSUS · 12.3 s · 2m ago`, the
    /// age counted from `now_ms`.
    pub fn summary(&self, now_ms: u64) -> String {
        let mut parts = vec![self.tool.clone()];
        if self.after_permit {
            parts[0].push_str(" (after permit)");
        }
        match (self.outcome, &self.verdict) {
            (Outcome::Answer, Some(verdict)) => parts.push(verdict.clone()),
            (Outcome::Answer, None) => {}
            (other, _) => parts.push(other.label().to_owned()),
        }
        if let Some(ms) = self.duration_ms {
            parts.push(format!("{:.1} s", ms as f64 / 1000.0));
        }
        parts.push(format!(
            "{} ago",
            age(now_ms.saturating_sub(self.finished_at_ms) / 1000)
        ));
        parts.join(" · ")
    }
}

/// `seconds` as `45s`, `3m`, `2h 05m`, `3d 04h`.
pub fn age(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h {:02}m", seconds / 3600, seconds / 60 % 60),
        _ => format!("{}d {:02}h", seconds / 86_400, seconds / 3600 % 24),
    }
}

/// The directory of `workspace`'s answers: its last component (for a person
/// browsing the state directory) and a stable hash of its whole path.
pub fn workspace_dir(state_dir: &Path, workspace: &Path) -> PathBuf {
    let name: String = workspace
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let name = if name.is_empty() { "root".to_owned() } else { name };
    state_dir.join(DIR).join(format!(
        "{name}-{:016x}",
        crate::fnv1a(workspace.as_os_str().as_encoded_bytes())
    ))
}

/// Saves `text` and its record for `record.workspace` (the `id`, `file`,
/// `chars`, `finished_at*` fields are filled here from `now`), then prunes
/// that workspace's answers to `limits`. The text is written before the
/// record, so a record never names a missing file.
pub fn save(
    state_dir: &Path,
    limits: Limits,
    mut record: AnswerRecord,
    text: &str,
    now: SystemTime,
) -> Result<AnswerRecord, PrivateError> {
    let dir = workspace_dir(state_dir, &record.workspace);
    own_real_dir(&state_dir.join(DIR))?;
    own_real_dir(&dir)?;
    let millis = millis_since_epoch(now);
    let tool: String = record
        .tool
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .take(32)
        .collect();
    let stamp = format!("{}-{tool}", file_stamp(millis));
    let (id, mut file, path) = (1..=100)
        .find_map(|attempt| {
            let id = if attempt == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{attempt}")
            };
            let path = dir.join(format!("{id}.{TEXT_EXT}"));
            match private::open(&path, private::Access::CreateNew) {
                Err(PrivateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => None,
                opened => Some(opened.map(|file| (id, file, path))),
            }
        })
        .unwrap_or_else(|| {
            Err(PrivateError::Io {
                path: dir.join(format!("{stamp}.{TEXT_EXT}")),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "100 answers in one millisecond"),
            })
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|source| PrivateError::Io {
            path: path.clone(),
            source,
        })?;
    record.id = id;
    record.finished_at_ms = millis;
    record.finished_at = iso_utc(millis);
    record.chars = text.chars().count() as u64;
    record.file = path;
    let json = serde_json::to_vec_pretty(&record).map_err(|error| PrivateError::Io {
        path: dir.join(format!("{}.{RECORD_EXT}", record.id)),
        source: std::io::Error::other(error),
    })?;
    // Not synced: the answer is kept for a client that went away or a
    // daemon that died, whose writes the kernel keeps; a sync would put
    // milliseconds on every call's path.
    private::write_atomically_unsynced(&dir.join(format!("{}.{RECORD_EXT}", record.id)), &json)?;
    prune(&dir, limits, now);
    Ok(record)
}

/// `workspace`'s kept answers, newest first, at most `limit`. Nothing kept
/// yet is an empty list; records that cannot be read (another user's, a
/// symlink, not JSON) are skipped.
pub fn list(state_dir: &Path, workspace: &Path, limit: usize) -> Result<Vec<AnswerRecord>, PrivateError> {
    let root = state_dir.join(DIR);
    if std::fs::symlink_metadata(&root).is_ok_and(|metadata| metadata.file_type().is_symlink()) {
        return Err(PrivateError::Symlink { path: root });
    }
    let dir = workspace_dir(state_dir, workspace);
    let mut records = read_records(&dir)?;
    // Two workspaces cannot share a directory unless their hashes collide;
    // a record of another one is not shown.
    records.retain(|record| record.workspace == workspace);
    records.truncate(limit);
    Ok(records)
}

/// The workspaces with kept answers, each with its newest record, newest
/// first (for `log`'s hint when the asked workspace has none).
pub fn workspaces(state_dir: &Path) -> Vec<AnswerRecord> {
    let root = state_dir.join(DIR);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut newest: Vec<AnswerRecord> = entries
        .flatten()
        .filter_map(|entry| read_records(&entry.path()).ok()?.into_iter().next())
        .collect();
    newest.sort_by(|a, b| b.finished_at_ms.cmp(&a.finished_at_ms).then(b.id.cmp(&a.id)));
    newest
}

/// Every readable record of `dir`, newest first; a missing directory has
/// none, a symlink in its place is refused.
fn read_records(dir: &Path) -> Result<Vec<AnswerRecord>, PrivateError> {
    match std::fs::symlink_metadata(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PrivateError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err(PrivateError::Symlink {
                path: dir.to_path_buf(),
            });
        }
        Ok(metadata) if !metadata.is_dir() => {
            return Err(PrivateError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        Ok(_) => {}
    }
    let entries = std::fs::read_dir(dir).map_err(|source| PrivateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut records: Vec<AnswerRecord> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == RECORD_EXT))
        .filter_map(|path| {
            let bytes = private::read(&path).ok()??;
            let record: AnswerRecord = serde_json::from_slice(&bytes).ok()?;
            // The record names its own file, in this directory: one edited
            // to point elsewhere is not believed.
            let expected = path.with_extension(TEXT_EXT);
            (record.file == expected).then_some(record)
        })
        .collect();
    records.sort_by(|a, b| b.finished_at_ms.cmp(&a.finished_at_ms).then(b.id.cmp(&a.id)));
    Ok(records)
}

/// Removes the answers of `dir` beyond `limits` (the oldest first), and
/// text files left without a record by a write that failed halfway.
/// Best effort: what cannot be removed stays until the next write.
fn prune(dir: &Path, limits: Limits, now: SystemTime) {
    // Decided by the names alone (a record's name starts with its finish
    // time, fixed width, so names sort as times do): reading every record
    // back on every save cost each call a fraction of a millisecond.
    let oldest_kept =
        file_stamp(millis_since_epoch(now).saturating_sub(u64::try_from(limits.age.as_millis()).unwrap_or(u64::MAX)));
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let ours: Vec<(PathBuf, String, bool)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter_map(|path| {
            let record = match path.extension()? {
                ext if ext == RECORD_EXT => true,
                ext if ext == TEXT_EXT => false,
                _ => return None,
            };
            let stem = path.file_stem()?.to_string_lossy().into_owned();
            Some((path, stem, record))
        })
        .collect();
    let mut recorded: Vec<&str> = ours
        .iter()
        .filter(|(_, _, record)| *record)
        .map(|(_, stem, _)| stem.as_str())
        .collect();
    recorded.sort_unstable_by(|a, b| b.cmp(a));
    let keep: std::collections::HashSet<&str> = recorded
        .into_iter()
        .take(limits.count)
        .filter(|stem| {
            stem.get(..oldest_kept.len())
                .is_some_and(|stamp| stamp >= oldest_kept.as_str())
        })
        .collect();
    for (path, stem, _) in &ours {
        if !keep.contains(stem.as_str()) {
            // Removes a symlink itself, never its target.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// [`private::own_dir`], refusing a symlink at `dir`'s name (which
/// `own_dir` would follow to wherever it points).
fn own_real_dir(dir: &Path) -> Result<(), PrivateError> {
    if std::fs::symlink_metadata(dir).is_ok_and(|metadata| metadata.file_type().is_symlink()) {
        return Err(PrivateError::Symlink {
            path: dir.to_path_buf(),
        });
    }
    private::own_dir(dir)
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn millis_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// `millis` as `2026-01-15T10:15:02Z`.
pub fn iso_utc(millis: u64) -> String {
    let (year, month, day, hour, minute, second) = civil(millis / 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `millis` as `20260115T101502.123Z`, sortable and safe in a file name.
fn file_stamp(millis: u64) -> String {
    let (year, month, day, hour, minute, second) = civil(millis / 1000);
    format!(
        "{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}.{:03}Z",
        millis % 1000
    )
}

/// Seconds since the epoch as a UTC date and time (Howard Hinnant's
/// days-to-civil algorithm).
fn civil(seconds: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, rest / 3600, rest / 60 % 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn record(workspace: &Path, tool: &str) -> AnswerRecord {
        AnswerRecord {
            workspace: workspace.to_path_buf(),
            tool: tool.to_owned(),
            verdict: Some("CONSENSUS".into()),
            tokens: Some(Tokens {
                input: 10,
                output: 20,
                reasoning: 0,
            }),
            duration_ms: Some(1500),
            stop_reason: Some("end_turn".into()),
            ..AnswerRecord::default()
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    const NOW: u64 = 1_768_472_102; // 2026-01-15T10:15:02Z

    #[test]
    fn a_record_reads_as_one_line() {
        let mut kept = record(Path::new("/w"), "consult");
        kept.finished_at_ms = NOW * 1000;
        assert_eq!(
            kept.summary(NOW * 1000 + 125_000),
            "consult · CONSENSUS · 1.5 s · 2m ago"
        );
        kept.outcome = Outcome::Paused;
        kept.duration_ms = None;
        assert_eq!(kept.summary(NOW * 1000 + 4_000), "consult · paused · 4s ago");
        assert_eq!(age(3 * 86_400 + 4 * 3600), "3d 04h");
    }

    #[test]
    fn dates_are_utc_and_sortable() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(NOW * 1000 + 123), "2026-01-15T10:15:02Z");
        assert_eq!(file_stamp(NOW * 1000 + 7), "20260115T101502.007Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z", "a leap day");
    }

    #[test]
    fn an_answer_is_saved_whole_and_private_and_listed_newest_first() {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = Path::new("/home/u/my project");
        let old = umask_open(|| {
            save(
                temp.path(),
                Limits::default(),
                record(workspace, "consult"),
                "first",
                at(NOW),
            )
            .expect("saved")
        });
        let new = save(
            temp.path(),
            Limits::default(),
            record(workspace, "reply"),
            "sécond\n",
            at(NOW + 5),
        )
        .expect("saved");
        assert_eq!(std::fs::read_to_string(&old.file).expect("read"), "first");
        assert_eq!(new.chars, 7);
        assert_eq!(new.finished_at, "2026-01-15T10:15:07Z");
        assert_eq!(old.id, "20260115T101502.000Z-consult");
        let dir = workspace_dir(temp.path(), workspace);
        assert!(
            dir.file_name()
                .expect("name")
                .to_string_lossy()
                .starts_with("my_project-")
        );
        assert_eq!(mode(&temp.path().join(DIR)), 0o700);
        assert_eq!(mode(&dir), 0o700);
        for entry in std::fs::read_dir(&dir).expect("list").flatten() {
            assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
        }
        let listed = list(temp.path(), workspace, 10).expect("lists");
        assert_eq!(listed, vec![new.clone(), old]);
        assert_eq!(list(temp.path(), workspace, 1).expect("lists"), vec![new.clone()]);
        assert_eq!(list(temp.path(), Path::new("/elsewhere"), 10).expect("lists"), vec![]);
        assert_eq!(workspaces(temp.path()), vec![new]);
    }

    fn umask_open<T>(body: impl FnOnce() -> T) -> T {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let result = body();
        nix::sys::stat::umask(old);
        result
    }

    #[test]
    fn answers_beyond_the_count_are_pruned_on_write() {
        let temp = tempfile::tempdir().expect("tempdir");
        let workspace = Path::new("/w");
        let limits = Limits {
            count: 3,
            age: KEEP_AGE,
        };
        let saved: Vec<AnswerRecord> = (0..5)
            .map(|n| {
                save(
                    temp.path(),
                    limits,
                    record(workspace, "consult"),
                    &format!("answer {n}"),
                    at(NOW + n),
                )
                .expect("saved")
            })
            .collect();
        let listed = list(temp.path(), workspace, 100).expect("lists");
        let texts: Vec<String> = listed
            .iter()
            .map(|record| std::fs::read_to_string(&record.file).expect("read"))
            .collect();
        assert_eq!(texts, ["answer 4", "answer 3", "answer 2"]);
        assert!(
            !saved[0].file.exists() && !saved[1].file.exists(),
            "the oldest texts are gone"
        );
        let files = std::fs::read_dir(workspace_dir(temp.path(), workspace))
            .expect("list")
            .count();
        assert_eq!(files, 6, "three texts and three records");
    }

    #[test]
    fn answers_older_than_the_age_are_pruned_and_other_workspaces_untouched() {
        let temp = tempfile::tempdir().expect("tempdir");
        let limits = Limits {
            count: 20,
            age: Duration::from_secs(3600),
        };
        let other = save(
            temp.path(),
            limits,
            record(Path::new("/other"), "consult"),
            "theirs",
            at(NOW),
        )
        .expect("saved");
        let stale = save(
            temp.path(),
            limits,
            record(Path::new("/w"), "consult"),
            "stale",
            at(NOW),
        )
        .expect("saved");
        let fresh = save(
            temp.path(),
            limits,
            record(Path::new("/w"), "consult"),
            "fresh",
            at(NOW + 3601),
        )
        .expect("saved");
        assert!(!stale.file.exists());
        assert_eq!(list(temp.path(), Path::new("/w"), 10).expect("lists"), vec![fresh]);
        assert_eq!(list(temp.path(), Path::new("/other"), 10).expect("lists"), vec![other]);
    }

    #[test]
    fn a_text_left_without_its_record_is_removed_on_the_next_write() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = workspace_dir(temp.path(), Path::new("/w"));
        save(
            temp.path(),
            Limits::default(),
            record(Path::new("/w"), "consult"),
            "one",
            at(NOW),
        )
        .expect("saved");
        let orphan = dir.join("20260101T000000.000Z-consult.md");
        std::fs::write(&orphan, "half").expect("write");
        let unrelated = dir.join("notes.txt");
        std::fs::write(&unrelated, "mine").expect("write");
        save(
            temp.path(),
            Limits::default(),
            record(Path::new("/w"), "consult"),
            "two",
            at(NOW + 1),
        )
        .expect("saved");
        assert!(!orphan.exists());
        assert!(unrelated.exists(), "only the store's own files are pruned");
        assert_eq!(list(temp.path(), Path::new("/w"), 10).expect("lists").len(), 2);
    }

    #[test]
    fn a_hostile_symlink_is_never_followed() {
        let temp = tempfile::tempdir().expect("tempdir");
        let state = temp.path().join("state");
        let elsewhere = temp.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let workspace = Path::new("/w");
        // The workspace's directory is a link to another directory.
        let dir = workspace_dir(&state, workspace);
        std::fs::create_dir_all(dir.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, &dir).expect("symlink");
        let error = save(
            &state,
            Limits::default(),
            record(workspace, "consult"),
            "secret",
            at(NOW),
        )
        .expect_err("refused");
        assert!(matches!(error, PrivateError::Symlink { .. }), "{error}");
        assert!(matches!(list(&state, workspace, 10), Err(PrivateError::Symlink { .. })));
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("list").count(),
            0,
            "nothing written through it"
        );
        assert_eq!(mode(&elsewhere), 0o755, "its target is never chmodded");
        std::fs::remove_file(&dir).expect("unlink");

        // The `recent` directory itself is a link.
        let state2 = temp.path().join("state2");
        std::fs::create_dir_all(&state2).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, state2.join(DIR)).expect("symlink");
        let error = save(
            &state2,
            Limits::default(),
            record(workspace, "consult"),
            "secret",
            at(NOW),
        )
        .expect_err("refused");
        assert!(matches!(error, PrivateError::Symlink { .. }), "{error}");
        assert_eq!(std::fs::read_dir(&elsewhere).expect("list").count(), 0);
        assert!(matches!(
            list(&state2, workspace, 10),
            Err(PrivateError::Symlink { .. })
        ));

        // A link planted at the name the next text takes: refused, the
        // victim untouched; a record elsewhere pointing at it is not believed.
        let victim = temp.path().join("victim");
        std::fs::write(&victim, "keep me").expect("write");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::os::unix::fs::symlink(&victim, dir.join("20260115T101502.000Z-consult.md")).expect("symlink");
        let saved = save(
            &state,
            Limits::default(),
            record(workspace, "consult"),
            "answer",
            at(NOW),
        )
        .expect("saved under another name");
        assert_eq!(saved.id, "20260115T101502.000Z-consult-2");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep me");
        let mut forged = saved.clone();
        forged.id = "forged".into();
        forged.file = victim.clone();
        std::fs::write(dir.join("forged.json"), serde_json::to_vec(&forged).expect("json")).expect("write");
        let listed = list(&state, workspace, 10).expect("lists");
        assert_eq!(listed, vec![saved], "the forged record is skipped");
        assert!(victim.exists(), "pruning removes the planted link, not its target");
    }
}
