#!/bin/sh
# Installs codex-fusion from this checkout on a machine with Rust and Node:
#   1. builds the three release binaries once,
#   2. copies them into ~/.cargo/bin (or PREFIX/bin),
#   3. installs codex-acp with npm unless it is already on PATH,
#   4. restarts a daemon that runs, so the new codex-fusiond takes over (the
#      service with its manager; one started on demand with
#      `codex-fusion stop`, and the next call starts the new one),
#   5. runs `codex-fusion install --claude`: the user service, the MCP server
#      and the SessionStart hook in Claude Code.
# Every step prints what it did. Running it again rebuilds and reinstalls the
# binaries; step 5 then reports that nothing else changed.
set -eu

CODEX_ACP_PACKAGE="@agentclientprotocol/codex-acp@2.6.0"
BINARIES="codex-fusiond codex-fusion-mcp codex-fusion"

usage() {
    cat <<EOF
Usage: scripts/install.sh [--prefix DIR] [--no-claude] [--dry-run]

Builds codex-fusion in release mode and installs codex-fusiond,
codex-fusion-mcp and codex-fusion into ~/.cargo/bin (or DIR/bin), installs
codex-acp ($CODEX_ACP_PACKAGE) with npm if it is not on PATH, and runs
\`codex-fusion install --claude\`.

  --prefix DIR   install the binaries into DIR/bin instead of ~/.cargo/bin
  --no-claude    install the service only; do not register with Claude Code
  --dry-run      print what would be done, change nothing
EOF
}

bin_dir="${CARGO_HOME:-$HOME/.cargo}/bin"
claude_flag="--claude"
dry_run=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix)
            [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }
            bin_dir="$2/bin"
            shift 2
            ;;
        --prefix=*) bin_dir="${1#--prefix=}/bin"; shift ;;
        --no-claude) claude_flag=""; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument \`$1\`; see --help" >&2; exit 2 ;;
    esac
done

# Runs a command, or only shows it with --dry-run.
run() {
    if [ -n "$dry_run" ]; then
        echo "→ would run: $*"
    else
        "$@"
    fi
}

say() { echo "$*"; }

# A relative --prefix means relative to where the script was started, not to
# the checkout it changes into below.
case "$bin_dir" in
    /*) ;;
    *) bin_dir="$PWD/$bin_dir" ;;
esac

cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || {
    echo "install.sh: cargo not found; install Rust from https://rustup.rs and run this again" >&2
    exit 1
}

say "Building the release binaries (cargo build --release)…"
run cargo build --release --locked -p codex-fusiond -p codex-fusion-mcp -p codex-fusion
# Where cargo puts them: CARGO_TARGET_DIR, build.target-dir in a
# .cargo/config.toml, or target/. cargo metadata knows which.
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || target_dir="${CARGO_TARGET_DIR:-target}"
target_dir="$target_dir/release"

run mkdir -p "$bin_dir"
for binary in $BINARIES; do
    run install -m 0755 "$target_dir/$binary" "$bin_dir/$binary"
    [ -n "$dry_run" ] || say "✓ installed $bin_dir/$binary"
done
case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) say "! $bin_dir is not on your PATH; add it (e.g. in ~/.profile) so that \`codex-fusion\` is found" ;;
esac

# A daemon of the old binaries would keep serving until it stops: restart it
# so the new one takes over. A service is restarted by its manager (which
# would otherwise restart, or not, on its own terms); a daemon started on
# demand is stopped, and the next call starts the new one.
launchd_target="gui/$(id -u)/dev.codex-fusion.daemon"
if [ "$(uname)" = Darwin ] && launchctl print "$launchd_target" >/dev/null 2>&1; then
    if run launchctl kickstart -k "$launchd_target"; then
        [ -n "$dry_run" ] || say "✓ restarted the LaunchAgent dev.codex-fusion.daemon with the new codex-fusiond"
    else
        say "! could not restart it; run: launchctl kickstart -k $launchd_target"
    fi
elif command -v systemctl >/dev/null 2>&1 && systemctl --user is-active --quiet codex-fusiond.service 2>/dev/null; then
    if run systemctl --user try-restart codex-fusiond.service; then
        [ -n "$dry_run" ] || say "✓ restarted codex-fusiond.service with the new codex-fusiond"
    else
        say "! could not restart it; run: systemctl --user restart codex-fusiond"
    fi
elif ! run "$bin_dir/codex-fusion" stop; then
    say "! the running codex-fusiond did not stop; until it does, it serves the old version (see above)"
fi

if command -v codex-acp >/dev/null 2>&1; then
    say "= codex-acp is on PATH ($(command -v codex-acp)); not reinstalling it"
elif ! command -v npm >/dev/null 2>&1; then
    say "! npm not found; install Node.js, then: npm install -g $CODEX_ACP_PACKAGE"
elif run npm install -g --no-audit --no-fund "$CODEX_ACP_PACKAGE"; then
    [ -n "$dry_run" ] || say "✓ installed codex-acp ($CODEX_ACP_PACKAGE) with npm"
else
    say "! npm could not install $CODEX_ACP_PACKAGE globally (permissions?); install it yourself, e.g. with"
    say "    npm config set prefix ~/.npm-global && npm install -g $CODEX_ACP_PACKAGE"
    say "  and put ~/.npm-global/bin on PATH, or set CODEX_FUSION_ACP_COMMAND"
fi

say "Installing the service${claude_flag:+ and registering with Claude Code} (codex-fusion install $claude_flag)…"
if [ -n "$dry_run" ]; then
    say "→ would run: $bin_dir/codex-fusion install $claude_flag"
else
    # shellcheck disable=SC2086 # an empty flag must vanish, not be passed as ""
    "$bin_dir/codex-fusion" install $claude_flag
fi
