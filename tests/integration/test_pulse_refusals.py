"""Every refused answer, over both paths: the data channel (`error` with a
slug, echoing `ref`) and the `answer` request (error codes 487-495, 474,
473, 479). After each refusal every stored row about the visit (pulses,
answers, answer_items, scores, alerts) is unchanged, and a second final
answer never overwrites the first. Pulses here do not expire during the
test (`pulse_expires_s` 3600: a long run of refusals on a loaded machine
must not race the expiry); `expired` is in test_pulse_expiry.py.
"""
import asyncio

import pytest

from harness import store
from harness.alliance import (Scope, create_visit, expect, expect_error, join_client,
                              join_therapist)
from harness.pulses import (PULSE_ERRORS, api_answer, check_pulse, close_to, dc_answer,
                            expect_stored, live_visit, trigger)

ALLIANCE_CONFIG = {"extra_general": "pulse_expires_s = 3600"}

# (slug, responses) that are wrong whatever the pulse's state
BAD_VALUES = [
    ("unknown_item", {"understood": 5, "bogus": 1}),
    ("unknown_item", {"Understood": 5}),
    ("out_of_range", {"understood": 10.1}),
    ("out_of_range", {"understood": -0.1}),
    ("out_of_range", {"understood": 5.05}),           # off the 0.1 grid
    ("out_of_range", {"understood": 1e308}),
    ("wrong_type", {"understood": "5"}),
    ("wrong_type", {"understood": None}),
    ("wrong_type", {"understood": True}),
    ("wrong_type", {"understood": [5]}),
    ("wrong_type", {"understood": {"v": 5}}),
]


async def settled(db, visit_id, n_pulses):
    """Wait until the visit's n pulses are stored and no longer `pending`
    (their delivery was recorded), so that a snapshot is stable."""
    await store.wait_rows(db, "SELECT status FROM pulses WHERE visit_id = ?", (visit_id,),
                          lambda rs: len(rs) == n_pulses and all(r["status"] != "pending" for r in rs))


class Unchanged:
    """`async with Unchanged(db, visit_id, what):` asserts the visit's stored
    rows are the same after the block as before it."""

    def __init__(self, db, visit_id, what):
        self.db, self.visit_id, self.what = db, visit_id, what

    async def __aenter__(self):
        self.before = store.visit_snapshot(self.db, self.visit_id)
        return self

    async def __aexit__(self, exc_type, *exc):
        if exc_type is not None:
            return False
        await asyncio.sleep(0.05)            # anything wrongly queued would be committed by now
        after = store.visit_snapshot(self.db, self.visit_id)
        for table in self.before:
            assert after[table] == self.before[table], \
                f"{self.what} changed the store ({table}):\n before {self.before[table]}\n after  {after[table]}"
        return False


async def dc_refused(peer, db, visit_id, slug, pulse_id=None, responses=None, **kw):
    async with Unchanged(db, visit_id, f"a refused DC message ({slug})"):
        err = await dc_answer(peer, pulse_id, responses, expect="error", **kw)
        assert err.get("code") == slug, f"expected {slug}, got {err} for {pulse_id} {responses} {kw}"
        assert err.get("v") == 1 and isinstance(err.get("reason"), str) and err["reason"], err
        return err


async def api_refused(h, db, visit_id, code, pulse_id, responses=None, **kw):
    async with Unchanged(db, visit_id, f"a refused `answer` ({code})"):
        return expect_error(await api_answer(h, pulse_id, responses, **kw), code)


@pytest.mark.timeout_s(60)
async def test_refusals_on_the_datachannel(janus, keys):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-R200", media=True)
        vid = v.visit_id
        [pid] = await trigger(v.th)
        check_pulse(await v.pc.wait_message(type="pulse", timeout=5), kind="in_session",
                    instrument="ap-pulse", pulse_id=pid)
        [tpid] = await trigger(v.th, target="therapist")
        await v.pt.wait_message(type="pulse", timeout=5)
        await settled(db, vid, 2)

        # -- refused whatever the values
        await dc_refused(v.pc, db, vid, "unknown_pulse", "no-such-pulse", {"understood": 5, "focus": 5})
        await dc_refused(v.pc, db, vid, "unknown_pulse", "x" * 200, {"understood": 5, "focus": 5})
        await dc_refused(v.pc, db, vid, "unknown_pulse", "no-such-pulse", msg_type="dismiss")
        await dc_refused(v.pc, db, vid, "not_yours", tpid, {"understood": 5, "focus": 5})
        await dc_refused(v.pc, db, vid, "not_yours", tpid, msg_type="dismiss")
        await dc_refused(v.pt, db, vid, "not_yours", pid, {"understood": 5, "focus": 5})
        # -- envelope
        await dc_refused(v.pc, db, vid, "bad_responses", pid, {})
        await dc_refused(v.pc, db, vid, "bad_responses", pid, [5, 5])
        await dc_refused(v.pc, db, vid, "bad_responses", pid, "understood=5")
        await dc_refused(v.pc, db, vid, "bad_responses", raw={"pulse_id": pid})
        await dc_refused(v.pc, db, vid, "bad_message", pid, {"understood": 5, "focus": 5}, final="yes")
        await dc_refused(v.pc, db, vid, "bad_message", raw={"responses": {"understood": 5, "focus": 5}})
        await dc_refused(v.pc, db, vid, "bad_message", raw={"pulse_id": 7, "responses": {"understood": 5}})
        # -- values, final and partial alike: nothing is stored if one entry is wrong
        for slug, resp in BAD_VALUES:
            await dc_refused(v.pc, db, vid, slug, pid, resp)
            await dc_refused(v.pc, db, vid, slug, pid, {"focus": 5, **resp}, final=False)
        # -- a final answer missing an item (final explicit and by default)
        await dc_refused(v.pc, db, vid, "incomplete", pid, {"understood": 5})
        await dc_refused(v.pc, db, vid, "incomplete", pid, {"focus": 5}, final=True)
        assert store.answer_of(db, pid)["answer"] is None

        # a partial answer is stored; a bad completion leaves it as it was
        ack = await dc_answer(v.pc, pid, {"understood": 6.6}, final=False)
        assert ack.get("complete") is False
        await dc_refused(v.pc, db, vid, "out_of_range", pid, {"focus": 11})
        await dc_refused(v.pc, db, vid, "unknown_item", pid, {"focus": 5, "mood": 3})
        assert store.answer_of(db, pid)["items"] == {"understood": 6.6}
        ack = await dc_answer(v.pc, pid, {"focus": 6.5}, final=True)
        assert ack.get("complete") is True
        first = store.answer_of(db, pid)
        assert first["items"] == {"understood": 6.6, "focus": 6.5} and \
            close_to(first["scores"].get("total"), 13.1), first

        # -- already answered: a second final, a partial, a dismissal; nothing overwrites
        await dc_refused(v.pc, db, vid, "already_answered", pid, {"understood": 1, "focus": 1})
        await dc_refused(v.pc, db, vid, "already_answered", pid, {"understood": 1}, final=False)
        await dc_refused(v.pc, db, vid, "already_answered", pid, msg_type="dismiss")
        assert store.answer_of(db, pid) == first

        # -- dismiss: acked as dismissed, stored as declined; then closed for answers
        [pid2] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", pulse_id=pid2, timeout=5)
        await dc_answer(v.pc, pid2, {"understood": 2}, final=False)
        ack = await dc_answer(v.pc, pid2, msg_type="dismiss")
        assert ack.get("dismissed") is True and ack.get("stored") is True, ack
        d = store.answer_of(db, pid2)
        assert (d["answer"]["dismissed"], d["answer"]["final"]) == (1, 0), d
        assert d["scores"] == {}, d
        assert store.one(db, "SELECT status FROM pulses WHERE pulse_id = ?", (pid2,))["status"] == "dismissed"
        await dc_refused(v.pc, db, vid, "already_answered", pid2, {"understood": 5, "focus": 5})
        await dc_refused(v.pc, db, vid, "already_answered", pid2, msg_type="dismiss")

        # no alert came from any of this (13.1 is above the cutoff)
        assert store.rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (vid,)) == []
        assert janus.alive()


@pytest.mark.timeout_s(60)
async def test_refusals_of_the_answer_request(janus, keys):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-R201")            # no media: pulses as events
        vid = v.visit_id
        [pid] = await trigger(v.th)
        ev = await v.cl.wait_event(alliance="pulse", timeout=5)
        check_pulse(ev.data, kind="in_session", instrument="ap-pulse", pulse_id=pid)
        await settled(db, vid, 1)

        # -- the `pulse` request itself
        async with Unchanged(db, vid, "refused `pulse` requests"):
            for target in ("client", "both"):
                expect_error(await v.th.request({"request": "pulse", "target": target}),
                             PULSE_ERRORS["pulse_pending"])
            expect_error(await v.cl.request({"request": "pulse"}), 479)
            expect_error(await v.cl.request({"request": "pulse", "target": "therapist"}), 479)
            expect_error(await v.th.request({"request": "pulse", "target": "nobody"}), 474)
        assert not v.cl.unconsumed("pulse")
        [tpid] = await trigger(v.th, target="therapist")
        await v.th.wait_event(alliance="pulse", timeout=5)
        await settled(db, vid, 2)
        expect_error(await v.th.request({"request": "pulse", "target": "therapist"}), 487)

        ok = {"understood": 5, "focus": 5}
        await api_refused(v.cl, db, vid, 488, "no-such-pulse", ok)
        await api_refused(v.cl, db, vid, 488, vid + "-99", ok)
        await api_refused(v.cl, db, vid, 491, tpid, ok)
        await api_refused(v.th, db, vid, 491, pid, ok)
        # shape: responses {} / not an object / missing, pulse_id missing or not a string,
        # final not a boolean
        await api_refused(v.cl, db, vid, 474, pid, {})
        await api_refused(v.cl, db, vid, 474, pid, [5, 5])
        await api_refused(v.cl, db, vid, 474, pid, "understood=5")
        await api_refused(v.cl, db, vid, 473, pid)
        await api_refused(v.cl, db, vid, 474, 7, ok)
        await api_refused(v.cl, db, vid, 474, pid, ok, final="yes")
        async with Unchanged(db, vid, "`answer` without pulse_id"):
            expect_error(await v.cl.request({"request": "answer", "responses": ok}), 473)
        for slug, resp in BAD_VALUES:
            await api_refused(v.cl, db, vid, PULSE_ERRORS[slug], pid, resp)
            await api_refused(v.cl, db, vid, PULSE_ERRORS[slug], pid, {"focus": 5, **resp}, final=False)
        await api_refused(v.cl, db, vid, 495, pid, {"understood": 5})
        await api_refused(v.cl, db, vid, 495, pid, {"focus": 5}, final=True)
        assert store.answer_of(db, pid)["answer"] is None

        # partial, then the completion
        expect_stored(await api_answer(v.cl, pid, {"understood": 3.3}, final=False), pid, False)
        await api_refused(v.cl, db, vid, 493, pid, {"focus": 10.01})
        await api_refused(v.cl, db, vid, 495, pid, {"understood": 4})     # focus still missing
        expect_stored(await api_answer(v.cl, pid, {"focus": 4.4}), pid, True)
        first = store.answer_of(db, pid)
        assert first["items"] == {"understood": 3.3, "focus": 4.4} and \
            close_to(first["scores"].get("total"), 7.7), first
        # 7.7 < 12: this one raised an alert (the therapist has no DC: event only);
        # its row is written after the answer's commit, so wait for it first
        al = await v.th.wait_event(alliance="alert", timeout=5)
        assert al.data.get("pulse_id") == pid and al.data.get("rule") == "below_cutoff", al.data
        await store.wait_rows(db, "SELECT * FROM alerts WHERE pulse_id = ?", (pid,))
        # a second final answer is refused and never overwrites; so is a late partial
        await api_refused(v.cl, db, vid, 489, pid, {"understood": 9, "focus": 9})
        await api_refused(v.cl, db, vid, 489, pid, {"understood": 9}, final=False)
        assert store.answer_of(db, pid) == first

        # and the visit goes on: a new pulse can be sent and answered
        [pid4] = await trigger(v.th)
        await v.cl.wait_event(alliance="pulse", timeout=5)
        expect_stored(await api_answer(v.cl, pid4, {"understood": 9, "focus": 9}), pid4, True)


async def test_answer_before_join_and_from_another_visit(janus, keys):
    """`answer` needs a joined participant (480), and a pulse of another
    visit is unknown to this one (488), on both paths."""
    db = janus.db_path
    async with Scope(janus) as sc:
        a = await live_visit(sc, keys, "C-R202")
        b = await live_visit(sc, keys, "C-R203")
        [pa] = await trigger(a.th)
        await a.cl.wait_event(alliance="pulse", timeout=5)
        await settled(db, a.visit_id, 1)
        nobody = await sc.handle()
        await api_refused(nobody, db, a.visit_id, 480, pa, {"understood": 5, "focus": 5})
        await api_refused(b.cl, db, a.visit_id, 488, pa, {"understood": 5, "focus": 5})
        await api_refused(b.th, db, a.visit_id, 488, pa, {"understood": 5, "focus": 5})
        expect_stored(await api_answer(a.cl, pa, {"understood": 5, "focus": 7}), pa, True)


async def test_pulse_when_none_is_possible(janus, keys):
    """`pulse` is refused with 483 while the visit is not live (nobody
    admitted yet), when the target is not in the visit, and after `end`;
    a refused `pulse` creates nothing."""
    db = janus.db_path
    key = keys.therapist("T-01")
    async with Scope(janus) as sc:
        th = await sc.handle()
        created = await create_visit(th, key, "C-R204")
        vid = created["visit_id"]
        await join_therapist(th, vid, key)
        for target in ("client", "therapist", "both"):
            expect_error(await th.request({"request": "pulse", "target": target}), 483)
        cl = await sc.handle()
        await join_client(cl, created["invite"])
        await th.wait_event(alliance="waiting", timeout=5)
        expect_error(await th.request({"request": "pulse"}), 483)          # waiting, not live
        expect(await th.request({"request": "admit"}), "admitted")
        expect(await cl.request({"request": "leave"}), "left")
        await th.wait_event(alliance="participant_left", timeout=5)
        expect_error(await th.request({"request": "pulse"}), 483)          # client away
        expect_error(await th.request({"request": "pulse", "target": "both"}), 483)
        [tp] = await trigger(th, target="therapist")                        # the therapist is there
        assert not [e for e in cl.unconsumed("pulse")], "a pulse reached the client who left"
        ended = expect(await th.request({"request": "end"}), "ended")
        # (while its end pulse is open the therapist would get 487; answer it first)
        await th.wait_event(lambda e: e.data.get("pulse_id") == ended["pulse_ids"][1],
                            alliance="pulse", timeout=5)
        expect_stored(await api_answer(th, ended["pulse_ids"][1],
                                       {"goals": 5, "tasks": 5, "bond": 5, "overall": 5}),
                      ended["pulse_ids"][1], True)
        expect_error(await th.request({"request": "pulse", "target": "therapist"}), 483)
        rows = await store.wait_rows(db, "SELECT pulse_id, role, kind FROM pulses WHERE visit_id = ? "
                                     "ORDER BY created_at, pulse_id", (vid,), lambda rs: len(rs) == 3)
        assert [(r["pulse_id"], r["role"], r["kind"]) for r in rows] == \
            [(tp, "therapist", "in_session"), (ended["pulse_ids"][0], "client", "end"),
             (ended["pulse_ids"][1], "therapist", "end")], rows


async def test_dismiss_request_without_a_datachannel(janus, keys):
    """The kiosk's "Not now": the `dismiss` request stores the pulse as
    declined (after the commit), a second dismiss or an answer is refused
    with 489, and a new pulse may then be sent."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-DS1")
        (pid,) = await trigger(v.th)
        ev = await v.cl.wait_event(alliance="pulse", timeout=5)
        assert ev.data.get("pulse_id") == pid, ev.data
        d = expect(await v.cl.request({"request": "dismiss", "pulse_id": pid}), "dismissed")
        assert d.get("pulse_id") == pid and d.get("stored") is True, d
        a = store.answer_of(janus.db_path, pid)["answer"]
        assert a is not None and a["dismissed"] == 1 and a["final"] == 0, a
        assert store.one(janus.db_path, "SELECT status FROM pulses WHERE pulse_id = ?", (pid,))["status"] == "dismissed"
        expect_error(await v.cl.request({"request": "dismiss", "pulse_id": pid}), 489)
        expect_error(await v.cl.request({"request": "answer", "pulse_id": pid,
                                         "responses": {"understood": 5, "focus": 5}}), 489)
        expect_error(await v.th.request({"request": "dismiss", "pulse_id": pid}), 491)
        expect_error(await v.cl.request({"request": "dismiss"}), 473)
        (pid2,) = await trigger(v.th)
        assert pid2 != pid
