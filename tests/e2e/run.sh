#!/bin/sh
# End-to-end tests of the web client in Debian's Chromium (playwright-core
# from npm, no browser download), against a real Janus with the plugin.
# Needs root (ip netns). See launcher.py and README.md in this folder.
#
#   tests/e2e/run.sh
#   ALLIANCE_PLUGIN_SO=build/plain/plugin/.libs/libjanus_alliance.so tests/e2e/run.sh
#   E2E_ONLY='kiosk' tests/e2e/run.sh        # only tests whose name matches
#
# Closing line: "N passed, N failed in T s". Screenshots: tests/artifacts/e2e/.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo" || exit 2
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E "$0" "$@"
    fi
    echo "e2e: needs root for ip netns" >&2
    exit 2
fi
for tool in node npm sqlite3 /usr/bin/chromium; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "e2e: $tool is missing (run conf/install-deps.sh)" >&2
        exit 2
    fi
done
# playwright-core, pinned by package-lock.json; it downloads no browser.
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
    echo "e2e: installing playwright-core (npm ci)"
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) || {
        echo "e2e: npm ci failed" >&2
        exit 2
    }
fi
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$here/launcher.py" "$@"
