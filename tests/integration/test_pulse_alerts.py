"""Alerts across visits, research consent, and the plugin's events for
pipelines (Janus event handlers).

No media here: pulses to participants without a data channel arrive as
Janus events and are answered with the `answer` request. This Janus loads
the stock sample event handler, which POSTs every plugin event to a
collector in the client namespace (`janus.collector`, harness/evh.py).
"""
import json
import secrets

import pytest

from harness import store
from harness.alliance import Scope, expect
from harness.api import SEEN_SECRETS
from harness.pulses import (AP_END_ITEMS, api_answer, check_pulse, close_to, expect_stored,
                            live_visit, trigger)

GRACE_S = 3
ALLIANCE_CONFIG = {"events": True, "end_grace_s": GRACE_S}
ALLIANCE_EVENT_HANDLER = "plugins"


def code(prefix):
    """A client code of its own per run, so earlier runs' rows (same
    module, same db) never form a baseline."""
    return f"{prefix}-{secrets.token_hex(3)}"


def end_answer(total):
    """ap-end responses (4 VAS items, step 0.1) summing to `total`."""
    base = round(total / 4, 1)
    vals = [base, base, base, round(total - 3 * base, 1)]
    assert all(0 <= x <= 10 for x in vals) and abs(sum(vals) - total) < 1e-9
    return dict(zip(AP_END_ITEMS, vals))


async def visit_with_end_answer(sc, keys, client_code, total):
    """One visit: live, `end`, the client answers its end pulse (an event)
    with the `answer` request. Returns (visit, client end pulse id)."""
    v = await live_visit(sc, keys, client_code)
    d = expect(await v.th.request({"request": "end"}), "ended")
    cpid = d["pulse_ids"][0]
    ev = await v.cl.wait_event(alliance="pulse", timeout=5)
    check_pulse(ev.data, kind="end", instrument="ap-end", pulse_id=cpid, items=AP_END_ITEMS)
    expect_stored(await api_answer(v.cl, cpid, end_answer(total)), cpid, True)
    assert close_to(store.answer_of(janus_db(sc), cpid)["scores"].get("total"), total)
    return v, cpid


def janus_db(sc):
    return sc.server.db_path


@pytest.mark.timeout_s(40)
async def test_drop_alert_across_visits(janus, keys):
    """ap-end: totals 34 and 36 in two visits, then 29: baseline 35, a drop
    of 6 >= 5 -> `drop` (and 29 < 30 -> `below_cutoff`) on the third visit
    only. Another client's low scores do not count towards this baseline."""
    db = janus.db_path
    cc = code("C-A400")
    async with Scope(janus) as sc:
        # another client's history must not matter
        other = code("C-A4XX")
        for total in (20.0, 20.0):
            await visit_with_end_answer(sc, keys, other, total)
        for i, total in enumerate((34.0, 36.0)):
            v, cpid = await visit_with_end_answer(sc, keys, cc, total)
            assert await v.th.no_event("alert", 0.7), f"alert on visit {i + 1} (total {total})"
            assert store.rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (v.visit_id,)) == []
        v, cpid = await visit_with_end_answer(sc, keys, cc, 29.0)
        got = {}
        for _ in range(2):
            ev = await v.th.wait_event(alliance="alert", timeout=5)
            got[ev.data.get("rule")] = ev.data
        assert set(got) == {"drop", "below_cutoff"}, got
        drop = got["drop"]
        assert drop.get("pulse_id") == cpid and drop.get("score_name") == "total", drop
        assert close_to(drop.get("score"), 29.0), drop
        # the plugin reports the baseline (mean of 34 and 36) as the drop's threshold
        assert close_to(drop.get("threshold"), 35.0), drop
        assert isinstance(drop.get("message"), str) and drop["message"], drop
        cut = got["below_cutoff"]
        assert close_to(cut.get("score"), 29.0) and close_to(cut.get("threshold"), 30.0), cut
        assert await v.th.no_event("alert", 0.5), "more than two alerts"
        rows = await store.wait_rows(db, "SELECT * FROM alerts WHERE visit_id = ? ORDER BY rule",
                                     (v.visit_id,), lambda rs: len(rs) == 2)
        assert [(r["rule"], r["pulse_id"], r["score_name"]) for r in rows] == \
            [("below_cutoff", cpid, "total"), ("drop", cpid, "total")], rows
        assert close_to(rows[1]["score"], 29.0) and close_to(rows[1]["threshold"], 35.0), rows
        # the event handlers heard of the drop alert too
        await janus.collector.wait_plugin_event(
            lambda d: d.get("event") == "alert" and d.get("rule") == "drop"
            and d.get("pulse_id") == cpid and d.get("visit_id") == v.visit_id, timeout=5)


@pytest.mark.timeout_s(30)
async def test_research_consent_false(janus, keys):
    """A client who declined research consent: answers are stored with
    answers.research_consent = 0, and alerts (care, not research) still come."""
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, code("C-A401"), research=False)
        part = await store.wait_rows(db, "SELECT research_consent FROM participants "
                                     "WHERE visit_id = ? AND role = 'client'", (v.visit_id,))
        assert [p["research_consent"] for p in part] == [0], part
        [pid] = await trigger(v.th)
        ev = await v.cl.wait_event(alliance="pulse", timeout=5)
        check_pulse(ev.data, kind="in_session", instrument="ap-pulse", pulse_id=pid)
        expect_stored(await api_answer(v.cl, pid, {"understood": 2, "focus": 3}, final=False),
                      pid, False)
        assert store.answer_of(db, pid)["answer"]["research_consent"] == 0
        expect_stored(await api_answer(v.cl, pid, {"focus": 3.5}), pid, True)
        got = store.answer_of(db, pid)
        assert got["answer"]["research_consent"] == 0, got["answer"]
        assert got["answer"]["final"] == 1 and close_to(got["scores"].get("total"), 5.5), got
        al = await v.th.wait_event(alliance="alert", timeout=5)
        assert al.data.get("rule") == "below_cutoff" and al.data.get("pulse_id") == pid, al.data
        assert close_to(al.data.get("score"), 5.5), al.data
        rows = await store.wait_rows(db, "SELECT * FROM alerts WHERE visit_id = ?", (v.visit_id,))
        assert len(rows) == 1 and rows[0]["rule"] == "below_cutoff", rows
        # and a consenting client's answers say 1 (same Janus, same code path)
        w = await live_visit(sc, keys, code("C-A402"), research=True)
        [pid2] = await trigger(w.th)
        await w.cl.wait_event(alliance="pulse", timeout=5)
        expect_stored(await api_answer(w.cl, pid2, {"understood": 9, "focus": 9}), pid2, True)
        assert store.answer_of(db, pid2)["answer"]["research_consent"] == 1


@pytest.mark.timeout_s(30)
async def test_plugin_events_for_pipelines(janus, keys):
    """With `events = true` and Janus's sample event handler on, a visit's
    life reaches the handlers as plugin events: created, joined, admitted,
    pulse, answer (with scores when final, never item values, codes or
    keys), alert, ended, closed -- each with the right visit_id / pulse_id."""
    col = janus.collector
    assert col is not None
    client_code = code("C-A403")
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, client_code)
        vid = v.visit_id

        def of(kind, **fields):
            return lambda d: d.get("event") == kind and d.get("visit_id") == vid and \
                all(d.get(k) == x for k, x in fields.items())

        await col.wait_plugin_event(of("created"), timeout=5)
        await col.wait_plugin_event(of("joined", role="therapist"), timeout=5)
        await col.wait_plugin_event(of("joined", role="client"), timeout=5)
        await col.wait_plugin_event(of("admitted"), timeout=5)

        [pid] = await trigger(v.th)
        await v.cl.wait_event(alliance="pulse", timeout=5)
        pev = await col.wait_plugin_event(of("pulse", pulse_id=pid), timeout=5)
        assert pev.get("kind") == "in_session" and pev.get("target") == "client", pev
        assert pev.get("instrument") == "ap-pulse" and pev.get("trigger") == "therapist", pev

        # distinctive item values: 7.3 + 2.6 = 9.9
        expect_stored(await api_answer(v.cl, pid, {"understood": 7.3, "focus": 2.6}), pid, True)
        aev = await col.wait_plugin_event(of("answer", pulse_id=pid), timeout=5)
        assert aev.get("final") is True, aev
        scores = aev.get("scores")
        assert isinstance(scores, dict) and close_to(scores.get("total"), 9.9), aev
        text = json.dumps({k: x for k, x in aev.items() if not k.startswith("_")})
        for item in ("understood", "focus", "responses", "items"):
            assert item not in text, f"answer event names {item!r}: {text}"
        for val in ("7.3", "2.6"):
            assert val not in text, f"answer event carries the item value {val}: {text}"
        for c in (client_code, "T-01"):
            assert c not in text, f"answer event carries the code {c!r}: {text}"

        alev = await col.wait_plugin_event(of("alert", pulse_id=pid), timeout=5)
        assert alev.get("rule") == "below_cutoff" and close_to(alev.get("score"), 9.9), alev
        assert close_to(alev.get("threshold"), 12), alev
        await v.th.wait_event(alliance="alert", timeout=5)

        # a partial answer: an `answer` event with final false, no scores, no item values
        [pid2] = await trigger(v.th)
        await v.cl.wait_event(alliance="pulse", timeout=5)
        expect_stored(await api_answer(v.cl, pid2, {"understood": 4.7}, final=False), pid2, False)
        part = await col.wait_plugin_event(of("answer", pulse_id=pid2), timeout=5)
        assert part.get("final") is False and "scores" not in part, part
        ptext = json.dumps({k: x for k, x in part.items() if not k.startswith("_")})
        assert "understood" not in ptext and "4.7" not in ptext, ptext

        expect(await v.th.request({"request": "end"}), "ended")
        await col.wait_plugin_event(of("ended"), timeout=5)
        await v.th.wait_event(alliance="closed", timeout=GRACE_S + 5)
        await col.wait_plugin_event(of("closed"), timeout=5)

    # no key, invite or rejoin key anywhere in what the handlers got
    everything = json.dumps(col.snapshot())
    leaked = [s for s in set(SEEN_SECRETS) if s and s in everything]
    assert not leaked, f"{len(leaked)} credential value(s) appear in the plugin events"
    for k in keys.therapists.values():
        assert k not in everything
    assert not col.bad, f"sampleevh posted bodies that are not JSON: {col.bad[:2]}"
