"""A `join` racing its handle's own destruction: the message thread took the
join, then the handle was detached before the join locked the visits. The
failpoint `join_before_lock` (ALLIANCE_FAILPOINTS, see plugin/janus/shell.h)
holds the join there for 150 ms so the detach lands inside the window every
time; before the fix the detached handle stayed seated for good (the seat
blocked, `participant_left` never came)."""
from harness.alliance import Scope, create_visit, join_therapist

ALLIANCE_CONFIG = {"events": False}
ALLIANCE_JANUS_ENV = {"ALLIANCE_FAILPOINTS": "join_before_lock=150"}


async def test_join_racing_destroy_never_seats_a_dead_handle(janus, keys):
    """A `join` queued just before its handle is detached must not leave the
    detached handle seated (it would hold the seat for good, and
    `participant_left` would never come)."""
    key = keys.therapist("T-01")
    async with Scope(janus) as sc:
        th = await sc.handle()
        created = await create_visit(th, key, "C-TK07")
        vid = created["visit_id"]
        sess = await sc.session()
        for i in range(5):
            h = await sess.attach("janus.plugin.alliance")
            # the join is queued (Janus acked it: the plugin took it), then the
            # handle goes while the join waits at the failpoint
            ack = await h.message({"request": "join", "role": "therapist", "visit_id": vid,
                                   "therapist_key": key})
            assert ack.get("janus") == "ack", ack
            await h.detach()
        # an async request queued behind those joins: once it is answered,
        # the message thread has run every one of them
        r = await th.request({"request": "admit"})
        assert r.data.get("error_code") == 480, r          # th has not joined (yet)
        visits = janus.http_json("POST", janus.admin_url, {
            "janus": "message_plugin", "transaction": "lv", "admin_secret": janus.admin_secret,
            "plugin": "janus.plugin.alliance", "request": {"request": "list_visits"}})
        v = [x for x in visits["response"]["visits"] if x["visit_id"] == vid][0]
        assert v["therapist_present"] is False, f"a detached handle holds the therapist seat: {v}"
        j = await join_therapist(th, vid, key)
        assert j.get("took_over") is not True, j
