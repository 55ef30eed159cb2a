#!/bin/bash
# Build the libFuzzer targets and run each on its seed corpus for a bounded
# time (FUZZ_SECONDS, default 20 per target). Exit non-zero on any crash.
# Usage: tests/fuzz/run.sh [BUILD_DIR]   (BUILD_DIR: a configured build tree)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../..}"
secs="${FUZZ_SECONDS:-20}"
. "$here/targets.sh"
make -C "$build" -s fuzz
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for t in $FUZZ_TARGETS; do
	mkdir -p "$work/$t"
	cp "$here/corpus/$t/"* "$work/$t/"
	echo "fuzz_$t: ${secs}s on $(ls "$here/corpus/$t" | wc -l) seeds"
	ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" \
		-max_len="$FUZZ_MAX_LEN" -artifact_prefix="$work/" "$work/$t" > "$work/$t.log" 2>&1 || {
		tail -40 "$work/$t.log"; echo "fuzz_$t: FAILED"; exit 1; }
	grep -E "^#[0-9]+.*(DONE|pulse)" "$work/$t.log" | tail -1 || true
	echo "fuzz_$t: ok"
done
