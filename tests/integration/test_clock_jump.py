"""Timers run on the monotonic clock (docs/api.md "Lifecycle"): Janus runs
under libfaketime with a wall clock that a test moves while a visit is on.
A jump of two hours forward must neither expire an open pulse early nor
close a visit whose end grace has not passed; rows still get wall-clock
times (the moved clock, as an operator's `date` would show)."""
import asyncio
import atexit
import time
from pathlib import Path

import pytest

from harness import store
from harness.alliance import Scope, expect, status
from harness.janus import sanitize_enabled
from harness.pulses import api_answer, expect_stored, live_visit

# libfaketime and ASan's interceptors deadlock at start-up (janus never
# prints a line), so the sanitizer stage cannot run this; the plain stage
# does. Reported as skipped there, never as passed.
pytestmark = pytest.mark.skipif(sanitize_enabled(), reason="libfaketime hangs under ASan; run by the plain stage")

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
CLOCK_FILE = Path("/tmp") / f"alliance-faketime-{time.monotonic_ns()}"
CLOCK_FILE.write_text("+0\n")
atexit.register(lambda: CLOCK_FILE.unlink(missing_ok=True))
ALLIANCE_CONFIG = {"events": False, "end_grace_s": 20,
                   "extra_general": "pulse_expires_s = 20"}
ALLIANCE_JANUS_ENV = {
    "LD_PRELOAD": str(LIBFAKETIME),
    "FAKETIME_TIMESTAMP_FILE": str(CLOCK_FILE),
    "FAKETIME_NO_CACHE": "1",             # read the file on every call: the jump shows at once
    "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # only the wall clock moves
}


def jump(offset: str) -> None:
    CLOCK_FILE.write_text(offset + "\n")


@pytest.fixture(autouse=True)
def _reset_clock():
    jump("+0")
    yield
    jump("+0")


async def test_wall_clock_jump_expires_nothing(janus, keys):
    assert LIBFAKETIME.exists(), "install Debian's faketime (conf/install-deps.sh)"
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-CLK1")
        [pid] = expect(await v.th.request({"request": "pulse"}), "pulse_sent")["pulse_ids"]
        await v.cl.wait_event(alliance="pulse", timeout=5)
        jump("+2h")
        await asyncio.sleep(1.0)                       # five timer ticks on the moved clock
        assert not v.cl.unconsumed("pulse_expired"), "a wall-clock jump expired the pulse"
        st = await status(v.cl)
        assert [p["pulse_id"] for p in st["pending_pulses"]] == [pid], st["pending_pulses"]
        expect_stored(await api_answer(v.cl, pid, {"understood": 5, "focus": 5}), pid, True)
        row = store.one(db, "SELECT answered_at FROM answers WHERE pulse_id = ?", (pid,))
        assert row["answered_at"] > time.time() * 1e6 + 3600e6, "rows get the (moved) wall clock"
        # the end grace (20 s) does not end early either
        expect(await v.th.request({"request": "end"}), "ended")
        jump("+4h")
        await asyncio.sleep(1.0)
        assert not v.th.unconsumed("closed") and not v.cl.unconsumed("closed"), \
            "a wall-clock jump closed the visit inside its end grace"
        st = await status(v.th)
        assert st["state"] == "ended", st
