"""`end` and its grace period (end_grace_s = 15 here).

Two visits run side by side, to share the wait:
* A, in a call: `end` -> both end pulses on the data channels, the relay
  stops (no new frames), the therapist's answer comes at once and the
  client's 10 s after the end, both stored; after the grace both get
  `closed` and a late answer on the DC is refused as `expired`.
* B, the client left before `end`: it re-joins within the grace (invite +
  rejoin_key), gets its end pulse as a Janus event right after the `joined`
  answer, and answers it with the `answer` request; after the grace the
  therapist's unanswered end pulse is refused with 490.
"""
import asyncio
import time

import pytest

from harness import store
from harness.alliance import Scope, expect
from harness.pulses import (AP_END_ITEMS, api_answer, check_pulse, close_to, dc_answer,
                            expect_stored, live_visit)

GRACE_S = 15
CLIENT_ANSWER_AT_S = 10
ALLIANCE_CONFIG = {"end_grace_s": GRACE_S}

END_ANSWER = {"goals": 8, "tasks": 7.5, "bond": 9, "overall": 8.2}        # total 32.7
T_END_ANSWER = {"goals": 7, "tasks": 7, "bond": 7, "overall": 7}          # total 28


async def end_visit(th):
    d = expect(await th.request({"request": "end"}), "ended")
    ids = d.get("pulse_ids")
    assert isinstance(ids, list) and len(ids) == 2 and len(set(ids)) == 2, d
    assert d.get("end_grace_s") == GRACE_S, d
    return time.monotonic(), ids


async def scenario_in_call(sc, keys, db):
    v = await live_visit(sc, keys, "C-E300", media=True)
    t_end, ids = await end_visit(v.th)
    ev = await v.cl.wait_event(alliance="ended", timeout=5)
    assert ev.data.get("end_grace_s") == GRACE_S, ev.data
    # both end pulses on the data channels: [client's, therapist's]
    cp = await v.pc.wait_message(type="pulse", timeout=5)
    tp = await v.pt.wait_message(type="pulse", timeout=5)
    check_pulse(cp, kind="end", instrument="ap-end", pulse_id=ids[0], items=AP_END_ITEMS,
                expires_max=GRACE_S)
    check_pulse(tp, kind="end", instrument="ap-therapist-end", pulse_id=ids[1],
                items=AP_END_ITEMS, expires_max=GRACE_S)
    assert not v.cl.unconsumed("pulse") and not v.th.unconsumed("pulse"), \
        "end pulse also sent as an event although the DC is up"
    rows = await store.wait_rows(db, "SELECT * FROM pulses WHERE visit_id = ? AND kind = 'end' "
                                 "ORDER BY role", (v.visit_id,),
                                 lambda rs: len(rs) == 2 and all(r["status"] == "delivered" for r in rs))
    assert [(r["role"], r["instrument_id"], r["trigger"], r["delivered_via"]) for r in rows] == \
        [("client", "ap-end", "end", "datachannel"),
         ("therapist", "ap-therapist-end", "end", "datachannel")], rows
    vrow = await store.wait_row(db, "SELECT * FROM visits WHERE visit_id = ?", (v.visit_id,),
                                lambda r: r["state"] == "ended")
    assert vrow["ended_at"] is not None, vrow

    # the therapist answers at once (its mirror form raises no alert even at 28 < 30)
    ack = await dc_answer(v.pt, ids[1], T_END_ANSWER)
    assert ack.get("complete") is True, ack
    got = store.answer_of(db, ids[1])
    assert got["items"] == {k: float(x) for k, x in T_END_ANSWER.items()}, got
    assert close_to(got["scores"].get("total"), 28.0), got

    # media relay stopped: no new frames for either peer while the client takes its time
    await asyncio.sleep(0.5)
    before_c, before_t = v.pc.snapshot(), v.pt.snapshot()
    await asyncio.sleep(max(0.0, t_end + CLIENT_ANSWER_AT_S - time.monotonic()))
    for peer, before in ((v.pc, before_c), (v.pt, before_t)):
        gained = {k: peer.received[k] - before[k] for k in ("audio", "video")}
        assert gained["audio"] < 5 and gained["video"] < 2, \
            f"{peer.name}: media still relayed after end: {gained}"
    # (connectionState alone stays "connected" over a closed DTLS transport,
    # which would also make the "no new frames" check above pass vacuously)
    assert v.pc.pc.connectionState == "connected" and v.pc.dtls_states() == ["connected"], \
        f"the client's PC should stay up for the DC (dtls {v.pc.dtls_states()})"

    # 10 s after the end the client answers its end pulse on the DC: stored
    ack = await dc_answer(v.pc, ids[0], END_ANSWER)
    assert ack.get("stored") is True and ack.get("complete") is True, ack
    got = store.answer_of(db, ids[0])
    assert got["answer"] is not None and got["answer"]["final"] == 1, got
    assert got["items"] == {k: float(x) for k, x in END_ANSWER.items()}, got
    assert close_to(got["scores"].get("total"), 32.7), got
    for sub in AP_END_ITEMS:            # one subscale per item, same name
        assert close_to(got["scores"].get(sub), float(END_ANSWER[sub])), got["scores"]
    assert got["answer"]["time_to_answer_ms"] >= (CLIENT_ANSWER_AT_S - 1) * 1000, got["answer"]
    assert store.rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (v.visit_id,)) == []
    return v, t_end, ids


async def scenario_rejoin(sc, keys, db, problems):
    v = await live_visit(sc, keys, "C-E301")
    expect(await v.cl.request({"request": "leave"}), "left")
    await v.th.wait_event(alliance="participant_left", timeout=5)
    t_end, ids = await end_visit(v.th)
    # the therapist (no DC) gets its end pulse as an event
    tev = await v.th.wait_event(alliance="pulse", timeout=5)
    check_pulse(tev.data, kind="end", instrument="ap-therapist-end", pulse_id=ids[1],
                expires_max=GRACE_S)
    await asyncio.sleep(2)              # the client comes back a little later
    cl2 = await sc.handle()
    r = await cl2.request({"request": "join", "role": "client", "invite": v.invite,
                           "rejoin_key": v.rejoin_key, "consent": {"research": True}})
    j = expect(r, "joined")
    assert j.get("state") == "ended", j.get("state")
    pev = await cl2.wait_event(alliance="pulse", timeout=5)
    # right after its `joined` answer
    i_joined = next(i for i, e in enumerate(cl2.events) if e.alliance == "joined")
    i_pulse = cl2.events.index(pev)
    assert i_joined < i_pulse, "the end pulse came before the `joined` answer"
    check_pulse(pev.data, kind="end", instrument="ap-end", pulse_id=ids[0], items=AP_END_ITEMS)
    assert pev.data["expires_in_s"] <= GRACE_S - 1, pev.data
    row = await store.wait_row(db, "SELECT * FROM pulses WHERE pulse_id = ?", (ids[0],),
                               lambda r: r["status"] == "delivered")
    if row["delivered_via"] != "event":      # checked at the end, so the rest still runs
        problems.append(f"B: end pulse delivered as an event on re-join, but the pulses row "
                        f"says delivered_via={row['delivered_via']!r}")
    expect_stored(await api_answer(cl2, ids[0], END_ANSWER), ids[0], True)
    got = store.answer_of(db, ids[0])
    assert got["items"] == {k: float(x) for k, x in END_ANSWER.items()}, got
    assert close_to(got["scores"].get("total"), 32.7), got
    return v, cl2, t_end, ids


async def assert_closed_and_expired_a(v, t_end, ids, db):
    for h in (v.th, v.cl):
        ev = await h.wait_event(alliance="closed", timeout=GRACE_S + 5)
        assert ev.data.get("visit_id") == v.visit_id, ev.data
    waited = time.monotonic() - t_end
    assert GRACE_S - 0.5 <= waited <= GRACE_S + 3, f"closed {waited:.1f} s after end"
    vrow = await store.wait_row(db, "SELECT * FROM visits WHERE visit_id = ?", (v.visit_id,),
                                lambda r: r["state"] == "closed")
    assert vrow["closed_at"] is not None
    # a late answer on the DC: refused as expired, nothing stored
    before = store.visit_snapshot(db, v.visit_id)
    err = await dc_answer(v.pc, ids[0], {"goals": 1, "tasks": 1, "bond": 1, "overall": 1},
                          expect="error")
    assert err.get("code") == "expired", f"late DC answer after close: {err}"
    assert store.visit_snapshot(db, v.visit_id) == before


async def assert_closed_and_expired_b(v, cl2, t_end, ids, db):
    for h in (v.th, cl2):
        ev = await h.wait_event(alliance="closed", timeout=GRACE_S + 5)
        assert ev.data.get("visit_id") == v.visit_id, ev.data
    await store.wait_row(db, "SELECT * FROM visits WHERE visit_id = ?", (v.visit_id,),
                         lambda r: r["state"] == "closed")
    before = store.visit_snapshot(db, v.visit_id)
    r = await api_answer(v.th, ids[1], T_END_ANSWER)
    assert r.data.get("alliance") == "error" and r.data.get("error_code") == 490, \
        f"late `answer` after close: {r!r}"
    assert store.visit_snapshot(db, v.visit_id) == before
    got = store.answer_of(db, ids[1])
    assert got["answer"] is None, got
    assert store.one(db, "SELECT status FROM pulses WHERE pulse_id = ?", (ids[1],))["status"] == "expired"


@pytest.mark.timeout_s(60)
async def test_end_pulses_grace_and_close(janus, keys):
    db = janus.db_path
    problems = []
    async with Scope(janus) as sc:
        (a, ta, ida), (b, cl2, tb, idb) = await asyncio.gather(
            scenario_in_call(sc, keys, db), scenario_rejoin(sc, keys, db, problems))
        results = await asyncio.gather(assert_closed_and_expired_a(a, ta, ida, db),
                                       assert_closed_and_expired_b(b, cl2, tb, idb, db),
                                       return_exceptions=True)
        problems += [f"{name}: {r!r}" for name, r in zip(("A (in call)", "B (re-joined)"), results)
                     if isinstance(r, BaseException)]
    assert not problems, "\n".join(problems)
