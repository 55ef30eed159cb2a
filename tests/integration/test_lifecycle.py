"""Lifecycle hygiene: participants vanishing mid-call (handle detached,
Janus session gone) are noticed, Janus stays healthy, nothing lingers.
(The end-of-suite check that no janus process and no namespace of ours is
left is the `net` fixture's finalizer in conftest.py.)"""
import asyncio

from harness.alliance import (Scope, configure, create_visit, expect, join_client,
                              join_therapist, participant_roles, status)


async def call_in_progress(sc, keys, client_transport="ws"):
    key = keys.therapist("T-01")
    th = await sc.handle()
    created = await create_visit(th, key)
    await join_therapist(th, created["visit_id"], key)
    cl = await sc.handle(client_transport)
    jc = await join_client(cl, created["invite"])
    expect(await th.request({"request": "admit"}), "admitted")
    await cl.wait_event(alliance="admitted", timeout=5)
    pt, pc = sc.peer("therapist"), sc.peer("client")
    await asyncio.gather(configure(th, pt), configure(cl, pc))
    await asyncio.gather(pt.wait_media(25, 5, 5), pc.wait_media(25, 5, 5))
    return th, cl, created, jc, pt, pc


async def wait_sessions_gone(janus, ids, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = set(ids) & set(janus.list_sessions())
        if not left:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"Janus sessions still present: {left}")
        await asyncio.sleep(0.1)


async def test_detach_client_in_call(janus, keys):
    async with Scope(janus) as sc:
        th, cl, created, jc, pt, pc = await call_in_progress(sc, keys)
        sid, hid = cl.session.id, cl.id
        await cl.detach()
        ev = await th.wait_event(alliance="participant_left", timeout=5)
        assert ev.data.get("role") == "client", ev.data
        assert janus.alive()
        assert janus.server_info().get("janus") == "server_info"
        assert hid not in janus.list_handles(sid)
        st = await status(th)
        assert "client" not in participant_roles(st), st
        # the client comes back (network blip): straight to live, media again
        await pc.close()
        cl2 = await sc.handle()
        jc2 = await join_client(cl2, created["invite"], rejoin_key=jc["rejoin_key"])
        assert jc2["state"] == "live"
        await th.wait_event(alliance="participant_joined", timeout=5)
        pc2 = sc.peer("client-2")
        since = pt.snapshot()
        await configure(cl2, pc2)
        await asyncio.gather(pc2.wait_media(25, 5, 5), pt.wait_media(25, 5, 5, since=since))
        expect(await th.request({"request": "end"}), "ended")
        await cl2.wait_event(alliance="ended", timeout=5)
        ids = [s.id for s in sc.sessions]
    await wait_sessions_gone(janus, ids)
    assert janus.alive()


async def test_therapist_detach_in_call(janus, keys):
    async with Scope(janus) as sc:
        th, cl, created, jc, pt, pc = await call_in_progress(sc, keys)
        await th.detach()
        ev = await cl.wait_event(alliance="participant_left", timeout=5)
        assert ev.data.get("role") == "therapist", ev.data
        assert janus.alive()
        # the therapist re-joins with visit_id + key
        th2 = await sc.handle()
        j = await join_therapist(th2, created["visit_id"], keys.therapist("T-01"))
        assert j.get("state") == "live", j
        st = await status(th2)
        assert participant_roles(st) >= {"therapist", "client"}, st
        expect(await th2.request({"request": "end"}), "ended")


async def test_client_session_gone(janus, keys):
    """The client's WebSocket drops without a goodbye: Janus destroys its
    session, the plugin must tell the therapist."""
    async with Scope(janus) as sc:
        th, cl, created, jc, pt, pc = await call_in_progress(sc, keys)
        sid = cl.session.id
        await cl.session.close()             # no detach, no destroy: the transport just goes
        ev = await th.wait_event(alliance="participant_left", timeout=5)
        assert ev.data.get("role") == "client", ev.data
        await wait_sessions_gone(janus, [sid])
        assert janus.alive()
        expect(await th.request({"request": "end"}), "ended")
