"""Health shows a store that does not keep up (docs/api.md "Health"): while
another process holds the SQLite database's write lock (as in
test_store_faults.py: a sqlite3 connection in BEGIN IMMEDIATE), the writer
waits, what the visit does queues up (`store.queue` grows), the store turns
degraded and counts the answers it refuses meanwhile as failed; once the lock goes the queue drains by
itself, and commit_ms_p99 shows the busy wait the writer paid (SQLite's
busy timeout, 5 s)."""
import asyncio
import sqlite3
import time

import pytest

from harness import pg as _pg
from harness.alliance import Scope
from harness.pulses import live_visit, trigger

pytestmark = pytest.mark.skipif(_pg.wanted(), reason="locks the SQLite file (test_pg_faults.py covers PostgreSQL)")

BUSY_TIMEOUT_S = 5.0      # plugin/store/store_sqlite.c BUSY_TIMEOUT_MS


async def wait_health(janus, pred, what, timeout):
    deadline = time.monotonic() + timeout
    while True:
        h = janus.health()
        if pred(h):
            return h
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last health: {h}")
        await asyncio.sleep(0.1)


@pytest.mark.timeout_s(90)
async def test_store_queue_grows_while_locked(janus, keys):
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-HLOCK", media=False)
        await wait_health(janus, lambda h: h["store"]["queue"] == 0, "an idle writer", 10)
        before = janus.health()
        assert before["store"]["failed"] == 0 and not before["store"]["degraded"], before
        other = sqlite3.connect(str(janus.db_path), timeout=10, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            # what the visit does now is written through the store: two
            # pulses (each created, then delivered); the first write waits
            # for the lock, the others queue behind it
            await trigger(v.th, target="both")
            locked = await wait_health(janus, lambda h: h["store"]["queue"] >= 3, "the queue to grow", 15)
            assert locked["visits_live"] == 1, locked
            degraded = await wait_health(janus, lambda h: h["store"]["degraded"], "the store degraded",
                                         BUSY_TIMEOUT_S * 3)
            assert degraded["store"]["queue"] >= 3, degraded
            # an answer meanwhile is refused at once (never acknowledged
            # unless committed): a job failed for a fault
            ev = await v.cl.wait_event(alliance="pulse", timeout=5)
            r = await v.cl.request({"request": "answer", "pulse_id": ev.data["pulse_id"],
                                    "responses": {"understood": 7, "focus": 7}})
            assert r.data.get("error_code") == 496, r
            await wait_health(janus, lambda h: h["store"]["failed"] > before["store"]["failed"],
                              "the failure counted", 5)
        finally:
            other.execute("ROLLBACK")
            other.close()
        after = await wait_health(janus, lambda h: h["store"]["queue"] == 0 and not h["store"]["degraded"],
                                  "the queue to drain", 30)
        assert after["store"]["failed"] > before["store"]["failed"], (before, after)
        assert after["store"]["commits"] > before["store"]["commits"], (before, after)
        # the busy wait is among the writer's last transactions; with at most
        # 100 of them the p99 (nearest rank) is their maximum
        assert after["store"]["commits"] <= 100, after
        assert after["store"]["commit_ms_p99"] >= BUSY_TIMEOUT_S * 1000 * 0.9, after
