#!/bin/bash
# The long fuzz campaign: run every libFuzzer target (tests/fuzz/targets.sh)
# for FUZZ_RUNS executions (default 10,000,000), one at a time under
# `nice -n 19` (in an autogroup niced to 19 too, see below), each from a
# copy of its seed corpus, with ASan (leaks on) and UBSan (halting on the
# first report). Prints a start and an end line per target with the
# elapsed time and, every FUZZ_PROGRESS seconds, the fuzzer's latest status
# line; at the end prints a results table and writes it to
# BUILD_DIR/fuzz-campaign.md.
#
# Usage: tests/fuzz/campaign.sh [BUILD_DIR]   (BUILD_DIR: a configured build tree)
# Environment:
#   FUZZ_RUNS=N        executions per target (default 10000000)
#   FUZZ_TARGETS="a b" a subset of the targets (default: all of targets.sh)
#   FUZZ_TIMEOUT=S     libFuzzer's per-input timeout in seconds (default 60;
#                      generous because a niced fuzzer can be starved)
#   FUZZ_PROGRESS=S    seconds between progress lines (default 60)
#
# Every run gets its own folder, BUILD_DIR/fuzz-campaign/<date>-<time>/, that
# is never deleted: corpus/<target>/ (seeds + what the fuzzer found),
# <target>.log (libFuzzer's whole output) and artifacts/<target>/ (any
# crash-*, leak-*, timeout-*, oom-* input). Exits 1 if any target crashed,
# leaked, timed out, ran out of memory or printed a sanitizer report; the
# other targets still run. Reproduce a crash with
#   UBSAN_OPTIONS=halt_on_error=1 BUILD_DIR/tests/fuzz/fuzz_<target> <artifact>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:-$here/../..}" && pwd)"
wanted="${FUZZ_TARGETS:-}"
. "$here/targets.sh"
targets="${wanted:-$FUZZ_TARGETS}"
runs="${FUZZ_RUNS:-10000000}"
timeout="${FUZZ_TIMEOUT:-60}"
progress="${FUZZ_PROGRESS:-60}"

make -C "$build" -s fuzz
run="$build/fuzz-campaign/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run"
results="$build/fuzz-campaign.md"

fmt_time() { printf '%dh%02dm%02ds' $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60)); }
# the last libFuzzer status line ("#N <event> cov: ... exec/s: ... rss: ...")
status_line() { grep -aE '^#[0-9]+[[:space:]]' "$1" | tail -1 || true; }
# a field of a status line, e.g. field "cov:" -> 1084
field() { awk -v k="$2" '{ for(i = 1; i < NF; i++) if($i == k) { print $(i + 1); exit } }' <<< "$1"; }
# a -print_final_stats value, e.g. stat number_of_executed_units
stat() { sed -n "s/^stat::$2:[[:space:]]*//p" "$1" | tail -1; }

fuzzer_pid=""
trap '[ -n "$fuzzer_pid" ] && kill "$fuzzer_pid" 2>/dev/null; echo "campaign: interrupted; partial results in $run"; exit 130' INT TERM

commit="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$here" status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
osname="$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || uname -s)"
{
	echo "# Fuzz campaign $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- commit: $commit"
	echo "- machine: $osname, $(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ { print $2 }') GB RAM"
	echo "- compiler: $(clang --version | head -1)"
	echo "- flags: -g -O1 -fsanitize=fuzzer,address,undefined; ASan detect_leaks=1, UBSan halt_on_error=1"
	echo "- libFuzzer: -runs=$runs -max_len=$FUZZ_MAX_LEN -timeout=$timeout, one fuzzer at a time under nice -n 19 (own autogroup, nice 19)"
	echo "- work folder: $run"
	echo
	echo "| target | executions | exec/s | wall time | cov | ft | corpus (units / bytes) | peak RSS | crashes |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
} > "$run/results.md"

failed=0
start_all=$(date +%s)
for t in $targets; do
	bin="$build/tests/fuzz/fuzz_$t"
	corpus="$run/corpus/$t"
	art="$run/artifacts/$t"
	log="$run/$t.log"
	mkdir -p "$corpus" "$art"
	cp "$here/corpus/$t/"* "$corpus/"
	echo "campaign: fuzz_$t: start $(date '+%H:%M:%S'), $runs runs from $(ls "$corpus" | wc -l) seeds"
	t0=$(date +%s)
	# nice alone stops at the session: with autogroup scheduling (Debian's
	# default, /proc/sys/kernel/sched_autogroup_enabled) the CPU is shared
	# between sessions first, so a nice 19 fuzzer would still take its
	# session's whole share from other people's tests. It gets a session of
	# its own, whose autogroup is niced to 19 as well.
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
	UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
		setsid -w sh -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' fuzz \
		"$bin" -runs="$runs" -max_len="$FUZZ_MAX_LEN" -timeout="$timeout" \
		-print_final_stats=1 -artifact_prefix="$art/" "$corpus" > "$log" 2>&1 &
	fuzzer_pid=$!
	next=$((t0 + progress))
	while kill -0 "$fuzzer_pid" 2>/dev/null; do
		sleep 1
		if [ "$(date +%s)" -ge "$next" ]; then
			echo "campaign: fuzz_$t: $(fmt_time $(($(date +%s) - t0))) $(status_line "$log")"
			next=$((next + progress))
		fi
	done
	rc=0
	wait "$fuzzer_pid" || rc=$?
	fuzzer_pid=""
	wall=$(($(date +%s) - t0))

	last="$(status_line "$log")"
	execs="$(stat "$log" number_of_executed_units)"
	rate="$(stat "$log" average_exec_per_sec)"
	rss="$(stat "$log" peak_rss_mb)"
	crashes=$(find "$art" -type f | wc -l)
	reports=$(grep -acE 'ERROR: (Address|Leak|Undefined)Sanitizer|: runtime error: |ERROR: libFuzzer' "$log" || true)
	units="$(field "$last" corp:)"
	verdict=ok
	if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ] || [ "$reports" -gt 0 ] || [ "${execs:-0}" -lt "$runs" ]; then
		verdict=FAILED
		failed=1
		[ "$crashes" -gt 0 ] || crashes="$reports"
		[ "$crashes" -gt 0 ] || crashes="0 (exit $rc, ${execs:-no} runs)"
	fi
	printf '| %s | %s | %s | %s | %s | %s | %s / %s | %s MB | %s |\n' "fuzz_$t" "${execs:-?}" "${rate:-?}" \
		"$(fmt_time "$wall")" "$(field "$last" cov:)" "$(field "$last" ft:)" "${units%%/*}" "${units#*/}" \
		"${rss:-?}" "$crashes" >> "$run/results.md"
	echo "campaign: fuzz_$t: end $(date '+%H:%M:%S') after $(fmt_time "$wall"), exit $rc: $verdict"
	echo "campaign: fuzz_$t: $last"
	if [ "$verdict" = FAILED ]; then
		if grep -qaE 'ERROR: |: runtime error: ' "$log"; then
			grep -aE -A30 'ERROR: |: runtime error: ' "$log" | head -60
		else
			tail -20 "$log"
		fi
		for a in "$art"/*; do [ -e "$a" ] && echo "campaign: fuzz_$t: kept input $a (reproduce: UBSAN_OPTIONS=halt_on_error=1 $bin $a)"; done
		echo "campaign: fuzz_$t: full log $log"
	fi
done

{
	echo
	echo "Total wall time $(fmt_time $(($(date +%s) - start_all))); $( [ $failed -eq 0 ] && echo "no crash, leak or timeout" || echo "FAILED: see the logs and artifacts in $run")."
} >> "$run/results.md"
cp "$run/results.md" "$results"
echo
cat "$results"
echo "campaign: results in $results (and $run/results.md)"
exit $failed
