"""An aiortc participant: synthetic audio + video out, counted media in, and
the `alliance` data channel.

    peer = Peer("client")                  # sine audio 48 kHz + 320x240@15 moving pattern
    offer = await peer.offer()             # full ICE gathering, candidates in the SDP
    r = await handle.request({"request": "configure", "audio": True, "video": True}, jsep=offer)
    await peer.apply_answer(r.jsep)
    await peer.wait_media(audio=10, video=5, timeout=5)    # frames RECEIVED from the remote tracks
    hello = await peer.wait_message(type="hello")
    await peer.send({"v": 1, "type": "ping", "ref": "x"})

* The data channel labelled `alliance` is created before the first offer.
  Messages arriving on ANY channel labelled `alliance` (ours, or one the
  server opened, seen through the `datachannel` event) are recorded in
  `peer.messages`; `wait_message()` consumes them in order of arrival.
* Incoming tracks are consumed with `recv()` in tasks; `peer.received`
  counts decoded frames per kind (`audio`, `video`), so tests assert on what
  really arrived at this peer.
* Renegotiation: call `offer()` again on the same peer and apply the new
  answer (same transceivers, same ICE credentials). The extmap ids aiortc
  offers are made unique across the bundle at import
  (`unique_extension_ids()`): with aiortc's own ids a re-offer could kill
  the peer's DTLS transport (all media and the data channel gone, state
  still "connected") — see that function. `dtls_states()` shows it;
  `wait_connected()` checks it.
* ICE restart: aiortc 1.4 cannot do it (no `restartIce()`, an ICE
  transport's credentials are fixed for its life, and a re-offer always
  reuses them), so the harness does not offer an ICE-restart helper.
* Call `pin_host_addresses(ip)` once per process so aioice gathers exactly
  one host candidate, the client veth address. No STUN/TURN servers are
  configured (aiortc would otherwise default to a public STUN server).
"""
from __future__ import annotations

import asyncio
import fractions
import json
import time
from typing import Any, Callable, Dict, List, Optional

import aioice.ice
import numpy as np
from av import AudioFrame, VideoFrame
from aiortc import (MediaStreamTrack, RTCConfiguration, RTCPeerConnection,
                    RTCSessionDescription)
from aiortc.mediastreams import MediaStreamError

AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
VIDEO_CLOCK = 90000
LABEL = "alliance"


def pin_host_addresses(ip: str) -> None:
    """Make aioice offer only `ip` as host candidate (see TESTING.md)."""
    def _only(use_ipv4: bool = True, use_ipv6: bool = True) -> List[str]:
        return [ip] if use_ipv4 else []
    aioice.ice.get_host_addresses = _only


def unique_extension_ids() -> Dict[str, int]:
    """Give every RTP header extension aiortc offers its own extmap id across
    the BUNDLE group. Returns {uri: id}. Idempotent; applied at import.

    aiortc 1.4 offers `a=extmap:2 ssrc-audio-level` on the audio m-line and
    `a=extmap:2 abs-send-time` on the video m-line, but parses every packet
    of the bundled transport with ONE id -> extension map, filled from what
    the answer accepted. Janus's answers (EchoTest's, ours) accept
    abs-send-time nowhere, so the map says "2 = audio level" for all media.
    On a re-offer the Janus core (1.1.2, janus.c) takes the extension ids
    from the OFFER at once and only drops abs-send-time when the plugin's
    answer comes through janus_plugin_handle_sdp; a video packet Janus sends
    in between carries id 2 with a 3-byte abs-send-time value. aiortc reads
    that as a 1-byte audio level, struct.error escapes RtpPacket.parse (it
    only catches ValueError) and kills the DTLS transport's receive loop:
    the transport is closed, every RTP sender stops on ConnectionError (and
    stops its source track), the data channel dies, and connectionState
    still says "connected". The window is ~1 ms at idle and grows with CPU
    load, so a renegotiation lost all media now and then (RFC 8285 wants
    ids unique within the bundle anyway). With distinct ids the packet's
    abs-send-time id is simply unknown to the map and ignored."""
    from aiortc.codecs import HEADER_EXTENSIONS
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
    ids: Dict[str, int] = {}
    for kind in sorted(HEADER_EXTENSIONS):
        for ext in HEADER_EXTENSIONS[kind]:
            ids.setdefault(ext.uri, len(ids) + 1)
    for kind, exts in HEADER_EXTENSIONS.items():
        exts[:] = [RTCRtpHeaderExtensionParameters(id=ids[e.uri], uri=e.uri) for e in exts]
    return ids


EXTENSION_IDS = unique_extension_ids()


class SineAudioTrack(MediaStreamTrack):
    """440 Hz sine, mono s16, 48 kHz, 20 ms frames, paced in real time."""
    kind = "audio"

    def __init__(self, freq: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self.freq = freq
        self.samples = int(AUDIO_RATE * AUDIO_PTIME)
        t = np.arange(AUDIO_RATE) / AUDIO_RATE      # one second, an integer number of periods
        self._wave = (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype("<i2")
        self._ts: Optional[int] = None
        self._start = 0.0
        self.sent = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._ts is None:
            self._start = time.time()
            self._ts = 0
        else:
            self._ts += self.samples
            wait = self._start + self._ts / AUDIO_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        off = self._ts % AUDIO_RATE
        chunk = self._wave[off:off + self.samples]
        frame = AudioFrame(format="s16", layout="mono", samples=self.samples)
        frame.planes[0].update(chunk.tobytes())
        frame.pts = self._ts
        frame.sample_rate = AUDIO_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.sent += 1
        return frame


class PatternVideoTrack(MediaStreamTrack):
    """A bright bar sweeping over a gradient, yuv420p, paced at `fps`."""
    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15,
                 tint: tuple = (90, 160)) -> None:
        super().__init__()
        self.tint = tint
        self.width, self.height, self.fps = width, height, fps
        self._ts: Optional[int] = None
        self._start = 0.0
        self.sent = 0
        base = np.tile(np.linspace(16, 200, width, dtype=np.uint8), (height, 1))
        self._frames = []
        n = 30
        for i in range(n):                    # precomputed; cycling costs nothing per frame
            y = base.copy()
            x0 = (i * width // n)
            y[:, x0:x0 + width // 10] = 235
            y[(i * height // n):(i * height // n) + 8, :] = 60
            u = np.full((height // 2, width // 2), tint[0], dtype=np.uint8)   # flat chroma:
            v = np.full((height // 2, width // 2), tint[1], dtype=np.uint8)   # the peer's signature
            self._frames.append(np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)]))

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        step = VIDEO_CLOCK // self.fps
        if self._ts is None:
            self._start = time.time()
            self._ts = 0
        else:
            self._ts += step
            wait = self._start + self._ts / VIDEO_CLOCK - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = VideoFrame.from_ndarray(self._frames[self.sent % len(self._frames)], format="yuv420p")
        frame.pts = self._ts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent += 1
        return frame


SIGNATURE_HZ = [440, 660, 880, 550, 770, 330]
SIGNATURE_TINT = [(90, 160), (160, 90), (60, 60), (200, 200), (128, 60), (60, 200)]
_peer_counter = 0


class DcMessage:
    __slots__ = ("label", "channel_id", "text", "json", "at", "consumed")

    def __init__(self, label: str, channel_id: Optional[int], text: Any) -> None:
        self.label = label
        self.channel_id = channel_id
        self.text = text
        self.at = time.monotonic()
        self.consumed = False
        try:
            self.json = json.loads(text) if isinstance(text, (str, bytes)) else None
        except ValueError:
            self.json = None

    def __repr__(self) -> str:
        return f"DcMessage({self.label}#{self.channel_id}: {self.text!r:.200})"


class Peer:
    def __init__(self, name: str = "peer", *, audio: bool = True, video: bool = True,
                 datachannel: bool = True, audio_hz: Optional[int] = None,
                 tint: Optional[tuple] = None) -> None:
        global _peer_counter
        self.name = name
        i = _peer_counter
        _peer_counter += 1
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        # every peer of a process gets its own audio tone and video tint, so a
        # receiver can tell whose media it got (and that it is not its own echo)
        self.audio_track = SineAudioTrack(audio_hz or SIGNATURE_HZ[i % len(SIGNATURE_HZ)]) \
            if audio else None
        self.video_track = PatternVideoTrack(tint=tint or SIGNATURE_TINT[i % len(SIGNATURE_TINT)]) \
            if video else None
        self._audio_buf = np.zeros(0, dtype=np.float32)
        self._tint: Optional[tuple] = None
        if self.audio_track:
            self.pc.addTrack(self.audio_track)
        if self.video_track:
            self.pc.addTrack(self.video_track)
        self.received: Dict[str, int] = {"audio": 0, "video": 0}
        self.video_at: List[float] = []      # time.monotonic() of each video frame received
        self.remote_tracks: List[MediaStreamTrack] = []
        self.messages: List[DcMessage] = []
        self.channels: List[Any] = []
        self._msg_event = asyncio.Event()
        self._media_event = asyncio.Event()
        self._tasks: List[asyncio.Task] = []
        self.closed = False
        self.dc = None
        if datachannel:
            self.dc = self.pc.createDataChannel(LABEL)
            self._watch_channel(self.dc)

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self.remote_tracks.append(track)
            self._tasks.append(asyncio.ensure_future(self._consume(track)))

        @self.pc.on("datachannel")
        def _on_dc(channel) -> None:
            self._watch_channel(channel)

    def __repr__(self) -> str:
        return f"Peer({self.name}, received={self.received}, state={self.pc.connectionState})"

    # -- media in ----------------------------------------------------------
    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except (MediaStreamError, asyncio.CancelledError):
                return
            except Exception:
                return
            self.received[track.kind] = self.received.get(track.kind, 0) + 1
            if track.kind == "video":
                self.video_at.append(time.monotonic())
            try:
                self._inspect(track.kind, frame)
            except Exception:
                pass
            self._media_event.set()

    def _inspect(self, kind: str, frame) -> None:
        if kind == "audio":
            a = frame.to_ndarray()
            ch = len(frame.layout.channels)
            mono = a.reshape(-1)[::ch].astype(np.float32)
            self._audio_buf = np.concatenate([self._audio_buf, mono])[-9600:]
        elif kind == "video" and self.received["video"] % 5 == 1:
            img = frame.to_ndarray(format="yuv420p")
            h = frame.height
            u = img[h:h + h // 4].mean()
            v = img[h + h // 4:].mean()
            self._tint = (float(u), float(v))

    def audio_hz(self) -> Optional[float]:
        """Dominant frequency of the last 0.2 s of received audio."""
        buf = self._audio_buf
        if len(buf) < 4800 or not np.any(buf):
            return None
        spec = np.abs(np.fft.rfft(buf * np.hanning(len(buf))))
        return float(np.argmax(spec[1:]) + 1) * AUDIO_RATE / len(buf)

    def video_tint(self) -> Optional[tuple]:
        """Mean (U, V) of a recently received video frame."""
        return self._tint

    def assert_receiving_from(self, other: "Peer") -> None:
        """The media this peer receives carries `other`'s signature."""
        hz = self.audio_hz()
        assert hz is not None and abs(hz - other.audio_track.freq) <= 15, \
            f"{self.name} receives audio at {hz} Hz, {other.name} sends {other.audio_track.freq} Hz"
        tint = self.video_tint()
        assert tint is not None and all(abs(a - b) <= 15 for a, b in zip(tint, other.video_track.tint)), \
            f"{self.name} receives video tint {tint}, {other.name} sends {other.video_track.tint}"

    def snapshot(self) -> Dict[str, int]:
        return dict(self.received)

    async def wait_media(self, audio: int = 0, video: int = 0, timeout: float = 5.0,
                         since: Optional[Dict[str, int]] = None) -> Dict[str, int]:
        """Wait until at least `audio`/`video` more frames than in `since`
        (default: zero) were received. Returns the counts gained."""
        base = since or {"audio": 0, "video": 0}
        deadline = asyncio.get_running_loop().time() + timeout

        def gained() -> Dict[str, int]:
            return {k: self.received.get(k, 0) - base.get(k, 0) for k in ("audio", "video")}

        while True:
            g = gained()
            if g["audio"] >= audio and g["video"] >= video:
                return g
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"{self.name}: received only {g} (wanted audio>={audio}, video>={video}) "
                    f"within {timeout}s; connection={self.pc.connectionState} "
                    f"ice={self.pc.iceConnectionState} dtls={self.dtls_states()} remote tracks="
                    f"{[t.kind for t in self.remote_tracks]}")
            self._media_event.clear()
            try:
                await asyncio.wait_for(self._media_event.wait(), min(left, 0.25))
            except asyncio.TimeoutError:
                pass

    # -- data channel --------------------------------------------------------
    def _watch_channel(self, channel) -> None:
        self.channels.append(channel)

        @channel.on("message")
        def _on_message(message) -> None:
            if channel.label == LABEL:
                self.messages.append(DcMessage(channel.label, channel.id, message))
                self._msg_event.set()

    def open_channel(self):
        for ch in self.channels:
            if ch.label == LABEL and ch.readyState == "open":
                return ch
        return None

    async def wait_channel_open(self, timeout: float = 5.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            ch = self.open_channel()
            if ch is not None:
                return ch
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.name}: no open '{LABEL}' data channel within {timeout}s "
                                     f"({[(c.label, c.readyState) for c in self.channels]})")
            await asyncio.sleep(0.05)

    async def send(self, obj: Any, timeout: float = 5.0) -> None:
        """Send a JSON object (or a raw str/bytes as is) on the alliance channel."""
        ch = await self.wait_channel_open(timeout)
        ch.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def wait_message(self, predicate: Optional[Callable[[DcMessage], bool]] = None,
                           timeout: float = 5.0, **fields: Any) -> dict:
        """First unconsumed alliance-channel message whose JSON has all
        `fields` (e.g. type="pong", ref="x") and satisfies `predicate`.
        Returns the parsed JSON."""
        def match(m: DcMessage) -> bool:
            if m.consumed:
                return False
            if fields and not (isinstance(m.json, dict)
                               and all(m.json.get(k) == v for k, v in fields.items())):
                return False
            return predicate(m) if predicate else True

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for m in self.messages:
                if match(m):
                    m.consumed = True
                    return m.json
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{self.name}: no data-channel message {fields} within "
                                     f"{timeout}s; unconsumed: "
                                     f"{[m for m in self.messages if not m.consumed]}")
            self._msg_event.clear()
            try:
                await asyncio.wait_for(self._msg_event.wait(), min(left, 0.25))
            except asyncio.TimeoutError:
                pass

    # -- signalling ----------------------------------------------------------
    async def offer(self, trickle: bool = False) -> dict:
        """Create and apply a local offer (aiortc gathers all candidates
        first). Works again later for renegotiation on the same pc."""
        desc = await self.pc.createOffer()
        await self.pc.setLocalDescription(desc)
        loc = self.pc.localDescription
        return {"type": loc.type, "sdp": loc.sdp, "trickle": trickle}

    async def apply_answer(self, jsep: Optional[dict]) -> None:
        if not jsep or jsep.get("type") != "answer" or not jsep.get("sdp"):
            raise AssertionError(f"{self.name}: expected a JSEP answer, got "
                                 f"{None if not jsep else {k: v for k, v in jsep.items() if k != 'sdp'}}")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))

    def dtls_states(self) -> List[str]:
        """States of the DTLS transport(s) the media and data channel use.
        aiortc's connectionState ignores a DTLS transport that closed under
        it (its receive loop died): it stays "connected" with no media."""
        transports = {id(t.sender.transport): t.sender.transport for t in self.pc.getTransceivers()}
        if self.pc.sctp is not None:
            transports[id(self.pc.sctp.transport)] = self.pc.sctp.transport
        return sorted(t.state for t in transports.values())

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """connectionState "connected" and every DTLS transport in use
        connected; fails at once when one is failed or closed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            dtls = self.dtls_states()
            if self.pc.connectionState == "connected" and all(s == "connected" for s in dtls):
                return
            if self.pc.connectionState in ("failed", "closed") or \
                    any(s in ("failed", "closed") for s in dtls) or \
                    asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.name}: connection {self.pc.connectionState} "
                                     f"(ice {self.pc.iceConnectionState}, dtls {dtls}) "
                                     f"after {timeout}s")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(self.pc.close(), 5)
        except Exception:
            pass
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except BaseException:
                pass
        for tr in (self.audio_track, self.video_track):
            if tr is not None:
                tr.stop()

    async def __aenter__(self) -> "Peer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
