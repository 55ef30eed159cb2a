"""The store, seen from outside the process.

* Durability: an answer acknowledged (`answer_stored`) is on disk: kill -9
  janus right after the acknowledgement, start it again on the same
  database, and the answer (items and scores) is there. 20 rounds.
* The database file and its -wal/-shm are mode 0600, even though this
  janus runs with umask 000 (SQLite).
With ALLIANCE_TEST_DB=postgresql the same rounds run on PostgreSQL (an
answer is acknowledged after COMMIT); the file modes are SQLite's only.
(A bad database at start-up: test_store_bad_db.py; the PostgreSQL server
going away: test_pg_faults.py.)
"""
import os
import stat
import time

import pytest

from conftest import _start_checked, _stop_checked
from harness import store
from harness.alliance import Scope
from harness.api import SEEN_SECRETS
from harness.janus import alliance_server
from harness.pulses import api_answer, close_to, expect_stored, live_visit, trigger

ROUNDS = 20


def on_pg(srv) -> bool:
    return hasattr(srv.db_path, "url")


@pytest.fixture(scope="module")
def crash_janus(net, keys, tmp_path_factory, module_db):
    srv = alliance_server(net, tmp_path_factory.mktemp("crash"), keys, db_path=module_db)
    srv.umask = 0o000
    _start_checked(srv)
    try:
        yield srv
    finally:
        _stop_checked(srv, secrets=list(keys.therapists.values()) + list(SEEN_SECRETS))


def modes(db):
    out = {}
    for suffix in ("", "-wal", "-shm"):
        p = f"{db}{suffix}"
        if os.path.exists(p):
            out[suffix or "db"] = stat.S_IMODE(os.stat(p).st_mode)
    return out


async def answer_then_crash(srv, keys, i):
    """One round: a visit, a pulse (event), the `answer` request; kill -9
    janus the moment `answer_stored` arrives. Returns what was answered."""
    sc = Scope(srv)
    try:
        v = await live_visit(sc, keys, f"C-D{i:03d}")
        [pid] = await trigger(v.th)
        await v.cl.wait_event(alliance="pulse", timeout=5)
        u, f = round(0.1 * (i % 100), 1), round(10 - 0.1 * (i % 100), 1)
        r = await api_answer(v.cl, pid, {"understood": u, "focus": f})
        srv.kill()                                   # no await in between: nothing else runs
        expect_stored(r, pid, True)
        return v.visit_id, pid, {"understood": u, "focus": f}
    finally:
        for s in sc.sessions:                        # the server is gone: just drop the sockets
            await s.close()
        if srv.alive():
            srv.kill()


@pytest.mark.timeout_s(120)
async def test_acknowledged_answer_survives_kill_9(crash_janus, keys):
    srv, db = crash_janus, crash_janus.db_path
    lost, bad_modes, t0 = [], [], time.monotonic()
    for i in range(ROUNDS):
        visit_id, pid, items = await answer_then_crash(srv, keys, i)
        assert not srv.alive()
        srv.restart()
        got = store.answer_of(db, pid)
        a = got["answer"]
        if a is None or a["final"] != 1 or got["items"] != items or \
                not close_to(got["scores"].get("total"), 10.0):
            lost.append((i, pid, got))
        m = modes(db) if not on_pg(srv) else {"db": 0o600}
        if any(x != 0o600 for x in m.values()) or "db" not in m:
            bad_modes.append((i, {k: oct(x) for k, x in m.items()}))
    took = time.monotonic() - t0
    assert not lost, f"{len(lost)}/{ROUNDS} acknowledged answers missing or wrong after kill -9: {lost[:3]}"
    assert not bad_modes, f"store files not 0600 (janus umask 000): {bad_modes[:3]}"
    # all of them, once more, and nothing else in their visits' answers
    n = store.one(db, "SELECT count(*) AS n FROM answers a JOIN pulses p USING (pulse_id) "
                  "JOIN visits v USING (visit_id) WHERE v.client_code LIKE 'C-D%' AND a.final = 1")
    assert n["n"] == ROUNDS, n
    print(f"{ROUNDS} kill -9 rounds in {took:.1f} s")


def test_store_files_are_0600(crash_janus):
    """While janus runs (WAL mode: -wal and -shm exist), umask 000."""
    if on_pg(crash_janus):
        pytest.skip("SQLite's files; a PostgreSQL store has none of its own")
    assert crash_janus.alive()
    m = modes(crash_janus.db_path)
    assert set(m) >= {"db", "-wal", "-shm"}, f"expected the db and its -wal/-shm, found {m}"
    assert all(x == 0o600 for x in m.values()), {k: oct(x) for k, x in m.items()}
    # the WAL journal and synchronous=FULL are what docs/storage.md promises
    con = store.connect_ro(crash_janus.db_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
