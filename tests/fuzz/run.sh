#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a fixed time each, on a copy
# of the seed corpus kept in the build directory (the repository's corpus
# is never written to), and prints a table of what ran. Exits non-zero when
# any target found a crash, a leak, undefined behaviour or a timeout.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]       (make fuzz runs this)
#   FUZZ_TARGETS="url jwt" tests/fuzz/run.sh build-fuzz 60
#
# Per target NAME: corpus BUILD_DIR/fuzz/corpus/NAME, crash inputs
# BUILD_DIR/fuzz/artifacts/NAME/ (emptied when the target starts), log
# BUILD_DIR/fuzz/logs/NAME.log.
set -uo pipefail

build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
bin="$build/tests/fuzz"
work="$build/fuzz"

if [ -n "${FUZZ_TARGETS:-}" ]; then
  targets=($FUZZ_TARGETS)
else
  targets=()
  for f in "$bin"/fuzz_*; do
    [ -x "$f" ] && targets+=("${f##*/fuzz_}")
  done
fi
[ ${#targets[@]} -gt 0 ] || { echo "run.sh: no fuzz targets in $bin (build them first)" >&2; exit 1; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$here/../lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"

failed=()
rows=()
for t in "${targets[@]}"; do
  exe="$bin/fuzz_$t"
  [ -x "$exe" ] || { echo "run.sh: no target $exe" >&2; failed+=("$t"); continue; }
  corpus="$work/corpus/$t" art="$work/artifacts/$t" log="$work/logs/$t.log"
  mkdir -p "$corpus" "$art" "$work/logs"
  rm -f "$art"/* # what is there now was found by this run
  # Seeds are copied in; what earlier runs found in the build dir stays.
  [ -d "$here/corpus/$t" ] && cp -f "$here/corpus/$t"/* "$corpus"/ 2>/dev/null
  dict=()
  [ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
  echo "== fuzz_$t: ${seconds}s" >&2
  "$exe" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" "${dict[@]}" "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  files=$(find "$corpus" -type f | wc -l)
  result=ok
  if [ $rc -ne 0 ]; then
    result="FAILED (exit $rc)"
    failed+=("$t")
    echo "---- fuzz_$t failed; end of $log:" >&2
    tail -n 60 "$log" >&2
    for a in "$art"/*; do
      [ -f "$a" ] || continue
      echo "reproduce: $exe $a" >&2
      # Again with the slow unwinder: allocation stacks through the
      # system libraries (no frame pointers) keep every frame.
      echo "---- $a with full allocation stacks:" >&2
      ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" "$exe" "$a" 2>&1 | tail -n 40 >&2
    done
  fi
  rows+=("$(printf '%-16s %8s %14s %8s  %s' "$t" "$seconds" "${execs:-?}" "$files" "$result")")
done

echo
printf '%-16s %8s %14s %8s  %s\n' target seconds executions corpus result
for r in "${rows[@]}"; do echo "$r"; done
echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (docs/testing.md, \"Fuzzing\")" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
