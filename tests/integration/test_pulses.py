"""Pulses end to end: a scheduled pulse (3 s after admission, plugin
setting `in_session_at_s`) and a therapist-triggered one reach the client's
`alliance` data channel in a real A/V call; the client answers on the data
channel, the ack arrives, and what the store holds afterwards (read with
sqlite3) is right: items, scores, the below-cutoff alert (therapist's data
channel AND Janus event AND `alerts` row), partial answers completed later.
Also: pulses to the therapist and to both, a per-visit schedule overriding
the plugin's, and a German pulse for a client who joined with `language`.
"""
import asyncio
import json
import time

import pytest

from harness import store
from harness.alliance import Scope, expect_error, status
from harness.pulses import (AP_PULSE_ITEMS, api_answer, check_pulse, close_to, dc_answer,
                            expect_stored, live_visit, no_dc_message, trigger)

SCHEDULE_S = 3
ALLIANCE_CONFIG = {"extra_general": f'in_session_at_s = "{SCHEDULE_S}"'}


def pulse_row(janus, pid):
    return store.one(janus.db_path, "SELECT * FROM pulses WHERE pulse_id = ?", (pid,))


@pytest.mark.timeout_s(60)
async def test_scheduled_and_triggered_pulses_on_datachannel(janus, keys):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-P100", media=True)

        # 1. the scheduled pulse: 3 s after admission, on the client's DC
        p = await v.pc.wait_message(type="pulse", timeout=SCHEDULE_S + 5)
        after = time.monotonic() - v.admitted_at
        assert SCHEDULE_S - 0.5 <= after <= SCHEDULE_S + 2.5, \
            f"scheduled pulse came {after:.2f} s after admission, expected ~{SCHEDULE_S}"
        assert p.get("v") == 1
        check_pulse(p, kind="in_session", instrument="ap-pulse", items=AP_PULSE_ITEMS,
                    expires_max=120)
        assert p["instrument"]["title"] == "Quick check-in", p["instrument"]["title"]
        pid = p["pulse_id"]
        await no_dc_message(v.pt, 0.2, type="pulse")           # it was for the client only
        assert not v.cl.unconsumed("pulse"), "pulse also sent as a Janus event"
        row = await store.wait_row(db, "SELECT * FROM pulses WHERE pulse_id = ?", (pid,),
                                   lambda r: r["status"] == "delivered")
        assert (row["visit_id"], row["role"], row["kind"], row["instrument_id"],
                row["instrument_version"], row["language"], row["trigger"],
                row["delivered_via"]) == \
            (v.visit_id, "client", "in_session", "ap-pulse", "1.0", "en", "schedule",
             "datachannel"), row

        # the client answers on the DC: understood 7.3 + focus 2.5 = 9.8 (< 12)
        ack = await dc_answer(v.pc, pid, {"understood": 7.3, "focus": 2.5})
        assert ack.get("v") == 1 and ack.get("stored") is True and ack.get("complete") is True, ack
        # the ack is sent after the commit: the rows are there already, no waiting
        got = store.answer_of(db, pid)
        a = got["answer"]
        assert a is not None, "acked answer is not in the store"
        assert (a["final"], a["dismissed"], a["research_consent"]) == (1, 0, 1), a
        assert a["time_to_answer_ms"] is not None and 0 <= a["time_to_answer_ms"] < 10000, a
        assert got["items"] == {"understood": 7.3, "focus": 2.5}, got["items"]
        assert set(got["scores"]) == {"total"} and close_to(got["scores"]["total"], 9.8), got
        assert pulse_row(janus, pid)["status"] == "answered"

        # below the cutoff (12): the therapist gets an alert on the DC and as an event
        al = await v.pt.wait_message(type="alert", timeout=5)
        assert al.get("pulse_id") == pid and al.get("rule") == "below_cutoff", al
        assert al.get("score_name") == "total" and close_to(al.get("score"), 9.8), al
        assert close_to(al.get("threshold"), 12), al
        # the quality context of the pulse: null until metering lands, then an object
        assert "quality" in al and (al["quality"] is None or isinstance(al["quality"], dict)), al
        assert isinstance(al.get("message"), str) and al["message"], al
        ev = await v.th.wait_event(alliance="alert", timeout=5)
        for k in ("pulse_id", "rule", "score_name", "score", "threshold", "quality"):
            assert ev.data.get(k) == al.get(k), f"alert event {k}: {ev.data.get(k)!r} != DC {al.get(k)!r}"
        # (the alert row is queued before the alert is sent, committed soon after)
        alerts = await store.wait_rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (v.visit_id,))
        assert len(alerts) == 1, alerts
        assert (alerts[0]["pulse_id"], alerts[0]["rule"], alerts[0]["score_name"]) == \
            (pid, "below_cutoff", "total"), alerts
        assert close_to(alerts[0]["score"], 9.8) and close_to(alerts[0]["threshold"], 12), alerts
        # the stored quality context is the one the therapist was shown
        qj = alerts[0]["quality_json"]
        assert (qj is None and al["quality"] is None) or \
            (qj is not None and json.loads(qj) == al["quality"]), (qj, al["quality"])
        # ... and the client does not
        await no_dc_message(v.pc, 0.3, type="alert")
        assert not v.cl.unconsumed("alert"), "the client got an alert event"

        # 2. a therapist-triggered pulse, answered in two parts
        ids = await trigger(v.th)
        assert len(ids) == 1 and ids[0] != pid, ids
        pid2 = ids[0]
        p2 = await v.pc.wait_message(type="pulse", timeout=5)
        check_pulse(p2, kind="in_session", instrument="ap-pulse", pulse_id=pid2,
                    items=AP_PULSE_ITEMS, expires_max=120)
        row = await store.wait_row(db, "SELECT * FROM pulses WHERE pulse_id = ?", (pid2,),
                                   lambda r: r["status"] == "delivered")
        assert (row["trigger"], row["delivered_via"]) == ("therapist", "datachannel"), row

        ack = await dc_answer(v.pc, pid2, {"understood": 8}, final=False)
        assert ack.get("stored") is True and ack.get("complete") is False, ack
        got = store.answer_of(db, pid2)
        assert got["answer"] is not None and got["answer"]["final"] == 0, got
        assert got["items"] == {"understood": 8.0} and got["scores"] == {}, got
        assert pulse_row(janus, pid2)["status"] == "partial"
        st = await status(v.cl)
        pend = {x.get("pulse_id"): x for x in st.get("pending_pulses", [])}
        assert pid2 in pend and pend[pid2].get("status") == "partial", st.get("pending_pulses")
        # a second partial answer changes the item (not final yet)
        ack = await dc_answer(v.pc, pid2, {"understood": 8.5}, final=False)
        assert ack.get("complete") is False, ack
        assert store.answer_of(db, pid2)["items"] == {"understood": 8.5}
        # the completing answer gives only the missing item; final defaults to true
        ack = await dc_answer(v.pc, pid2, {"focus": 9})
        assert ack.get("complete") is True, ack
        got = store.answer_of(db, pid2)
        assert len(store.rows(db, "SELECT * FROM answers WHERE pulse_id = ?", (pid2,))) == 1
        assert got["answer"]["final"] == 1 and got["answer"]["dismissed"] == 0, got
        assert got["answer"]["first_at"] <= got["answer"]["answered_at"], got
        assert got["items"] == {"understood": 8.5, "focus": 9.0}, got
        assert set(got["scores"]) == {"total"} and close_to(got["scores"]["total"], 17.5), got
        assert pulse_row(janus, pid2)["status"] == "answered"
        # 17.5 is not below 12, and one visit is no baseline: no alert
        await no_dc_message(v.pt, 0.7, type="alert")
        assert not v.th.unconsumed("alert")
        assert len(store.rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (v.visit_id,))) == 1
        st = await status(v.cl)
        assert not [x for x in st.get("pending_pulses", []) if x.get("pulse_id") == pid2], st


@pytest.mark.timeout_s(60)
async def test_pulse_to_therapist_and_to_both(janus, keys):
    db = janus.db_path
    async with Scope(janus) as sc:
        # this visit has no scheduled pulse (per-visit schedule: none)
        v = await live_visit(sc, keys, "C-P101", media=True, schedule={"in_session_at_s": []})
        ids = await trigger(v.th, target="therapist")
        assert len(ids) == 1, ids
        p = await v.pt.wait_message(type="pulse", timeout=5)
        check_pulse(p, kind="in_session", instrument="ap-pulse", pulse_id=ids[0])
        await no_dc_message(v.pc, 0.2, type="pulse")
        row = await store.wait_row(db, "SELECT * FROM pulses WHERE pulse_id = ?", (ids[0],))
        assert row["role"] == "therapist", row
        # the therapist's low rating is stored but raises no alert (alerts are about clients)
        ack = await dc_answer(v.pt, ids[0], {"understood": 1, "focus": 1})
        assert ack.get("complete") is True, ack
        assert close_to(store.answer_of(db, ids[0])["scores"].get("total"), 2.0)
        await no_dc_message(v.pt, 0.7, type="alert")
        assert store.rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (v.visit_id,)) == []

        # both: one pulse each, each on its own DC
        ids = await trigger(v.th, target="both")
        assert len(ids) == 2 and len(set(ids)) == 2, ids
        pc_p = await v.pc.wait_message(type="pulse", timeout=5)
        pt_p = await v.pt.wait_message(type="pulse", timeout=5)
        assert {pc_p["pulse_id"], pt_p["pulse_id"]} == set(ids), (pc_p, pt_p, ids)
        roles = {r["pulse_id"]: r["role"] for r in await store.wait_rows(
            db, "SELECT pulse_id, role FROM pulses WHERE visit_id = ?", (v.visit_id,),
            lambda rs: len(rs) == 3)}
        assert roles[pc_p["pulse_id"]] == "client" and roles[pt_p["pulse_id"]] == "therapist", roles
        # while both are open, a new pulse for either is refused (487)
        for target in ("client", "therapist", "both"):
            expect_error(await v.th.request({"request": "pulse", "target": target}), 487)
        for peer, pid in ((v.pc, pc_p["pulse_id"]), (v.pt, pt_p["pulse_id"])):
            ack = await dc_answer(peer, pid, {"understood": 6, "focus": 7})
            assert ack.get("complete") is True
        # once answered, a new pulse is possible again
        ids = await trigger(v.th, target="both")
        assert len(ids) == 2


@pytest.mark.timeout_s(40)
async def test_per_visit_schedule_and_german(janus, keys):
    """No media: pulses arrive as Janus events. Visit A's schedule [5]
    replaces the plugin's 3 s; its client joined with language "de".
    Visit B's schedule [] means no scheduled pulse at all."""
    db = janus.db_path
    async with Scope(janus) as sc:
        a, b = await asyncio.gather(
            live_visit(sc, keys, "C-P102", language="de", schedule={"in_session_at_s": [5]}),
            live_visit(sc, keys, "C-P103", schedule={"in_session_at_s": []}))
        ev = await a.cl.wait_event(alliance="pulse", timeout=9)
        after = time.monotonic() - a.admitted_at
        assert 4.5 <= after <= 7.5, f"visit A's pulse came {after:.2f} s after admission, expected ~5"
        p = ev.data
        check_pulse(p, kind="in_session", instrument="ap-pulse", lang="de", items=AP_PULSE_ITEMS,
                    expires_max=120)
        assert p["instrument"]["title"] == "Kurze Zwischenfrage", p["instrument"]["title"]
        texts = [it["text"] for it in p["instrument"]["items"]]
        assert texts[0].startswith("Gerade jetzt fühle ich mich"), texts
        assert p["instrument"]["items"][0]["scale"]["min_label"] == "überhaupt nicht"
        row = await store.wait_row(db, "SELECT * FROM pulses WHERE pulse_id = ?", (p["pulse_id"],),
                                   lambda r: r["status"] == "delivered")
        assert (row["language"], row["delivered_via"], row["trigger"]) == \
            ("de", "event", "schedule"), row
        part = await store.wait_rows(db, "SELECT language FROM participants WHERE visit_id = ? "
                                     "AND role = 'client'", (a.visit_id,))
        assert part and part[-1]["language"] == "de", part
        # the kiosk path: the `answer` request
        expect_stored(await api_answer(a.cl, p["pulse_id"], {"understood": 5, "focus": 7}),
                      p["pulse_id"], True)
        got = store.answer_of(db, p["pulse_id"])
        assert got["items"] == {"understood": 5.0, "focus": 7.0} and \
            close_to(got["scores"].get("total"), 12.0), got
        # 12 is not below 12: no alert
        assert await a.th.no_event("alert", 0.5)
        assert store.rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (a.visit_id,)) == []
        # visit B: nothing was scheduled
        assert not b.cl.unconsumed("pulse"), "visit B got a pulse despite schedule []"
        assert store.rows(db, "SELECT * FROM pulses WHERE visit_id = ?", (b.visit_id,)) == []


async def test_named_instrument_likert_reverse_keyed(janus, keys):
    """`pulse` with `"instrument":"ap-tech"`: a 5-point Likert item,
    reverse-keyed; the raw answer is stored, the score is 6 - answer.
    An unknown instrument is refused (474) and creates nothing."""
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-P104", schedule={"in_session_at_s": []})
        expect_error(await v.th.request({"request": "pulse", "instrument": "no-such-instrument"}), 474)
        assert not v.cl.unconsumed("pulse")
        [pid] = await trigger(v.th, instrument="ap-tech")
        p = (await v.cl.wait_event(alliance="pulse", timeout=5)).data
        assert p.get("pulse_id") == pid and p.get("kind") == "in_session", p
        ins = p["instrument"]
        assert ins.get("id") == "ap-tech" and ins.get("lang") == "en", ins
        [item] = ins["items"]
        sc_ = item["scale"]
        assert item["id"] == "disturbance" and sc_.get("type") == "likert", item
        assert (sc_.get("points"), sc_.get("min"), sc_.get("max")) == (5, 1, 5), sc_
        assert sc_.get("labels") == ["not at all", "a little", "somewhat", "quite a bit", "very much"], sc_
        row = await store.wait_row(db, "SELECT * FROM pulses WHERE pulse_id = ?", (pid,),
                                   lambda r: r["status"] == "delivered")
        assert (row["instrument_id"], row["kind"], row["trigger"]) == ("ap-tech", "in_session", "therapist"), row
        assert store.rows(db, "SELECT * FROM pulses WHERE visit_id = ?", (v.visit_id,)) == [row], \
            "the refused pulse request created a pulse"
        for bad, code in ((2.5, 493), (0, 493), (6, 493), ("2", 494)):
            expect_error(await api_answer(v.cl, pid, {"disturbance": bad}), code)
        expect_stored(await api_answer(v.cl, pid, {"disturbance": 2.0}), pid, True)
        got = store.answer_of(db, pid)
        assert got["items"] == {"disturbance": 2.0}, got          # raw value as given
        assert close_to(got["scores"].get("total"), 4.0), got     # 6 - 2
