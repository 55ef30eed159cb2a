"""The PostgreSQL store when its server goes away mid-visit (docs/storage.md,
"PostgreSQL"): Janus and the visit go on, answers are refused with
`store_failed` (never acked) while the server is gone, what happened
meanwhile (a pulse row) is written once it is back, the plugin reconnects
by itself, and every acknowledged answer is in the database afterwards.
Twice: a clean restart of the server (`pg_ctl restart`, fast shutdown) and
a crash (SIGKILL of the postmaster, then crash recovery at start).

This module always runs on PostgreSQL (the session's private server,
tests/pg/pg-test-server), whatever ALLIANCE_TEST_DB says.
"""
import asyncio
import time

import pytest

from harness import store
from harness.alliance import Scope, expect, status
from harness.pulses import acked_until, api_answer, dc_answer, live_visit, trigger

ALLIANCE_CONFIG = {"events": False}


@pytest.fixture(scope="module")
def module_db(pg_server):
    """This module's Janus on a fresh PostgreSQL database (conftest's
    module_db, always PostgreSQL here)."""
    return pg_server.new_database("pg_faults")


async def refused_while_down(v, p1):
    """The server is down: an answer is refused (the store notices at its
    first statement, or is degraded already), never acked."""
    r = await dc_answer(v.pc, p1, {"understood": 4, "focus": 5}, expect="any", timeout=15)
    assert r.get("type") == "error", f"acked while the database server was down: {r}"
    assert r.get("code") == "store_failed", r
    return r


async def outage(janus, keys, pg_server, client_code, break_it):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, client_code, media=True)
        [p0] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", pulse_id=p0, timeout=5)
        ack = await dc_answer(v.pc, p0, {"understood": 3, "focus": 3})
        assert ack.get("complete") is True, ack
        [p1] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", pulse_id=p1, timeout=5)
        await store.wait_row(db, "SELECT 1 FROM pulses WHERE pulse_id = ?", (p1,))
        log_at = janus.log_size()
        break_it()                                   # the server is gone
        t_down = time.monotonic()
        await refused_while_down(v, p1)
        # the visit goes on: a pulse to the therapist (its row waits), status answers
        [p2] = await trigger(v.th, target="therapist")
        await v.pt.wait_message(type="pulse", pulse_id=p2, timeout=5)
        r = await api_answer(v.th, p2, {"understood": 1, "focus": 1})
        assert r.data.get("error_code") == 496, r.data
        st = await status(v.th)
        assert st["state"] == "live", st
        assert janus.alive()
        pg_server.start()                            # back (after crash recovery, if it crashed)
        t_up = time.monotonic()
        # the plugin reconnects by itself: the participant's retry is acked
        ack = await acked_until(v.pc, p1, {"understood": 4, "focus": 5}, final=True, timeout=30)
        assert ack.get("complete") is True, ack
        print(f"{client_code}: down {t_up - t_down:.1f} s; acked again "
              f"{time.monotonic() - t_up:.1f} s after the server was back")
        r = await api_answer(v.th, p2, {"understood": 2, "focus": 2})
        assert r.data.get("alliance") == "answer_stored", r.data
        expect(await v.th.request({"request": "end"}), "ended")
    rows = store.rows(db, "SELECT a.pulse_id, a.final, i.item_id, i.value FROM answers a "
                          "JOIN answer_items i ON i.pulse_id = a.pulse_id WHERE a.pulse_id IN (?, ?, ?) "
                          "ORDER BY a.pulse_id, i.item_id", (p0, p1, p2))
    got = {(r["pulse_id"], r["item_id"]): (r["final"], r["value"]) for r in rows}
    assert got == {(p0, "focus"): (1, 3.0), (p0, "understood"): (1, 3.0),
                   (p1, "focus"): (1, 5.0), (p1, "understood"): (1, 4.0),
                   (p2, "focus"): (1, 2.0), (p2, "understood"): (1, 2.0)}, got
    # the pulse created during the outage was written once the server was back
    assert store.one(db, "SELECT role FROM pulses WHERE pulse_id = ?", (p2,))["role"] == "therapist"
    text = janus.log_text(log_at)
    assert "store" in text and janus.alive()


@pytest.mark.timeout_s(120)
async def test_server_restarted_mid_visit(janus, keys, pg_server):
    await outage(janus, keys, pg_server, "C-PGRS", pg_server.stop)


@pytest.mark.timeout_s(120)
async def test_server_crashed_mid_visit(janus, keys, pg_server):
    await outage(janus, keys, pg_server, "C-PGKL", pg_server.kill)
