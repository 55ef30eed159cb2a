#!/bin/sh
# Run the integration suite (real Janus + aiortc in two network namespaces).
# Needs root (ip netns). Extra arguments go to pytest, e.g.
#   tests/integration/run.sh -k happy -x
#   tests/integration/run.sh tests/integration/test_pulses.py     (only those files)
# Environment: ALLIANCE_PLUGIN_SO, ALLIANCE_SANITIZE=1, ALLIANCE_JANUS_DEBUG,
# ALLIANCE_TEST_DB=postgresql (the store: a private PostgreSQL server) (see README.md).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E "$0" "$@"
    fi
    echo "run.sh: needs root for ip netns" >&2
    exit 2
fi
export PYTHONDONTWRITEBYTECODE=1
# the whole suite, unless test files are named (e.g. tests/integration/test_pulses.py)
where=tests/integration
for a in "$@"; do
    case "$a" in
        tests/integration/*.py|tests/integration/*.py::*) where="" ;;
    esac
done
/usr/bin/python3 -m pytest -p no:cacheprovider -v $where "$@"
exit $?
