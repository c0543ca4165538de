#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what the tests need
# (Debian packages, GitHub's npm packages), then runs formatting, lints and tests.
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# System packages the tests use. Only what is missing is installed.
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v cc >/dev/null || missing+=(build-essential)
command -v git >/dev/null || missing+=(git)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)  # runs the kickstart's rendered %post (provision_kickstart)
command -v runuser >/dev/null || missing+=(util-linux)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null || missing+=(openssh-client)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is required (rustup toolchain)" >&2; exit 2; }

# GitHub's own parser and evaluator, and real webhook payloads (tests/oracle).
# Reinstalled only when the lock file changed since the last install.
stamp=tests/oracle/node_modules/.metalfarm-lock
if ! cmp -s tests/oracle/package-lock.json "$stamp" 2>/dev/null; then
    log "installing GitHub's npm packages (tests/oracle)"
    (cd tests/oracle && npm ci --no-audit --no-fund --loglevel=error)
    cp tests/oracle/package-lock.json "$stamp"
fi

# A real Cobbler server (tests/cobbler): Debian packages and its venv now; the tests
# start it, and it is stopped when the suite ends.
log "installing the test Cobbler (tests/cobbler/cobbler.sh install)"
tests/cobbler/cobbler.sh install

# pykickstart's ksvalidator checks the kickstart Cobbler renders (tests/provision_kickstart.rs).
ks_venv=/var/lib/metalfarm-test/pykickstart-venv
if [ ! -x "$ks_venv/bin/ksvalidator" ]; then
    log "installing pykickstart ($ks_venv)"
    python3 -m venv "$ks_venv"
    "$ks_venv/bin/pip" install --quiet --disable-pip-version-check pykickstart==3.78
fi

if [ ! -f ../shared/corpus/README.md ] && [ -z "${METALFARM_CORPUS:-}" ]; then
    echo "../shared/corpus is missing: the corpus tests need shared/ beside the repository" >&2
    exit 2
fi

# A fresh clone gains nothing from incremental state; it only costs disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
log "cargo test"
results=$(mktemp)
trap 'rm -f "$results"; tests/cobbler/cobbler.sh stop' EXIT
cargo test --locked 2>&1 | tee "$results"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\nmetalfarm: %d passed, %d failed\n", p, f }' "$results"
