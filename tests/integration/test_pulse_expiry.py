"""An expired pulse is withdrawn and refuses every answer, on both paths:
`pulse_expired` on the data channel (or as an event without one), the
stored status `expired`, then `expired` / 490 for a final answer, a
partial answer and a dismissal, with nothing stored. Pulses expire after
4 s here (`pulse_expires_s`); each test does nothing but wait before the
expiry, so a loaded machine cannot make it early or late for the test.
"""
import pytest

from harness import store
from harness.alliance import Scope
from harness.pulses import api_answer, dc_answer, expect_stored, live_visit, trigger
from test_pulse_refusals import api_refused, dc_refused, settled

EXPIRES_S = 4
ALLIANCE_CONFIG = {"extra_general": f"pulse_expires_s = {EXPIRES_S}"}


@pytest.mark.timeout_s(60)
async def test_expired_on_the_datachannel(janus, keys):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-X200", media=True)
        vid = v.visit_id
        [pid] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", pulse_id=pid, timeout=5)
        [tpid] = await trigger(v.th, target="therapist")
        await v.pt.wait_message(type="pulse", pulse_id=tpid, timeout=5)
        await settled(db, vid, 2)
        gone = await v.pc.wait_message(type="pulse_expired", pulse_id=pid, timeout=EXPIRES_S + 3)
        assert gone.get("v") == 1
        await v.pt.wait_message(type="pulse_expired", pulse_id=tpid, timeout=3)
        for p in (pid, tpid):
            await store.wait_row(db, "SELECT status FROM pulses WHERE pulse_id = ?", (p,),
                                 lambda r: r["status"] == "expired")
        await dc_refused(v.pc, db, vid, "expired", pid, {"understood": 5, "focus": 5})
        await dc_refused(v.pc, db, vid, "expired", pid, {"understood": 5}, final=False)
        await dc_refused(v.pc, db, vid, "expired", pid, msg_type="dismiss")
        await dc_refused(v.pt, db, vid, "expired", tpid, {"understood": 5, "focus": 5})
        assert store.answer_of(db, pid)["answer"] is None
        assert store.answer_of(db, tpid)["answer"] is None
        # the visit goes on: a new pulse is delivered and answered
        [pid2] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", pulse_id=pid2, timeout=5)
        ack = await dc_answer(v.pc, pid2, {"understood": 9, "focus": 9})
        assert ack.get("complete") is True, ack
        assert janus.alive()


@pytest.mark.timeout_s(60)
async def test_expired_answer_request(janus, keys):
    db = janus.db_path
    ok = {"understood": 5, "focus": 5}
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-X201")            # no media: pulses as events
        vid = v.visit_id
        [pid] = await trigger(v.th)
        await v.cl.wait_event(alliance="pulse", timeout=5)
        [tpid] = await trigger(v.th, target="therapist")
        await v.th.wait_event(alliance="pulse", timeout=5)
        await settled(db, vid, 2)
        gone = await v.cl.wait_event(alliance="pulse_expired", timeout=EXPIRES_S + 3)
        assert gone.data.get("pulse_id") == pid, gone.data
        await v.th.wait_event(lambda e: e.data.get("pulse_id") == tpid, alliance="pulse_expired",
                              timeout=3)
        # both expiries are written before the refusal's "before" snapshot
        # (they fall due in one timer tick but are separate store writes)
        for p in (pid, tpid):
            await store.wait_row(db, "SELECT status FROM pulses WHERE pulse_id = ?", (p,),
                                 lambda r: r["status"] == "expired")
        await api_refused(v.cl, db, vid, 490, pid, ok)
        await api_refused(v.cl, db, vid, 490, pid, {"understood": 1}, final=False)
        await api_refused(v.th, db, vid, 490, tpid, ok)
        assert store.answer_of(db, pid)["answer"] is None
        [pid2] = await trigger(v.th)
        await v.cl.wait_event(alliance="pulse", timeout=5)
        expect_stored(await api_answer(v.cl, pid2, {"understood": 9, "focus": 9}), pid2, True)
