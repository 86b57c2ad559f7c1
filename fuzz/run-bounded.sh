#!/usr/bin/env bash
# A bounded fuzzing pass for CI: every target for N seconds (default 10), seeded from
# fuzz/corpus/<target> when present. A crash fails the run (cargo fuzz exits non-zero and
# leaves the input in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-10}"
targets=(query json cbor sigv4 h1_response analyze)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# Built once for every target, then each runs.
cargo fuzz build --sanitizer none
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  extra=()
  [ "$t" = analyze ] && extra+=(-dict=cfn.dict)
  echo "== fuzz $t (${seconds}s)"
  status=0
  cargo fuzz run "$t" --sanitizer none "corpus/$t" -- -max_total_time="$seconds" "${extra[@]}" >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"
    echo "fuzz target $t failed"
    exit 1
  fi
done
