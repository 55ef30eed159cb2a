#!/bin/bash
# tests/unit/run-pg.sh — the store's unit tests again, against PostgreSQL:
# starts a private PostgreSQL 15 (tests/pg/pg-test-server) in a fresh
# folder under /tmp, runs each store test binary with ALLIANCE_TEST_PG_DIR
# pointing at it (every test then makes a database of its own: tdb.h),
# then test_store_pg (the PostgreSQL-only tests), and removes the server.
# Run by `make check` from the build folder; exit 77 (SKIP) when the
# server binaries are missing or this user cannot run them.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
server="$here/../pg/pg-test-server"

skip() { echo "SKIP: $*"; exit 77; }
[[ -x /usr/lib/postgresql/15/bin/initdb ]] ||
    skip "the PostgreSQL 15 server is not installed (apt install postgresql)"
id postgres >/dev/null 2>&1 || skip "there is no postgres user to run the server"
[[ $(id -u) == 0 || $(id -un) == postgres ]] || skip "run as root or postgres to start the test server"

dir="$(mktemp -d /tmp/ap-pg-check-XXXXXX)"
trap 'bash "$server" destroy "$dir" >/dev/null 2>&1 || true' EXIT
if ! bash "$server" start "$dir" >/dev/null; then
    echo "the PostgreSQL test server did not start"
    exit 99
fi
export ALLIANCE_TEST_PG_DIR="$dir" ALLIANCE_TEST_PG_SERVER="$server"

rc=0
for t in test_store test_store_report test_store_faults test_report test_report_fhir test_report_mixed test_store_pg; do
    echo "== tests/unit/$t on PostgreSQL"
    if ! "./tests/unit/$t"; then
        echo "FAIL: tests/unit/$t on PostgreSQL"
        rc=1
    fi
done
exit $rc
