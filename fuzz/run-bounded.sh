#!/usr/bin/env bash
# A bounded fuzzing pass for CI: every target for N seconds (default 30), seeded from
# fuzz/corpus/<target> when present. A crash fails the run (cargo fuzz exits non-zero and
# leaves the input in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
targets=(query json cbor sigv4 h1_response analyze)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# Built once for every target, then each runs.
cargo fuzz build --sanitizer none
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  extra=()
  [ "$t" = analyze ] && extra+=(-dict=cfn.dict)
  echo "== fuzz $t (${seconds}s)"
  cargo fuzz run "$t" --sanitizer none "corpus/$t" -- -max_total_time="$seconds" "${extra[@]}" 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs|==[0-9]+== ERROR|SUMMARY|thread .* panicked|artifact_prefix)" || true
  # grep hides the stream; the pipeline's first status is cargo fuzz's.
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $t failed"; exit 1; }
done
