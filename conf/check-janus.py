#!/usr/bin/python3
"""Check that a running Janus serves the Alliance Pulse plugin.

Asks the Janus `info` request over HTTP and over WebSocket (subprotocol
`janus-protocol`) and requires the plugin in both answers; over HTTP it also
creates a session, attaches to the plugin and cleans up. Optionally checks the
static web server and the Admin API (and that the Admin API is *not* reachable
on a given address). Prints one line per check; exit 0 only if all pass.

Usage: check-janus.py --http http://127.0.0.1:8088/janus --ws ws://127.0.0.1:8188
                      [--web http://127.0.0.1:8080/] [--admin http://127.0.0.1:7088/admin]
                      [--admin-closed HOST:PORT] [--wait SECONDS]
Runs with Debian's /usr/bin/python3 (python3-websockets).
"""
import argparse
import asyncio
import json
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request

PLUGIN = "janus.plugin.alliance"


class CheckFailed(Exception):
    pass


def tx():
    return secrets.token_hex(6)


def http_json(url, body=None, timeout=5.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def plugin_listed(info, where):
    if info.get("janus") != "server_info":
        raise CheckFailed(f"{where}: unexpected answer to info: {str(info)[:200]}")
    plugins = info.get("plugins") or {}
    if PLUGIN not in plugins:
        raise CheckFailed(f"{where}: {PLUGIN} is NOT listed (plugins: {sorted(plugins) or 'none'}); "
                          "see the Janus log for why it was not loaded")
    p = plugins[PLUGIN]
    return f"{where}: {PLUGIN} {p.get('version_string', '?')} listed by Janus {info.get('version_string', '?')}"


def wait_http(url, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            return http_json(url + "/info", timeout=2)
        except (urllib.error.URLError, ConnectionError, OSError, ValueError) as e:
            last = e
            time.sleep(0.2)
    raise CheckFailed(f"HTTP: Janus unreachable at {url} after {seconds:.0f} s ({last})")


def check_http(url, wait):
    info = wait_http(url, wait)
    msg = plugin_listed(info, f"HTTP {url}/info")
    # A real round trip through the plugin: create, attach, detach, destroy.
    s = http_json(url, {"janus": "create", "transaction": tx()})
    if s.get("janus") != "success":
        raise CheckFailed(f"HTTP: create session failed: {s}")
    sid = s["data"]["id"]
    try:
        a = http_json(f"{url}/{sid}", {"janus": "attach", "plugin": PLUGIN, "transaction": tx()})
        if a.get("janus") != "success":
            raise CheckFailed(f"HTTP: attach to {PLUGIN} failed: {a}")
        hid = a["data"]["id"]
        http_json(f"{url}/{sid}/{hid}", {"janus": "detach", "transaction": tx()})
    finally:
        try:
            http_json(f"{url}/{sid}", {"janus": "destroy", "transaction": tx()})
        except Exception:
            pass
    return msg + "; attach/detach OK"


async def ws_info(url, timeout):
    import websockets  # Debian's python3-websockets
    async with websockets.connect(url, subprotocols=["janus-protocol"],
                                  open_timeout=timeout, close_timeout=1) as ws:
        if ws.subprotocol != "janus-protocol":
            raise CheckFailed(f"WebSocket {url}: server did not accept subprotocol janus-protocol")
        t = tx()
        await ws.send(json.dumps({"janus": "info", "transaction": t}))
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if msg.get("transaction") == t:
                return msg


def check_ws(url, timeout=5.0):
    try:
        info = asyncio.run(ws_info(url, timeout))
    except CheckFailed:
        raise
    except Exception as e:  # refused, timeout, handshake error...
        raise CheckFailed(f"WebSocket: Janus unreachable at {url} ({type(e).__name__}: {e})")
    return plugin_listed(info, f"WebSocket {url}")


def check_web(url, wait):
    """The web server starts after Janus (and, being a second process, may
    still be binding its port): refused connections are retried until
    `wait` s have passed; any other failure counts at once."""
    out = []
    deadline = time.monotonic() + wait
    for path, must in (("", b"<html"), ("janus.js", b"Janus"), ("app.js", b"")):
        u = url.rstrip("/") + "/" + path
        while True:
            try:
                with urllib.request.urlopen(u, timeout=5) as r:
                    body = r.read()
                break
            except urllib.error.URLError as e:
                refused = isinstance(e.reason, ConnectionRefusedError)
                if not refused or time.monotonic() >= deadline:
                    raise CheckFailed(f"web: {u} not served ({e})")
                time.sleep(0.1)
            except Exception as e:
                raise CheckFailed(f"web: {u} not served ({e})")
        if must and must not in body[:200000]:
            raise CheckFailed(f"web: {u} does not look right")
        out.append(f"/{path}")
    return f"web client served at {url} ({', '.join(out)})"


def check_admin(url):
    try:
        r = http_json(url, {"janus": "ping", "transaction": tx()})
    except Exception as e:
        raise CheckFailed(f"Admin API unreachable at {url} ({e})")
    if r.get("janus") != "pong":
        raise CheckFailed(f"Admin API at {url}: unexpected answer {r}")
    return f"Admin API answers at {url}"


def check_closed(hostport):
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            pass
    except OSError:
        return f"Admin API not reachable at {hostport} (as intended)"
    raise CheckFailed(f"Admin API port is reachable at {hostport}; it must listen on 127.0.0.1 only")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http", action="append", required=True,
                    help="Janus HTTP API base URL (repeatable)")
    ap.add_argument("--ws", action="append", required=True,
                    help="Janus WebSocket URL (repeatable)")
    ap.add_argument("--web")
    ap.add_argument("--admin")
    ap.add_argument("--admin-closed")
    ap.add_argument("--wait", type=float, default=10.0,
                    help="seconds to wait for Janus's HTTP transport (and the web server) to come up")
    a = ap.parse_args()
    checks = []
    for u in a.http:
        checks.append(lambda u=u: check_http(u.rstrip("/"), a.wait))
    for u in a.ws:
        checks.append(lambda u=u: check_ws(u))
    if a.web:
        checks.append(lambda: check_web(a.web, a.wait))
    if a.admin:
        checks.append(lambda: check_admin(a.admin))
    if a.admin_closed:
        checks.append(lambda: check_closed(a.admin_closed))
    ok = True
    for c in checks:
        try:
            print("  ok   " + c(), flush=True)
        except CheckFailed as e:
            print("  FAIL " + str(e), flush=True)
            ok = False
        except Exception as e:
            print(f"  FAIL unexpected {type(e).__name__}: {e}", flush=True)
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
