#!/usr/bin/env bash
# Where the CPU of one proxied request goes: user and system time of the proxy (HAProxy 2.6,
# then Cumulo's ALB), of wrk and of the nginx backends, per request, in alternating runs on
# the same machine. It shows how much of a request any user-space proxy must pay in the
# kernel, and so how far a faster proxy can raise req/s on this machine.
#
#   bench/alb-cpu.sh                  # c=64 keep-alive, 4 rounds x 8 s
#   C=256 ROUNDS=2 bench/alb-cpu.sh
#   MODE=close bench/alb-cpu.sh       # a connection per request
#
# Needs what bench/alb.sh installs (haproxy, nginx, wrk) and builds Cumulo (release). Binds
# 127.0.0.1:8081 (HAProxy), :9001-9003 (backends) and Cumulo's :8084; stops what it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers}
C=${C:-64}
D=${D:-8}
ROUNDS=${ROUNDS:-4}
MODE=${MODE:-keep-alive}
for tool in haproxy nginx wrk; do
  command -v "$tool" >/dev/null || { echo "bench/alb-cpu.sh: $tool missing (bench/alb.sh installs it)" >&2; exit 2; }
done
(cd "$ROOT" && cargo build --release -p cumulo)
SCRATCH=$(mktemp -d /tmp/alb-cpu.XXXXXX)
BIN=$SCRATCH/cumulo
cp "$ROOT/target/release/cumulo" "$BIN"
render() { sed -e "s#@WORKERS@#$2#g; s#@THREADS@#$2#g; s#@SCRATCH@#$SCRATCH#g; s#@HOST@#127.0.0.1#g" "$PEERS/$1" > "$3"; }
render nginx-backends.conf 1 "$SCRATCH/nginx-backends.conf"
render haproxy.cfg 2 "$SCRATCH/haproxy.cfg"
PIDS=()
# Cumulo stops on INT (deleting its stack), nginx and HAProxy on TERM.
cleanup() {
  kill -INT "$CUMULO" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$CUMULO" ] || kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
CUMULO=
trap cleanup EXIT
nginx -p "$SCRATCH" -e "$SCRATCH/nginx.err" -c "$SCRATCH/nginx-backends.conf" &
NGINX=$!; PIDS+=("$NGINX")
haproxy -db -f "$SCRATCH/haproxy.cfg" >/dev/null 2>&1 &
HAPROXY=$!; PIDS+=("$HAPROXY")
"$BIN" up "$PEERS/bench-alb.yaml" --stack-name bench --data-dir "$SCRATCH/data" >"$SCRATCH/cumulo.log" 2>&1 &
CUMULO=$!; PIDS+=("$CUMULO")
for _ in $(seq 60); do grep -q ":8084" "$SCRATCH/cumulo.log" && break; sleep 1; done
CURL=$(grep -o 'http://[0-9.]*:8084/*' "$SCRATCH/cumulo.log" | head -1)
HURL=http://127.0.0.1:8081/
for _ in $(seq 30); do [ "$(curl -s -o /dev/null -w '%{http_code}' "$CURL")" = 200 ] && break; sleep 1; done
sleep 1
BACKEND=$(pgrep -P "$NGINX" | head -1)
HDR=()
[ "$MODE" = close ] && HDR=(-H "Connection: close")
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
one() { # name pid url
  local pu ps bu bs pu2 ps2 bu2 bs2 out n rps wu ws
  read -r pu ps < <(ticks "$2"); read -r bu bs < <(ticks "$BACKEND")
  out=$( { /usr/bin/time -f "wrk-cpu %U %S" wrk -t1 -c"$C" -d"${D}s" "${HDR[@]}" "$3"; } 2>&1 )
  read -r pu2 ps2 < <(ticks "$2"); read -r bu2 bs2 < <(ticks "$BACKEND")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  read -r wu ws < <(awk '/wrk-cpu/ {print $2, $3}' <<<"$out")
  awk -v name="$1" -v n="$n" -v rps="$rps" -v hz="$HZ" -v pu=$((pu2 - pu)) -v ps=$((ps2 - ps)) \
      -v b=$((bu2 + bs2 - bu - bs)) -v w="$wu $ws" 'BEGIN {
    split(w, wt, " "); us = 1e6 / hz / n
    printf "%-8s %9.0f %9.1f %9.1f %9.1f %9.1f\n", name, rps, pu * us, ps * us, (wt[1] + wt[2]) * 1e6 / n, b * us }'
}
wrk -t1 -c"$C" -d2s "${HDR[@]}" "$HURL" >/dev/null
wrk -t1 -c"$C" -d2s "${HDR[@]}" "$CURL" >/dev/null
echo "mode=$MODE c=$C, $ROUNDS rounds x ${D}s; CPU in microseconds per request"
printf "%-8s %9s %9s %9s %9s %9s\n" proxy req/s user sys wrk backends
for _ in $(seq "$ROUNDS"); do
  one haproxy "$HAPROXY" "$HURL"
  one cumulo "$CUMULO" "$CURL"
done
