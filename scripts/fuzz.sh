#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, see tests/fuzz/README.md) for a fixed time each, then merges
# what it found into tests/fuzz/corpus/<target>/ (only inputs that add coverage; they are
# git-ignored, the committed files are the named seeds). Prints per target the executions and whether it crashed; exits non-zero on any
# crash, whose reproducer is left under fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS]     seconds per target: $1, else $FUZZ_SECONDS, else 60
#   FUZZ_SECONDS=10 scripts/fuzz.sh       the CI-lite run
#   FUZZ_TARGETS="report log" scripts/fuzz.sh 30    only some targets
#
# Stable Rust is enough: cargo-fuzz needs nightly only for sanitizers (-Zsanitizer) and
# --build-std, so the targets are built with `--sanitizer none` (libFuzzer's coverage
# instrumentation is plain -C flags). The default cargo-fuzz profile is release with debug
# assertions and overflow checks on, so an arithmetic overflow is a crash here as in tests.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

seconds=${1:-${FUZZ_SECONDS:-60}}
targets=${FUZZ_TARGETS:-"bundle manifest event log report aggregates"}
cargo_fuzz_version=0.13.1
corpus=tests/fuzz/corpus
work=fuzz/corpus        # ignored: everything the run keeps, before the merge
artifacts=fuzz/artifacts

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz $cargo_fuzz_version"
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

flags=(--fuzz-dir fuzz --sanitizer none)
started=$(date +%s)
echo "building the fuzz targets"
cargo fuzz build "${flags[@]}"
built=$(date +%s)
echo "built in $((built - started)) s"

failed=()
summary=()
for t in $targets; do
  mkdir -p "$corpus/$t" "$work/$t" "$artifacts/$t"
  log=$(mktemp)
  # The committed corpus is read as a second, read-only directory; new inputs go to $work.
  # An input over 30 s or a process over 2 GB (one allocation over it included) is a crash.
  # The dictionary (JSON syntax, boundary numbers) lets mutations reach e.g. an i8's -128.
  status=0
  cargo fuzz run "${flags[@]}" "$t" "$work/$t" "$corpus/$t" -- \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -dict=fuzz/json.dict \
    -artifact_prefix="$artifacts/$t/" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -1)}
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || true
  if [ "$status" -ne 0 ]; then
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "---- $t: last output ----"
    tail -n 40 "$log"
    summary+=("$(printf '%-11s %12s execs  CRASH %s' "$t" "${execs:-?}" "${crash:-(exit $status)}")")
    failed+=("$t")
  else
    summary+=("$(printf '%-11s %12s execs  no crash' "$t" "${execs:-?}")")
  fi
  rm -f "$log"
  # Keep what adds coverage (libFuzzer's merge: inputs of $work/$t new to the committed corpus).
  cargo fuzz run "${flags[@]}" "$t" "$corpus/$t" "$work/$t" -- -merge=1 -timeout=30 -rss_limit_mb=2048 \
    >/dev/null 2>&1 || echo "warning: merging the $t corpus failed"
done

echo
echo "fuzzing: ${seconds} s per target, build $((built - started)) s, total $(($(date +%s) - started)) s"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]} (reproducers under $artifacts/; rerun one with: cargo fuzz run --fuzz-dir fuzz --sanitizer none TARGET FILE)"
  exit 1
fi
