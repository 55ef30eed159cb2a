#!/bin/bash
# Run Alliance Pulse locally: Debian's stock Janus with our plugin, the HTTP
# and WebSocket transports, and the web client on a tiny static server.
#
#   sudo conf/run-local.sh                 # install deps, build, start, print URLs; Ctrl-C stops
#   sudo conf/run-local.sh --check         # start, verify both transports list the plugin, stop
#
# What it does, in order:
#   1. conf/install-deps.sh (apt; ~0 s when everything is there)
#   2. builds the plugin: in-tree if the source tree is already configured
#      in-tree, else out-of-tree in build/plain (or --build-dir)
#   3. writes a Janus config folder into the state dir (default .local-run/)
#      from conf/*.jcfg.local, with folders of symlinks so Janus loads only
#      our plugin + the HTTP and WebSocket transports
#   4. on first run makes a demo therapist key and supervisor key, stores
#      only their SHA-256 in the plugin config and the keys in a 0600 file
#   5. starts `janus` and the web server, checks that Janus lists
#      janus.plugin.alliance over HTTP *and* over WebSocket, prints the URLs
#   6. when Debian's coturn is installed (conf/install-deps.sh installs it)
#      and this machine has an address, starts a TURN server on it for the
#      pages (conf/turnserver.conf.local): a new secret each run, the pages
#      get a time-limited credential in config.json; checked with an
#      allocation before the URLs are printed (docs/turn.md)
#
# Ports (plus --port-offset N): web 8080, Janus HTTP 8088 (/janus),
# WebSocket 8188, Admin API 7088 on 127.0.0.1 only, TURN 3478 (UDP and
# TCP; relayed ports 61000-61999).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLUGIN_NAME=janus.plugin.alliance
JANUS_LIBDIR=/usr/lib/x86_64-linux-gnu/janus
PY=/usr/bin/python3

usage() {
    cat <<EOF
Usage: $0 [--check] [--port-offset N] [--state-dir DIR] [--build-dir DIR] [--no-deps]
          [--no-turn | --turn-relay-only]

  --check          start everything, verify both Janus transports list
                   $PLUGIN_NAME (and the web server and Admin API), stop;
                   exit 0 if all is well, 1 otherwise
  --port-offset N  add N to every port (web 8080, HTTP 8088, WS 8188, admin 7088)
  --state-dir DIR  config, keys, database and logs (default: $ROOT/.local-run)
  --build-dir DIR  build the plugin in DIR (default: the in-tree build if the
                   source tree is configured in-tree, else $ROOT/build/plain)
  --no-deps        skip conf/install-deps.sh
  --no-turn        do not start coturn (it starts when installed)
  --turn-relay-only  the pages send all media through the TURN server
                   (iceTransportPolicy "relay"), to try TURN on one network
EOF
}

CHECK=0
OFFSET=0
STATE="$ROOT/.local-run"
BUILD_DIR=""
DEPS=1
TURN=auto
while [[ $# -gt 0 ]]; do
    case "$1" in
        --check) CHECK=1 ;;
        --port-offset) OFFSET="${2:?--port-offset needs a number}"; shift ;;
        --port-offset=*) OFFSET="${1#*=}" ;;
        --state-dir) STATE="${2:?--state-dir needs a path}"; shift ;;
        --state-dir=*) STATE="${1#*=}" ;;
        --build-dir) BUILD_DIR="${2:?--build-dir needs a path}"; shift ;;
        --build-dir=*) BUILD_DIR="${1#*=}" ;;
        --no-deps) DEPS=0 ;;
        --no-turn) TURN=off ;;
        --turn-relay-only) TURN=relay ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run-local: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[[ "$OFFSET" =~ ^[0-9]+$ && "$OFFSET" -le 20000 ]] || { echo "run-local: --port-offset must be 0..20000" >&2; exit 2; }

say()  { echo "run-local: $*"; }
die()  { echo "run-local: ERROR: $*" >&2; exit 1; }

WEB_PORT=$((8080 + OFFSET))
HTTP_PORT=$((8088 + OFFSET))
WS_PORT=$((8188 + OFFSET))
ADMIN_PORT=$((7088 + OFFSET))
TURN_PORT=$((3478 + OFFSET))
TURN_MIN_PORT=61000
TURN_MAX_PORT=61999
TURN_TTL_S=86400                 # the pages' credential; a restart makes a new one

# --- 1. dependencies ---------------------------------------------------------
if [[ $DEPS == 1 ]]; then
    "$ROOT/conf/install-deps.sh" --quiet || die "installing dependencies failed"
fi
command -v janus >/dev/null || die "janus is not installed (run conf/install-deps.sh as root)"

# --- state dir (everything private to the user running this) -----------------
umask 077
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
chmod 700 "$STATE"
exec 9>"$STATE/.lock"
flock -n 9 || die "another run-local.sh is using $STATE (stop it, or pass --state-dir)"
mkdir -p "$STATE/etc" "$STATE/data" "$STATE/lib/plugins" "$STATE/lib/transports" \
         "$STATE/lib/events" "$STATE/lib/loggers" "$STATE/turn"
chmod 700 "$STATE/data"

# --- 2. build ------------------------------------------------------------------
if [[ -z "$BUILD_DIR" ]]; then
    if [[ -f "$ROOT/config.status" ]]; then
        BUILD_DIR="$ROOT"            # a developer's in-tree build: use it as is
    else
        BUILD_DIR="$ROOT/build/plain"
    fi
fi
mkdir -p "$BUILD_DIR"
BUILD_DIR="$(cd "$BUILD_DIR" && pwd)"
BUILD_LOG="$STATE/build.log"
{
    if [[ ! -x "$ROOT/configure" ]]; then
        (cd "$ROOT" && ./autogen.sh)
    fi
    if [[ ! -f "$BUILD_DIR/config.status" ]]; then
        (cd "$BUILD_DIR" && "$ROOT/configure")
    fi
    make -C "$BUILD_DIR" -j"$(nproc)"
} >"$BUILD_LOG" 2>&1 || { tail -n 40 "$BUILD_LOG" >&2; die "build failed (log: $BUILD_LOG)"; }
PLUGIN_SO="$BUILD_DIR/plugin/.libs/libjanus_alliance.so"
[[ -f "$PLUGIN_SO" ]] || die "build finished but $PLUGIN_SO is missing"
say "plugin: $PLUGIN_SO"

# --- 3. Janus folders: only what this run needs --------------------------------
find "$STATE/lib" -mindepth 2 -maxdepth 2 -type l -delete
ln -s "$PLUGIN_SO" "$STATE/lib/plugins/libjanus_alliance.so"
for t in libjanus_http.so libjanus_websockets.so; do
    [[ -e "$JANUS_LIBDIR/transports/$t" ]] || die "$JANUS_LIBDIR/transports/$t missing (is Debian's janus installed?)"
    ln -s "$JANUS_LIBDIR/transports/$t" "$STATE/lib/transports/$t"
done

# --- 4. secrets: demo keys (kept, 0600) and the Admin API secret ---------------
new_token() { head -c32 /dev/urandom | basenc --base64url | tr -d '=\n'; }
sha256_of() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
KEYS_FILE="$STATE/demo-keys.txt"
FIRST_RUN=0
if [[ ! -s "$KEYS_FILE" ]]; then
    FIRST_RUN=1
    {
        echo "# Alliance Pulse local demo keys (keep private; delete this file to make new ones)"
        echo "THERAPIST_CODE=T-01"
        echo "THERAPIST_KEY=$(new_token)"
        echo "SUPERVISOR_KEY=$(new_token)"
    } >"$KEYS_FILE"
fi
chmod 600 "$KEYS_FILE"
THERAPIST_KEY="$(sed -n 's/^THERAPIST_KEY=//p' "$KEYS_FILE")"
SUPERVISOR_KEY="$(sed -n 's/^SUPERVISOR_KEY=//p' "$KEYS_FILE")"
[[ -n "$THERAPIST_KEY" && -n "$SUPERVISOR_KEY" ]] || die "$KEYS_FILE is damaged; delete it to make new keys"
ADMIN_SECRET_FILE="$STATE/admin-secret"
[[ -s "$ADMIN_SECRET_FILE" ]] || new_token >"$ADMIN_SECRET_FILE"
chmod 600 "$ADMIN_SECRET_FILE"
ADMIN_SECRET="$(cat "$ADMIN_SECRET_FILE")"

INSTRUMENTS_DIR=""
for d in "$ROOT/conf/instruments" "$ROOT/conf/alliance-instruments"; do
    [[ -d "$d" ]] && { INSTRUMENTS_DIR="$d"; break; }
done
mkdir -p "$STATE/instruments"
[[ -n "$INSTRUMENTS_DIR" ]] || INSTRUMENTS_DIR="$STATE/instruments"   # none shipped yet

# Fill a template's @NAME@ placeholders (values are quoted, so no character
# in them is special) and refuse to write a file with one left over.
render() {
    local src="$1" dst="$2" text
    text="$(<"$src")"
    text="${text//@STATE_DIR@/"$STATE"}"
    text="${text//@CONF_DIR@/"$STATE/etc"}"
    text="${text//@ADMIN_SECRET@/"$ADMIN_SECRET"}"
    text="${text//@EVENT_LOOPS@/"$(nproc)"}"
    text="${text//@HTTP_PORT@/"$HTTP_PORT"}"
    text="${text//@WS_PORT@/"$WS_PORT"}"
    text="${text//@ADMIN_PORT@/"$ADMIN_PORT"}"
    text="${text//@DB_PATH@/"$STATE/data/alliance.sqlite"}"
    text="${text//@INSTRUMENTS_DIR@/"$INSTRUMENTS_DIR"}"
    text="${text//@THERAPIST_KEY_SHA256@/"$(sha256_of "$THERAPIST_KEY")"}"
    text="${text//@SUPERVISOR_KEY_SHA256@/"$(sha256_of "$SUPERVISOR_KEY")"}"
    text="${text//@TURN_IP@/"$IP"}"
    text="${text//@TURN_PORT@/"$TURN_PORT"}"
    text="${text//@TURN_MIN_PORT@/"$TURN_MIN_PORT"}"
    text="${text//@TURN_MAX_PORT@/"$TURN_MAX_PORT"}"
    text="${text//@TURN_SECRET@/"$TURN_SECRET"}"
    text="${text//@TURN_REALM@/"alliance.local"}"
    text="${text//@TURN_USER_QUOTA@/"20"}"
    text="${text//@TURN_TOTAL_QUOTA@/"40"}"
    text="${text//@TURN_ALLOWED_PEERS@/"allowed-peer-ip=$IP"}"
    text="${text//@TURN_LOG@/"$STATE/turn/turnserver.log"}"
    text="${text//@TURN_PID@/"$STATE/turn/turnserver.pid"}"
    if [[ "$text" =~ @[A-Z0-9_]+@ ]]; then
        die "template $src: placeholder ${BASH_REMATCH[0]} not filled"
    fi
    printf '%s\n' "$text" >"$dst"
    chmod 600 "$dst"
}
# This machine's address: printed with the URLs, and where TURN listens.
IP="$(ip -4 -o addr show scope global up 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
[[ -n "$IP" ]] || IP="$(hostname -I 2>/dev/null | awk '{print $1}')"

# TURN (coturn): on when installed, unless --no-turn. It needs an address
# that browsers and Janus share (not loopback: ICE skips it).
TURN_SECRET=""
if [[ $TURN != off ]]; then
    if ! command -v turnserver >/dev/null; then
        [[ $TURN == relay ]] && die "--turn-relay-only needs coturn (apt-get install coturn, or conf/install-deps.sh)"
        say "coturn is not installed: no TURN server (conf/install-deps.sh installs it)"
        TURN=off
    elif [[ -z "$IP" ]]; then
        [[ $TURN == relay ]] && die "--turn-relay-only needs a network address for TURN; this machine has none"
        say "no network address for TURN: not starting coturn"
        TURN=off
    else
        # a new secret each run: credentials of an earlier run stop working
        TURN_SECRET="$(new_token)"
        printf %s "$TURN_SECRET" >"$STATE/turn/secret"
        chmod 600 "$STATE/turn/secret"
    fi
fi

rm -f "$STATE"/etc/*.jcfg "$STATE/etc/turnserver.conf"
render "$ROOT/conf/janus.jcfg.local" "$STATE/etc/janus.jcfg"
render "$ROOT/conf/janus.transport.http.jcfg.local" "$STATE/etc/janus.transport.http.jcfg"
render "$ROOT/conf/janus.transport.websockets.jcfg.local" "$STATE/etc/janus.transport.websockets.jcfg"
render "$ROOT/conf/$PLUGIN_NAME.jcfg.local" "$STATE/etc/$PLUGIN_NAME.jcfg"
TURN_URLS=()
ICE_JSON=""
if [[ $TURN != off ]]; then
    render "$ROOT/conf/turnserver.conf.local" "$STATE/etc/turnserver.conf"
    TURN_URLS=("turn:$IP:$TURN_PORT?transport=udp" "turn:$IP:$TURN_PORT?transport=tcp")
    ICE_ENTRY="$("$PY" "$ROOT/conf/turn-credentials.py" --secret-file "$STATE/turn/secret" \
                 --url "${TURN_URLS[0]}" --url "${TURN_URLS[1]}" --ttl "$TURN_TTL_S" --name alliance-local)" \
        || die "could not make the TURN credential"
    ICE_JSON=", \"iceServers\": [$ICE_ENTRY]"
    [[ $TURN == relay ]] && ICE_JSON+=", \"iceTransportPolicy\": \"relay\""
fi
# config.json for the pages: where Janus is, and the TURN server with a
# credential that expires (never the secret)
printf '{"http_port": %d, "http_path": "/janus", "ws_port": %d%s}\n' "$HTTP_PORT" "$WS_PORT" "$ICE_JSON" >"$STATE/web-config.json"
chmod 644 "$STATE/web-config.json"

# --- 5. start ---------------------------------------------------------------------
for p in "$WEB_PORT" "$HTTP_PORT" "$WS_PORT" "$ADMIN_PORT" ${TURN_URLS:+"$TURN_PORT"}; do
    if [[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]]; then
        die "TCP port $p is already in use (another Janus or run-local.sh? try --port-offset 100)"
    fi
done
if [[ $TURN != off && -n "$(ss -Hlun "sport = :$TURN_PORT" 2>/dev/null)" ]]; then
    die "UDP port $TURN_PORT is already in use (a system coturn? try --port-offset 100 or --no-turn)"
fi

JANUS_PID=""
WEB_PID=""
TURN_PID=""
stop_all() {
    local pid
    for pid in $WEB_PID $JANUS_PID $TURN_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $WEB_PID $JANUS_PID $TURN_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    JANUS_PID=""; WEB_PID=""; TURN_PID=""
}
trap 'stop_all' EXIT
trap 'echo; say "stopping"; exit 130' INT
trap 'exit 143' TERM

# A sanitizer build of the plugin needs the sanitizer runtime loaded first,
# because Debian's janus binary is not built with it.
JANUS_ENV=()
if asan_lib="$(ldd "$PLUGIN_SO" 2>/dev/null | awk '/libasan\.so/ {print $3; exit}')" && [[ -n "$asan_lib" ]]; then
    JANUS_ENV=(LD_PRELOAD="$asan_lib" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}")
    say "sanitizer build: preloading $asan_lib"
fi

JANUS_LOG="$STATE/janus.log"
WEB_LOG="$STATE/web.log"
env "${JANUS_ENV[@]}" janus -C "$STATE/etc/janus.jcfg" -F "$STATE/etc" -o </dev/null >"$JANUS_LOG" 2>&1 &
JANUS_PID=$!
"$PY" "$ROOT/conf/serve-web.py" --dir "$ROOT/web-client" --port "$WEB_PORT" \
    --alias /janus.js=/usr/share/javascript/janus-gateway/janus.js \
    --alias /adapter.js=/usr/share/javascript/webrtc-adapter/adapter.js \
    --alias /config.json="$STATE/web-config.json" </dev/null >"$WEB_LOG" 2>&1 &
WEB_PID=$!
TURN_LOG="$STATE/turn/turnserver.log"
if [[ $TURN != off ]]; then
    : >"$TURN_LOG"
    turnserver -c "$STATE/etc/turnserver.conf" </dev/null >"$STATE/turn/turnserver.out" 2>&1 &
    TURN_PID=$!
fi

say "starting Janus (log: $JANUS_LOG) and the web server (log: $WEB_LOG)"
CHECK_ARGS=(--http "http://127.0.0.1:$HTTP_PORT/janus" --ws "ws://127.0.0.1:$WS_PORT"
            --web "http://127.0.0.1:$WEB_PORT/" --admin "http://127.0.0.1:$ADMIN_PORT/admin" --wait 15)
if [[ -n "$IP" ]]; then
    CHECK_ARGS+=(--http "http://$IP:$HTTP_PORT/janus" --ws "ws://$IP:$WS_PORT" --admin-closed "$IP:$ADMIN_PORT")
fi
if ! "$PY" "$ROOT/conf/check-janus.py" "${CHECK_ARGS[@]}"; then
    echo "----- last lines of $JANUS_LOG -----" >&2
    tail -n 30 "$JANUS_LOG" >&2 || true
    kill -0 "$JANUS_PID" 2>/dev/null || echo "(janus is not running any more)" >&2
    die "Janus does not serve $PLUGIN_NAME on both transports — see above"
fi
# TURN: the pages' own credential gets an allocation, Janus's address is a
# peer it relays to, and another address is refused (no open relay)
if [[ $TURN != off ]] && ! "$PY" "$ROOT/conf/check-turn.py" --config "$STATE/web-config.json" --peer "$IP" --wait 10; then
    echo "----- last lines of $TURN_LOG -----" >&2
    tail -n 20 "$TURN_LOG" >&2 || true
    kill -0 "$TURN_PID" 2>/dev/null || echo "(turnserver is not running any more; see $STATE/turn/turnserver.out)" >&2
    die "the TURN server check failed — see above (--no-turn runs without it)"
fi

if [[ $CHECK == 1 ]]; then
    say "check passed: $PLUGIN_NAME answers over HTTP and WebSocket${TURN_URLS:+; TURN relays to Janus}"
    exit 0
fi

HOSTS=(localhost)
[[ -n "$IP" ]] && HOSTS+=("$IP")
echo
echo "=================== Alliance Pulse is running ==================="
echo "Web client (starting point):"
for h in "${HOSTS[@]}"; do echo "    http://$h:$WEB_PORT/"; done
echo "Janus HTTP API:"
for h in "${HOSTS[@]}"; do echo "    http://$h:$HTTP_PORT/janus"; done
echo "Janus WebSocket (subprotocol janus-protocol):"
for h in "${HOSTS[@]}"; do echo "    ws://$h:$WS_PORT"; done
echo "Janus Admin API (this machine only): http://127.0.0.1:$ADMIN_PORT/admin"
echo "    admin_secret is in $ADMIN_SECRET_FILE"
if [[ $TURN != off ]]; then
    note=""; [[ $TURN == relay ]] && note=", all media relayed"
    echo "TURN server (coturn; the pages' credential is in config.json, valid $((TURN_TTL_S / 3600)) h$note):"
    for u in "${TURN_URLS[@]}"; do echo "    $u"; done
else
    echo "TURN server: none (--no-turn, or coturn not installed)"
fi
echo
if [[ $FIRST_RUN == 1 ]]; then
    echo "Demo keys, made just now (only their SHA-256 is in the plugin config):"
else
    echo "Demo keys (from $KEYS_FILE):"
fi
echo "    therapist T-01 key : $THERAPIST_KEY"
echo "    supervisor key     : $SUPERVISOR_KEY"
echo "    (kept in $KEYS_FILE, mode 0600; delete it to make new ones)"
echo
echo "Data: $STATE/data/alliance.sqlite   Logs: $JANUS_LOG, $WEB_LOG${TURN_URLS:+, $TURN_LOG}"
echo "Camera and microphone need a secure origin: use localhost here, or HTTPS"
echo "(see README.md) when browsing from another machine."
echo "Press Ctrl-C to stop."
echo "================================================================="

# Stay in the foreground until Ctrl-C or until Janus stops on its own.
set +e
wait "$JANUS_PID"
rc=$?
set -e
JANUS_PID=""
echo "----- last lines of $JANUS_LOG -----" >&2
tail -n 20 "$JANUS_LOG" >&2 || true
die "Janus exited on its own (status $rc)"
