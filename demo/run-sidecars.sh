#!/usr/bin/env bash
# The sidecar demo without Docker, on 127.0.0.1: xds-server with the built-in mesh CA, an
# application (`web`) behind its sidecar, and two callers (`frontend`, `batch`) whose
# sidecars route to web; the mesh is demo/sidecars/mesh.yaml, applied with meshctl.
#
#   demo/run-sidecars.sh                    # Envoy sidecars; runs until Ctrl-C
#   demo/run-sidecars.sh --proxy minimal    # minimal-proxy sidecars
#   demo/run-sidecars.sh --check            # walks the steps below and proves each, then exits
#
# The steps, once it runs (the script prints them):
#   1. meshctl apply -f demo/sidecars/mtls.yaml        # mTLS on: every call encrypted
#   2. meshctl apply -f demo/sidecars/deny-batch.yaml  # batch -> web gets 403, frontend works
#
# Ports: DEMO_ADMIN_PORT (9090), DEMO_XDS_PORT (18000), the sidecars' admin ports
# DEMO_WEB_ADMIN_PORT (9901), DEMO_FRONTEND_ADMIN_PORT (9902), DEMO_BATCH_ADMIN_PORT (9903),
# and the mesh's own (web's inbound 15006, its
# application 8081, the callers' 10001 and 10002) from DEMO_WEB_INBOUND_PORT,
# DEMO_WEB_APP_PORT, DEMO_FRONTEND_PORT, DEMO_BATCH_PORT: the YAML files are applied with
# those ports in place of their defaults. DEMO_SERVER_BIN, DEMO_MESHCTL_BIN, DEMO_PROXY_BIN and
# ENVOY_BIN skip building or installing them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=demo/lib.sh
source demo/lib.sh
parse_args "$@"
admin_port=${DEMO_ADMIN_PORT:-9090}
xds_port=${DEMO_XDS_PORT:-18000}
web_admin=${DEMO_WEB_ADMIN_PORT:-9901}
web_inbound=${DEMO_WEB_INBOUND_PORT:-15006}
web_app=${DEMO_WEB_APP_PORT:-8081}
frontend_port=${DEMO_FRONTEND_PORT:-10001}
batch_port=${DEMO_BATCH_PORT:-10002}

server_bin=$(workspace_bin xds-server "${DEMO_SERVER_BIN:-}")
meshctl_bin=$(workspace_bin meshctl "${DEMO_MESHCTL_BIN:-}")
proxy_binary "$proxy"
admin="http://127.0.0.1:$admin_port"

# apply FILE: meshctl apply, with this run's ports in place of the file's defaults.
apply() {
  sed -e "s/\b15006\b/$web_inbound/g" -e "s/\b8081\b/$web_app/g" \
    -e "s/\b10001\b/$frontend_port/g" -e "s/\b10002\b/$batch_port/g" "$1" >"$work/$(basename "$1")"
  "$meshctl_bin" --server "$admin" apply -f "$work/$(basename "$1")"
}
# status URL: the HTTP status of a GET (000 when the connection fails).
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }
frontend="http://127.0.0.1:$frontend_port/"
batch="http://127.0.0.1:$batch_port/"
# served URL: the call reached web's application.
served() { [ "$(curl -sf --max-time 5 "$1")" = "hello from web" ]; }
# web_speaks_tls: web's inbound port answers a TLS handshake with web's SPIFFE certificate.
web_speaks_tls() {
  openssl s_client -connect "127.0.0.1:$web_inbound" </dev/null 2>/dev/null \
    | openssl x509 -noout -ext subjectAltName 2>/dev/null \
    | grep -q 'URI:spiffe://mesh.local/service/web'
}
plaintext_refused() { [ "$(status "http://127.0.0.1:$web_inbound/")" = 000 ]; }
denied() { [ "$(status "$1")" = 403 ]; }
# handshakes: web's sidecar's count of TLS handshakes on its inbound listener.
handshakes() {
  curl -sf "http://127.0.0.1:$web_admin/stats" \
    | awk -F': ' '/^listener\..*ssl\.handshake: / { n += $2 } END { print n + 0 }'
}

start_server "$admin_port" "$xds_port" --ca builtin

start_app "$web_app" "hello from web"
apply demo/sidecars/mesh.yaml
say "$proxy_name sidecars for web, frontend and batch"
start_proxy "$admin" web-1 web "$web_admin"
start_proxy "$admin" frontend-1 frontend "${DEMO_FRONTEND_ADMIN_PORT:-9902}"
start_proxy "$admin" batch-1 batch "${DEMO_BATCH_ADMIN_PORT:-9903}"
wait_until 30 "frontend -> web" served "$frontend"
wait_until 30 "batch -> web" served "$batch"
say "frontend -> web and batch -> web answer, in plaintext (mTLS is off)"

if ! $check; then
  say "step 1, mTLS on:   $meshctl_bin --server $admin apply -f demo/sidecars/mtls.yaml"
  say "step 2, deny a pair: $meshctl_bin --server $admin apply -f demo/sidecars/deny-batch.yaml"
  say "try: curl $frontend   |   curl $batch   |   openssl s_client -connect 127.0.0.1:$web_inbound"
  say "Ctrl-C stops everything"
  wait
  exit 0
fi

say "step 1: meshctl apply -f demo/sidecars/mtls.yaml"
apply demo/sidecars/mtls.yaml
wait_until 30 "web's inbound to refuse plaintext" plaintext_refused
wait_until 30 "web's inbound to speak TLS with its SPIFFE certificate" web_speaks_tls
before=$(handshakes)
wait_until 30 "frontend -> web over mTLS" served "$frontend"
wait_until 30 "batch -> web over mTLS" served "$batch"
after=$(handshakes)
[ "$after" -gt "$before" ] || { echo "web's sidecar counted no new TLS handshake ($before, then $after)" >&2; exit 1; }
say "mTLS: plaintext refused, web presents spiffe://mesh.local/service/web, $after TLS handshakes on web's inbound, both callers served"

say "step 2: meshctl apply -f demo/sidecars/deny-batch.yaml"
apply demo/sidecars/deny-batch.yaml
wait_until 30 "batch -> web to be denied" denied "$batch"
served "$frontend" || { echo "frontend -> web stopped working after denying batch" >&2; exit 1; }
say "batch -> web: 403; frontend -> web: 200"
for node in web-1 frontend-1 batch-1; do
  case $(curl -sf "$admin/api/v1/proxies/$node") in
    *NACKED*|*STALE*) echo "$node is not SYNCED" >&2; exit 1 ;;
  esac
done
say "sidecar demo check passed"
