"""Two Janus instances, one PostgreSQL database (PROTOCOL.md v1.1 "Scale").

Instance A and instance B run the plugin on one database of the session's
private PostgreSQL server (tests/pg/pg-test-server), with their own
`instance_id` and `public_servers`, on other ports of the server namespace.
Behind a load balancer a participant may reach the wrong one:

* a visit created on A: its client first reaches B, gets 498
  other_instance with A's servers, follows them and is live with media both
  ways on A; a visit created on B: its therapist first reaches A and is
  sent to B the same way;
* both visits run at the same time, with media and pulses; supervisor
  reports from A and from B list both, each with the instance it runs on;
* B is killed (SIGKILL): A's visit goes on unharmed (media keeps flowing, a
  pulse is delivered and its answer acknowledged after commit); when B
  starts again its visit is closed as `interrupted` and A's is untouched
  (B repairs only its own); a report from B shows both.
"""
import asyncio
import time

import pytest

from conftest import _start_checked, _stop_checked
from harness import api as _api
from harness import store
from harness.alliance import Scope, configure, create_visit, expect, expect_error, join_therapist
from harness.janus import alliance_server
from harness.pulses import dc_answer, trigger

A_ID, B_ID = "janus-a", "janus-b"


@pytest.fixture(scope="module")
def instances(net, keys, pg_server, tmp_path_factory):
    db = pg_server.new_database("two_instances")
    servers = {}
    for name, offset in ((A_ID, 0), (B_ID, 10)):
        # public_servers: the URL a page would use to reach this instance
        srv = alliance_server(net, tmp_path_factory.mktemp(name), keys, db_path=db, port_offset=offset,
                              events=False, end_grace_s=30)
        srv.plugin_configs = {k: v.replace(
            "general: {", f'general: {{\n    instance_id = "{name}"\n    public_servers = "{srv.ws_url}"', 1)
            for k, v in srv.plugin_configs.items()}
        servers[name] = srv
    started = []
    try:
        for srv in servers.values():
            started.append(_start_checked(srv))
        yield servers["janus-a"], servers["janus-b"], db
    finally:
        secrets = list(keys.therapists.values()) + list(keys.supervisors.values()) + list(_api.SEEN_SECRETS)
        for srv in started:
            if srv.alive():
                _stop_checked(srv, secrets=secrets)


async def join_following(scopes, scope, body):
    """Send `join` on a new handle of `scope`; on 498 other_instance follow
    its servers to the instance that holds the visit, as the pages do.
    Returns (handle, joined answer, the 498 seen or None)."""
    h = await scope.handle()
    r = await h.request(body)
    if r.data.get("alliance") == "error" and r.data.get("error_code") == 498:
        moved = r.data
        servers = moved.get("servers")
        assert isinstance(servers, list) and servers, moved
        target = scopes[servers[0]]
        h = await target.handle()
        return h, expect(await h.request(body), "joined"), moved
    return h, expect(r, "joined"), None


async def live_media(sc, th, cl, name):
    pt, pc = sc[0].peer(f"therapist-{name}"), sc[1].peer(f"client-{name}")
    await asyncio.gather(configure(th, pt), configure(cl, pc))
    await asyncio.gather(pt.wait_connected(10), pc.wait_connected(10))
    for peer in (pt, pc):
        await peer.wait_message(type="hello", timeout=10)
    await asyncio.gather(pt.wait_media(10, 3, 10), pc.wait_media(10, 3, 10))
    pt.assert_receiving_from(pc)
    pc.assert_receiving_from(pt)
    return pt, pc


def report_visits(rep):
    return {v["visit_id"]: v for v in rep["visits"]}


async def visits_report(h, keys):
    r = expect(await h.request({"request": "report", "supervisor_key": keys.supervisor(),
                                "kind": "visits"}, timeout=30), "report")
    return report_visits(r)


@pytest.mark.timeout_s(180)
async def test_two_instances_one_database(instances, keys):
    a, b, db = instances
    key = keys.therapist()
    async with Scope(a) as sa, Scope(b) as sb:
        scopes = {a.ws_url: sa, b.ws_url: sb}
        # -- a visit on A; its client reaches B first
        tha = await sa.handle()
        va = await create_visit(tha, key, "C-TWO-A")
        await join_therapist(tha, va["visit_id"], key)
        cla, ja, moved = await join_following(scopes, sb, {
            "request": "join", "role": "client", "invite": va["invite"], "consent": {"research": True}})
        assert moved is not None and moved["servers"] == [a.ws_url] and moved.get("instance_id") == A_ID, moved
        assert ja["state"] == "waiting"
        await tha.wait_event(alliance="waiting", timeout=5)
        expect(await tha.request({"request": "admit"}), "admitted")
        await cla.wait_event(alliance="admitted", timeout=5)

        # -- a visit on B; its therapist comes back through A
        thb0 = await sb.handle()
        vb = await create_visit(thb0, key, "C-TWO-B")
        await store.wait_row(db, "SELECT 1 FROM visits WHERE visit_id = ?", (vb["visit_id"],))
        thb, jb, moved_b = await join_following(scopes, sa, {
            "request": "join", "role": "therapist", "visit_id": vb["visit_id"], "therapist_key": key})
        assert moved_b is not None and moved_b["servers"] == [b.ws_url], moved_b
        clb, _, moved_c = await join_following(scopes, sb, {
            "request": "join", "role": "client", "invite": vb["invite"], "consent": {"research": True}})
        assert moved_c is None                          # B holds it: no detour
        await thb.wait_event(alliance="waiting", timeout=5)
        expect(await thb.request({"request": "admit"}), "admitted")

        # -- both live with media at the same time
        pta, pca = await live_media((sa, sa), tha, cla, "A")
        ptb, pcb = await live_media((sb, sb), thb, clb, "B")
        # a credential that names nothing anywhere is still refused (after the lookup)
        nobody = await sb.handle()
        expect_error(await nobody.request({"request": "join", "role": "client", "invite": "x" * 43,
                                           "consent": {"research": True}}), 477)
        rows = {r["visit_id"]: r for r in store.rows(db, "SELECT visit_id, instance_id, state FROM visits")}
        assert rows[va["visit_id"]]["instance_id"] == A_ID and rows[vb["visit_id"]]["instance_id"] == B_ID, rows
        # supervisor reports from either instance list both visits with their instance
        for h in (await sa.handle(), await sb.handle()):
            vs = await visits_report(h, keys)
            assert vs[va["visit_id"]]["instance_id"] == A_ID and vs[vb["visit_id"]]["instance_id"] == B_ID, vs

        # -- B crashes
        b.kill()
        killed_at = time.monotonic()
        # A's visit goes on: media keeps flowing both ways, a pulse is answered
        since_t, since_c = pta.snapshot(), pca.snapshot()
        await asyncio.gather(pta.wait_media(25, 5, 10, since=since_t), pca.wait_media(25, 5, 10, since=since_c))
        [pid] = await trigger(tha)
        await pca.wait_message(type="pulse", pulse_id=pid, timeout=5)
        ack = await dc_answer(pca, pid, {"understood": 7, "focus": 8})
        assert ack.get("complete") is True and ack.get("stored") is True, ack
        await store.wait_row(db, "SELECT final FROM answers WHERE pulse_id = ?", (pid,),
                             lambda r: r["final"] == 1)
        print(f"A after B's SIGKILL: media both ways and a pulse answered within "
              f"{time.monotonic() - killed_at:.1f} s")

        # -- B starts again: its visit is interrupted, A's is left alone
        b.start()
        vrow = await store.wait_row(db, "SELECT state, end_reason FROM visits WHERE visit_id = ?",
                                    (vb["visit_id"],), lambda r: r["state"] == "closed")
        assert vrow["end_reason"] == "interrupted", vrow
        arow = store.one(db, "SELECT state, end_reason FROM visits WHERE visit_id = ?", (va["visit_id"],))
        assert arow["state"] == "live" and arow["end_reason"] is None, arow
        hb = await sb.handle()
        vs = await visits_report(hb, keys)
        assert vs[vb["visit_id"]]["state"] == "closed" and vs[vb["visit_id"]]["end_reason"] == "interrupted", vs
        assert vs[va["visit_id"]]["state"] == "live" and vs[va["visit_id"]]["instance_id"] == A_ID, vs
        # a join for the closed visit now names nothing anywhere (B answers it, no 498)
        gone = await sb.handle()
        expect_error(await gone.request({"request": "join", "role": "client", "invite": vb["invite"],
                                         "consent": {"research": True}}), 477)
        expect(await tha.request({"request": "end"}), "ended")
