#!/usr/bin/python3
"""End-to-end tests of the web client in Chromium — the launcher.

Reuses the integration harness (tests/integration/harness): two network
namespaces joined by a veth pair (ICE does not work over loopback), and a
throwaway Janus with the alliance plugin in the *server* namespace. This
process then moves its main thread into the *client* namespace, so
everything it starts from there lives in it:

  * conf/serve-web.py serving web-client/ (+ Debian's janus.js and
    adapter.js, + a config.json naming Janus at its namespace address) on
    127.0.0.1 — a secure origin, so the camera is allowed;
  * node tests/e2e/e2e.mjs, which drives Debian's Chromium (playwright-core,
    no browser download) through the scenarios and writes its results.

For the TURN test it adds a third namespace joined to the server one (the
"relay-only" client): coturn (conf/turnserver.conf.local) runs in the
server namespace next to Janus, nftables in the relay-only namespace drops
every packet but TURN and signalling, and a second page server there gives
its pages the TURN credential and iceTransportPolicy "relay". e2e.mjs
starts a second Chromium in that namespace for the client.

Afterwards it stops Janus and checks it the way the integration suite
does (clean exit, no sanitizer report, no key / invite / rejoin key in the
log), counts that as one more test, deletes the namespaces and prints
"N passed, N failed in T s".

Environment: ALLIANCE_PLUGIN_SO (as the integration suite), E2E_KEEP=1
keeps the Janus workdir, E2E_ONLY=<regex> runs matching tests only.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets as pysecrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from harness.janus import AllianceKeys, alliance_server, new_key, plugin_so_path, RUNNING  # noqa: E402
from harness.pg import PgServer  # noqa: E402
from harness.netns import NetnsPair, install_signal_teardown  # noqa: E402

ARTIFACTS = REPO / "tests" / "artifacts" / "e2e"
WEB_PORT = 8080
# A guard against a hung browser run, not a timing assertion (every step
# has its own wait): the 36 tests take ~150-200 s on the 2-core machine (the
# TURN test ~20 s of it; 220 s for the whole launcher under a load of 9),
# so the guard is still about twice the quiet figure.
NODE_TIMEOUT_S = int(os.environ.get("E2E_TIMEOUT_S", "360"))
TURN_PORT = 3478
PROBE_PORT = 9555          # probe.py's echo in the server namespace
TURN_NAME = "e2e-client"   # the part of the TURN username after the expiry


def say(msg: str) -> None:
    print(f"e2e: {msg}", flush=True)


def wait_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as r:
                if r.status == 200:
                    return
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s ({last})")


# The supervisor scenario's data: visits with both end answers, loaded
# through the plugin API the way tests/integration/test_reports.py does
# (create, join, admit, end, answer; no media). Three clients of T-02 (the
# fewest the model of clients fits: docs/statistics.md), three visits each, alternating video and in person, research consent given.
SEED_VISITS = [  # client, modality, client end total, therapist end total
    ("C-S01", "video", 24.0, 27.0), ("C-S01", "in_person", 29.0, 30.0), ("C-S01", "video", 31.0, 32.0),
    ("C-S02", "in_person", 33.0, 31.0), ("C-S02", "video", 26.0, 29.0), ("C-S02", "in_person", 36.0, 35.0),
    ("C-S03", "video", 27.0, 28.0), ("C-S03", "in_person", 30.0, 30.0), ("C-S03", "video", 29.0, 31.0),
]


def _items(total: float) -> dict:
    tenths = int(round(total * 10))
    parts = [tenths // 4 + (1 if i < tenths % 4 else 0) for i in range(4)]
    return dict(zip(["goals", "tasks", "bond", "overall"], [p / 10 for p in parts]))


# The therapist's client history (the "Client history" panel): three
# ended visits of C-H01 with T-01 (the e2e therapist), and one with T-03,
# which T-01's page must not show (T-03, a therapist of its own: a T-02 visit
# would add a client to the supervisor's T-02 summary of SEED_VISITS). No research consent, so that the
# supervisor's research views (compare) stay those of SEED_VISITS.
SEED_HISTORY = [  # therapist, client, modality, client end total, therapist end total
    ("T-01", "C-H01", "video", 24.0, 26.0), ("T-03", "C-H01", "video", 10.0, 12.0),
    ("T-01", "C-H01", "in_person", 28.5, 27.0), ("T-01", "C-H01", "video", 32.0, 31.0),
]


async def seed_visits(srv, keys, visits, research=True) -> list:
    from harness.alliance import Scope, create_visit, expect, join_client, join_therapist
    out = []
    for therapist, client, modality, total, ttotal in visits:
        key = keys.therapist(therapist)
        async with Scope(srv) as sc:
            th = await sc.handle()
            created = await create_visit(th, key, client, modality=modality, schedule={"in_session_at_s": []})
            vid = created["visit_id"]
            await join_therapist(th, vid, key)
            cl = await sc.handle()
            await join_client(cl, created["invite"], research=research)
            await th.wait_event(alliance="waiting", timeout=5)
            expect(await th.request({"request": "admit"}), "admitted")
            await cl.wait_event(alliance="admitted", timeout=5)
            expect(await th.request({"request": "end"}), "ended")
            cp = (await cl.wait_event(alliance="pulse", timeout=5)).data
            tp = (await th.wait_event(alliance="pulse", timeout=5)).data
            for h, p, t in ((cl, cp, total), (th, tp, ttotal)):
                expect(await h.request({"request": "answer", "pulse_id": p["pulse_id"],
                                        "responses": _items(t)}), "answer_stored")
            out.append({"visit_id": vid, "therapist": therapist, "client": client, "modality": modality,
                        "total": total, "ttotal": ttotal})
    return out


async def seed_reports(srv, keys) -> list:
    return await seed_visits(srv, keys, [("T-02", *v) for v in SEED_VISITS])


def _conf_module(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), REPO / "conf" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def render_template(path: Path, values: dict) -> str:
    """conf/*.local with its @NAME@ placeholders filled, as run-local.sh does."""
    text = path.read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.search(r"@[A-Z0-9_]+@", text)
    if left:
        raise RuntimeError(f"{path.name}: placeholder {left.group(0)} not filled")
    return text


# nftables for the relay-only namespace: its browser may reach the TURN
# server (UDP and TCP) and Janus's signalling ports, nothing else; the page
# server is on loopback. Dropped packets are counted.
RELAY_ONLY_NFT = """table inet e2e_relay_only {{
    chain out {{
        type filter hook output priority 0; policy drop;
        oif "lo" accept
        ip daddr {srv} udp dport {turn} accept
        ip daddr {srv} tcp dport {{ {turn}, {ws}, {http} }} accept
        counter drop
    }}
    chain in {{
        type filter hook input priority 0; policy drop;
        iif "lo" accept
        ip saddr {srv} udp sport {turn} accept
        ip saddr {srv} tcp sport {{ {turn}, {ws}, {http} }} accept
        counter drop
    }}
}}
"""


def serve_web(config: Path, port: int, log: Path, procs: list, ns=None) -> str:
    """conf/serve-web.py on 127.0.0.1:port (in namespace ns, else this
    one) serving web-client/ with this config.json; returns its base URL
    (not waited for)."""
    web = ["/usr/bin/python3", str(REPO / "conf" / "serve-web.py"),
           "--dir", str(REPO / "web-client"), "--bind", "127.0.0.1", "--port", str(port),
           "--alias", "/janus.js=/usr/share/javascript/janus-gateway/janus.js",
           "--alias", "/adapter.js=/usr/share/javascript/webrtc-adapter/adapter.js",
           "--alias", f"/config.json={config}"]
    procs.append(subprocess.Popen((["ip", "netns", "exec", ns] if ns else []) + web,
                                  stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True))
    return f"http://127.0.0.1:{port}/"


def start_relay_only_client(net, side, srv, workdir: Path, procs: list) -> tuple:
    """coturn in the server namespace, a relay-only namespace for the
    client's browser (nftables, its own page server with the TURN
    credential); returns the environment e2e.mjs needs for the TURN test
    and the credential (which must not appear in Janus's log). `side` is
    the namespace NetnsPair.add_side() made before Janus started, so Janus
    gathers a host candidate on its link too: a direct path the browser
    would take, but for nftables and the relay policy."""
    tdir = workdir / "turn"
    tdir.mkdir(mode=0o700)
    secret = pysecrets.token_urlsafe(32)
    conf = tdir / "turnserver.conf"
    conf.write_text(render_template(REPO / "conf" / "turnserver.conf.local", {
        "TURN_IP": srv.ip, "TURN_PORT": TURN_PORT, "TURN_MIN_PORT": 61000, "TURN_MAX_PORT": 61999,
        "TURN_SECRET": secret, "TURN_REALM": "alliance.e2e", "TURN_USER_QUOTA": 10, "TURN_TOTAL_QUOTA": 20,
        "TURN_ALLOWED_PEERS": f"allowed-peer-ip={srv.ip}",
        "TURN_LOG": tdir / "turnserver.log", "TURN_PID": tdir / "turnserver.pid"}))
    conf.chmod(0o600)
    out = open(tdir / "turnserver.out", "wb")
    procs.append(subprocess.Popen(["ip", "netns", "exec", net.server_ns, "turnserver", "-c", str(conf)],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True))
    echo = subprocess.Popen(["ip", "netns", "exec", net.server_ns, "/usr/bin/python3", str(HERE / "probe.py"),
                             "serve", "0.0.0.0", str(PROBE_PORT)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    procs.append(echo)
    if echo.stdout.readline().strip() != b"ready":
        raise RuntimeError("probe.py serve did not start")
    # the pages' credential: the TURN REST API formula of conf/turn-credentials.py
    # (the check below has one of its own, so that coturn's log of the
    # page's username holds the browser's allocations only)
    make = _conf_module("turn-credentials").credential
    cred = make(secret, 3600, TURN_NAME)
    urls = [f"turn:{srv.ip}:{TURN_PORT}?transport=udp", f"turn:{srv.ip}:{TURN_PORT}?transport=tcp"]
    cfg = workdir / "web-config-relay.json"
    for path, c in ((cfg, cred), (tdir / "check-config.json", make(secret, 600, "e2e-check"))):
        path.write_text(json.dumps({
            "servers": [srv.ws_url.rstrip("/"), srv.http_url],
            "iceServers": [{"urls": urls, "username": c["username"], "credential": c["credential"]}],
            "iceTransportPolicy": "relay",
        }))
    nft = RELAY_ONLY_NFT.format(srv=srv.ip, turn=TURN_PORT, ws=srv.ws_port, http=srv.http_port)
    subprocess.run(["ip", "netns", "exec", side.ns, "nft", "-f", "-"], input=nft, text=True, check=True)
    # through those rules: the credential gets an allocation (UDP and TCP),
    # Janus is a peer coturn relays to, another address is refused
    check = subprocess.run(["ip", "netns", "exec", side.ns, "/usr/bin/python3", str(REPO / "conf" / "check-turn.py"),
                            "--config", str(tdir / "check-config.json"), "--peer", srv.ip, "--wait", "10"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"coturn does not work: {check.stdout.strip()} {check.stderr.strip()[-300:]}")
    base = serve_web(cfg, WEB_PORT, workdir / "web-relay.log", procs, ns=side.ns)
    net.enter(side.ns)                 # this thread, for a moment: the page server answers there
    try:
        wait_http(base + "config.json")
    finally:
        net.enter(net.client_ns)
    # Chromium in that namespace: playwright starts this instead of /usr/bin/chromium
    wrapper = workdir / "chromium-relay-only"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {side.ns} /usr/bin/chromium "$@"\n')
    wrapper.chmod(0o700)
    return {
        "E2E_RELAY_BASE": base,
        "E2E_RELAY_CHROMIUM": str(wrapper),
        "E2E_RELAY_NS": side.ns,
        "E2E_TURN_LOG": str(tdir / "turnserver.log"),
        "E2E_TURN_USER": cred["username"],
        # Janus's two addresses: the one the therapist's namespace reaches, and
        # the one on the relay-only namespace's own link
        "E2E_PROBE": json.dumps({"hosts": [srv.ip, side.server_side_ip], "port": PROBE_PORT,
                                 "py": str(HERE / "probe.py")}),
    }, cred["credential"]


def main() -> int:
    t0 = time.monotonic()
    if os.geteuid() != 0:
        say("needs root (ip netns); use tests/e2e/run.sh")
        return 2
    so = plugin_so_path()
    if not so.exists():
        say(f"alliance plugin not built ({so}); build it or set ALLIANCE_PLUGIN_SO")
        return 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ([] if os.environ.get("E2E_ONLY") else ARTIFACTS.glob("*.png")):
        old.unlink()
    workdir = Path(tempfile.mkdtemp(prefix="alliance-e2e-"))
    os.chmod(workdir, 0o700)
    keys = AllianceKeys()
    keys.therapists["T-03"] = new_key()     # SEED_HISTORY's other therapist
    net = NetnsPair(prefix="ae")
    procs: list[subprocess.Popen] = []

    def cleanup() -> None:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for srv in list(RUNNING):
            try:
                srv.stop(grace=5)
            except Exception:  # noqa: BLE001
                pass
        net.teardown()

    pg = PgServer()

    def cleanup_all() -> None:
        cleanup()
        pg.destroy()

    install_signal_teardown(cleanup_all)
    results = {"tests": [], "secrets": []}
    janus_ok = True
    janus_problems: list[str] = []
    try:
        net.setup()
        relay_side = net.add_side("r")      # before Janus starts: it gathers there too
        net.enter_client()
        srv = alliance_server(
            net, workdir, keys, end_grace_s=60,
            extra_general='quality_live_s = 2\n    in_session_at_s = ""\n    pulse_expires_s = 8')
        srv.start()
        say(f"janus {srv.info.get('version_string', '?')} with {so} at {srv.ip} "
            f"(namespaces {net.server_ns} / {net.client_ns})")
        # two more instances sharing one PostgreSQL database, for the test
        # of a page that reaches the wrong one (498 other_instance)
        pg.start()
        pair_db = pg.new_database("e2e_pair")
        pair = []
        for name, offset in (("e2e-a", 20), ("e2e-b", 30)):
            p = alliance_server(net, workdir / name, keys, db_path=pair_db, port_offset=offset,
                                end_grace_s=60, extra_general='in_session_at_s = ""')
            urls = f"{p.ws_url.rstrip('/')}, {p.http_url}"
            p.plugin_configs = {k: v.replace("general: {", f'general: {{\n    instance_id = "{name}"\n'
                                             f'    public_servers = "{urls}"', 1)
                                for k, v in p.plugin_configs.items()}
            (workdir / name).mkdir(exist_ok=True)
            p.start()
            pair.append(p)
        say(f"instances {pair[0].ws_url} and {pair[1].ws_url} on one PostgreSQL database")

        webcfg = workdir / "web-config.json"
        webcfg.write_text(json.dumps({
            "servers": [srv.ws_url.rstrip("/"), srv.http_url],
            "allow_janus_param": True,
        }))
        base = serve_web(webcfg, WEB_PORT, workdir / "web.log", procs)
        wait_http(base + "config.json")
        # one more instance whose core wants signed tokens (token_auth), and
        # the pages served for it: sign-in with tokens, the client token in links
        token_secret = "ap-e2e-" + pysecrets.token_hex(16)
        tok = alliance_server(net, workdir / "e2e-tok", keys, port_offset=40, end_grace_s=60,
                              token_secret=token_secret, extra_general='in_session_at_s = ""')
        (workdir / "e2e-tok").mkdir(exist_ok=True)
        tok.start()
        tokcfg = workdir / "web-config-token.json"
        tokcfg.write_text(json.dumps({"servers": [tok.ws_url.rstrip("/"), tok.http_url]}))
        token_base = serve_web(tokcfg, WEB_PORT + 1, workdir / "web-token.log", procs)
        wait_http(token_base + "config.json")
        say(f"token_auth instance {tok.ws_url}, its pages at {token_base}")

        import asyncio
        seeded = asyncio.run(seed_reports(srv, keys))
        say(f"seeded {len(seeded)} ended visits with end answers for the supervisor reports")
        history = asyncio.run(seed_visits(srv, keys, SEED_HISTORY, research=False))
        say(f"seeded {len(history)} ended visits for the therapist's client history")

        relay_env, turn_credential = start_relay_only_client(net, relay_side, srv, workdir, procs)
        say(f"coturn at {srv.ip}:{TURN_PORT}; relay-only client namespace {relay_env['E2E_RELAY_NS']}")

        results_path = workdir / "results.json"
        env = dict(os.environ)
        env.update(relay_env)
        env.update({
            "E2E_BASE": base,
            "E2E_SERVER_IP": srv.ip,
            "E2E_JANUS_WS": srv.ws_url.rstrip("/"),
            "E2E_JANUS_HTTP": srv.http_url,
            "E2E_THERAPIST_KEY": keys.therapist("T-01"),
            "E2E_SUPERVISOR_KEY": keys.supervisor("s01"),
            "E2E_DB": str(srv.db_path),
            "E2E_ARTIFACTS": str(ARTIFACTS),
            "E2E_RESULTS": str(results_path),
            "E2E_SEED": json.dumps(seeded),
            "E2E_SEED_HISTORY": json.dumps(history),
            "E2E_PAIR_A": json.dumps([pair[0].ws_url.rstrip("/"), pair[0].http_url]),
            "E2E_PAIR_B": json.dumps([pair[1].ws_url.rstrip("/"), pair[1].http_url]),
            "E2E_TOKEN_BASE": token_base,
            "E2E_TOKEN_SECRET": token_secret,
            "E2E_TOKEN_DB": str(tok.db_path),
        })
        node = subprocess.Popen(["node", str(HERE / "e2e.mjs")], env=env, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        procs.append(node)
        try:
            rc = node.wait(NODE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            say(f"the browser tests did not finish within {NODE_TIMEOUT_S}s; stopping them")
            os.killpg(node.pid, signal.SIGKILL)
            node.wait(5)
            rc = -1
        if results_path.exists():
            results = json.loads(results_path.read_text())
        if rc != 0 and not any(not t["ok"] for t in results.get("tests", [])):
            results.setdefault("tests", []).append({"name": "browser test runner", "ok": False,
                                                    "error": f"node exited with {rc}"})

        # Janus after the run: alive until now, stops cleanly, nothing leaked
        secrets = (set(keys.therapists.values()) | set(keys.supervisors.values()) | set(results.get("secrets", []))
                   | {turn_credential, token_secret})
        for s in [srv] + pair + [tok]:
            janus_problems += s.health_problems(since=0)
            log = s.stop()
            if s.exit_problem:
                janus_problems.append(s.exit_problem)
            leaked = sum(1 for x in secrets if x and x in log)
            if leaked:
                janus_problems.append(f"{leaked} credential value(s) (keys/invites/rejoin keys) appear in "
                                      f"the log of janus {s.ws_url}")
        janus_ok = not janus_problems
        shutil.copy(srv.log_path, ARTIFACTS / "janus.log")
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        say(f"setup failed: {e}")
        results.setdefault("tests", []).append({"name": "e2e setup", "ok": False, "error": str(e)})
        janus_ok = False
        janus_problems.append("not checked (setup failed)")
    finally:
        cleanup_all()
        left = net.leftovers()
        if left:
            janus_problems.append(f"left behind: {left}")
            janus_ok = False
        if os.environ.get("E2E_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"kept {workdir}")

    tests = results.get("tests", [])
    tests.append({"name": "janus after the run: clean exit, no sanitizer report, no credential in its log",
                  "ok": janus_ok, "error": "; ".join(janus_problems)})
    if not janus_ok:
        print(f"FAIL  {tests[-1]['name']}\n      {tests[-1]['error']}", flush=True)
    else:
        print(f"ok    {tests[-1]['name']}", flush=True)
    passed = sum(1 for t in tests if t["ok"])
    failed = len(tests) - passed
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    say(f"{len(shots)} screenshots in {ARTIFACTS.relative_to(REPO)}/")
    print(f"{passed} passed, {failed} failed in {time.monotonic() - t0:.1f}s", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
