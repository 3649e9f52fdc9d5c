//! The workspace's instructions file (AGENTS.md) for a confined Codex.
//!
//! Under the daemon's permission profile every read Codex makes for itself
//! goes through its sandboxed file-system helper, one sandbox launch per
//! read; looking for project instructions made `session/new` and the first
//! prompt cost about 150 ms each (docs/notes/session-start-cost.md). The
//! wrapper turns Codex's own search off (`project_doc_max_bytes=0`) and the
//! daemon reads the file instead, once per new Codex session, and sends it
//! before the first prompt, framed the way Codex frames it.
//!
//! What Codex finds under the profile is the workspace's own file only
//! (the directories above it are not mounted), so that is what is read
//! here: the first of `AGENTS.override.md`, `AGENTS.md` and the user's
//! `project_doc_fallback_filenames` that is a file. The file must resolve
//! inside the workspace and must not be or lie in a credential store: a
//! symlink named `AGENTS.md` that points at `.env` or at a file outside the
//! workspace gives nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Codex's default cap on project instructions, in bytes.
pub const DEFAULT_MAX_BYTES: u64 = 32 * 1024;

/// The names Codex always looks for, in its order.
const NAMES: [&str; 2] = ["AGENTS.override.md", "AGENTS.md"];

/// What of the user's Codex configuration decides which file is read and
/// how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSettings {
    /// At most this many bytes are sent; 0 sends nothing.
    pub max_bytes: u64,
    /// Names tried after `AGENTS.md`, in order.
    pub fallbacks: Vec<String>,
}

impl Default for DocSettings {
    fn default() -> Self {
        DocSettings {
            max_bytes: DEFAULT_MAX_BYTES,
            fallbacks: Vec::new(),
        }
    }
}

impl DocSettings {
    /// `project_doc_max_bytes` and `project_doc_fallback_filenames` from
    /// Codex's config (`confine::codex_config`); defaults where a key or
    /// its type is missing or wrong.
    pub fn from_config(table: &toml::Table) -> DocSettings {
        let max_bytes = match table.get("project_doc_max_bytes") {
            Some(toml::Value::Integer(bytes)) => u64::try_from(*bytes).unwrap_or(0),
            _ => DEFAULT_MAX_BYTES,
        };
        let fallbacks = match table.get("project_doc_fallback_filenames") {
            Some(toml::Value::Array(names)) => names
                .iter()
                .filter_map(toml::Value::as_str)
                .map(str::trim)
                .filter(|name| is_plain_name(name))
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        DocSettings { max_bytes, fallbacks }
    }
}

/// A name that stays in the directory it is joined to.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// The instructions file found for a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectDoc {
    /// The file, resolved.
    pub path: PathBuf,
    /// Its text, at most the cap's bytes (a character cut by the cap is
    /// replaced).
    pub text: String,
}

/// The workspace's instructions, or `None` when there is no such file,
/// it is blank, the cap is 0, or it resolves outside the workspace or into
/// a credential store (`stores`: the daemon's state directory, the Codex
/// home).
pub fn read(workspace: &Path, settings: &DocSettings, stores: &[&Path]) -> Option<ProjectDoc> {
    if settings.max_bytes == 0 {
        return None;
    }
    let root = std::fs::canonicalize(workspace).ok()?;
    let candidates = NAMES
        .iter()
        .copied()
        .chain(settings.fallbacks.iter().map(String::as_str));
    let mut tried: Vec<&str> = Vec::new();
    for name in candidates {
        if tried.contains(&name) {
            continue;
        }
        tried.push(name);
        let Ok(path) = std::fs::canonicalize(root.join(name)) else {
            continue;
        };
        if !std::fs::metadata(&path).is_ok_and(|meta| meta.is_file()) {
            continue;
        }
        // The first file found is the one Codex would take, whether or not
        // it may be sent.
        if !path.starts_with(&root) || crate::sensitive::is_credential_path(&path, stores) {
            tracing::info!(name, resolved = %path.display(), "not sending the workspace's instructions file: it resolves outside the workspace or into a credential store");
            return None;
        }
        let mut bytes = Vec::new();
        let file = std::fs::File::open(&path).ok()?;
        if let Err(error) = file.take(settings.max_bytes).read_to_end(&mut bytes) {
            tracing::debug!(%error, path = %path.display(), "cannot read the workspace's instructions file");
            return None;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.trim().is_empty() {
            return None;
        }
        return Some(ProjectDoc { path, text });
    }
    None
}

/// The block sent before a new session's first prompt: Codex's own framing
/// of project instructions, so the model reads it as it would read Codex's.
pub fn frame(workspace: &Path, doc: &ProjectDoc) -> String {
    format!(
        "# AGENTS.md instructions for {}\n\n<INSTRUCTIONS>\n{}\n</INSTRUCTIONS>",
        workspace.display(),
        doc.text.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn workspace() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    fn text_of(dir: &Path, settings: &DocSettings) -> Option<String> {
        read(dir, settings, &[]).map(|doc| doc.text)
    }

    #[test]
    fn agents_md_is_read_and_framed() {
        let dir = workspace();
        std::fs::write(dir.path().join("AGENTS.md"), "Use tabs.\n").expect("fixture");
        let doc = read(dir.path(), &DocSettings::default(), &[]).expect("found");
        assert_eq!(doc.text, "Use tabs.\n");
        let framed = frame(Path::new("/w"), &doc);
        assert_eq!(
            framed,
            "# AGENTS.md instructions for /w\n\n<INSTRUCTIONS>\nUse tabs.\n</INSTRUCTIONS>"
        );
    }

    #[test]
    fn the_override_comes_first_then_agents_md_then_the_fallbacks_in_order() {
        let dir = workspace();
        let settings = DocSettings {
            max_bytes: DEFAULT_MAX_BYTES,
            fallbacks: vec!["CLAUDE.md".into(), "GUIDE.md".into()],
        };
        std::fs::write(dir.path().join("GUIDE.md"), "guide").expect("fixture");
        assert_eq!(text_of(dir.path(), &settings).as_deref(), Some("guide"));
        std::fs::write(dir.path().join("CLAUDE.md"), "claude").expect("fixture");
        assert_eq!(text_of(dir.path(), &settings).as_deref(), Some("claude"));
        std::fs::write(dir.path().join("AGENTS.md"), "agents").expect("fixture");
        assert_eq!(text_of(dir.path(), &settings).as_deref(), Some("agents"));
        std::fs::write(dir.path().join("AGENTS.override.md"), "override").expect("fixture");
        assert_eq!(text_of(dir.path(), &settings).as_deref(), Some("override"));
        // Without the fallbacks configured, only Codex's own names count.
        std::fs::remove_file(dir.path().join("AGENTS.override.md")).expect("fixture");
        std::fs::remove_file(dir.path().join("AGENTS.md")).expect("fixture");
        assert_eq!(text_of(dir.path(), &DocSettings::default()), None);
    }

    #[test]
    fn a_directory_named_agents_md_is_skipped() {
        let dir = workspace();
        std::fs::create_dir(dir.path().join("AGENTS.override.md")).expect("fixture");
        std::fs::write(dir.path().join("AGENTS.md"), "file").expect("fixture");
        assert_eq!(text_of(dir.path(), &DocSettings::default()).as_deref(), Some("file"));
    }

    #[test]
    fn the_cap_cuts_and_zero_sends_nothing() {
        let dir = workspace();
        // "é" is two bytes: a cap of 4 cuts the second one in half.
        std::fs::write(dir.path().join("AGENTS.md"), "abéé").expect("fixture");
        let capped = DocSettings {
            max_bytes: 5,
            fallbacks: Vec::new(),
        };
        assert_eq!(text_of(dir.path(), &capped).as_deref(), Some("abé\u{fffd}"));
        let zero = DocSettings {
            max_bytes: 0,
            fallbacks: Vec::new(),
        };
        assert_eq!(text_of(dir.path(), &zero), None);
    }

    #[test]
    fn a_blank_file_sends_nothing() {
        let dir = workspace();
        std::fs::write(dir.path().join("AGENTS.md"), " \n\t\n").expect("fixture");
        assert_eq!(text_of(dir.path(), &DocSettings::default()), None);
    }

    #[test]
    fn a_symlink_to_a_secret_or_outside_the_workspace_sends_nothing() {
        let dir = workspace();
        let outside = workspace();
        std::fs::write(outside.path().join("notes.md"), "outside secret").expect("fixture");
        symlink(outside.path().join("notes.md"), dir.path().join("AGENTS.md")).expect("fixture");
        assert_eq!(text_of(dir.path(), &DocSettings::default()), None);

        let dir = workspace();
        std::fs::write(dir.path().join(".env"), "API_KEY=sk-secret").expect("fixture");
        symlink(".env", dir.path().join("AGENTS.md")).expect("fixture");
        assert_eq!(text_of(dir.path(), &DocSettings::default()), None);

        // Not even a later name is tried: Codex would have taken the first.
        let settings = DocSettings {
            max_bytes: DEFAULT_MAX_BYTES,
            fallbacks: vec!["GUIDE.md".into()],
        };
        std::fs::write(dir.path().join("GUIDE.md"), "guide").expect("fixture");
        assert_eq!(text_of(dir.path(), &settings), None);
    }

    #[test]
    fn a_file_in_a_store_sends_nothing() {
        let dir = workspace();
        std::fs::write(dir.path().join("AGENTS.md"), "text").expect("fixture");
        let root = std::fs::canonicalize(dir.path()).expect("fixture");
        assert_eq!(read(dir.path(), &DocSettings::default(), &[&root]), None);
        // A symlink to a file inside the workspace is followed.
        let dir = workspace();
        std::fs::write(dir.path().join("docs.md"), "via link").expect("fixture");
        symlink("docs.md", dir.path().join("AGENTS.md")).expect("fixture");
        assert_eq!(
            text_of(dir.path(), &DocSettings::default()).as_deref(),
            Some("via link")
        );
    }

    #[test]
    fn settings_come_from_the_codex_config() {
        let from_home = |home: &Path| {
            crate::confine::codex_config(home)
                .as_ref()
                .map(DocSettings::from_config)
                .unwrap_or_default()
        };
        let home = workspace();
        assert_eq!(from_home(home.path()), DocSettings::default());
        std::fs::write(
            home.path().join("config.toml"),
            "project_doc_max_bytes = 100\nproject_doc_fallback_filenames = [\"CLAUDE.md\", \"../up.md\", \"\", 3]\n",
        )
        .expect("fixture");
        assert_eq!(
            from_home(home.path()),
            DocSettings {
                max_bytes: 100,
                fallbacks: vec!["CLAUDE.md".into()],
            }
        );
        std::fs::write(home.path().join("config.toml"), "project_doc_max_bytes = -1\n").expect("fixture");
        assert_eq!(from_home(home.path()).max_bytes, 0);
        std::fs::write(home.path().join("config.toml"), "not toml [").expect("fixture");
        assert_eq!(from_home(home.path()), DocSettings::default());
    }
}
