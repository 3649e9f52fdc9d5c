//! The real agent for end-to-end tests: the pinned codex-acp (installed into
//! a cache directory, by `.ci/run` or on first use), pointed at `model-mock`
//! through a private `CODEX_HOME`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

use crate::env::{TestEnv, binary};

/// The codex-acp version the suite runs against.
pub const CODEX_ACP_VERSION: &str = "2.6.0";
/// Overrides where the suite finds codex-acp.
pub const CODEX_ACP_ENV: &str = "CODEX_FUSION_TEST_CODEX_ACP";

/// The codex-acp executable: `$CODEX_FUSION_TEST_CODEX_ACP`, else the cache
/// install `.ci/run` makes, installing it there (once, under a lock) if it
/// is missing. Panics with the install command if none of that works.
pub fn codex_acp() -> PathBuf {
    if let Some(path) = std::env::var_os(CODEX_ACP_ENV).map(PathBuf::from) {
        assert!(
            path.is_file(),
            "{CODEX_ACP_ENV}={} does not exist; unset it or install codex-acp there",
            path.display()
        );
        return path;
    }
    let prefix = cache_prefix();
    let path = prefix.join("node_modules/.bin/codex-acp");
    if path.is_file() {
        return path;
    }
    install(&prefix);
    assert!(
        path.is_file(),
        "codex-acp is not installed and installing it failed. Install it with:\n  npm install --prefix {} @agentclientprotocol/codex-acp@{CODEX_ACP_VERSION}\nor set {CODEX_ACP_ENV} to a codex-acp executable (.ci/run does this)",
        prefix.display()
    );
    path
}

fn cache_prefix() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("codex-fusion-ci")
        .join(format!("codex-acp-{CODEX_ACP_VERSION}"))
}

/// `npm install` into `prefix`, serialized across test processes by a lock.
fn install(prefix: &Path) {
    std::fs::create_dir_all(prefix).expect("cache directory");
    let lock = std::fs::File::create(prefix.join(".install.lock")).expect("lock file");
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("install lock");
    if prefix.join("node_modules/.bin/codex-acp").is_file() {
        return;
    }
    eprintln!(
        "installing @agentclientprotocol/codex-acp@{CODEX_ACP_VERSION} into {}",
        prefix.display()
    );
    let status = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(prefix)
        .arg(format!("@agentclientprotocol/codex-acp@{CODEX_ACP_VERSION}"))
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("npm install failed: {status}"),
        Err(error) => eprintln!("cannot run npm: {error}"),
    }
}

/// A running `model-mock`; stops when dropped (its stdin closes).
pub struct ModelMock {
    child: Child,
    pub port: u16,
}

/// How the mock paces a `mock:slow` answer: `chunks` text deltas, one every
/// `interval` (the stream lasts about `chunks × interval`).
#[derive(Debug, Clone, Copy)]
pub struct SlowPacing {
    pub interval: Duration,
    pub chunks: usize,
}

impl Default for SlowPacing {
    /// What the suite uses: 100 deltas 100 ms apart (10 s).
    fn default() -> SlowPacing {
        SlowPacing {
            interval: Duration::from_millis(100),
            chunks: 100,
        }
    }
}

impl ModelMock {
    pub async fn start() -> ModelMock {
        ModelMock::start_paced(SlowPacing::default()).await
    }

    /// A mock whose `mock:slow` answers follow `pacing`.
    pub async fn start_paced(pacing: SlowPacing) -> ModelMock {
        let mut child = tokio::process::Command::new(binary("model-mock"))
            .arg("--slow-interval-ms")
            .arg(pacing.interval.as_millis().to_string())
            .arg("--slow-chunks")
            .arg(pacing.chunks.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn model-mock");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("model-mock starts within 10 s")
            .expect("read model-mock's address");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("model-mock printed `{line}`"));
        ModelMock { child, port }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Every request the mock received (summaries with the full bodies).
    pub async fn requests(&self) -> Vec<Value> {
        let body = self.get("/_mock/requests").await;
        match serde_json::from_str(&body) {
            Ok(Value::Array(items)) => items,
            _ => panic!("model-mock returned `{body}`"),
        }
    }

    /// The model's turn requests (not titles or compactions).
    pub async fn turns(&self) -> Vec<Value> {
        self.requests()
            .await
            .into_iter()
            .filter(|request| request["kind"] == "turn")
            .collect()
    }

    async fn get(&self, path: &str) -> String {
        http_get(self.port, path).await
    }

    pub fn stop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The body of `GET path` from a mock on 127.0.0.1:`port`.
pub async fn http_get(port: u16, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the mock");
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// A test environment running the real codex-acp against a fresh mock.
pub struct RealEnv {
    pub env: TestEnv,
    pub mock: ModelMock,
    pub codex_home: PathBuf,
}

/// The key the mock provider is configured to send (and codex-acp to
/// authenticate with).
pub const TEST_API_KEY: &str = "sk-codex-fusion-test";

impl RealEnv {
    /// An env whose codex-acp talks to a new mock. With `with_key`, the API
    /// key is in the environment (codex-acp requires authentication, like
    /// the real OpenAI provider).
    pub async fn new(with_key: bool) -> RealEnv {
        RealEnv::new_paced(with_key, SlowPacing::default()).await
    }

    /// The same, with the mock's `mock:slow` answers paced by `pacing`.
    pub async fn new_paced(with_key: bool, pacing: SlowPacing) -> RealEnv {
        let mock = ModelMock::start_paced(pacing).await;
        let mut env = TestEnv::new();
        // Codex runs commands through the user's login shell: a home of its
        // own keeps the machine's `.bashrc` (and whatever it locks, such as
        // pyenv's rehash) out of the suite, and the suite out of it.
        let home = env.dir("home");
        env.set("HOME", home.to_str().expect("utf8 home"));
        let codex_home = env.dir("codex-home");
        std::fs::write(codex_home.join("config.toml"), codex_config(&mock.base_url())).expect("config.toml");
        let command = codex_acp();
        env.set("CODEX_FUSION_ACP_COMMAND", command.to_str().expect("utf8 path"));
        env.set("CODEX_HOME", codex_home.to_str().expect("utf8 path"));
        // codex-acp and Codex must not see the developer's own credentials.
        env.set("OPENAI_API_KEY", if with_key { TEST_API_KEY } else { "" });
        env.set("CODEX_API_KEY", "");
        RealEnv { env, mock, codex_home }
    }
}

/// A Codex config that sends every request to the mock, fails fast instead
/// of retrying, and requires authentication like OpenAI's own provider.
pub fn codex_config(base_url: &str) -> String {
    format!(
        r#"model = "gpt-5.5"
model_provider = "mock"

[model_providers.mock]
name = "Mock"
base_url = "{base_url}"
wire_api = "responses"
env_key = "OPENAI_API_KEY"
requires_openai_auth = true
request_max_retries = 0
stream_max_retries = 0
"#
    )
}

/// An npm agent the suite drives when `variable` names its binary (`.ci/run`
/// installs it and sets the variable), or `None` after printing why the test
/// is skipped and how to install it.
pub fn npm_agent(variable: &str, package: &str, version: &str, bin: &str) -> Option<PathBuf> {
    let Some(path) = std::env::var_os(variable).filter(|path| !path.is_empty()) else {
        let dir = package.rsplit('/').next().unwrap_or(package);
        eprintln!(
            "SKIPPED: {variable} is not set, so the real {bin} is not tested. .ci/run installs it; by hand:\n  \
             npm install --prefix ~/.cache/codex-fusion-ci/{dir}-{version} {package}@{version}\n  \
             export {variable}=~/.cache/codex-fusion-ci/{dir}-{version}/node_modules/.bin/{bin}"
        );
        return None;
    };
    let path = PathBuf::from(path);
    assert!(path.is_file(), "{variable}={} does not exist", path.display());
    Some(path)
}
