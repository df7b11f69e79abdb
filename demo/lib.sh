# What the Docker-free demos share (sourced by run-local.sh and run-sidecars.sh): a work
# directory and the processes to stop on exit, waiting on a condition, and the binaries
# (built here unless DEMO_SERVER_BIN / DEMO_PROXY_BIN / DEMO_MESHCTL_BIN / ENVOY_BIN name them).

work=$(mktemp -d "${TMPDIR:-/tmp}/xds-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# parse_args "$@": --check and --proxy envoy|minimal, into check and proxy.
check=false
proxy=envoy
parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --check) check=true ;;
      --proxy) proxy=${2:-}; shift ;;
      --proxy=*) proxy=${1#--proxy=} ;;
      *) echo "unknown argument '$1'; use --check and --proxy envoy|minimal" >&2; exit 2 ;;
    esac
    shift
  done
}

say() { printf '== %s\n' "$*"; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.2
  done
}

# workspace_bin PACKAGE OVERRIDE: the override when set, else the package built in debug.
workspace_bin() {
  if [ -n "$2" ]; then echo "$2"; return; fi
  say "building $1" >&2
  cargo build -q -p "$1"
  echo "${CARGO_TARGET_DIR:-$root/target}/debug/$1"
}

# proxy_binary envoy|minimal: sets proxy_bin and proxy_name.
proxy_binary() {
  case $1 in
    minimal) proxy_bin=$(workspace_bin minimal-proxy "${DEMO_PROXY_BIN:-}"); proxy_name=minimal-proxy ;;
    envoy) proxy_bin=${ENVOY_BIN:-$(scripts/envoy-bin.sh)}; proxy_name=Envoy ;;
    *) echo "--proxy must be envoy or minimal, got '$1'" >&2; exit 2 ;;
  esac
}

# start_server ADMIN_PORT XDS_PORT [FLAG...]: xds-server ($server_bin) on 127.0.0.1 with an
# embedded SQLite file in the work directory, once it is ready.
start_server() {
  local admin=$1 xds=$2
  shift 2
  say "xds-server: admin 127.0.0.1:$admin, xDS 127.0.0.1:$xds $*"
  "$server_bin" --admin-addr "127.0.0.1:$admin" --xds-addr "127.0.0.1:$xds" \
    --sqlite-file "$work/mesh.db" "$@" >"$work/xds-server.log" 2>&1 &
  pids+=($!)
  wait_until 30 "xds-server" curl -sf "http://127.0.0.1:$admin/readyz"
}

# start_proxy ADMIN_URL NODE_ID CLUSTER ADMIN_PORT: a proxy on the server's bootstrap.
start_proxy() {
  curl -sf "$1/api/v1/bootstrap?node_id=$2&cluster=$3&admin_port=$4" >"$work/$2.yaml"
  "$proxy_bin" -c "$work/$2.yaml" --use-dynamic-base-id --disable-hot-restart \
    --log-level warn >"$work/$2.log" 2>&1 &
  pids+=($!)
}

# start_app PORT TEXT: a python http.server answering TEXT on 127.0.0.1:PORT.
start_app() {
  mkdir -p "$work/app-$1"
  echo "$2" >"$work/app-$1/index.html"
  python3 -m http.server "$1" --bind 127.0.0.1 --directory "$work/app-$1" >"$work/app-$1.log" 2>&1 &
  pids+=($!)
  wait_until 15 "the application on :$1" curl -sf "http://127.0.0.1:$1/"
}
