#!/usr/bin/env bash
# Starts the farm on its embedded defaults: builds metalfarm and runs `metalfarm serve`
# with no config file (SQLite under ./metalfarm-data/, listening on 127.0.0.1:8080,
# workflows from ./workflows/). Extra arguments go to `metalfarm serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential; }
cargo build --release --locked
exec ./target/release/metalfarm serve "$@"
