"""A network cut (PROTOCOL.md v1.1 "Lifecycle", docs/api.md "Media that
stops"): all of the client's UDP is dropped with nftables for 10 s, then
let through again. Nothing is asked of anyone: the visit stays live, the
therapist is told the client's media stopped and resumed, media flows
again both ways by itself, a pulse sent during the cut is held and
delivered after it, and a stall incident covers the cut."""
import asyncio
import subprocess
import time

from harness import quality, store
from harness.alliance import Scope, expect, status
from harness.pulses import check_pulse, live_visit

ALLIANCE_CONFIG = {"events": False}
TABLE = "apcut"
CUT_S = 10.0


def _nft(net, *args, check=True):
    r = subprocess.run(["ip", "netns", "exec", net.client_ns, "nft", *args],
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"nft {' '.join(args)}: {r.stderr.strip()}")
    return r


class UdpCut:
    """Drop every UDP packet to and from one aiortc peer's socket (its ICE,
    DTLS, SRTP and data channel) in the client namespace."""

    def __init__(self, net, port):
        self.net, self.port = net, port

    def __enter__(self):
        _nft(self.net, "delete", "table", "ip", TABLE, check=False)
        _nft(self.net, "add", "table", "ip", TABLE)
        _nft(self.net, "add", "chain", "ip", TABLE, "out",
             "{ type filter hook output priority 0; policy accept; }")
        _nft(self.net, "add", "chain", "ip", TABLE, "in",
             "{ type filter hook input priority 0; policy accept; }")
        _nft(self.net, "add", "rule", "ip", TABLE, "out", "udp", "sport", str(self.port), "counter", "drop")
        _nft(self.net, "add", "rule", "ip", TABLE, "in", "udp", "dport", str(self.port), "counter", "drop")
        return self

    def restore(self):
        _nft(self.net, "delete", "table", "ip", TABLE, check=False)

    def __exit__(self, *exc):
        self.restore()


async def test_ten_second_cut_of_the_clients_udp(janus, keys, net):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-CUT1", media=True)
        port = quality.local_media(v.pc)["port"]
        with UdpCut(net, port) as cut:
            cut_at_us = time.time_ns() // 1000
            stopped = await v.pt.wait_message(type="media_stopped", timeout=5)
            assert stopped.get("role") == "client", stopped
            # a pulse during the cut: sent, but held (nothing could reach them)
            r = expect(await v.th.request({"request": "pulse"}), "pulse_sent")
            [pid] = r["pulse_ids"]
            st = await status(v.th)
            assert st["state"] == "live", st
            pending = [p for p in st["pending_pulses"] if p["pulse_id"] == pid]
            assert pending and pending[0]["delivered"] is False, st["pending_pulses"]
            left = CUT_S - (time.time_ns() // 1000 - cut_at_us) / 1e6
            await asyncio.sleep(max(0.0, left))
            st = await status(v.th)
            assert st["state"] == "live", st
            assert not [m for m in v.pc.messages if (m.json or {}).get("type") == "pulse"], \
                "the pulse reached the client during the cut"
            cut.restore()
            restored_at_us = time.time_ns() // 1000
        since_t, since_c = v.pt.snapshot(), v.pc.snapshot()
        # media again both ways, without any request
        await asyncio.gather(v.pc.wait_media(25, 5, 8, since=since_c),
                             v.pt.wait_media(25, 5, 8, since=since_t))
        v.pc.assert_receiving_from(v.pt)
        v.pt.assert_receiving_from(v.pc)
        resumed = await v.pt.wait_message(type="media_resumed", timeout=5)
        assert resumed.get("role") == "client" and resumed.get("stopped_ms", 0) >= 7000, resumed
        # the held pulse goes out once the client is back
        p = await v.pc.wait_message(lambda m: (m.json or {}).get("pulse_id") == pid, type="pulse", timeout=8)
        check_pulse(p, kind="in_session", instrument="ap-pulse", pulse_id=pid)
        row = await store.wait_row(db, "SELECT delivered_via, status FROM pulses WHERE pulse_id = ? "
                                   "AND status = 'delivered'", (pid,))
        assert row["delivered_via"] == "datachannel", row
        st = await status(v.th)
        assert st["state"] == "live", st
        expect(await v.th.request({"request": "end"}), "ended")
        # a stall incident of the client's uplink covers the cut
        rows = await store.wait_rows(
            db, "SELECT leg, medium, kind, started_at, ended_at FROM incidents WHERE visit_id = ? "
            "AND kind = 'stall' AND leg = 'client_up' AND ended_at IS NOT NULL", (v.visit_id,),
            lambda rs: len(rs) >= 1, timeout=10)
        covering = [r for r in rows if r["started_at"] <= cut_at_us + 1_500_000
                    and r["ended_at"] >= restored_at_us - 1_500_000]
        assert covering, f"no stall incident covers the cut [{cut_at_us}, {restored_at_us}]: {rows}"
