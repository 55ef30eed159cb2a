#!/bin/sh
# Run the integration suite (real Janus + aiortc in two network namespaces).
# Needs root (ip netns). Extra arguments go to pytest, e.g.
#   tests/integration/run.sh -k happy -x
# Environment: ALLIANCE_PLUGIN_SO, ALLIANCE_SANITIZE=1, ALLIANCE_JANUS_DEBUG (see README.md).
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
/usr/bin/python3 -m pytest -p no:cacheprovider -v tests/integration "$@"
exit $?
