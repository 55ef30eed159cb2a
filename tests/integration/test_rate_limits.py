"""Rate limits on the Janus API (497 `rate_limited`, docs/api.md
"Lifecycle"): a request flood from one handle, repeated refused keys or
invites from one handle, and refused credentials from everyone together.
A refused request changes nothing; other handles are not punished for one
handle's flood. The global limit comes last: it blocks credentials for the
rest of the module's minute."""
import asyncio

from harness.alliance import Scope, create_visit, expect, expect_error, join_therapist, status
from harness.pulses import live_visit

ALLIANCE_CONFIG = {"events": False}


async def test_request_flood_from_one_handle(janus, keys):
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-RL1")
        before = await status(v.th)
        answers = await asyncio.gather(*[v.cl.request({"request": "status"}) for _ in range(80)])
        codes = [a.data.get("error_code") for a in answers]
        limited = codes.count(497)
        ok = sum(1 for a in answers if a.data.get("alliance") == "status")
        assert limited >= 20 and ok >= 38, (ok, limited)
        assert all(a.data["error"].startswith("Too many requests") for a in answers if a.data.get("error_code") == 497)
        # the flood did not spill over: the therapist's handle is fine, nothing changed
        after = await status(v.th)
        assert (after["state"], after["participants"]) == (before["state"], before["participants"])
        # and the flooding handle is served again once the bucket refills
        await asyncio.sleep(1.0)
        expect(await v.cl.request({"request": "status"}), "status")


async def test_refused_keys_block_the_handle(janus, keys):
    key = keys.therapist("T-01")
    async with Scope(janus) as sc:
        th = await sc.handle()
        created = await create_visit(th, key, "C-RL2")
        guesser = await sc.handle()
        wrong = {"request": "join", "role": "therapist", "visit_id": created["visit_id"],
                 "therapist_key": "A" * 43}
        for _ in range(6):
            expect_error(await guesser.request(wrong), 475)
        # blocked now, even with the right key
        d = expect_error(await guesser.request({"request": "join", "role": "therapist",
                                                "visit_id": created["visit_id"], "therapist_key": key}), 497)
        assert "refused keys or invites" in d["error"], d
        # invites count too, on another handle
        g2 = await sc.handle()
        for _ in range(6):
            expect_error(await g2.request({"request": "join", "role": "client", "invite": "B" * 32,
                                           "consent": {"research": True}}), 477)
        expect_error(await g2.request({"request": "status"}), 497)
        # an honest handle is not affected
        j = await join_therapist(th, created["visit_id"], key)
        assert j["state"] == "created", j


async def test_refused_credentials_in_total(janus, keys):
    """More than 100 refused credentials a minute over many handles: the
    next credential-bearing request anywhere gets 497 (a distributed
    guesser cannot spread out over handles); other requests are served."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-RL3")
        refused, limited = 0, False
        fresh = await sc.handle()                     # attached before, so the check below is quick
        while not limited:
            assert refused <= 160, "no global limit after 160 refused credentials"
            h = await sc.handle()
            for _ in range(5):                        # under each handle's own limit
                r = await h.request({"request": "create", "therapist_key": "C" * 43, "client_code": "C-X"})
                code = r.data.get("error_code")
                assert code in (475, 497), r.data
                if code == 497:
                    assert "on this server" in r.data["error"], r.data
                    limited = True
                    break
                refused += 1
        # (the earlier tests of this module refused 12 credentials within the minute)
        assert refused >= 100 - 12 - 2, f"limited after only {refused} refusals"
        d = expect_error(await fresh.request({"request": "create", "therapist_key": keys.therapist("T-01"),
                                              "client_code": "C-RL4"}), 497)
        assert "on this server" in d["error"], d
        st = await status(v.th)                       # no credentials: served
        assert st["state"] == "live", st
