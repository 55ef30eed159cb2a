"""Self-test of the harness against Janus's stock EchoTest plugin.

If these fail, the machinery (namespaces, ICE, aiortc, the API clients) is
broken — not the alliance plugin. They run first and take a few seconds.
"""
import pytest
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from harness.api import JanusError
from harness.alliance import Scope
from harness.janus import JANUS_LIB, JanusServer

ECHO = "janus.plugin.echotest"


def extmap_ids(sdp: str) -> dict:
    """{id: {uri, ...}} over all m-lines of an SDP."""
    ids: dict = {}
    for line in sdp.splitlines():
        if line.startswith("a=extmap:"):
            ext_id, uri = line[len("a=extmap:"):].split()[:2]
            ids.setdefault(int(ext_id.split("/")[0]), set()).add(uri)
    return ids


def reoffer_window_packet(offer_sdp: str) -> bytes:
    """A video RTP packet as the Janus core (1.1.2) stamps it between a
    re-offer and the plugin's answer: the extension ids come from the offer
    at once (janus.c), so abs-send-time is there although no answer of ours
    accepts it (see harness.peer.unique_extension_ids)."""
    video = next(m for m in aiortc_sdp.SessionDescription.parse(offer_sdp).media
                 if m.kind == "video")
    stamp = HeaderExtensionsMap()
    stamp.configure(RTCRtpParameters(headerExtensions=video.rtp.headerExtensions))
    pkt = RtpPacket(payload_type=97, sequence_number=1, timestamp=1, ssrc=1, payload=b"\x10\x00")
    pkt.extensions.mid = video.rtp.muxId
    pkt.extensions.abs_send_time = 0x33BC6A
    return pkt.serialize(stamp)


@pytest.fixture(scope="module")
def echo_janus(net, tmp_path_factory):
    from conftest import _start_checked, _stop_checked
    srv = JanusServer(net, tmp_path_factory.mktemp("echo"),
                      plugin_sos=[JANUS_LIB / "plugins" / "libjanus_echotest.so"],
                      required_plugins=[ECHO])
    _start_checked(srv)
    try:
        yield srv
    finally:
        _stop_checked(srv)


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_echo_media_datachannel_renegotiation(echo_janus, transport):
    async with Scope(echo_janus, transport, plugin=ECHO) as sc:
        h = await sc.handle()
        peer = sc.peer(f"echo-{transport}")
        r = await h.request({"audio": True, "video": True}, jsep=await peer.offer())
        assert not r.sync
        assert r.data == {"echotest": "event", "result": "ok"}
        await peer.apply_answer(r.jsep)
        await peer.wait_connected(5)
        # the first call of the run (Janus just started, maybe under ASan):
        # a self-test of the harness, not a timing claim, so be patient
        got = await peer.wait_media(audio=20, video=5, timeout=15)
        assert got["audio"] >= 20 and got["video"] >= 5
        await peer.wait_media(audio=40, video=8, timeout=5)
        peer.assert_receiving_from(peer)             # EchoTest sends our own media back
        stranger = sc.peer("stranger")               # other tone/tint: the check must tell them apart
        with pytest.raises(AssertionError):
            peer.assert_receiving_from(stranger)
        await h.wait_event(janus="webrtcup", timeout=5)

        # data channel: EchoTest echoes text back on the same label
        await peer.send("hello-echo")
        echoed = await peer.wait_message(lambda m: "hello-echo" in str(m.text), timeout=5)
        assert echoed is None or isinstance(echoed, dict)   # EchoTest's reply is not JSON

        # renegotiation on the same pc
        before = peer.snapshot()
        offer2 = await peer.offer()
        # each extmap id means one extension in the whole bundle: aiortc
        # parses all bundled media with one id map (harness.peer)
        assert all(len(uris) == 1 for uris in extmap_ids(offer2["sdp"]).values()), \
            extmap_ids(offer2["sdp"])
        r2 = await h.request({"audio": True, "video": True}, jsep=offer2)
        assert r2.data.get("result") == "ok"
        await peer.apply_answer(r2.jsep)
        # what Janus may send while it handled the re-offer must not break the
        # peer (it closed its DTLS transport, now and then, under load): checked
        # deterministically on the peer's own parser, not left to timing
        transport = peer.pc.getTransceivers()[1].sender.transport
        parsed = RtpPacket.parse(reoffer_window_packet(offer2["sdp"]),
                                 transport._rtp_header_extensions_map)
        assert parsed.extensions.mid == "1"
        await peer.wait_media(audio=20, video=5, timeout=5, since=before)
        await peer.wait_connected(1)                 # DTLS transport still up, too
        peer.assert_receiving_from(peer)
        await peer.send("hello-again")
        await peer.wait_message(lambda m: "hello-again" in str(m.text), timeout=5)

        # admin API sees the handle with its ICE state
        info = echo_janus.handle_info(h.session.id, h.id)
        assert info.get("plugin") == ECHO
        assert info.get("webrtc", {}).get("ice", {}).get("state") in ("connected", "ready")


async def test_janus_core_refusals_seen_by_harness(echo_janus):
    """Facts about the Janus core that the alliance refusal tests rely on."""
    async with Scope(echo_janus, "ws", plugin=ECHO) as sc:
        h = await sc.handle()
        for body in (["request", "x"], "a string"):
            with pytest.raises(JanusError) as ei:
                await h.request(body)
            assert ei.value.code == 467          # JANUS_ERROR_INVALID_ELEMENT_TYPE: body must be an object
        s = await sc.session("http")
        status, text = await s.post_raw(b'{"janus":"keepalive", "transaction": ', None)
        assert status == 200 and '"error"' in text and "454" in text   # JANUS_ERROR_INVALID_JSON
        assert echo_janus.alive()
