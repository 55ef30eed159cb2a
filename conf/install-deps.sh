#!/bin/bash
# Install, with Debian's apt, everything Alliance Pulse needs to build, run
# locally and be tested on a Debian 12 (bookworm) machine.
#
# Idempotent and cheap when warm: one dpkg-query call decides whether apt is
# needed at all; `apt-get update` runs only when something is missing.
# Needs root (it calls apt-get). Exits non-zero if a package cannot be had.
#
# Usage: conf/install-deps.sh [--quiet]
set -euo pipefail

PACKAGES=(
    # build
    build-essential autoconf automake libtool pkg-config
    # Janus itself, its plugin headers and the browser library
    janus janus-dev libjs-janus-gateway libjs-webrtc-adapter
    # libraries the plugin links against (plus what janus-dev's headers include)
    libjansson-dev libglib2.0-dev libsqlite3-dev sqlite3 libssl-dev libsrtp2-dev
    libnice-dev
    # the PostgreSQL store (general.db_url) and the server its tests start
    libpq-dev postgresql
    # lets the analytics session lower its server process's CPU priority
    postgresql-15-prioritize
    # sanitizer builds (gcc's libasan comes with build-essential)
    clang libclang-rt-14-dev
    # integration tests: real WebRTC clients, Janus API over WS/HTTP
    python3 python3-aiortc python3-aiohttp python3-websockets python3-pytest
    python3-psycopg2
    # the FHIR export's tests: the R4 JSON schema (npm, tests/fhir) checked
    # with Debian's JSON-schema validator
    python3-jsonschema
    # tests of conf/alliance-exporter.py: Prometheus's own text-format parser
    python3-prometheus-client
    # bench/load: the WebRTC load generator (Go + Debian's pion/webrtc v3
    # sources, built offline in GOPATH mode by bench/load-gen/build.sh)
    golang-go golang-github-pion-webrtc.v3-dev
    # bench/scale and bench/soak: their SVG plots
    python3-matplotlib
    # the independent reference of the mixed model (tests/unit/lmm_ref.R, run
    # by test_lmm, test_report_mixed and the integration test_reports)
    r-base-core r-cran-lme4 r-cran-lmertest
    # network namespaces, loss injection, process control
    nftables iproute2 procps
    # TURN: conf/run-local.sh starts its own turnserver for the pages, and
    # the e2e relay-only test one beside Janus (docs/turn.md)
    coturn
    # a wall clock that jumps under a running Janus (timers must not care)
    faketime
    # end-to-end tests of web-client/ (tests/e2e): Debian's browser, driven by
    # playwright-core from npm with the machine's Node.js (no browser download)
    chromium
)
# Node.js and npm (for playwright-core): the machine's own if it has them,
# else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

quiet=0
[[ "${1:-}" == "--quiet" ]] && quiet=1
say() { [[ $quiet == 1 ]] || echo "install-deps: $*"; }

# dpkg-query prints one line per *known* package; unknown ones only go to
# stderr. A package counts as present when its status is "install ok installed".
missing=()
installed="$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)"
for p in "${PACKAGES[@]}"; do
    if ! grep -q "^${p} install ok installed$" <<<"$installed"; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    say "all ${#PACKAGES[@]} packages present"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (sudo $0) to install them" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

say "installing ${missing[*]}"
apt-get "${APT_OPTS[@]}" update >/dev/null
# --no-install-recommends keeps this lean; everything we rely on is listed.
if ! apt-get "${APT_OPTS[@]}" install --no-install-recommends "${missing[@]}" >/tmp/alliance-install-deps.log 2>&1; then
    tail -n 30 /tmp/alliance-install-deps.log >&2
    echo "install-deps: apt-get install failed (full log: /tmp/alliance-install-deps.log)" >&2
    exit 1
fi
# Debian's coturn enables a system-wide turnserver (coturn.service) with the
# package's /etc/turnserver.conf, which sets no credentials. The local run
# and the tests start their own, with their own config; a system one would
# hold port 3478 and relay for anyone. So when this script has just
# installed coturn, it stops and disables that service; a coturn that was
# there before (an operator's) is left alone. docs/turn.md sets one up.
if [[ " ${missing[*]} " == *" coturn "* ]] && command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now coturn.service >/dev/null 2>&1 || true
    say "coturn: its system service is disabled (conf/run-local.sh starts its own; docs/turn.md for production)"
fi
say "done"
