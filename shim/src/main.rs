//! `codex-fusion-mcp`: the stdio MCP server Claude Code launches. A thin
//! main over [`codex_fusion_mcp::run`].

use std::process::ExitCode;

const HELP: &str = "codex-fusion-mcp — the codex-fusion MCP server for Claude Code

Speaks MCP on stdin/stdout and forwards it to the codex-fusiond daemon over
its Unix socket, starting the daemon if none is running. Register it with:

    claude mcp add codex-fusion -- codex-fusion-mcp

USAGE:
    codex-fusion-mcp [--help] [--version]

ENVIRONMENT (forwarded to the daemon):
    CODEX_FUSION_WORKSPACE             workspace Codex is scoped to (default: current directory)
    CODEX_FUSION_ACP_COMMAND           how to launch codex-acp (default: codex-acp)
    CODEX_FUSION_ALLOW_EXTERNAL_READS  auto-allow reads outside the workspace and fetches
    CODEX_FUSION_ALLOW_WRITES          auto-allow edits inside the workspace
    CODEX_FUSION_ALLOW_COMMANDS        auto-allow shell commands
    CODEX_FUSION_TURN_TIMEOUT_MS       idle limit of one turn (default: 300000)
    CODEX_FUSION_LOG                   append a JSONL record per turn to this file
    CODEX_FUSION_SOCKET                the daemon's socket path
    OPENAI_API_KEY, CODEX_API_KEY, CODEX_HOME  passed on to codex-acp";

fn main() -> ExitCode {
    if let Some(exit) = codex_fusion_protocol::flags::handle("codex-fusion-mcp", HELP) {
        return exit;
    }
    match codex_fusion_mcp::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("codex-fusion-mcp: {error}");
            ExitCode::FAILURE
        }
    }
}
