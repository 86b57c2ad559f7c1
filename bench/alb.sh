#!/usr/bin/env bash
# Cumulo's ALB against HAProxy, nginx and Caddy: interleaved rounds of wrk through each proxy
# to the same three backends (keep-alive c=16/64/256, connection-per-request c=64; shared and
# pinned CPUs). The peer harness installs what it needs (apt-get haproxy nginx wrk caddy).
#
#   bench/alb.sh                      # full run (3 rounds x 10 s, about 25 min)
#   SETUPS=shared CONNS=64 bench/alb.sh
#
# PEERS points at the harness (default: ../shared/bench/peers beside this repository);
# OUT keeps results.tsv and table.txt (default: a fresh /tmp directory).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/peers}
[ -x "$PEERS/run.sh" ] || { echo "bench/alb.sh: no peer harness at $PEERS (set PEERS=...)" >&2; exit 2; }
(cd "$ROOT" && cargo build --release -p cumulo)
# A copy, so that a rebuild during the run does not change the binary under test.
BIN=$(mktemp -d /tmp/cumulo-bench.XXXXXX)/cumulo
cp "$ROOT/target/release/cumulo" "$BIN"
export OUT=${OUT:-$(mktemp -d /tmp/alb-bench.XXXXXX)}
CUMULO=$BIN "$PEERS/run.sh"
echo "results: $OUT/results.tsv; table: $OUT/table.txt"
