"""A whole visit, end to end, over each transport: create, join, waiting
room, admit, A/V + data channel both ways, status, leave and re-join,
renegotiation, end, then a second visit on the same Janus."""
import asyncio

import pytest

from harness.alliance import (URLSAFE_TOKEN, Scope, configure, create_visit, expect,
                              expect_error, join_client, join_therapist, participant_roles,
                              status)

# what "media arrived" means: 0.5 s of 20 ms audio frames, 5 video frames (15 fps)
AUDIO_FRAMES = 25
VIDEO_FRAMES = 5
MEDIA_WINDOW_S = 5.0


async def media_both_ways(a, b, since_a=None, since_b=None):
    """Within MEDIA_WINDOW_S each peer RECEIVED the other's audio and video."""
    await asyncio.gather(
        a.wait_media(AUDIO_FRAMES, VIDEO_FRAMES, MEDIA_WINDOW_S, since=since_a),
        b.wait_media(AUDIO_FRAMES, VIDEO_FRAMES, MEDIA_WINDOW_S, since=since_b))
    # make sure the signature buffers hold fresh media, then check whose it is
    sa, sb = a.snapshot(), b.snapshot()
    await asyncio.gather(a.wait_media(15, 6, 3, since=sa), b.wait_media(15, 6, 3, since=sb))
    a.assert_receiving_from(b)
    b.assert_receiving_from(a)


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


async def one_visit(sc, key, client_code, *, full=True):
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
    await media_both_ways(pt, pc)

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
    await media_both_ways(pt, pc2, since_a=since_t)
    hello = await pc2.wait_message(type="hello", timeout=5)
    assert hello.get("role") == "client" and hello.get("visit_id") == visit_id, hello

    # renegotiation: a second offer on the same pc, both sides
    for h, p in ((cl2, pc2), (th, pt)):
        await configure(h, p)
    await media_both_ways(pt, pc2, since_a=pt.snapshot(), since_b=pc2.snapshot())
    assert pt.pc.connectionState == "connected" and pc2.pc.connectionState == "connected"

    # end
    ended = expect(await th.request({"request": "end"}), "ended")
    assert isinstance(ended.get("pulse_ids", []), list)
    await cl2.wait_event(alliance="ended", timeout=5)

    # the visit is closed: visit_id and invite stop working
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
    async with Scope(janus, transport) as sc:
        first = await one_visit(sc, keys.therapist("T-01"), "C-0042")
        # Janus is still healthy and a second visit works end to end
        info = janus.server_info()
        assert info.get("janus") == "server_info"
        second = await one_visit(sc, keys.therapist("T-01"), "C-0043")
        assert second != first
