"""The operator's view (PROTOCOL.md v1.1 "Operations and supervision";
docs/api.md "Health"): the Admin API's `message_plugin` `health` with the
documented fields and the right counts during live visits, `handle_info`'s
plugin part per handle (role, visit, state, per-leg quality now), and the
Prometheus exporter (conf/alliance-exporter.py) whose output parses with
Prometheus's own text-format parser (Debian's python3-prometheus-client)
and carries the same figures."""
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness import pg as _pg
from harness.alliance import Scope, expect, join_client, join_therapist, create_visit
from harness.janus import REPO_ROOT
from harness.pulses import live_visit

EXPORTER = REPO_ROOT / "conf" / "alliance-exporter.py"
INSTRUMENTS = REPO_ROOT / "conf" / "instruments"

FIELDS = {"alliance", "version", "visits_open", "visits_live", "participants", "store",
          "samples_dropped", "instruments"}
STORE_FIELDS = {"backend", "queue", "commit_ms_p99", "failed"}


def configure_version() -> str:
    for line in (REPO_ROOT / "configure.ac").read_text().splitlines():
        if line.startswith("AC_INIT("):
            return line.split(",")[1].strip(" []")
    raise AssertionError("no AC_INIT in configure.ac")


def check_shape(h: dict) -> None:
    assert FIELDS <= set(h), f"health lacks {FIELDS - set(h)}: {h}"
    assert STORE_FIELDS <= set(h["store"]), f"health.store lacks {STORE_FIELDS - set(h['store'])}: {h}"
    assert h["alliance"] == "health"
    for k in ("visits_open", "visits_live", "participants", "samples_dropped", "instruments"):
        assert isinstance(h[k], int) and not isinstance(h[k], bool) and h[k] >= 0, (k, h)
    s = h["store"]
    assert s["backend"] == ("postgresql" if _pg.wanted() else "sqlite"), s
    assert isinstance(s["queue"], int) and s["queue"] >= 0, s
    assert isinstance(s["failed"], int) and s["failed"] >= 0, s
    assert s["commit_ms_p99"] is None or (isinstance(s["commit_ms_p99"], (int, float)) and s["commit_ms_p99"] >= 0), s


def vm_kib(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def check_memory(janus, m: dict) -> None:
    """memory: SQLite's own allocations and glibc's heap, against what the
    kernel says the process has mapped (an independent upper bound)."""
    assert set(m) >= {"sqlite_bytes", "sqlite_peak_bytes", "heap_in_use_bytes", "heap_held_bytes"}, m
    if _pg.wanted():
        assert m["sqlite_bytes"] >= 0, m
    else:       # the store's connections are open: page caches, statements
        assert m["sqlite_bytes"] > 0, m
    assert m["sqlite_peak_bytes"] >= m["sqlite_bytes"], m
    if janus.sanitize:      # ASan's allocator replaces glibc's: mallinfo2 sees little
        return
    assert 0 < m["heap_in_use_bytes"] <= m["heap_held_bytes"], m
    assert m["sqlite_bytes"] < m["heap_in_use_bytes"], m        # SQLite allocates from the heap
    # the arenas and mmapped chunks are private writable memory of janus
    assert m["heap_held_bytes"] <= vm_kib(janus.proc.pid, "VmData") * 1024, m


async def test_health_idle(janus):
    h = janus.health()
    check_shape(h)
    assert h["version"] == configure_version()
    assert (h["visits_open"], h["visits_live"], h["participants"]) == (0, 0, 0), h
    # every definition file of the folder loads (the plugin logs none refused)
    assert h["instruments"] == len(list(INSTRUMENTS.glob("*.json"))), h
    assert h["store"]["failed"] == 0 and h["samples_dropped"] == 0, h
    check_memory(janus, h["memory"])
    # an unknown admin request is refused with the plugin's error shape
    bad = janus.message_plugin({"request": "no-such-thing"})
    assert bad.get("alliance") == "error" and bad.get("error_code") == 472, bad
    assert janus.message_plugin({"nothing": 1}).get("error_code") == 473


async def wait_for(fn, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def plugin_part(janus, h) -> dict:
    return janus.handle_info(h.session.id, h.id).get("plugin_specific", {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def samples(text: str) -> dict:
    """{sample name: value} through Prometheus's own parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name if not s.labels else (s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


STABLE = {"alliance_visits_open": "visits_open", "alliance_visits_live": "visits_live",
          "alliance_participants": "participants", "alliance_observers": "observers",
          "alliance_instruments": "instruments", "alliance_samples_dropped_total": "samples_dropped",
          "alliance_store_failed_total": ("store", "failed")}


def figure(h, path):
    return h[path[0]][path[1]] if isinstance(path, tuple) else h[path]


async def test_health_during_live_visits(janus, keys, tmp_path):
    async with Scope(janus) as sc:
        v1 = await live_visit(sc, keys, "C-HEALTH1", media=True, research=True)
        # a second visit with its client in the waiting room, a third just created
        th2, cl2 = await sc.handle(), await sc.handle()
        c2 = await create_visit(th2, keys.therapist("T-02"), "C-HEALTH2")
        await join_therapist(th2, c2["visit_id"], keys.therapist("T-02"))
        await join_client(cl2, c2["invite"])
        th3 = await sc.handle()
        await create_visit(th3, keys.therapist("T-01"), "C-HEALTH3")
        ob = await sc.handle()
        expect(await ob.request({"request": "join", "role": "observer", "visit_id": v1.visit_id,
                                 "supervisor_key": keys.supervisor()}), "joined")
        h = janus.health()
        check_shape(h)
        assert (h["visits_open"], h["visits_live"], h["participants"]) == (3, 1, 5), h
        assert h["visits_waiting"] == 1 and h["observers"] == 1, h
        assert h["store"]["commits"] > 0 and h["store"]["commit_ms_p99"] is not None, h

        # handle_info's plugin part: role, visit, state, per-leg quality now
        info = plugin_part(janus, v1.th)
        assert (info["role"], info["visit_id"], info["state"]) == ("therapist", v1.visit_id, "live"), info
        assert plugin_part(janus, v1.cl)["role"] == "client"
        assert plugin_part(janus, ob)["role"] == "observer"
        w = plugin_part(janus, cl2)
        assert (w["role"], w["state"]) == ("client", "waiting"), w

        def measured():
            q = plugin_part(janus, v1.th).get("quality") or {}
            legs = q.get("legs", {})
            up = legs.get("client_up", {})
            return q if up.get("audio", {}).get("seconds", 0) > 0 and up.get("video", {}).get("seconds", 0) > 0 \
                and legs.get("therapist_up", {}).get("audio") else None
        q = await wait_for(measured, "per-leg quality in handle_info", timeout=10)
        assert q["legs"]["client_up"]["audio"]["loss_pct"] is not None, q
        assert set(q["legs"]) >= {"client_up", "client_down", "therapist_up", "therapist_down"}, q
        assert q["measured_s"] > 0, q

        # the exporter: Prometheus's parser reads it, and it carries the same figures
        port = free_port()
        secret_file = tmp_path / "admin-secret"
        secret_file.write_text(janus.admin_secret + "\n")
        secret_file.chmod(0o600)
        proc = subprocess.Popen([sys.executable, str(EXPORTER), "--admin-url", janus.admin_url,
                                 "--admin-secret-file", str(secret_file), "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            before = janus.health()
            text = scrape(port)
            after = janus.health()
        finally:
            proc.terminate()
            proc.wait(5)
        got = samples(text)
        assert got["alliance_up"] == 1, text
        for name, path in STABLE.items():
            assert figure(before, path) == figure(after, path), (name, before, after)
            assert got[name] == figure(before, path), (name, got.get(name), before)
        lo = min(before["store"]["commit_ms_p99"], after["store"]["commit_ms_p99"]) / 1000
        hi = max(before["store"]["commit_ms_p99"], after["store"]["commit_ms_p99"]) / 1000
        # ms -> s in the exporter and here may round differently in the last bit
        eps = 1e-12
        assert lo - eps <= got["alliance_store_commit_p99_seconds"] <= hi + eps, (got, before, after)
        assert before["store"]["commits"] <= got["alliance_store_commits_total"] <= after["store"]["commits"]
        info_key = ("alliance_info", (("instance", before["instance_id"]),
                                      ("store_backend", before["store"]["backend"]),
                                      ("version", before["version"])))
        assert got.get(info_key) == 1, got
        # a wrong secret: alliance_up 0, still a valid exposition
        secret_file.write_text("wrong\n")
        r = subprocess.run([sys.executable, str(EXPORTER), "--once", "--admin-url", janus.admin_url,
                            "--admin-secret-file", str(secret_file)], capture_output=True, text=True, timeout=20)
        assert r.returncode == 1 and samples(r.stdout) == {"alliance_up": 0}, (r.stdout, r.stderr)
        assert janus.admin_secret not in r.stderr and janus.admin_secret not in r.stdout

        # the therapist ends visit 1: no longer live, still open (end grace)
        expect(await v1.th.request({"request": "end"}), "ended")
        h = await wait_for(lambda: (lambda x: x if x["visits_live"] == 0 else None)(janus.health()),
                           "visits_live back to 0")
        assert h["visits_open"] == 3, h
