"""Observer media — live supervision (PROTOCOL.md v1.1 "Operations and
supervision", docs/api.md "Observers"): a supervisor who joined as
observer sends a receive-only offer and gets the therapist's and the
client's audio and video, each on its own m-line (first audio/video: the
therapist, second: the client), told apart here by each sender's tone and
tint. Both participants hear `observer_joined` / `observer_left`; the
client re-joining without consent removes the observer at once (`removed`,
its PeerConnection hung up, its media stops); what an observer sends goes
nowhere; a participant taking over its seat keeps the observer's streams
going; an observer's keyframe requests reach the participant, rate-limited."""
import asyncio
import time
from typing import Dict, List, Optional

import numpy as np

from harness.alliance import Scope, configure, expect, expect_error, join_client, status
from harness.peer import AUDIO_RATE, Peer
from harness.pulses import live_visit

ALLIANCE_CONFIG = {"events": False}

# the observer's m-lines, in the order its offer lists them
STREAMS = [("therapist", "audio"), ("therapist", "video"), ("client", "audio"), ("client", "video")]


class Observer(Peer):
    """An aiortc observer: four receive-only transceivers (audio, video,
    audio, video); what arrives is counted and inspected per m-line.
    With `sends`, its first audio and video transceivers also carry its own
    tone and tint (a hostile observer), and `force_send` makes it send even
    though the answer says it must not."""

    def __init__(self, name: str, *, sends: bool = False) -> None:
        super().__init__(name, audio=sends, video=sends, datachannel=True)
        kinds = ["audio", "video", "audio", "video"][2 if sends else 0:]
        for kind in kinds:
            self.pc.addTransceiver(kind, direction="recvonly")
        self.per: List[Dict] = [{"frames": 0, "buf": np.zeros(0, dtype=np.float32), "tint": None}
                                for _ in STREAMS]

    def _index(self, track) -> Optional[int]:
        for i, t in enumerate(self.pc.getTransceivers()):
            if t.receiver.track is track:
                return i
        return None

    async def _consume(self, track) -> None:
        i = self._index(track)
        while True:
            try:
                frame = await track.recv()
            except BaseException:
                return
            self.received[track.kind] = self.received.get(track.kind, 0) + 1
            if i is None or i >= len(self.per):
                continue
            st = self.per[i]
            st["frames"] += 1
            try:
                if track.kind == "audio":
                    a = frame.to_ndarray()
                    ch = len(frame.layout.channels)
                    st["buf"] = np.concatenate([st["buf"], a.reshape(-1)[::ch].astype(np.float32)])[-9600:]
                elif st["frames"] % 5 == 1:
                    img = frame.to_ndarray(format="yuv420p")
                    h = frame.height
                    st["tint"] = (float(img[h:h + h // 4].mean()), float(img[h + h // 4:].mean()))
            except Exception:
                pass
            self._media_event.set()

    def frames(self) -> List[int]:
        return [st["frames"] for st in self.per]

    def hz(self, i: int) -> Optional[float]:
        buf = self.per[i]["buf"]
        if len(buf) < 4800 or not np.any(buf):
            return None
        spec = np.abs(np.fft.rfft(buf * np.hanning(len(buf))))
        return float(np.argmax(spec[1:]) + 1) * AUDIO_RATE / len(buf)

    def mismatches(self, senders: Dict[str, Peer]) -> List[str]:
        """Which m-lines do not (yet) carry their sender's signature."""
        out = []
        for i, (seat, kind) in enumerate(STREAMS):
            p = senders[seat]
            if kind == "audio":
                hz = self.hz(i)
                if hz is None or abs(hz - p.audio_track.freq) > 15:
                    out.append(f"m-line {i} ({seat} audio): {hz} Hz, {p.name} sends {p.audio_track.freq}")
            else:
                tint = self.per[i]["tint"]
                if tint is None or any(abs(a - b) > 15 for a, b in zip(tint, p.video_track.tint)):
                    out.append(f"m-line {i} ({seat} video): tint {tint}, {p.name} sends {p.video_track.tint}")
        return out


async def wait_streams(obs: Observer, senders: Dict[str, Peer], timeout: float = 8.0,
                       since: Optional[List[int]] = None) -> None:
    """Every m-line got fresh frames (25 audio / 6 video beyond `since`) and
    carries its sender's tone or tint."""
    base = since or [0] * len(STREAMS)
    want = [25 if kind == "audio" else 6 for _, kind in STREAMS]
    deadline = time.monotonic() + timeout
    while True:
        got = [f - b for f, b in zip(obs.frames(), base)]
        short = [i for i in range(len(STREAMS)) if got[i] < want[i]]
        bad = [] if short else obs.mismatches(senders)
        if not short and not bad:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{obs.name}: frames per m-line {got} (wanted {want}); {bad}; "
                                 f"connection {obs.pc.connectionState}")
        await asyncio.sleep(0.1)


async def observe(sc, v, keys, name: str = "observer", **kw):
    h = await sc.handle()
    j = expect(await h.request({"request": "join", "role": "observer", "visit_id": v.visit_id,
                                "supervisor_key": keys.supervisor("s01")}), "joined")
    assert j["role"] == "observer", j
    return h, Observer(name, **kw)


async def plugin_counters(janus, h) -> dict:
    info = await asyncio.to_thread(janus.handle_info, h.session.id, h.id)
    return info.get("plugin_specific", {}).get("counters", {})


async def test_observer_sees_both_then_consent_withdrawn(janus, keys):
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-OB01", media=True, research=True)
        oh, obs = await observe(sc, v, keys)
        # both participants are told, with how many watch
        for h in (v.th, v.cl):
            ev = await h.wait_event(alliance="observer_joined", timeout=5)
            assert ev.data.get("observers") == 1 and ev.data.get("visit_id") == v.visit_id, ev.data
        st = await status(v.th)
        assert st["participants"]["observers"] == 1, st

        # the receive-only offer: four m-lines answered sendonly from the plugin
        offer = await obs.offer()
        r = await oh.request({"request": "configure", "audio": True, "video": True}, jsep=offer)
        expect(r, "configured")
        sdp = r.jsep["sdp"]
        media = [blk for blk in sdp.split("\r\nm=")[1:] if blk.startswith(("audio", "video"))]
        assert [m.split(" ")[0] for m in media] == ["audio", "video", "audio", "video"], sdp
        assert all("a=sendonly" in m for m in media), sdp
        await obs.apply_answer(r.jsep)
        await obs.wait_connected(5)
        senders = {"therapist": v.pt, "client": v.pc}
        await wait_streams(obs, senders)
        # the participants' own call goes on as before
        await asyncio.gather(v.pt.wait_media(25, 5, 5, since=v.pt.snapshot()),
                             v.pc.wait_media(25, 5, 5, since=v.pc.snapshot()))
        v.pt.assert_receiving_from(v.pc)
        v.pc.assert_receiving_from(v.pt)
        c = await plugin_counters(janus, oh)
        assert all(c.get(k, 0) > 0 for k in ("observed_therapist_audio", "observed_therapist_video",
                                             "observed_client_audio", "observed_client_video")), c

        # the client's tab is replaced (same consent): the observer keeps
        # watching, now the new tab's media, on the same m-lines
        cl2 = await sc.handle()
        j = await join_client(cl2, v.invite, research=True, rejoin_key=v.rejoin_key)
        assert j.get("took_over") is True, j
        ev = await cl2.wait_event(alliance="observer_joined", timeout=5)   # the new tab hears it too
        assert ev.data.get("observers") == 1, ev.data
        pc2 = sc.peer("client-2")
        await configure(cl2, pc2)
        await pc2.wait_connected(5)
        senders["client"] = pc2
        await wait_streams(obs, senders, since=obs.frames())
        assert oh.unconsumed("removed") == [], oh.unconsumed()

        # consent withdrawn: the client re-joins with research:false
        cl3 = await sc.handle()
        await join_client(cl3, v.invite, research=False, rejoin_key=v.rejoin_key)
        ev = await oh.wait_event(alliance="removed", timeout=3)
        assert ev.data.get("reason") == "consent_withdrawn", ev.data
        ev = await v.th.wait_event(alliance="observer_left", timeout=3)
        assert ev.data.get("observers") == 0 and ev.data.get("reason") == "consent_withdrawn", ev.data
        # its PeerConnection is hung up by the plugin
        await oh.wait_event(janus="hangup", timeout=5)
        # and nothing more reaches it while the therapist keeps sending:
        # (frames already on their way may still land, so the count is
        # taken once the hang-up is through, then 1 s of the therapist's
        # audio is waited out)
        before = obs.frames()
        c_before = await plugin_counters(janus, oh)
        sent = v.pt.audio_track.sent
        while v.pt.audio_track.sent < sent + 50:
            await asyncio.sleep(0.05)
        after = obs.frames()
        assert all(a - b <= 3 for a, b in zip(after, before)), (before, after)
        c_after = await plugin_counters(janus, oh)
        for k in ("observed_therapist_audio", "observed_therapist_video"):
            assert c_after.get(k, 0) == c_before.get(k, 0), (c_before, c_after)
        st = await status(v.th)
        assert st["participants"]["observers"] == 0, st
        expect_error(await oh.request({"request": "status"}), 480)
        await obs.close()


async def test_observer_sends_nothing_and_leaves(janus, keys):
    """A hostile observer that offers its own tone and tint and sends them
    anyway: the answer refuses to receive, nothing it sends reaches the
    participants; its leave is announced to both."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-OB02", media=True, research=True)
        oh, obs = await observe(sc, v, keys, "hostile-observer", sends=True)
        for h in (v.th, v.cl):
            await h.wait_event(alliance="observer_joined", timeout=5)
        offer = await obs.offer()
        r = await oh.request({"request": "configure", "audio": True, "video": True}, jsep=offer)
        expect(r, "configured")
        # the plugin does not receive on any m-line
        media = [blk for blk in r.jsep["sdp"].split("\r\nm=")[1:] if blk.startswith(("audio", "video"))]
        assert len(media) == 4 and not any("a=recvonly" in m or "a=sendrecv" in m for m in media), media
        # ...but this observer pretends it does and sends anyway
        forced = dict(r.jsep, sdp=r.jsep["sdp"].replace("a=sendonly", "a=sendrecv"))
        await obs.apply_answer(forced)
        await obs.wait_connected(5)
        await wait_streams(obs, {"therapist": v.pt, "client": v.pc})
        # it has been sending for a while (1 s of audio) ...
        sent = obs.audio_track.sent
        while obs.audio_track.sent < sent + 50:
            await asyncio.sleep(0.05)
        assert obs.video_track.sent > 10, obs.video_track.sent
        # the participants still hear and see only each other
        await asyncio.gather(v.pt.wait_media(25, 6, 5, since=v.pt.snapshot()),
                             v.pc.wait_media(25, 6, 5, since=v.pc.snapshot()))
        v.pt.assert_receiving_from(v.pc)
        v.pc.assert_receiving_from(v.pt)
        c = await plugin_counters(janus, oh)
        assert c.get("rtp_relayed_audio", 0) == 0 and c.get("rtp_relayed_video", 0) == 0, c
        # it leaves: both participants hear it, and its streams stop
        expect(await oh.request({"request": "leave"}), "left")
        for h in (v.th, v.cl):
            ev = await h.wait_event(alliance="observer_left", timeout=5)
            assert ev.data.get("observers") == 0 and ev.data.get("reason") == "left", ev.data
        await obs.close()


async def test_observer_keyframe_requests(janus, keys):
    """An observer's PLI reaches the participant it names by m-line, at most
    one per 500 ms per participant (a flood of them does not flood the
    participants' encoders)."""
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-OB03", media=True, research=True)
        oh, obs = await observe(sc, v, keys)
        offer = await obs.offer()
        r = await oh.request({"request": "configure", "audio": True, "video": True}, jsep=offer)
        expect(r, "configured")
        await obs.apply_answer(r.jsep)
        await obs.wait_connected(5)
        await wait_streams(obs, {"therapist": v.pt, "client": v.pc})
        # the PLIs the therapist's and the client's peers get, counted at
        # their video senders (aiortc forces a keyframe for each)
        counts = {"therapist": [0], "client": [0]}
        for name, p in (("therapist", v.pt), ("client", v.pc)):
            sender = next(t.sender for t in p.pc.getTransceivers() if t.kind == "video")
            wrap_pli(sender, counts[name])
        # a flood: 40 PLIs in 2 s for the therapist's video (m-line 1)
        recv = obs.pc.getTransceivers()[1].receiver
        ssrc = media_ssrc(recv)
        t0 = time.monotonic()
        for _ in range(40):
            await recv._send_rtcp_pli(ssrc)
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - t0
        deadline = time.monotonic() + 2
        while counts["therapist"][0] < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # one at once, then at most one per 500 ms (+1 for the edges)
        allowed = int(elapsed / 0.5) + 2
        assert 2 <= counts["therapist"][0] <= allowed, (counts, elapsed)
        # the client's m-line was not named: its encoder was left alone
        assert counts["client"][0] <= 1, counts
        await obs.close()


def media_ssrc(recv) -> int:
    """The SSRC an aiortc receiver gets its stream from (kept privately)."""
    streams = getattr(recv, "_RTCRtpReceiver__remote_streams", None)
    assert streams, "no remote stream on the observer's receiver yet"
    return next(iter(streams))


def wrap_pli(sender, count: list) -> None:
    """Count the PLIs an aiortc sender handles (the transport calls
    sender._handle_rtcp_packet for each RTCP packet addressed to it)."""
    from aiortc.rtcrtpsender import RtcpPsfbPacket
    orig = sender._handle_rtcp_packet

    async def counted(packet):
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == 1:   # PLI
            count[0] += 1
        return await orig(packet)
    sender._handle_rtcp_packet = counted
