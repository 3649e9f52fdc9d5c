//! Command-line flags of the fake agent. Parsed by hand: the fixture takes a
//! handful of flags and the testkit has no argument-parser dependency.

use std::path::PathBuf;

/// Environment variable naming the state directory when `--state-dir` is absent.
const STATE_DIR_ENV: &str = "FAKE_ACP_STATE_DIR";

/// What the fake was asked to be, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct Args {
    /// Where sessions are persisted, one JSON file per session id.
    pub state_dir: PathBuf,
    /// Never answer `initialize`.
    pub hang_initialize: bool,
    /// Advertise auth methods and refuse sessions until `authenticate` succeeded.
    pub require_auth: bool,
    /// Advertise `loadSession: false` and refuse `session/load`.
    pub no_load: bool,
    /// Append one JSON line per received ACP message to this file.
    pub log: Option<PathBuf>,
    /// The name `initialize` gives (`agentInfo.name`); `fake-codex-acp` by
    /// default. Naming itself codex-acp makes the daemon require its
    /// confinement, which the fake cannot have.
    pub agent_name: String,
    /// On its first start for a state dir, write this to stderr and exit 1
    /// before speaking ACP (as codex does when two processes initialise a
    /// fresh home at once).
    pub fail_first_start: Option<String>,
    /// Refuse `session/load` as codex does while another codex holds the
    /// session, this many times (a daemon killed a moment ago left one).
    pub busy_loads: u32,
}

impl Args {
    /// Parses the flags (without the program name).
    pub fn parse(mut flags: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut state_dir = None;
        let mut hang_initialize = false;
        let mut require_auth = false;
        let mut no_load = false;
        let mut log = None;
        let mut agent_name = "fake-codex-acp".to_owned();
        let mut fail_first_start = None;
        let mut busy_loads = 0;
        while let Some(flag) = flags.next() {
            let (name, inline_value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (flag.clone(), None),
            };
            match name.as_str() {
                "--state-dir" => {
                    state_dir = Some(PathBuf::from(value_of(&name, inline_value, &mut flags)?));
                }
                "--log" => log = Some(PathBuf::from(value_of(&name, inline_value, &mut flags)?)),
                "--agent-name" => agent_name = value_of(&name, inline_value, &mut flags)?,
                "--fail-first-start" => fail_first_start = Some(value_of(&name, inline_value, &mut flags)?),
                "--busy-loads" => {
                    busy_loads = value_of(&name, inline_value, &mut flags)?
                        .parse()
                        .map_err(|_| "--busy-loads needs a number".to_owned())?;
                }
                "--hang-initialize" => hang_initialize = true,
                "--require-auth" => require_auth = true,
                "--no-load" => no_load = true,
                _ => {
                    return Err(format!(
                        "unknown flag `{flag}`; expected --state-dir DIR, --log FILE, \
                         --agent-name NAME, --fail-first-start MESSAGE, --busy-loads N, --hang-initialize, --require-auth or --no-load"
                    ));
                }
            }
        }
        let state_dir = state_dir
            .or_else(|| std::env::var_os(STATE_DIR_ENV).map(PathBuf::from))
            .unwrap_or_else(|| std::env::temp_dir().join("fake-codex-acp-state"));
        Ok(Self {
            state_dir,
            hang_initialize,
            require_auth,
            no_load,
            log,
            agent_name,
            fail_first_start,
            busy_loads,
        })
    }
}

fn value_of(
    name: &str,
    inline_value: Option<String>,
    flags: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    inline_value
        .or_else(|| flags.next())
        .ok_or_else(|| format!("{name} needs a value"))
}
