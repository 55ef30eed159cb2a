"""The therapist's own view of a client: `client_history` (PROTOCOL.md v1.1
"Operations and supervision"; docs/api.md "Client history").

History is seeded the way a clinic makes it, through the real API with no
media (pulses then arrive as Janus events and are answered with the
`answer` request, as in test_reports.py): three earlier visits of one
client with T-01 (end totals 34, 31 and 29 with the therapist's own mirror
ratings 35, 33 and 32; an in-session check-in answered in the second, low
enough for a `below_cutoff` alert; the third's end total under the
instrument's cutoff of 30 raises another), and one visit of the same client
with T-02, which T-01 must never see. Then a fourth visit with T-01:

* before admission, while live and after the end answers, T-01's
  `client_history` of that visit gives the three earlier visits with the
  planted end totals, subscales (the four items), mirror totals, the
  in-session pulse (items, total) and both alerts (rule, pulse kind,
  quality context), and the current visit last, its end totals once
  answered; the answer comes asynchronously (like `report`);
* T-01 with a signed token (this Janus runs in signed-token mode) reads the
  same; a token for T-02's code, T-02's key, an unknown key, an unknown or
  absent visit_id and a bad limit are refused (475/476/473/474) and never
  show a row; T-02 reading its own visit sees only that one visit;
* after `forget` (the supervisor), the client's history is gone (476).

Runs on SQLite and, with ALLIANCE_TEST_DB=postgresql, on PostgreSQL (it
reads the database only through harness/store.py, which speaks both)."""
import secrets

import pytest

from harness import store
from harness.alliance import PLUGIN, Scope, expect, expect_error
from harness.janus import sign_token
from harness.pulses import AP_END_ITEMS, api_answer, close_to, expect_stored, live_visit, trigger

SECRET = "ap-it-" + secrets.token_hex(16)
GRACE_S = 3
ALLIANCE_CONFIG = {"token_secret": SECRET, "end_grace_s": GRACE_S}

# (client end total, therapist end total, in-session check-in or None)
EARLIER = [(34.0, 35.0, None), (31.0, 33.0, {"understood": 5.0, "focus": 4.5}), (29.0, 32.0, None)]
OTHER_THERAPIST_TOTAL = 10.0
CURRENT = (36.0, 34.5)


def items(total):
    """The four 0..10 VAS items of ap-end / ap-therapist-end summing to total."""
    base = round(total / 4, 1)
    vals = [base, base, base, round(total - 3 * base, 1)]
    assert all(0 <= x <= 10 for x in vals) and abs(sum(vals) - total) < 1e-9
    return dict(zip(AP_END_ITEMS, vals))


def therapist_token(code):
    return sign_token(SECRET, [PLUGIN, f"alliance.therapist={code}"])


async def end_and_answer(v, total, ttotal):
    expect(await v.th.request({"request": "end"}), "ended")
    cp = (await v.cl.wait_event(alliance="pulse", timeout=5)).data
    tp = (await v.th.wait_event(alliance="pulse", timeout=5)).data
    assert cp["instrument"]["id"] == "ap-end" and tp["instrument"]["id"] == "ap-therapist-end"
    expect_stored(await api_answer(v.cl, cp["pulse_id"], items(total)), cp["pulse_id"], True)
    expect_stored(await api_answer(v.th, tp["pulse_id"], items(ttotal)), tp["pulse_id"], True)


async def seed_visit(sc, keys, client, therapist, total, ttotal, check_in=None):
    v = await live_visit(sc, keys, client, therapist=therapist, schedule={"in_session_at_s": []})
    if check_in:
        pid = (await trigger(v.th))[0]
        ev = await v.cl.wait_event(alliance="pulse", timeout=5)
        assert ev.data["pulse_id"] == pid and ev.data["kind"] == "in_session", ev.data
        expect_stored(await api_answer(v.cl, pid, check_in), pid, True)
        await v.th.wait_event(alliance="alert", timeout=5)          # below ap-pulse's cutoff of 12
    await end_and_answer(v, total, ttotal)
    return v


async def history(h, **cred_and_body):
    r = await h.request({"request": "client_history", **cred_and_body})
    return r


def check_earlier(d, n_current_answered):
    """The three earlier visits as planted, then the current one."""
    vs = d["visits"]
    assert d["n"] == len(vs) == 4 and d["older"] == 0, [v["visit_id"] for v in vs]
    for k, (v, (total, ttotal, check_in)) in enumerate(zip(vs[:3], EARLIER)):
        assert v["current"] is False and v["modality"] == "video" and v["state"] in ("ended", "closed"), v
        assert v["number"] == k + 1 and "visit_number" not in v, v     # T-02's visit not counted
        ce, te = v["client_end"], v["therapist_end"]
        assert ce["instrument_id"] == "ap-end" and close_to(ce["total"], total), ce
        for item, value in items(total).items():          # each item is a subscale of ap-end
            assert close_to(ce["scores"][item], value), (item, ce["scores"])
            assert close_to(ce["items"][item], value), (item, ce["items"])
        assert te["instrument_id"] == "ap-therapist-end" and close_to(te["total"], ttotal), te
        if check_in:
            assert len(v["pulses"]) == 1, v["pulses"]
            p = v["pulses"][0]
            assert p["kind"] == "in_session" and p["role"] == "client" and p["status"] == "answered", p
            assert close_to(p["total"], sum(check_in.values())) and p["items"] == check_in, p
            assert isinstance(p["created_at"], int) and isinstance(p["answered_at"], int), p
        else:
            assert v["pulses"] == [], v["pulses"]
    # alerts: the check-in's (visit 2) and the low end total's (visit 3)
    a2 = [a for a in vs[1]["alerts"] if a["rule"] == "below_cutoff"]
    assert len(a2) == 1 and a2[0]["pulse_kind"] == "in_session" and close_to(a2[0]["score"], 9.5), vs[1]["alerts"]
    assert a2[0]["pulse_id"] == vs[1]["pulses"][0]["pulse_id"] and "quality" in a2[0], a2
    a3 = [a for a in vs[2]["alerts"] if a["rule"] == "below_cutoff"]
    assert len(a3) == 1 and a3[0]["pulse_kind"] == "end" and close_to(a3[0]["score"], 29.0), vs[2]["alerts"]
    assert close_to(a3[0]["threshold"], 30.0) and "quality" in a3[0], a3
    assert vs[0]["alerts"] == [], vs[0]["alerts"]
    cur = vs[3]
    assert cur["current"] is True and cur["visit_id"] == d["visit_id"], cur
    if n_current_answered:
        assert close_to(cur["client_end"]["total"], CURRENT[0]), cur["client_end"]
        assert close_to(cur["therapist_end"]["total"], CURRENT[1]), cur["therapist_end"]
    else:
        assert cur["client_end"] is None and cur["therapist_end"] is None, cur


@pytest.mark.timeout_s(90)
async def test_client_history(janus, keys):
    client = f"C-H{secrets.token_hex(3)}"
    t01, t02 = keys.therapist("T-01"), keys.therapist("T-02")
    async with Scope(janus) as sc:
        for total, ttotal, check_in in EARLIER[:2]:
            await seed_visit(sc, keys, client, "T-01", total, ttotal, check_in)
        other = await seed_visit(sc, keys, client, "T-02", OTHER_THERAPIST_TOTAL, OTHER_THERAPIST_TOTAL)
        await seed_visit(sc, keys, client, "T-01", *EARLIER[2])

        # the fourth visit: before admission
        th = await sc.handle()
        created = expect(await th.request({"request": "create", "therapist_key": t01, "client_code": client,
                                           "schedule": {"in_session_at_s": []}}), "created")
        vid = created["visit_id"]
        r = await history(th, therapist_key=t01, visit_id=vid)
        assert not r.sync, "client_history is answered asynchronously, like report"
        d = expect(r, "client_history")
        assert d["client_code"] == client and d["therapist_code"] == "T-01", d
        check_earlier(d, False)
        assert OTHER_THERAPIST_TOTAL not in [v["client_end"] and v["client_end"]["total"] for v in d["visits"]]
        assert other.visit_id not in [v["visit_id"] for v in d["visits"]]
        # the same with a signed token for T-01's code; limit keeps the most recent
        d = expect(await history(th, therapist_token=therapist_token("T-01"), visit_id=vid), "client_history")
        check_earlier(d, False)
        d = expect(await history(th, therapist_key=t01, visit_id=vid, limit=2), "client_history")
        assert d["n"] == 2 and d["older"] == 2 and d["visits"][1]["current"] is True, d
        assert close_to(d["visits"][0]["client_end"]["total"], EARLIER[2][0]), d["visits"][0]

        # refusals: another therapist, by key or by token; unknown keys and visits
        h = await sc.handle()
        for body in ({"therapist_key": t02}, {"therapist_token": therapist_token("T-02")},
                     {"therapist_key": "not-a-key-" + secrets.token_hex(8)}):
            e = expect_error(await history(h, visit_id=vid, **body), 475)
            assert client not in e["error"], e
        expect_error(await history(h, therapist_key=t02, visit_id="no-such-visit"), 476)
        expect_error(await history(h, therapist_key=t01), 473)
        expect_error(await history(h, therapist_key=t01, visit_id=vid, limit=0), 474)
        expect_error(await history(h, therapist_key=t01, visit_id=vid, limit=101), 474)
        expect_error(await history(h, visit_id=vid), 473)
        # T-02's own view of that client: its one visit only
        d = expect(await history(h, therapist_key=t02, visit_id=other.visit_id), "client_history")
        assert [v["visit_id"] for v in d["visits"]] == [other.visit_id], d
        assert close_to(d["visits"][0]["client_end"]["total"], OTHER_THERAPIST_TOTAL)

        # during the visit (live), and after its end answers
        await th.request({"request": "join", "role": "therapist", "visit_id": vid, "therapist_key": t01})
        cl = await sc.handle()
        expect(await cl.request({"request": "join", "role": "client", "invite": created["invite"],
                                 "consent": {"research": True}}), "joined")
        await th.wait_event(alliance="waiting", timeout=5)
        expect(await th.request({"request": "admit"}), "admitted")
        await cl.wait_event(alliance="admitted", timeout=5)
        check_earlier(expect(await history(th, therapist_key=t01, visit_id=vid), "client_history"), False)

        class V:
            pass
        v = V()
        v.th, v.cl = th, cl
        await end_and_answer(v, *CURRENT)
        check_earlier(expect(await history(th, therapist_key=t01, visit_id=vid), "client_history"), True)

        # a forgotten client: every visit gone, so is the history
        await store.wait_rows(janus.db_path, "SELECT count(*) AS n FROM visits WHERE client_code = ? "
                              "AND state <> 'closed'", (client,),
                              predicate=lambda rows: rows[0]["n"] == 0, timeout=GRACE_S + 20)
        sup = await sc.handle()
        f = expect(await sup.request({"request": "forget", "supervisor_key": keys.supervisor(),
                                      "client_code": client}), "forgotten")
        assert f["rows"] > 0, f
        expect_error(await history(h, therapist_key=t01, visit_id=vid), 476)
        expect_error(await history(h, therapist_key=t02, visit_id=other.visit_id), 476)
