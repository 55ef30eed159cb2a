#!/bin/bash
# Run every test of Alliance Pulse on a Debian 12 machine, as root.
# This is README command #2 and the body of CI (.ci/run).
#
#   sudo tests/run-all.sh [--clean]
#
# Stages:
#   deps                conf/install-deps.sh
#   plain: build        ../../configure && make          in build/plain
#   plain: unit         make check (unit tests)
#   plain: integration  tests/integration/run.sh, real Janus + aiortc clients
#   plain: integration on PostgreSQL   the modules in PG_MODULES again, with
#                       ALLIANCE_TEST_DB=postgresql (a private server, tests/pg)
#   e2e                 tests/e2e/run.sh: the web pages in Chromium against the
#                       plain build (real Janus, two network namespaces)
#   local-run check     conf/run-local.sh --check against build/plain
#   load smoke          bench/load-smoke: bench/load, 2 visits for 10 s, checked
#   asan:  build/unit/integration   the same with --enable-sanitizers in
#                       build/asan, integration with ALLIANCE_SANITIZE=1
#   fuzz                tests/fuzz/run.sh: libFuzzer targets on their seeds
#
# Counting: unit, integration and e2e tests are counted one by one from their
# runners' summaries (automake's test harness, pytest); the other stages
# count as one check each; a stage that fails without a runner summary
# counts as one failure. A stage whose build failed is skipped (its build
# already counted as failed). The last line is "N passed, N failed".
#
# Each stage runs in its own session; whatever it leaves running (janus, a
# web server) is ended by process id afterwards, and network namespaces it
# created and left empty are deleted. Logs: build/logs/<stage>.log.
#
# --clean   remove build/plain and build/asan first (default: reuse them,
#           `make` rebuilds what changed)
#
# Environment: ALLIANCE_STAGE_TIMEOUT_S (default 1800) caps each stage.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

CLEAN=0
for a in "$@"; do
    case "$a" in
        --clean) CLEAN=1 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "run-all: unknown option $a" >&2; exit 2 ;;
    esac
done

STAGE_TIMEOUT="${ALLIANCE_STAGE_TIMEOUT_S:-1800}"
LOGDIR="$ROOT/build/logs"
mkdir -p "$LOGDIR"
export AM_COLOR_TESTS=no            # plain summaries we can read

PASSED=0
FAILED=0
SKIPPED=0
SUMMARY=()                           # one line per stage for the final table
T_START=$SECONDS
CUR_SID=""
CUR_NS_BEFORE=""

now() { date +%H:%M:%S; }

# --- cleanup of what a stage left behind ----------------------------------------
netns_list() { ip netns list 2>/dev/null | awk '{print $1}' | sort; }

kill_session() {              # end every process still in session $1, by pid
    local sid="$1" pids pid
    [[ -n "$sid" ]] || return 0
    pids="$(pgrep -s "$sid" 2>/dev/null | grep -vx "$$" || true)"
    [[ -n "$pids" ]] || return 0
    echo "run-all: ending leftover processes of the stage: $(ps -o pid=,comm= -p "$(echo $pids | tr ' ' ',')" | tr -s ' \n' ' ')"
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        pids="$(pgrep -s "$sid" 2>/dev/null || true)"
        [[ -z "$pids" ]] && return 0
        sleep 0.1
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
}

clean_netns() {               # namespaces that appeared during the stage and are now empty
    local before="$1" ns
    for ns in $(comm -13 <(printf '%s\n' "$before") <(netns_list)); do
        if [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]]; then
            echo "run-all: deleting leftover network namespace $ns"
            ip netns delete "$ns" 2>/dev/null || true
        fi
    done
}

on_signal() {
    echo
    echo "run-all: interrupted; stopping the current stage"
    kill_session "$CUR_SID"
    [[ -n "$CUR_SID" ]] && clean_netns "$CUR_NS_BEFORE"
    exit 130
}
trap on_signal INT TERM

# --- counting -----------------------------------------------------------------------
# Print "passed failed" from a stage log, or nothing if no runner summary is in it.
count_tests() {
    sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '
        # automake parallel test harness: "# PASS:  5" ... (sum every block)
        /^# (PASS|XFAIL): *[0-9]+$/         { p += $3; found = 1 }
        /^# (FAIL|XPASS|ERROR): *[0-9]+$/   { f += $3; found = 1 }
        # pytest: "==== 12 passed, 1 failed, 2 skipped in 3.40s ====" or -q form
        /^(=+ )?[0-9]+ [a-z]+(, [0-9]+ [a-z]+)* in [0-9.]+s( \([0-9:]+\))?( =+)?$/ {
            found = 1
            n = split($0, parts, /, /)
            for (i = 1; i <= n; i++) {
                if (match(parts[i], /[0-9]+ [a-z]+/)) {
                    split(substr(parts[i], RSTART, RLENGTH), kv, " ")
                    if (kv[2] == "passed" || kv[2] == "xfailed") p += kv[1]
                    else if (kv[2] == "failed" || kv[2] == "error" || kv[2] == "errors" || kv[2] == "xpassed") f += kv[1]
                }
            }
        }
        END { if (found) print p + 0, f + 0 }'
}

# run_stage NAME COUNTED(0|1) [ENV=VAL ...] -- COMMAND...
# Streams the output, keeps it in build/logs/, returns the command status.
run_stage() {
    local name="$1" counted="$2"; shift 2
    local envs=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
    shift
    local slug log sidf t0 rc dt counts p f
    slug="$(echo "$name" | tr -c 'A-Za-z0-9\n' '-' | tr -s '-')"
    log="$LOGDIR/$slug.log"
    sidf="$(mktemp)"
    echo
    echo "==> [$(now)] $name"
    local ns_before
    ns_before="$(netns_list)"
    CUR_NS_BEFORE="$ns_before"
    t0=$SECONDS
    # A new session per stage, so that whatever it starts can be found after.
    # Output goes to the log file (not a pipe: a leftover process holding a
    # pipe open would keep the stage from ending) and is streamed from there.
    : >"$log"
    setsid --wait env "${envs[@]}" bash -c 'echo $$ >"$0"; exec timeout --kill-after=30 "$1" "${@:2}"' \
        "$sidf" "$STAGE_TIMEOUT" "$@" </dev/null >"$log" 2>&1 &
    local bg=$!
    tail -n +1 -s 0.2 -f --pid="$bg" "$log" &
    local tailpid=$!
    for _ in $(seq 100); do [[ -s "$sidf" ]] && break; sleep 0.02; done
    CUR_SID="$(cat "$sidf" 2>/dev/null)"
    wait "$bg"
    rc=$?
    kill_session "$CUR_SID"
    CUR_SID=""
    wait "$tailpid" 2>/dev/null
    rm -f "$sidf"
    clean_netns "$ns_before"
    dt=$((SECONDS - t0))
    [[ $rc == 124 ]] && echo "run-all: $name timed out after ${STAGE_TIMEOUT}s"

    counts=""
    [[ "$counted" == 1 ]] && counts="$(count_tests "$log")"
    if [[ -n "$counts" ]]; then
        read -r p f <<<"$counts"
        # A failing runner that reported no failure (crash, timeout) is still a failure.
        if [[ $rc != 0 && $f == 0 ]]; then f=1; fi
        PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
        SUMMARY+=("$(printf '%-28s %-4s %5ss  %s passed, %s failed' "$name" "$([[ $rc == 0 ]] && echo ok || echo FAIL)" "$dt" "$p" "$f")")
    elif [[ $rc == 0 ]]; then
        PASSED=$((PASSED + 1))
        SUMMARY+=("$(printf '%-28s %-4s %5ss' "$name" ok "$dt")")
    else
        FAILED=$((FAILED + 1))
        SUMMARY+=("$(printf '%-28s %-4s %5ss  exit %s, log %s' "$name" FAIL "$dt" "$rc" "${log#$ROOT/}")")
    fi
    echo "<== [$(now)] $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)") in ${dt}s"
    return $rc
}

skip_stage() {
    SKIPPED=$((SKIPPED + 1))
    SUMMARY+=("$(printf '%-28s %-4s         (%s)' "$1" skip "$2")")
    echo
    echo "==> $1: skipped ($2)"
}

# --- sources: VPATH builds need a source tree not configured in-tree -----------------
SRC="$ROOT"
if [[ -f "$ROOT/config.status" ]]; then
    # A developer's in-tree build is there; leave it alone and build from a
    # clean copy of the sources (same files, minus build products).
    SRC="$ROOT/build/src"
    echo "run-all: the source tree is configured in-tree; building from a copy in ${SRC#$ROOT/}"
    rm -rf "$SRC"; mkdir -p "$SRC"
    tar -C "$ROOT" --exclude=./build --exclude=./.git --exclude=./.local-run \
        --exclude=./autom4te.cache --exclude=config.status --exclude=config.log \
        --exclude=./libtool --exclude='*.o' --exclude='*.lo' --exclude='*.la' \
        --exclude='*.log' --exclude='*.trs' --exclude=.libs --exclude=.deps \
        --exclude=__pycache__ --exclude=.pytest_cache -cf - . | tar -C "$SRC" -xf -
    # Makefiles generated from Makefile.in would make the copy look configured.
    while IFS= read -r mi; do rm -f "${mi%.in}"; done < <(find "$SRC" -name Makefile.in)
    # check_PROGRAMS built in-tree are executables without an extension.
    if [[ -f "$SRC/Makefile.am" ]]; then
        find "$SRC/tests" -type f -perm -u+x -name 'test_*' ! -name '*.*' -delete 2>/dev/null || true
    fi
fi

# --- the run -----------------------------------------------------------------------------
echo "run-all: Alliance Pulse tests in $ROOT (stage timeout ${STAGE_TIMEOUT}s)"
[[ $(id -u) == 0 ]] || echo "run-all: WARNING: not root; apt installs and network namespaces will fail"

run_stage "deps" 0 -- "$ROOT/conf/install-deps.sh"

if [[ ! -x "$SRC/configure" ]]; then
    run_stage "autogen" 0 -- "$SRC/autogen.sh"
fi

# Integration modules also run with the PostgreSQL store (issue 10: pulses,
# durability, reports and forget at least).
PG_MODULES=(test_happy_path.py test_pulses.py test_pulse_end.py test_pulse_alerts.py
            test_pulse_refusals.py test_pulse_expiry.py test_store_durability.py test_reports.py
            test_lifecycle.py test_visit_end.py test_takeover.py test_quality.py test_refusals.py
            test_fhir_export.py test_health.py test_signed_tokens.py
            test_pulse_freeze.py test_client_history.py test_observer.py)

build_and_test() {          # build_and_test NAME CONFIGURE-ARGS... ; sets BUILT_OK
    local name="$1"; shift
    local dir="$ROOT/build/$name"
    [[ $CLEAN == 1 ]] && rm -rf "$dir"
    mkdir -p "$dir"
    BUILT_OK=0
    if [[ ! -x "$SRC/configure" ]]; then
        skip_stage "$name: build" "no configure script"
        skip_stage "$name: unit" "not built"
        skip_stage "$name: integration" "not built"
        return
    fi
    # Configure once per build dir; `make` re-runs it when configure changes.
    if run_stage "$name: build" 0 -- bash -c \
        'cd "$1" && { [ -f config.status ] || "$2" "${@:4}"; } && make -j"$3"' \
        _ "$dir" "$SRC/configure" "$(nproc)" "$@"; then
        BUILT_OK=1
        run_stage "$name: unit" 1 -- make -C "$dir" -j"$(nproc)" check
        local so="$dir/plugin/.libs/libjanus_alliance.so"
        local envs=(ALLIANCE_PLUGIN_SO="$so" ALLIANCE_BUILD_DIR="$dir")
        [[ "$name" == asan ]] && envs+=(ALLIANCE_SANITIZE=1)
        if [[ -x "$ROOT/tests/integration/run.sh" ]]; then
            run_stage "$name: integration" 1 "${envs[@]}" -- "$ROOT/tests/integration/run.sh"
            # the same plugin on PostgreSQL: the modules that do not reach
            # into SQLite's files (test_two_instances and test_pg_faults use
            # PostgreSQL in every run)
            if [[ "$name" == plain ]]; then
                run_stage "$name: integration on PostgreSQL" 1 "${envs[@]}" ALLIANCE_TEST_DB=postgresql -- \
                    "$ROOT/tests/integration/run.sh" "${PG_MODULES[@]/#/tests/integration/}"
            fi
        else
            run_stage "$name: integration" 0 -- bash -c "echo 'tests/integration/run.sh is missing or not executable'; exit 1"
        fi
    else
        skip_stage "$name: unit" "build failed"
        skip_stage "$name: integration" "build failed"
    fi
}

build_and_test plain
PLAIN_OK=$BUILT_OK

# The web client (therapist, client, kiosk, supervisor pages) in Debian's
# Chromium against a real Janus with the plain build (tests/e2e/run.sh).
if [[ $PLAIN_OK == 1 ]]; then
    run_stage "e2e" 1 ALLIANCE_PLUGIN_SO="$ROOT/build/plain/plugin/.libs/libjanus_alliance.so" \
        -- "$ROOT/tests/e2e/run.sh"
else
    skip_stage "e2e" "plain build failed"
fi

# The local run, checked once against the plain build, on ports nobody uses.
if [[ $PLAIN_OK == 1 ]]; then
    offset=""
    for o in 0 100 200 300 400 500 600 700 800 900; do
        busy=0
        for p in $((8080 + o)) $((8088 + o)) $((8188 + o)) $((7088 + o)) $((3478 + o)); do
            [[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]] && busy=1
        done
        # coturn listens on UDP too
        [[ -n "$(ss -Hlun "sport = :$((3478 + o))" 2>/dev/null)" ]] && busy=1
        [[ $busy == 0 ]] && { offset=$o; break; }
    done
    run_stage "local-run check" 0 -- "$ROOT/conf/run-local.sh" --check --no-deps \
        --build-dir "$ROOT/build/plain" --state-dir "$ROOT/build/local-run-check" \
        --port-offset "${offset:-1000}"
else
    skip_stage "local-run check" "plain build failed"
fi

# The WebRTC load generator's smoke run (2 visits, 10 s against the plain
# build; bench/load-smoke checks its JSON), so that bench/load cannot rot.
if [[ $PLAIN_OK == 1 ]]; then
    run_stage "load smoke" 0 ALLIANCE_PLUGIN_SO="$ROOT/build/plain/plugin/.libs/libjanus_alliance.so" \
        -- "$ROOT/bench/load-smoke"
else
    skip_stage "load smoke" "plain build failed"
fi

build_and_test asan --enable-sanitizers

# The libFuzzer targets (data-channel codec, request validator, instrument
# files), each for FUZZ_SECONDS (default 20) from its seed corpus.
if [[ $PLAIN_OK == 1 ]]; then
    run_stage "fuzz" 0 -- "$ROOT/tests/fuzz/run.sh" "$ROOT/build/plain"
else
    skip_stage "fuzz" "plain build failed"
fi

# --- summary ---------------------------------------------------------------------------
echo
echo "==================== Alliance Pulse test summary ===================="
printf '%s\n' "${SUMMARY[@]}"
echo "total time $((SECONDS - T_START))s; tests counted one by one where a runner reports them, other stages as one check each"
[[ $SKIPPED -gt 0 ]] && echo "$SKIPPED stage(s) skipped"
echo "$PASSED passed, $FAILED failed"
[[ $FAILED == 0 && $PASSED -gt 0 ]]
