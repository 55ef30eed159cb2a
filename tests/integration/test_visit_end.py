"""Visits always end and are always recorded (PROTOCOL.md v1.1 "Visits
nobody ends", `end_reason`; docs/api.md "Lifecycle"): idle visits close by
themselves, over-long visits are ended, Janus stopping closes what is open
(`shutdown`, last samples and open incidents flushed), and a Janus killed
mid-visit leaves a visit that the next start closes as `interrupted`, with
its answers and samples up to the kill. This module's Janus closes visits
that nobody is in after 3 s and ends visits older than 20 s."""
import asyncio
import re
import time

from harness import store
from harness.alliance import Scope, create_visit, expect, expect_error, join_therapist, status
from harness.pulses import api_answer, expect_stored, live_visit
from harness import quality

IDLE_S = 3
MAX_S = 20
ALLIANCE_CONFIG = {"events": False, "end_grace_s": 30,
                   "extra_general": f"idle_close_s = {IDLE_S}\n    max_visit_s = {MAX_S}"}


def visit_row(db, vid):
    return store.one(db, "SELECT state, end_reason, created_at, ended_at, closed_at FROM visits "
                         "WHERE visit_id = ?", (vid,))


async def test_idle_visit_closes_by_itself(janus, keys):
    """Nobody ever joined, or everybody left: after idle_close_s the visit
    is ended and closed (`idle`), its invite and id stop working, and it no
    longer counts against max_visits or blocks `forget`."""
    db = janus.db_path
    key = keys.therapist("T-01")
    async with Scope(janus) as sc:
        th = await sc.handle()
        never = await create_visit(th, key, "C-IDL1")
        left = await create_visit(th, key, "C-IDL2")
        await join_therapist(th, left["visit_id"], key)
        expect(await th.request({"request": "leave"}), "left")
        t_left = time.time()
        for vid in (never["visit_id"], left["visit_id"]):
            row = await store.wait_row(db, "SELECT state, end_reason, ended_at, closed_at FROM visits "
                                       "WHERE visit_id = ? AND state = 'closed'", (vid,), timeout=IDLE_S + 4)
            assert row["end_reason"] == "idle" and row["ended_at"] and row["closed_at"], row
        assert time.time() - t_left >= IDLE_S - 0.5, "closed before idle_close_s"
        other = await sc.handle()
        expect_error(await other.request({"request": "join", "role": "therapist",
                                          "visit_id": left["visit_id"], "therapist_key": key}), 476)
        expect_error(await other.request({"request": "join", "role": "client", "invite": never["invite"],
                                          "consent": {"research": True}}), 477)
        # the client of a closed visit can be erased (an open one would refuse)
        r = expect(await other.request({"request": "forget", "supervisor_key": keys.supervisor("s01"),
                                        "client_code": "C-IDL1"}), "forgotten")
        assert r["rows"] >= 1, r


async def test_visit_present_does_not_idle(janus, keys):
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-IDL3")
        await asyncio.sleep(IDLE_S + 1.5)
        st = await status(v.th)
        assert st["state"] == "live", st
        expect(await v.th.request({"request": "end"}), "ended")


async def test_max_duration_ends_the_visit(janus, keys):
    """A visit max_visit_s old is ended as if the therapist had pressed
    "End": both hear `ended` (end_reason max_duration), the end pulses go
    out and can be answered within the grace."""
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-MAX1")
        created = (await store.wait_row(db, "SELECT created_at FROM visits WHERE visit_id = ?",
                                        (v.visit_id,)))["created_at"]
        evs = await asyncio.gather(v.th.wait_event(alliance="ended", timeout=MAX_S + 5),
                                   v.cl.wait_event(alliance="ended", timeout=MAX_S + 5))
        for ev in evs:
            assert ev.data.get("end_reason") == "max_duration" and len(ev.data.get("pulse_ids", [])) == 2, ev.data
        p = await v.cl.wait_event(alliance="pulse", timeout=5)
        assert p.data["kind"] == "end", p.data
        expect_stored(await api_answer(v.cl, p.data["pulse_id"],
                                       {"goals": 7, "tasks": 7, "bond": 7, "overall": 7}),
                      p.data["pulse_id"], True)
        row = await store.wait_row(db, "SELECT state, end_reason, ended_at FROM visits WHERE visit_id = ? "
                                   "AND state = 'ended'", (v.visit_id,))
        assert row["end_reason"] == "max_duration", row
        age_s = (row["ended_at"] - created) / 1e6
        assert MAX_S - 0.5 <= age_s <= MAX_S + 2, f"ended {age_s:.1f} s after creation"


async def test_sigterm_closes_open_visits_with_their_last_samples(janus, keys, net):
    """Janus stopped with SIGTERM mid-visit: the visit is closed as
    `shutdown`, its last quality samples (the bucket not yet due) and its
    open incidents (stalls still going on) are in the store."""
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-TERM", media=True)
        await asyncio.sleep(6)                       # a stored sample or two
        # Both hang up their PeerConnections (a network gone for both): the
        # visit stays live with everybody seated, and the stalls that open
        # are incidents still open at the stop. (With PeerConnections still
        # up, Debian's Janus 1.1.2 can crash in its own teardown at exit:
        # janus-gateway #3089, fixed in 1.2.2.)
        await asyncio.gather(v.th.hangup(), v.cl.hangup())
        await asyncio.gather(v.th.wait_event(janus="hangup", timeout=5), v.cl.wait_event(janus="hangup", timeout=5))
        assert janus.wait_peerconnections_gone(), "PeerConnections still up"
        # until the meters have seen both uplinks stall (status's live
        # quality counts them): the stall incidents are then open
        deadline = time.monotonic() + 15
        while True:
            st = await status(v.th)
            assert st["state"] == "live", st
            legs = st["quality"].get("legs", {})
            if all((legs.get(l, {}).get("audio") or {}).get("stalls", 0) >= 1
                   for l in ("client_up", "therapist_up")):
                break
            assert time.monotonic() < deadline, f"no stall seen: {legs}"
            await asyncio.sleep(0.2)
        stop_at = time.time_ns() // 1000
        log = janus.stop()
    assert janus.exit_problem is None, janus.exit_problem
    assert re.search(r"shutdown: \d+ open visit\(s\) closed", log), log[-3000:]
    janus.restart(hard=False)                       # the next tests need it (and it repairs nothing)
    row = visit_row(db, v.visit_id)
    assert row["state"] == "closed" and row["end_reason"] == "shutdown", row
    assert row["closed_at"] >= stop_at, row
    last = store.one(db, "SELECT max(at) AS at FROM quality_samples WHERE visit_id = ? "
                         "AND leg = 'therapist_up'", (v.visit_id,))["at"]
    assert last >= stop_at - 1_000_000, f"last sample {(stop_at - last) / 1e6:.1f} s before the stop"
    stalls = store.rows(db, "SELECT leg, started_at, ended_at FROM incidents WHERE visit_id = ? "
                            "AND kind = 'stall'", (v.visit_id,))
    assert {s["leg"] for s in stalls} >= {"client_up", "therapist_up"}, stalls
    assert all(s["ended_at"] and s["ended_at"] >= stop_at for s in stalls), stalls
    assert store.one(db, "SELECT count(*) AS n FROM visits WHERE state <> 'closed'")["n"] == 0
    assert "left open by an earlier run" not in janus.log_text()


async def test_sigkill_mid_visit_is_interrupted_after_restart(janus, keys):
    """Janus killed with SIGKILL mid-visit, then started again: the visit is
    `interrupted` in the report, with its acked answer and its samples up to
    the kill; its open pulse expired; a new visit works."""
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-KILL", media=True)
        [pid] = expect(await v.th.request({"request": "pulse"}), "pulse_sent")["pulse_ids"]
        p = await v.pc.wait_message(type="pulse", timeout=5)
        r = await api_answer(v.cl, pid, {"understood": 6, "focus": 4})
        expect_stored(r, pid, True)
        [open_pid] = expect(await v.th.request({"request": "pulse", "target": "therapist"}),
                            "pulse_sent")["pulse_ids"]
        await asyncio.sleep(6)
        killed_at = time.time_ns() // 1000
        janus.kill()
        before = visit_row(db, v.visit_id)
        assert before["state"] == "live" and before["end_reason"] is None, before
    janus.restart(hard=True)
    needle = "1 visit(s) left open by an earlier run closed as interrupted"
    assert needle in janus.wait_log(needle)
    row = visit_row(db, v.visit_id)
    assert row["state"] == "closed" and row["end_reason"] == "interrupted", row
    assert row["ended_at"] <= killed_at and row["closed_at"] >= killed_at, row
    async with Scope(janus) as sc:
        sup = await sc.handle()
        rep = expect(await sup.request({"request": "report", "supervisor_key": keys.supervisor("s01"),
                                        "kind": "visit", "visit_id": v.visit_id}), "report")
        visit = rep["visit"]
        assert visit.get("state") == "closed" and visit.get("end_reason") == "interrupted", \
            {k: visit.get(k) for k in ("state", "end_reason")}
        pulses = {q["pulse_id"]: q for q in rep["pulses"]}
        assert pulses[pid]["status"] == "answered", pulses[pid]
        assert pulses[open_pid]["status"] == "expired", pulses[open_pid]
        samples = store.one(db, "SELECT count(*) AS n, max(at) AS last FROM quality_samples "
                                "WHERE visit_id = ?", (v.visit_id,))
        assert samples["n"] > 0 and samples["last"] >= killed_at - 6_000_000, samples
        # a new visit works
        v2 = await live_visit(sc, keys, "C-KILL2")
        expect(await v2.th.request({"request": "end"}), "ended")
