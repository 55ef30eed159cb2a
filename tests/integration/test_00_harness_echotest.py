"""Self-test of the harness against Janus's stock EchoTest plugin.

If these fail, the machinery (namespaces, ICE, aiortc, the API clients) is
broken — not the alliance plugin. They run first and take a few seconds.
"""
import pytest

from harness.api import JanusError
from harness.alliance import Scope
from harness.janus import JANUS_LIB, JanusServer

ECHO = "janus.plugin.echotest"


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
        r2 = await h.request({"audio": True, "video": True}, jsep=await peer.offer())
        assert r2.data.get("result") == "ok"
        await peer.apply_answer(r2.jsep)
        await peer.wait_media(audio=20, video=5, timeout=5, since=before)

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
