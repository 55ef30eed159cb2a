"""Store faults never take Janus down and never lose what was acknowledged
(docs/storage.md "Faults"): the database lives on a 4 MB tmpfs that the
test fills up, and is then held locked by another process. Answers during
the fault are refused with `store_failed` (never acked); the plugin
recovers by itself when the fault clears; every acked answer is in the
database afterwards; what happened during the fault (pulse rows, state
changes) is written once the database takes writes again."""
import asyncio
import errno
import os
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import store
from harness.alliance import Scope, expect, status
from harness.pulses import acked_until, api_answer, dc_answer, live_visit, trigger

MOUNT = Path(tempfile.mkdtemp(prefix="ap-tmpfs-"))
DB = MOUNT / "alliance.sqlite"
ALLIANCE_CONFIG = {"events": False, "db_path": DB}


@pytest.fixture(scope="module", autouse=True)
def small_filesystem():
    """A tmpfs of 4 MB for the database, mounted before Janus starts (so its
    mount namespace sees it) and unmounted after Janus stopped."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(MOUNT)], check=True)
    try:
        yield MOUNT
    finally:
        subprocess.run(["umount", "-l", str(MOUNT)], check=False)
        try:
            MOUNT.rmdir()
        except OSError:
            pass


def fill(path: Path) -> int:
    """Write a file until the filesystem is full; returns the bytes written."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        # the last bytes a block at a time
        while True:
            try:
                n += f.write(b"\0" * 512)
            except OSError:
                break
    return n


def truncate_wal():
    """Checkpoint and empty the WAL (a second connection, as an operator's
    sqlite3 would): the next commit then has to grow it, which a full disk
    refuses. Without this the WAL's free pages could absorb a few commits."""
    con = sqlite3.connect(str(DB), timeout=10)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        con.close()


async def test_full_filesystem(janus, keys):
    filler = MOUNT / "filler"
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-FULL", media=True)
        [p1] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", timeout=5)
        assert (await dc_answer(v.pc, p1, {"understood": 3}, final=False))["type"] == "ack"
        truncate_wal()
        fill(filler)
        try:
            # during the fault: a new pulse is sent (its row waits), answers are refused
            [p2] = await trigger(v.th, target="therapist")
            r = await dc_answer(v.pc, p1, {"understood": 4, "focus": 5}, expect="any")
            assert r.get("type") == "error" and r.get("code") == "store_failed", r
            r = await api_answer(v.th, p2, {"understood": 1, "focus": 1})
            assert r.data.get("error_code") == 496, r.data
            st = await status(v.th)
            assert st["state"] == "live", st
            assert janus.alive()
        finally:
            filler.unlink()
        # the fault clears: the plugin recovers by itself, the retry is acked
        ack = await acked_until(v.pc, p1, {"understood": 4, "focus": 5}, final=True, timeout=15)
        assert ack.get("complete") is True, ack
        r = await api_answer(v.th, p2, {"understood": 2, "focus": 2})
        assert r.data.get("alliance") == "answer_stored", r.data
        expect(await v.th.request({"request": "end"}), "ended")
    # every acked answer is on disk, with its value; the refused ones never were
    rows = store.rows(DB, "SELECT a.pulse_id, a.final, i.item_id, i.value FROM answers a "
                          "JOIN answer_items i ON i.pulse_id = a.pulse_id WHERE a.pulse_id IN (?, ?) "
                          "ORDER BY a.pulse_id, i.item_id", (p1, p2))
    got = {(r["pulse_id"], r["item_id"]): (r["final"], r["value"]) for r in rows}
    assert got == {(p1, "focus"): (1, 5.0), (p1, "understood"): (1, 4.0),
                   (p2, "focus"): (1, 2.0), (p2, "understood"): (1, 2.0)}, got
    # the pulse created during the fault was written once the disk had room
    assert store.one(DB, "SELECT role FROM pulses WHERE pulse_id = ?", (p2,))["role"] == "therapist"


async def test_database_locked_by_another_process(janus, keys):
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-LOCK", media=True)
        [p1] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", timeout=5)
        other = sqlite3.connect(str(DB), timeout=10, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            t0 = time.monotonic()
            r = await dc_answer(v.pc, p1, {"understood": 7, "focus": 7}, expect="any", timeout=15)
            assert r.get("type") == "error" and r.get("code") == "store_failed", r
            waited = time.monotonic() - t0
            assert waited < 12, f"refused only after {waited:.1f} s"
            # the visit goes on meanwhile
            [p2] = await trigger(v.th, target="therapist")
            st = await status(v.th)
            assert st["state"] == "live", st
        finally:
            other.execute("ROLLBACK")
            other.close()
        ack = await acked_until(v.pc, p1, {"understood": 7, "focus": 7}, final=True, timeout=20)
        assert ack.get("complete") is True, ack
        row = await store.wait_row(DB, "SELECT pulse_id FROM pulses WHERE pulse_id = ?", (p2,), timeout=10)
        assert row["pulse_id"] == p2
    assert store.one(DB, "SELECT final FROM answers WHERE pulse_id = ?", (p1,))["final"] == 1
