#!/usr/bin/env bash
# Seeds the demo mesh over the REST API: a `web` service with a v1 and a v2 endpoint, a route
# sending 80% of traffic to v1 and 20% to v2 (and `x-canary: 1` always to v2), and an
# `ingress` listener on port 10000 for proxies whose node cluster is `ingress`.
#
#   demo/seed.sh ADMIN_URL V1_IP:PORT V2_IP:PORT [LISTENER_PORT] [LISTENER_ADDRESS]
set -euo pipefail
admin=${1:?admin URL, e.g. http://127.0.0.1:9090}
v1=${2:?v1 endpoint ip:port}
v2=${3:?v2 endpoint ip:port}
listener_port=${4:-10000}
listener_address=${5:-0.0.0.0}
auth=()
if [ -n "${XDS_ADMIN_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $XDS_ADMIN_TOKEN"); fi

put() {
  local path=$1 body=$2 code
  code=$(curl -sS -o /tmp/xds-demo-seed.out -w '%{http_code}' -X PUT "${auth[@]}" \
    -H 'content-type: application/json' "$admin$path" -d "$body")
  case $code in
    200|201) echo "PUT $path -> $code" ;;
    *) echo "PUT $path -> $code: $(cat /tmp/xds-demo-seed.out)" >&2; exit 1 ;;
  esac
}

put /api/v1/services/web '{"protocol": "http", "connect_timeout": "1s"}'
put /api/v1/services/web/endpoints "{\"endpoints\": [
  {\"address\": \"${v1%:*}\", \"port\": ${v1##*:}, \"labels\": {\"version\": \"v1\"}},
  {\"address\": \"${v2%:*}\", \"port\": ${v2##*:}, \"labels\": {\"version\": \"v2\"}}]}"
put /api/v1/routes/web '{"hosts": ["*"], "rules": [
  {"match": {"headers": [{"name": "x-canary", "exact": "1"}]},
   "destinations": [{"service": "web", "subset": {"version": "v2"}}]},
  {"match": {"path": {"prefix": "/"}},
   "destinations": [{"service": "web", "weight": 80, "subset": {"version": "v1"}},
                    {"service": "web", "weight": 20, "subset": {"version": "v2"}}],
   "timeout": "5s", "retries": {"attempts": 2, "retry_on": ["connect-failure", "reset"]}}]}'
put /api/v1/listeners/ingress "{\"address\": \"$listener_address\", \"port\": $listener_port, \"protocol\": \"http\",
  \"routes\": [\"web\"], \"selector\": {\"node_cluster\": \"ingress\"}}"
