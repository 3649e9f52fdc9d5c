//! The user service: the systemd unit and the LaunchAgent plist rendered from
//! the templates in `systemd/` and `launchd/`, and where each is installed.
//! Pure functions; `install` writes the files and `doctor` looks for them.

use std::path::{Path, PathBuf};

/// `systemd/codex-fusiond.service`, with `@DAEMON@` and `@ENVIRONMENT@` to fill.
pub const SYSTEMD_TEMPLATE: &str = include_str!("../../systemd/codex-fusiond.service");
/// `launchd/codex-fusiond.plist`, with `@LABEL@`, `@DAEMON@`, `@ENVIRONMENT@`
/// and `@LOG_DIR@` to fill.
pub const LAUNCHD_TEMPLATE: &str = include_str!("../../launchd/codex-fusiond.plist");

/// The systemd unit name, for `systemctl --user …`.
pub const SYSTEMD_UNIT: &str = "codex-fusiond.service";
/// The LaunchAgent's label, for `launchctl …`.
pub const LAUNCHD_LABEL: &str = "dev.codex-fusion.daemon";

/// The service manager of this system, if we support one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceManager {
    Systemd,
    Launchd,
}

impl ServiceManager {
    pub fn native() -> Option<ServiceManager> {
        if cfg!(target_os = "macos") {
            Some(ServiceManager::Launchd)
        } else if cfg!(target_os = "linux") {
            Some(ServiceManager::Systemd)
        } else {
            None
        }
    }

    /// Where the user's service file goes: the systemd user unit directory
    /// under `config_home` (`$XDG_CONFIG_HOME`, else `~/.config`), or
    /// `~/Library/LaunchAgents`.
    pub fn unit_path(self, home: &Path, config_home: &Path) -> PathBuf {
        match self {
            ServiceManager::Systemd => config_home.join("systemd/user").join(SYSTEMD_UNIT),
            ServiceManager::Launchd => home.join("Library/LaunchAgents").join(format!("{LAUNCHD_LABEL}.plist")),
        }
    }

    /// The service file for `daemon`, run with `env` (PATH first) as its
    /// environment.
    pub fn render(self, daemon: &Path, env: &[(&str, &str)], home: &Path) -> String {
        match self {
            ServiceManager::Systemd => render_systemd_unit(daemon, env),
            ServiceManager::Launchd => render_launchd_plist(daemon, env, &launchd_log_dir(home)),
        }
    }
}

/// Where launchd writes the daemon's stdout and stderr.
pub fn launchd_log_dir(home: &Path) -> PathBuf {
    home.join("Library/Logs/codex-fusion")
}

/// The systemd user unit running `daemon` with `env`: one `Environment=`
/// line per variable.
pub fn render_systemd_unit(daemon: &Path, env: &[(&str, &str)]) -> String {
    let environment: Vec<String> = env
        .iter()
        .map(|(name, value)| format!("Environment=\"{name}={}\"", systemd_quoted_content(value)))
        .collect();
    SYSTEMD_TEMPLATE
        .replace("@DAEMON@", &systemd_exec_word(&daemon.to_string_lossy()))
        .replace("@ENVIRONMENT@", &environment.join("\n"))
}

/// The LaunchAgent plist running `daemon` with `env`.
pub fn render_launchd_plist(daemon: &Path, env: &[(&str, &str)], log_dir: &Path) -> String {
    let environment: Vec<String> = env
        .iter()
        .map(|(name, value)| {
            format!(
                "\t\t<key>{}</key>\n\t\t<string>{}</string>",
                xml_escape(name),
                xml_escape(value)
            )
        })
        .collect();
    LAUNCHD_TEMPLATE
        .replace("@LABEL@", &xml_escape(LAUNCHD_LABEL))
        .replace("@DAEMON@", &xml_escape(&daemon.to_string_lossy()))
        .replace("@ENVIRONMENT@", &environment.join("\n"))
        .replace("@LOG_DIR@", &xml_escape(&log_dir.to_string_lossy()))
}

/// A path as the first word of `ExecStart=`: plain when it is plain, else
/// double-quoted. `%` (specifiers) and `$` (variable expansion) are doubled
/// either way.
fn systemd_exec_word(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._+-@:,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("\"{}\"", systemd_quoted_content(word).replace('$', "$$"))
    }
}

/// Text inside a double-quoted systemd value: backslashes and quotes
/// escaped, `%` doubled.
fn systemd_quoted_content(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[section] key=value` pairs of a unit file, comments and blanks
    /// skipped, in order.
    fn unit_entries(unit: &str) -> Vec<(String, String, String)> {
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in unit.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
                section = name.to_owned();
                continue;
            }
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
            entries.push((section.clone(), key.to_owned(), value.to_owned()));
        }
        entries
    }

    fn value<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> Option<&'a str> {
        entries
            .iter()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
    }

    #[test]
    fn the_unit_runs_the_daemon_and_restarts_it_only_on_failure() {
        let unit = render_systemd_unit(
            Path::new("/home/u/.cargo/bin/codex-fusiond"),
            &[("PATH", "/usr/bin:/bin")],
        );
        assert!(!unit.contains('@'), "every placeholder filled: {unit}");
        let entries = unit_entries(&unit);
        let sections: Vec<&str> = entries.iter().map(|(s, _, _)| s.as_str()).collect();
        assert!(
            sections.iter().all(|s| ["Unit", "Service", "Install"].contains(s)),
            "{sections:?}"
        );
        assert_eq!(value(&entries, "Service", "Type"), Some("simple"));
        assert_eq!(
            value(&entries, "Service", "ExecStart"),
            Some("/home/u/.cargo/bin/codex-fusiond")
        );
        assert_eq!(
            value(&entries, "Service", "Environment"),
            Some("\"PATH=/usr/bin:/bin\"")
        );
        assert_eq!(value(&entries, "Service", "Restart"), Some("on-failure"));
        assert_eq!(
            value(&entries, "Service", "RestartPreventExitStatus"),
            Some("3"),
            "a daemon that exits because another one runs is not restarted in a loop"
        );
        assert_eq!(value(&entries, "Install", "WantedBy"), Some("default.target"));
        assert!(value(&entries, "Unit", "Description").is_some());
        // Hardening that would break the daemon's job must stay out: it
        // writes its state dir, and codex-acp (node) JITs and may edit files.
        for forbidden in [
            "MemoryDenyWriteExecute",
            "ProtectHome",
            "ProtectSystem",
            "ReadOnlyPaths",
        ] {
            assert!(
                value(&entries, "Service", forbidden).is_none(),
                "{forbidden} breaks the daemon"
            );
        }
        assert_eq!(value(&entries, "Service", "NoNewPrivileges"), Some("yes"));
    }

    /// `systemd-analyze --user verify` on the rendered unit, where it can run:
    /// any warning about our file fails the test. Where systemd-analyze is
    /// missing or cannot start a manager (some containers), the structural
    /// test above is what checks the unit.
    #[test]
    fn systemd_analyze_accepts_the_unit() {
        let Some(analyze) = crate::locate::on_path("systemd-analyze", std::env::var_os("PATH").as_deref()) else {
            eprintln!("systemd-analyze not found; relying on the structural test");
            return;
        };
        // ExecStart must name an existing executable: this test binary is one.
        let daemon = std::env::current_exe().expect("test binary path");
        let env = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("CODEX_FUSION_SOCKET", "/tmp/x y/daemon.sock"),
        ];
        let output = verify_unit(&analyze, &render_systemd_unit(&daemon, &env));
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() && stderr.contains("Failed to initialize manager") {
            eprintln!("systemd-analyze cannot run here ({stderr}); relying on the structural test");
            return;
        }
        let about_our_unit: Vec<&str> = stderr.lines().filter(|line| line.contains(SYSTEMD_UNIT)).collect();
        assert!(
            output.status.success() && about_our_unit.is_empty(),
            "systemd-analyze --user verify complained ({}):\n{stderr}",
            output.status
        );
    }

    #[test]
    fn the_verify_test_catches_a_broken_unit() {
        // The same check as above must fail on a unit with a bad key, or it
        // proves nothing.
        let Some(analyze) = crate::locate::on_path("systemd-analyze", std::env::var_os("PATH").as_deref()) else {
            return;
        };
        let broken = render_systemd_unit(&std::env::current_exe().expect("exe"), &[("PATH", "/bin")])
            .replace("Restart=on-failure", "Restart=sometimes");
        let output = verify_unit(&analyze, &broken);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("Failed to initialize manager") {
            return;
        }
        assert!(stderr.contains("restart specifier"), "{stderr}");
    }

    /// `systemd-analyze --user verify` on `text` written as our unit, with a
    /// private runtime directory and home.
    fn verify_unit(analyze: &std::path::Path, text: &str) -> std::process::Output {
        let temp = tempfile::tempdir().expect("tempdir");
        let runtime = temp.path().join("runtime");
        std::fs::create_dir(&runtime).expect("mkdir");
        std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        let unit = temp.path().join(SYSTEMD_UNIT);
        std::fs::write(&unit, text).expect("write unit");
        std::process::Command::new(analyze)
            .args(["--user", "verify"])
            .arg(&unit)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", temp.path())
            .output()
            .expect("run systemd-analyze")
    }

    #[test]
    fn odd_paths_are_quoted_for_systemd() {
        let unit = render_systemd_unit(
            Path::new("/opt/my tools/100%/codex-fusiond"),
            &[("PATH", "/a b:/c\"d:$HOME")],
        );
        let entries = unit_entries(&unit);
        assert_eq!(
            value(&entries, "Service", "ExecStart"),
            Some("\"/opt/my tools/100%%/codex-fusiond\"")
        );
        assert_eq!(
            value(&entries, "Service", "Environment"),
            Some("\"PATH=/a b:/c\\\"d:$HOME\"")
        );
    }

    #[test]
    fn the_plist_is_valid_xml_with_the_launchd_keys() {
        let xml = render_launchd_plist(
            Path::new("/Users/u/.cargo/bin/codex-fusiond"),
            &[("PATH", "/usr/bin:/opt/homebrew/bin")],
            Path::new("/Users/u/Library/Logs/codex-fusion"),
        );
        assert!(!xml.contains('@'), "every placeholder filled: {xml}");
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let document = roxmltree::Document::parse_with_options(&xml, options).expect("well-formed XML");
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "plist");
        assert_eq!(root.attribute("version"), Some("1.0"));
        let dict = root.first_element_child().expect("a dict");
        assert_eq!(dict.tag_name().name(), "dict");
        let children: Vec<roxmltree::Node<'_, '_>> = dict.children().filter(roxmltree::Node::is_element).collect();
        assert_eq!(children.len() % 2, 0, "keys and values alternate");
        let entry = |key: &str| {
            children
                .chunks(2)
                .find(|pair| pair[0].tag_name().name() == "key" && pair[0].text() == Some(key))
                .map(|pair| pair[1])
                .unwrap_or_else(|| panic!("no {key} in {xml}"))
        };
        assert_eq!(entry("Label").text(), Some(LAUNCHD_LABEL));
        let program: Vec<&str> = entry("ProgramArguments")
            .children()
            .filter(roxmltree::Node::is_element)
            .map(|node| node.text().unwrap_or_default())
            .collect();
        assert_eq!(program, ["/Users/u/.cargo/bin/codex-fusiond"]);
        assert_eq!(entry("RunAtLoad").tag_name().name(), "true");
        let keep_alive = entry("KeepAlive");
        assert_eq!(keep_alive.tag_name().name(), "dict");
        let keep_alive: Vec<&str> = keep_alive
            .children()
            .filter(roxmltree::Node::is_element)
            .map(|node| node.text().unwrap_or(node.tag_name().name()))
            .collect();
        assert_eq!(
            keep_alive,
            ["SuccessfulExit", "false"],
            "restart after crashes, not after `stop`"
        );
        assert_eq!(
            entry("StandardErrorPath").text(),
            Some("/Users/u/Library/Logs/codex-fusion/codex-fusiond.err.log")
        );
        assert_eq!(
            entry("StandardOutPath").text(),
            Some("/Users/u/Library/Logs/codex-fusion/codex-fusiond.out.log")
        );
        let environment: Vec<&str> = entry("EnvironmentVariables")
            .children()
            .filter(roxmltree::Node::is_element)
            .map(|node| node.text().unwrap_or_default())
            .collect();
        assert_eq!(environment, ["PATH", "/usr/bin:/opt/homebrew/bin"]);
        assert!(
            !xml.contains("<key>ProcessType</key>"),
            "no ProcessType: Background would throttle the daemon and its codex-acp children"
        );
    }

    #[test]
    fn the_socket_and_state_dir_of_the_installing_shell_reach_the_service() {
        let env = [
            ("PATH", "/usr/bin"),
            ("CODEX_FUSION_SOCKET", "/run/cf/daemon.sock"),
            ("CODEX_FUSION_STATE_DIR", "/home/u/cf state"),
        ];
        let unit = render_systemd_unit(Path::new("/bin/codex-fusiond"), &env);
        let entries = unit_entries(&unit);
        let environment: Vec<&str> = entries
            .iter()
            .filter(|(section, key, _)| section == "Service" && key == "Environment")
            .map(|(_, _, value)| value.as_str())
            .collect();
        assert_eq!(
            environment,
            [
                "\"PATH=/usr/bin\"",
                "\"CODEX_FUSION_SOCKET=/run/cf/daemon.sock\"",
                "\"CODEX_FUSION_STATE_DIR=/home/u/cf state\""
            ]
        );
        let xml = render_launchd_plist(Path::new("/bin/codex-fusiond"), &env, Path::new("/l"));
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let document = roxmltree::Document::parse_with_options(&xml, options).expect("well-formed XML");
        let texts: Vec<&str> = document.descendants().filter_map(|node| node.text()).collect();
        for expected in [
            "CODEX_FUSION_SOCKET",
            "/run/cf/daemon.sock",
            "CODEX_FUSION_STATE_DIR",
            "/home/u/cf state",
        ] {
            assert!(texts.contains(&expected), "{expected} in {xml}");
        }
    }

    #[test]
    fn plist_values_are_escaped() {
        let xml = render_launchd_plist(
            Path::new("/Users/u/a&b <c>/codex-fusiond"),
            &[("PATH", "/x")],
            Path::new("/l"),
        );
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let document = roxmltree::Document::parse_with_options(&xml, options).expect("well-formed XML");
        assert!(
            document
                .descendants()
                .any(|node| node.text() == Some("/Users/u/a&b <c>/codex-fusiond"))
        );
    }

    #[test]
    fn service_files_live_where_the_managers_look() {
        let home = Path::new("/home/u");
        assert_eq!(
            ServiceManager::Systemd.unit_path(home, &home.join(".config")),
            Path::new("/home/u/.config/systemd/user/codex-fusiond.service")
        );
        assert_eq!(
            ServiceManager::Launchd.unit_path(home, &home.join(".config")),
            Path::new("/home/u/Library/LaunchAgents/dev.codex-fusion.daemon.plist")
        );
    }
}
