"""A whole visit, end to end, over each transport: create, join, waiting
room, admit, A/V + data channel both ways, status, leave and re-join,
renegotiation, end, then a second visit on the same Janus."""
import asyncio

import pytest

from harness.alliance import (URLSAFE_TOKEN, Scope, configure, create_visit, expect,
                              expect_error, join_client, join_therapist, participant_roles,
                              status)

# a short grace, so the test sees the visit close after `end`
END_GRACE_S = 4
ALLIANCE_CONFIG = {"end_grace_s": END_GRACE_S}

# what "media arrived" means: 0.5 s of 20 ms audio frames, 5 video frames (15 fps)
AUDIO_FRAMES = 25
VIDEO_FRAMES = 5
MEDIA_WINDOW_S = 5.0


async def media_both_ways(a, b, since_a=None, since_b=None, problems=None, step=""):
    """Within MEDIA_WINDOW_S each peer RECEIVED the other's audio and video
    (frame counts: a hard failure), and what it receives carries the other
    peer's tone and tint (recorded in `problems` so the rest of the scenario
    still runs; the test fails at the end)."""
    await asyncio.gather(
        a.wait_media(AUDIO_FRAMES, VIDEO_FRAMES, MEDIA_WINDOW_S, since=since_a),
        b.wait_media(AUDIO_FRAMES, VIDEO_FRAMES, MEDIA_WINDOW_S, since=since_b))
    # make sure the signature buffers hold fresh media, then check whose it is
    sa, sb = a.snapshot(), b.snapshot()
    await asyncio.gather(a.wait_media(15, 6, 3, since=sa), b.wait_media(15, 6, 3, since=sb))
    for rx, tx in ((a, b), (b, a)):
        try:
            rx.assert_receiving_from(tx)
        except AssertionError as e:
            if problems is None:
                raise
            problems.append(f"{step}: {e}")


async def check_datachannel(peer, role, visit_id):
    hello = await peer.wait_message(type="hello", timeout=5)
    assert hello.get("v") == 1 and hello.get("role") == role and hello.get("visit_id") == visit_id, \
        f"{peer.name}: bad hello {hello}"
    await peer.send({"v": 1, "type": "ping", "ref": f"{role}-ping-1"})
    pong = await peer.wait_message(type="pong", timeout=5)
    assert pong.get("v") == 1 and pong.get("ref") == f"{role}-ping-1", pong
    await peer.send("{this is not json")
    err = await peer.wait_message(type="error", timeout=5)
    assert err.get("code") == "bad_json", err
    await peer.send({"v": 1, "type": "teleport", "ref": "t-1"})
    err = await peer.wait_message(type="error", timeout=5)
    assert err.get("code") == "unknown_type" and err.get("ref") == "t-1", err
    await peer.send({"type": "ping", "ref": "nov"})
    err = await peer.wait_message(type="error", timeout=5)
    assert err.get("code") == "bad_version", err
    # still alive after the garbage
    await peer.send({"v": 1, "type": "ping"})
    pong = await peer.wait_message(type="pong", timeout=5)
    assert pong.get("v") == 1


async def one_visit(sc, key, client_code, problems, *, full=True):
    th = await sc.handle()
    cl = await sc.handle()

    # create
    created = await create_visit(th, key, client_code)
    assert created["modality"] == "video"
    visit_id, invite = created["visit_id"], created["invite"]

    # therapist joins
    jt = await join_therapist(th, visit_id, key)
    assert isinstance(jt.get("state"), str)

    # client joins -> waiting room
    jc = await join_client(cl, invite, research=True)
    assert jc.get("state") == "waiting", jc.get("state")
    assert jc.get("visit_id") == visit_id
    rejoin_key = jc.get("rejoin_key")
    assert isinstance(rejoin_key, str) and URLSAFE_TOKEN.match(rejoin_key), "rejoin_key missing/short"
    assert rejoin_key != invite
    w = await th.wait_event(alliance="waiting", timeout=5)
    assert w.data.get("client_code") == client_code, w.data

    # admit
    expect(await th.request({"request": "admit"}), "admitted")
    await cl.wait_event(alliance="admitted", timeout=5)

    # media
    pt, pc = sc.peer("therapist"), sc.peer("client")
    await asyncio.gather(configure(th, pt), configure(cl, pc))
    await asyncio.gather(pt.wait_connected(MEDIA_WINDOW_S), pc.wait_connected(MEDIA_WINDOW_S))
    await media_both_ways(pt, pc, problems=problems, step=f"{client_code} first call")

    # data channel
    await asyncio.gather(check_datachannel(pt, "therapist", visit_id),
                         check_datachannel(pc, "client", visit_id))

    # status, from both sides
    for h in (th, cl):
        st = await status(h)
        assert st.get("state") == "live", st
        assert participant_roles(st) >= {"therapist", "client"}, st
    if not full:
        return th, cl, visit_id, invite, rejoin_key, pt, pc

    # client leaves; therapist is told
    expect(await cl.request({"request": "leave"}), "left")
    ev = await th.wait_event(alliance="participant_left", timeout=5)
    assert ev.data.get("role") == "client", ev.data
    await pc.close()
    st = await status(th)
    assert "client" not in participant_roles(st), st

    # client re-joins on a new handle with invite + rejoin_key: straight back to live
    cl2 = await sc.handle()
    jc2 = await join_client(cl2, invite, rejoin_key=rejoin_key)
    assert jc2.get("state") == "live", jc2.get("state")
    ev = await th.wait_event(alliance="participant_joined", timeout=5)
    assert ev.data.get("role") == "client" and ev.data.get("admitted") is True, ev.data

    pc2 = sc.peer("client-2")
    since_t = pt.snapshot()
    await configure(cl2, pc2)
    await pc2.wait_connected(MEDIA_WINDOW_S)
    await media_both_ways(pt, pc2, since_a=since_t, problems=problems,
                          step=f"{client_code} after the client re-joined")
    hello = await pc2.wait_message(type="hello", timeout=5)
    assert hello.get("role") == "client" and hello.get("visit_id") == visit_id, hello

    # renegotiation: a second offer on the same pc, both sides
    for h, p in ((cl2, pc2), (th, pt)):
        await configure(h, p)
    await media_both_ways(pt, pc2, since_a=pt.snapshot(), since_b=pc2.snapshot(),
                          problems=problems, step=f"{client_code} after renegotiation")
    # connectionState alone would say "connected" over a dead DTLS transport
    await asyncio.gather(pt.wait_connected(1), pc2.wait_connected(1))

    # end: the relay stops, both get their end pulse on the data channel,
    # the visit accepts answers for END_GRACE_S, then closes
    ended = expect(await th.request({"request": "end"}), "ended")
    assert len(ended.get("pulse_ids", [])) == 2, ended
    assert ended.get("end_grace_s") == END_GRACE_S, ended
    ev = await cl2.wait_event(alliance="ended", timeout=5)
    assert ev.data.get("end_grace_s") == END_GRACE_S, ev.data
    end_pulses = {}
    for peer, role in ((pc2, "client"), (pt, "therapist")):
        p = await peer.wait_message(type="pulse", timeout=5)
        assert p.get("kind") == "end" and p.get("pulse_id") in ended["pulse_ids"], p
        end_pulses[role] = p
    assert end_pulses["client"]["instrument"]["id"] == "ap-end"
    assert end_pulses["therapist"]["instrument"]["id"] == "ap-therapist-end"
    st = await status(th)
    assert st.get("state") == "ended", st
    # media stopped: nothing new reaches the client once the relay is off
    await asyncio.sleep(0.5)
    before = pc2.snapshot()
    await asyncio.sleep(1.5)
    after = pc2.snapshot()
    gained = {k: after.get(k, 0) - before.get(k, 0) for k in ("audio", "video")}
    assert gained["audio"] < 5 and gained["video"] < 2, f"media still relayed after end: {gained}"

    # after the grace the visit closes: both are told, visit_id and invite stop working
    for h in (th, cl2):
        await h.wait_event(alliance="closed", timeout=END_GRACE_S + 5)
    th3, cl3 = await sc.handle(), await sc.handle()
    expect_error(await th3.request({"request": "join", "role": "therapist", "visit_id": visit_id,
                                    "therapist_key": key}), 476)
    expect_error(await cl3.request({"request": "join", "role": "client", "invite": invite,
                                    "rejoin_key": rejoin_key, "consent": {"research": True}}), 477)
    expect_error(await cl3.request({"request": "join", "role": "client", "invite": invite,
                                    "consent": {"research": True}}), 477)
    return visit_id


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_happy_path(janus, keys, transport):
    problems = []
    async with Scope(janus, transport) as sc:
        first = await one_visit(sc, keys.therapist("T-01"), "C-0042", problems)
        # Janus is still healthy and a second visit works end to end
        info = janus.server_info()
        assert info.get("janus") == "server_info"
        second = await one_visit(sc, keys.therapist("T-01"), "C-0043", problems)
        assert second != first
    assert not problems, "media from the wrong source / undecodable:\n  " + "\n  ".join(problems)
