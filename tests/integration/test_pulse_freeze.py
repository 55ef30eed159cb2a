"""Pulses wait out a frozen picture (docs/api.md, "Pulses and a frozen
picture"): a scheduled in-session pulse that falls due while the client's
incoming video is frozen is held until that video has been stable for
`pulse_hold_stable_s`, or skipped once it has been held for
`pulse_hold_max_s`.

The freeze is real: the THERAPIST's aiortc video track stops producing
frames (its next frame comes FREEZE_S late, as a camera that hangs), so the
relay has nothing to forward and the client's incoming video stops; audio
goes on. What the client observes decides: the arrival times of the video
frames it decodes (`Peer.video_at`) and of the messages on its data
channel. No timing slack is asserted: only the order of what happened.
"""
import asyncio
import json
import time

import pytest

from harness import store
from harness.alliance import Scope, expect
from harness.peer import VIDEO_CLOCK
from harness.pulses import live_visit

STABLE_S = 2
MAX_S = 8
DUE_S = 8                     # the pulse's offset after admission
ALLIANCE_CONFIG = {"extra_general": f"pulse_hold_stable_s = {STABLE_S}\n    pulse_hold_max_s = {MAX_S}"}


def _freeze(track, seconds: float) -> dict:
    """The track's next frame is captured and sent `seconds` late; returns
    {"started": Event, "ended": Event} set when the pause begins and ends."""
    ev = {"started": asyncio.Event(), "ended": asyncio.Event()}

    async def recv_late():
        ev["started"].set()
        del track.recv                       # back to the class's recv
        track._ts += int(seconds * VIDEO_CLOCK)   # recv paces on _ts: it waits that much more
        frame = await track.recv()
        ev["ended"].set()
        return frame
    track.recv = recv_late
    return ev


def _gaps(times, at_least: float):
    """(start, end) of every interval between consecutive frames >= at_least s."""
    return [(a, b) for a, b in zip(times, times[1:]) if b - a >= at_least]


def _pulses(peer):
    return [m for m in peer.messages if isinstance(m.json, dict) and m.json.get("type") == "pulse"]


def _events(db, vid, kind):
    return store.rows(db, "SELECT detail_json, at FROM events WHERE visit_id = ? AND kind = ?", (vid, kind))


@pytest.mark.timeout_s(60)
async def test_pulse_due_during_freeze_arrives_after_video_is_back(janus, keys):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-FZ1", media=True, schedule={"in_session_at_s": [DUE_S]})
        due = v.admitted_at + DUE_S
        assert time.monotonic() < due - 2, "the call took too long to set up for this test"
        # the therapist's camera hangs until well after the pulse is due
        ev = _freeze(v.pt.video_track, due - time.monotonic() + 2.5)
        await asyncio.wait_for(ev["started"].wait(), 5)
        await asyncio.wait_for(ev["ended"].wait(), 20)
        # the client sees video again (the frames after the freeze)
        snap = v.pc.snapshot()
        await v.pc.wait_media(video=5, since=snap, timeout=10)
        msg = await v.pc.wait_message(type="pulse", timeout=MAX_S + 5)
        pulse_at = next(m.at for m in _pulses(v.pc) if m.json.get("pulse_id") == msg["pulse_id"])
        frames = list(v.pc.video_at)
        gaps = _gaps(frames, 1.0)
        print(f"\nclient video gaps >= 1 s (relative to the due time): "
              f"{[(round(a - due, 2), round(b - due, 2)) for a, b in gaps]}; "
              f"pulse at {pulse_at - due:+.2f} s")
        # the client's picture froze around the due time ...
        frozen = [(a, b) for a, b in gaps if a < due < b]
        assert len(frozen) == 1, f"no freeze of the client's video spans the due time: {gaps}"
        back = frozen[0][1]
        # ... and the pulse reached it only after the video came back, once
        # that video had been flowing for a while (more frames after `back`)
        assert pulse_at > back, f"the pulse came {back - pulse_at:.2f} s before the video was back"
        after = [t for t in frames if back <= t < pulse_at]
        assert len(after) >= 5, f"only {len(after)} video frames between the return and the pulse"
        assert msg.get("kind") == "in_session", msg
        # recorded: how long it was held
        rows = await store.wait_rows(db, "SELECT detail_json FROM events WHERE visit_id = ? AND kind = "
                                     "'pulse_held'", (v.visit_id,), lambda rs: len(rs) == 1, timeout=5)
        d = json.loads(rows[0]["detail_json"])
        assert d["pulse_id"] == msg["pulse_id"] and d["reason"] == "video_unstable", d
        assert d["held_ms"] >= STABLE_S * 1000, d   # held from the due time until stable again
        assert not _events(db, v.visit_id, "pulse_skipped")


@pytest.mark.timeout_s(60)
async def test_pulse_held_past_the_bound_is_skipped(janus, keys):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-FZ2", media=True, schedule={"in_session_at_s": [DUE_S]})
        due = v.admitted_at + DUE_S
        assert time.monotonic() < due - 2, "the call took too long to set up for this test"
        # frozen from before the due time until long after the bound
        ev = _freeze(v.pt.video_track, due - time.monotonic() + MAX_S + 6)
        await asyncio.wait_for(ev["started"].wait(), 5)
        rows = await store.wait_rows(db, "SELECT detail_json, at FROM events WHERE visit_id = ? AND kind = "
                                     "'pulse_skipped'", (v.visit_id,), lambda rs: len(rs) == 1,
                                     timeout=DUE_S + MAX_S + 5)
        d = json.loads(rows[0]["detail_json"])
        print(f"\nskipped: {d}; video frozen until now: {not ev['ended'].is_set()}")
        assert d["reason"] == "video_unstable" and d["offset_s"] == DUE_S and d["offsets"] == 1, d
        assert d["held_ms"] >= MAX_S * 1000, d
        assert not ev["ended"].is_set(), "the video came back before the skip: the test proves nothing"
        assert not _pulses(v.pc), f"a skipped pulse reached the client: {_pulses(v.pc)}"
        assert not store.rows(db, "SELECT pulse_id FROM pulses WHERE visit_id = ?", (v.visit_id,))
        # the visit report shows it
        sup = await sc.handle()
        rep = expect(await sup.request({"request": "report", "kind": "visit", "visit_id": v.visit_id,
                                        "supervisor_key": keys.supervisor("s01")}), "report")
        kinds = [e.get("kind") for e in rep.get("events", [])]
        assert "pulse_skipped" in kinds, rep.get("events")
