#!/usr/bin/env bash
# Sidecar to sidecar, Envoy against minimal-proxy in one run: the cost of a call through two
# sidecars (frontend's outbound listener -> web's inbound listener -> the application), in
# plaintext and over strict mTLS, on the demo's mesh (demo/sidecars/*.yaml) with the real
# xds-server (built-in CA). Prints a Markdown table: requests/s, p50 and p99 (wrk), and the
# CPU the two sidecars spent per request (utime + stime from /proc), per data plane and mode,
# and web's sidecar's TLS handshake count (none in plaintext; pooled connections over mTLS).
#
#   cargo build --release -p xds-server -p minimal-proxy -p meshctl -p integration --bin echo-upstream
#   scripts/bench-sidecars.sh [ROUNDS (2)] [SECONDS (10)] [CONNECTIONS (16)]
#
# Both proxies run with the same command line (`--concurrency 1`), pinned to CPU 1 with
# taskset; wrk, the application (the tests' echo upstream, a one-thread hyper server) and
# xds-server to CPU 0. The data planes take turns, ROUNDS times each; every row is one run.
# Needs wrk; Envoy from ENVOY_BIN or the wheel (scripts/envoy-bin.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${1:-2}
seconds=${2:-10}
conns=${3:-16}
rel=${CARGO_TARGET_DIR:-$root/target}/release
server_bin=$rel/xds-server
meshctl_bin=$rel/meshctl
minimal_bin=$rel/minimal-proxy
echo_bin=$rel/echo-upstream
envoy_bin=${ENVOY_BIN:-$(scripts/envoy-bin.sh)}
for b in "$server_bin" "$meshctl_bin" "$minimal_bin" "$echo_bin"; do
  [ -x "$b" ] || { echo "missing $b: build it (see the header)" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
# shellcheck source=demo/lib.sh
source demo/lib.sh
tck=$(getconf CLK_TCK)

# free_ports N: N distinct ports free now on 127.0.0.1 (all held open until all are chosen).
free_ports() {
  python3 -c 'import socket,sys
socks=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# cpu_ticks PID...: utime + stime of these processes.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# one_run PLANE: prints two table rows (plaintext, mtls).
one_run() {
  local plane=$1 bin admin xds web_in front app_port port_line
  case $plane in envoy) bin=$envoy_bin ;; minimal) bin=$minimal_bin ;; esac
  local batch web_admin front_admin
  read -r admin xds web_in front batch web_admin front_admin < <(free_ports 7)
  local run_pids=()
  taskset -c 0 "$server_bin" --admin-addr "127.0.0.1:$admin" --xds-addr "127.0.0.1:$xds" \
    --sqlite-file "$work/$plane.db" --ca builtin >"$work/$plane-server.log" 2>&1 &
  run_pids+=($!)
  wait_until 30 "xds-server" curl -sf "http://127.0.0.1:$admin/readyz"
  # The application: serves until its stdin (fd 4 here) closes.
  rm -f "$work/echo-in" "$work/echo-out"
  mkfifo "$work/echo-in"
  taskset -c 0 "$echo_bin" web <"$work/echo-in" >"$work/echo-out" &
  run_pids+=($!)
  exec 4>"$work/echo-in"
  wait_until 10 "the application" test -s "$work/echo-out"
  port_line=$(head -n 1 "$work/echo-out")
  app_port=${port_line##*:}
  apply() {
    sed -e "s/\b15006\b/$web_in/g" -e "s/\b8081\b/$app_port/g" -e "s/\b10001\b/$front/g" \
      -e "s/\b10002\b/$batch/g" "$1" >"$work/$(basename "$1")"
    "$meshctl_bin" --server "http://127.0.0.1:$admin" apply -f "$work/$(basename "$1")" >/dev/null
  }
  apply demo/sidecars/mesh.yaml
  local node proxy_admin
  for node in web frontend; do
    proxy_admin=$web_admin
    [ "$node" = frontend ] && proxy_admin=$front_admin
    curl -sf "http://127.0.0.1:$admin/api/v1/bootstrap?node_id=$node-1&cluster=$node&admin_port=$proxy_admin" \
      >"$work/$plane-$node.yaml"
    taskset -c 1 "$bin" -c "$work/$plane-$node.yaml" --concurrency 1 --use-dynamic-base-id \
      --disable-hot-restart --log-level warn >"$work/$plane-$node.log" 2>&1 &
    run_pids+=($!)
  done
  local proxies=("${run_pids[@]:2}")
  local url="http://127.0.0.1:$front/"
  wait_until 30 "$plane: frontend -> web" curl -sf --max-time 2 "$url"
  local mode
  for mode in plaintext mtls; do
    if [ "$mode" = mtls ]; then
      apply demo/sidecars/mtls.yaml
      wait_until 30 "$plane: web's inbound to refuse plaintext" \
        bash -c "! curl -sf --max-time 2 http://127.0.0.1:$web_in/"
      wait_until 30 "$plane: frontend -> web over mTLS" curl -sf --max-time 2 "$url"
    fi
    taskset -c 0 wrk -t1 -c"$conns" -d2s "$url" >/dev/null 2>&1 # warm-up
    local before after out rps p50 p99 requests
    before=$(cpu_ticks "${proxies[@]}")
    out=$(taskset -c 0 wrk -t1 -c"$conns" -d"${seconds}s" --latency "$url")
    after=$(cpu_ticks "${proxies[@]}")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    if grep -q "Non-2xx" <<<"$out"; then echo "$plane $mode: non-2xx answers" >&2; exit 1; fi
    # web's sidecar's TLS handshakes on its inbound listener: none in plaintext, some over mTLS.
    local handshakes
    handshakes=$(curl -sf --max-time 5 "http://127.0.0.1:$web_admin/stats" |
      awk -F': ' '/^listener\..*ssl\.handshake: / { n += $2 } END { print n + 0 }')
    if [ "$mode" = mtls ] && [ "$handshakes" -eq 0 ]; then
      echo "$plane: no TLS handshake on web's inbound listener" >&2
      exit 1
    fi
    printf '| %s | %s | %s | %s | %s | %.1f | %s |\n' "$plane" "$mode" "$rps" "$p50" "$p99" \
      "$(awk -v t=$((after - before)) -v hz="$tck" -v n="$requests" 'BEGIN {print t / hz * 1e6 / n}')" \
      "$handshakes"
  done
  exec 4>&-
  kill "${run_pids[@]}" 2>/dev/null || true
  wait "${run_pids[@]}" 2>/dev/null || true
}

echo "$(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $seconds s per step, $conns connections"
echo
echo "| data plane | mode | req/s | p50 | p99 | sidecars' CPU µs/request | web's TLS handshakes |"
echo "|---|---|---|---|---|---|---|"
for _ in $(seq 1 "$rounds"); do
  one_run envoy
  one_run minimal
done
