"""Seats are leases (PROTOCOL.md v1.1 "Takeover", docs/api.md "Lifecycle"):
a participant whose old handle is still there — an abandoned Janus
session after a network loss, a tab left open — gets back in at once with
their credentials; the old handle is told `replaced` and hung up. Also: a
new client link (`reinvite`), observers' seats, and consent withdrawn
while an observer watches."""
import asyncio
import time

from harness import store
from harness.alliance import (Scope, configure, create_visit, expect, expect_error, join_client,
                              join_therapist, participant_roles, status)
from harness.pulses import live_visit

ALLIANCE_CONFIG = {"events": False}


async def _media_both_ways(new_peer, other_peer, since_other, timeout):
    """Media flows between the new tab and the other side: frames arrive,
    and what the other side decodes is the new tab's (frames of the old tab
    still in flight at the takeover may arrive first: wait them out)."""
    await asyncio.gather(new_peer.wait_media(10, 3, timeout),
                         other_peer.wait_media(10, 3, timeout, since=since_other))
    deadline = time.monotonic() + timeout
    while True:
        try:
            new_peer.assert_receiving_from(other_peer)
            other_peer.assert_receiving_from(new_peer)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# Back in the call long before Janus's 60 s session timeout (what the
# takeover fixes); the time it took is printed (about 1 s here when idle).
TAKEOVER_BOUND_S = 15.0


async def test_client_takeover_from_abandoned_session(janus, keys):
    """The client's Janus session is abandoned (no detach, no destroy: a lost
    network); a new tab joins with invite + rejoin_key and is live with media
    both ways at once (about 1 s), the old handle got `replaced` and its
    PeerConnection was hung up. (Before: 481 until Janus's 60 s session
    timeout.)"""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-TK01", media=True)
        v.cl.session.abandon()
        since_t = v.pt.snapshot()
        t0 = time.monotonic()
        cl2 = await sc.handle()
        j = await join_client(cl2, v.invite, rejoin_key=v.rejoin_key)
        assert j["state"] == "live" and j.get("took_over") is True, j
        pc2 = sc.peer("client-tab-2")
        await configure(cl2, pc2)
        await _media_both_ways(pc2, v.pt, since_t, timeout=TAKEOVER_BOUND_S)
        took = time.monotonic() - t0
        assert took < TAKEOVER_BOUND_S, f"back in the call after {took:.2f} s"
        print(f"client takeover: live with media both ways {took:.2f} s after the new join")
        await v.cl.wait_event(alliance="replaced", timeout=3)
        await v.cl.wait_event(janus="hangup", timeout=5)       # its PC was closed
        ev = await v.th.wait_event(alliance="participant_joined", timeout=3)
        assert ev.data.get("role") == "client" and ev.data.get("replaced") is True, ev.data
        assert not v.th.unconsumed("participant_left"), "a takeover is not a departure"
        # the old handle is out of the visit now
        expect_error(await v.cl.request({"request": "status"}), 480)
        st = await status(v.th)
        assert st["state"] == "live" and participant_roles(st) >= {"therapist", "client"}, st
        expect(await v.th.request({"request": "end"}), "ended")


async def test_therapist_takeover_from_abandoned_session(janus, keys):
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-TK02", media=True)
        v.th.session.abandon()
        since_c = v.pc.snapshot()
        t0 = time.monotonic()
        th2 = await sc.handle()
        j = await join_therapist(th2, v.visit_id, keys.therapist("T-01"))
        assert j["state"] == "live" and j.get("took_over") is True, j
        pt2 = sc.peer("therapist-tab-2")
        await configure(th2, pt2)
        await _media_both_ways(pt2, v.pc, since_c, timeout=TAKEOVER_BOUND_S)
        took = time.monotonic() - t0
        assert took < TAKEOVER_BOUND_S, f"back in the call after {took:.2f} s"
        print(f"therapist takeover: live with media both ways {took:.2f} s after the new join")
        await v.th.wait_event(alliance="replaced", timeout=3)
        await v.th.wait_event(janus="hangup", timeout=5)
        ev = await v.cl.wait_event(alliance="participant_joined", timeout=3)
        assert ev.data.get("role") == "therapist" and ev.data.get("replaced") is True, ev.data
        expect_error(await v.th.request({"request": "end"}), 480)
        expect(await th2.request({"request": "end"}), "ended")


async def test_takeover_delivers_the_open_pulse(janus, keys):
    """A pulse the old tab got but did not answer goes to the new one."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-TK03")
        [pid] = expect(await v.th.request({"request": "pulse"}), "pulse_sent")["pulse_ids"]
        await v.cl.wait_event(alliance="pulse", timeout=5)
        cl2 = await sc.handle()
        await join_client(cl2, v.invite, rejoin_key=v.rejoin_key)
        p = await cl2.wait_event(alliance="pulse", timeout=5)
        assert p.data["pulse_id"] == pid, p.data


async def test_wrong_credentials_still_refused_while_seated(janus, keys):
    """Takeover needs the credentials: a wrong re-join key, the invite alone,
    another therapist's key change nothing and take no seat."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-TK04")
        other = await sc.handle()
        expect_error(await other.request({"request": "join", "role": "client", "invite": v.invite,
                                          "consent": {"research": True}}), 478)
        expect_error(await other.request({"request": "join", "role": "client", "invite": v.invite,
                                          "rejoin_key": "x" * 32, "consent": {"research": True}}), 478)
        expect_error(await other.request({"request": "join", "role": "therapist", "visit_id": v.visit_id,
                                          "therapist_key": keys.therapist("T-02")}), 475)
        assert not v.cl.unconsumed("replaced") and not v.th.unconsumed("replaced")
        st = await status(v.cl)
        assert st["state"] == "live", st
        # a handle that already joined still gets 481
        expect_error(await v.cl.request({"request": "join", "role": "client", "invite": v.invite,
                                         "rejoin_key": v.rejoin_key, "consent": {"research": True}}), 481)


async def test_reinvite(janus, keys):
    """`reinvite`: a new link; the old invite and rejoin key stop working;
    the new link is a first join (new rejoin_key, consent asked again) that
    takes the seat of a client still seated, straight back to live."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-TK05")
        expect_error(await v.cl.request({"request": "reinvite"}), 479)     # clients cannot
        r = expect(await v.th.request({"request": "reinvite"}), "reinvited")
        assert r["visit_id"] == v.visit_id and r["invite"] != v.invite, r
        late = await sc.handle()
        expect_error(await late.request({"request": "join", "role": "client", "invite": v.invite,
                                         "rejoin_key": v.rejoin_key, "consent": {"research": True}}), 477)
        cl2 = await sc.handle()
        j = await join_client(cl2, r["invite"], research=False)
        assert j["state"] == "live" and j.get("rejoin_key") and j.get("took_over") is True, j
        await v.cl.wait_event(alliance="replaced", timeout=3)
        st = await status(v.th)
        assert st["participants"]["client"]["research_consent"] is False, st
        expect(await v.th.request({"request": "end"}), "ended")
        expect_error(await v.th.request({"request": "reinvite"}), 483)    # ended: no new links


async def test_observer_seat_and_consent_withdrawal(janus, keys):
    """The same supervisor joining again replaces their observer handle
    (one seat per supervisor); when the client re-joins without research
    consent, observers are removed at once."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-TK06", research=True)
        body = {"request": "join", "role": "observer", "visit_id": v.visit_id,
                "supervisor_key": keys.supervisor("s01")}
        o1 = await sc.handle()
        expect(await o1.request(body), "joined")
        o2 = await sc.handle()
        j2 = expect(await o2.request(body), "joined")
        assert j2.get("took_over") is True, j2
        await o1.wait_event(alliance="replaced", timeout=3)
        st = await status(v.th)
        assert st["participants"]["observers"] == 1, st
        # the client withdraws consent (re-joins with research:false)
        cl2 = await sc.handle()
        await join_client(cl2, v.invite, research=False, rejoin_key=v.rejoin_key)
        ev = await o2.wait_event(alliance="removed", timeout=3)
        assert ev.data.get("reason") == "consent_withdrawn", ev.data
        st = await status(v.th)
        assert st["participants"]["observers"] == 0, st
        expect_error(await o2.request({"request": "status"}), 480)
        # and no new observer may join now
        o3 = await sc.handle()
        expect_error(await o3.request(body), 485)
