"""Connection-quality helpers (test_quality*.py): the plugin's stored samples
and incidents, loss injected with nftables on ONE aiortc peer's RTP, and
snapshots of the numbers nobody here wrote (Janus core's per-handle stats
from the Admin API, aiortc's getStats()).

    media = local_media(v.pc)                  # bundle port + SSRCs from the local SDP
    with RtpLoss(net, janus.ip, media) as loss:
        loss.set(5)                            # drop 5 % of that peer's audio + video RTP
        ...
        loss.counters()                        # {"audio": (seen, dropped), "video": ...}
    # the table is gone here (also on failure)

    s = samples(db, visit_id, "client_up", "audio", since_us=t0_us)   # parsed rows
    agg = aggregate(s)                         # lost/expected over the rows, means

Why the loss is matched this way: both aiortc peers of a test live in the
client namespace with the SAME address (the pinned host candidate), so an
address match would hit the therapist's media too. Each RTCPeerConnection
bundles everything on one UDP socket whose port is the first m-line's port
in its local SDP (cross-checked against aioice's nominated pair), and each
stream has its own SSRC (also in the SDP). The rule matches source address,
destination = Janus, that source port, an RTP version field (first two bits
10: rules out STUN, DTLS and the SCTP data channel inside DTLS) and the
stream's primary SSRC at offset 8 of the UDP payload (SRTP leaves the RTP
header in clear; RTCP carries no sender SSRC there). So only the chosen
peer's audio and video RTP is dropped - not its RTCP (RTT stays
measurable), not its data channel, not its RTX retransmissions (video gaps
may be repaired by NACK, as on a real network) and nothing of the other
peer.

Why `numgen inc` and not `numgen random`: the drop pattern is a fixed set
of residues of a per-rule packet counter (5 %: 1 in 20; 15 %: 3 in 20,
spread 0/7/13), so ANY run of n consecutive packets of a stream loses the
nominal fraction within 1/n. With `numgen random` the fraction seen over a
15 s phase is itself binomial (about 750 audio packets: sigma 0.8 pp at
5 %, 1.3 pp at 15 %), and a +/-1.5 pp check would fail on a correct plugin
in roughly 6 % / 25 % of runs. Counters before and after the numgen
expression report what the kernel really saw and dropped.
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import store

TABLE = "aploss"


# -- the peer's media identity ----------------------------------------------------
def local_media(peer) -> Dict[str, Any]:
    """{"port", "audio_ssrc", "video_ssrc", "video_rtx_ssrc"} of an aiortc
    peer, from its local SDP (bundle: the first m-line's port is the one
    socket every stream uses), checked against aioice's nominated pair."""
    sdp = peer.pc.localDescription.sdp
    out: Dict[str, Any] = {"port": None, "audio_ssrc": None, "video_ssrc": None,
                           "video_rtx_ssrc": None}
    kind = None
    for line in sdp.splitlines():
        m = re.match(r"^m=(\w+) (\d+) ", line)
        if m:
            kind = m.group(1)
            if out["port"] is None:
                out["port"] = int(m.group(2))
            continue
        m = re.match(r"^a=ssrc-group:FID (\d+) (\d+)", line)
        if m and kind == "video":
            out["video_ssrc"], out["video_rtx_ssrc"] = int(m.group(1)), int(m.group(2))
            continue
        m = re.match(r"^a=ssrc:(\d+) ", line)
        if m and kind in ("audio", "video") and out[f"{kind}_ssrc"] is None:
            out[f"{kind}_ssrc"] = int(m.group(1))
    assert out["port"] and out["audio_ssrc"] and out["video_ssrc"], \
        f"{peer.name}: no port/SSRCs in the local SDP: {out}"
    # the socket really used: aioice's nominated pair (private API; only a check)
    try:
        ports = set()
        for t in peer.pc.getTransceivers():
            conn = t.sender.transport.transport._connection
            for pair in conn._nominated.values():
                ports.add(pair.local_candidate.port)
        assert ports == {out["port"]}, \
            f"{peer.name}: media goes out from {ports}, the SDP says {out['port']} (bundle?)"
    except AttributeError:
        pass
    return out


# -- nftables ---------------------------------------------------------------------------
def _nft(net, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", "netns", "exec", net.client_ns, "nft", *args],
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"nft {' '.join(args)} failed: {r.stderr.strip()}")
    return r


def residues(pct: int) -> List[int]:
    """Evenly spread residues mod 20 for a loss of pct (a multiple of 5)."""
    assert pct % 5 == 0 and 0 < pct < 100, pct
    k = pct // 5
    return sorted({int(i * 20 / k + 0.5) % 20 for i in range(k)})


class RtpLoss:
    """Drop a fixed fraction of one peer's RTP towards Janus (see the module
    docstring). The nft table lives in the client namespace; clear() (and
    leaving the `with` block) deletes it."""

    def __init__(self, net, janus_ip: str, media: Dict[str, Any]) -> None:
        self.net = net
        self.janus_ip = janus_ip
        self.media = media
        self.pct = 0

    def __enter__(self) -> "RtpLoss":
        self.clear()
        _nft(self.net, "add", "table", "ip", TABLE)
        _nft(self.net, "add", "chain", "ip", TABLE, "out",
             "{ type filter hook output priority 0; policy accept; }")
        return self

    def __exit__(self, *exc) -> None:
        self.clear()

    def set(self, pct: int) -> None:
        """Replace the rules: drop pct % of the audio and of the video RTP."""
        _nft(self.net, "flush", "chain", "ip", TABLE, "out")
        res = "{ " + ", ".join(str(r) for r in residues(pct)) + " }"
        for kind in ("audio", "video"):
            _nft(self.net, "add", "rule", "ip", TABLE, "out",
                 "ip", "saddr", self.net.client_ip, "ip", "daddr", self.janus_ip,
                 "udp", "sport", str(self.media["port"]),
                 "@th,64,2", "2",                                   # RTP version 2
                 "@th,128,32", str(self.media[f"{kind}_ssrc"]),     # the stream's SSRC
                 "counter", "numgen", "inc", "mod", "20", res, "counter", "drop",
                 "comment", f'"{kind}"')
        self.pct = pct

    def counters(self) -> Dict[str, Tuple[int, int]]:
        """{kind: (packets matched, packets dropped)} since set()."""
        r = _nft(self.net, "-j", "list", "table", "ip", TABLE)
        out = {}
        for item in json.loads(r.stdout)["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            counts = [e["counter"]["packets"] for e in rule["expr"] if "counter" in e]
            out[rule.get("comment", "?")] = (counts[0], counts[1])
        return out

    def clear(self) -> None:
        _nft(self.net, "delete", "table", "ip", TABLE, check=False)
        self.pct = 0

    def exists(self) -> bool:
        return _nft(self.net, "list", "table", "ip", TABLE, check=False).returncode == 0


# -- the store --------------------------------------------------------------------------
def samples(db, visit_id: str, leg: str, medium: str, since_us: Optional[int] = None,
            until_us: Optional[int] = None) -> List[Dict[str, Any]]:
    """Stored quality samples of one leg and medium, parsed, oldest first;
    each gets `at` (end, µs) and `start` (at - seconds). With since/until:
    only samples whose whole span lies inside [since_us, until_us]."""
    out = []
    for r in store.rows(db, "SELECT at, metrics_json FROM quality_samples WHERE visit_id = ? "
                            "AND leg = ? AND medium = ? ORDER BY at, id",
                        (visit_id, leg, medium)):
        m = json.loads(r["metrics_json"])
        m["at"] = r["at"]
        m["start"] = r["at"] - int(float(m.get("seconds") or 0) * 1e6)
        if since_us is not None and m["start"] < since_us:
            continue
        if until_us is not None and m["at"] > until_us:
            continue
        out.append(m)
    return out


def aggregate(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Sum of counts and mean of estimates over sample rows."""
    def mean(key):
        v = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        return sum(v) / len(v) if v else None
    expected = sum(r.get("expected", 0) or 0 for r in rows)
    lost = sum(r.get("lost", 0) or 0 for r in rows)
    return {
        "n": len(rows), "seconds": sum(float(r.get("seconds") or 0) for r in rows),
        "packets": sum(r.get("packets", 0) or 0 for r in rows), "expected": expected,
        "lost": lost, "loss_pct": (100.0 * lost / expected) if expected else None,
        "jitter_ms": mean("jitter_ms"), "rtt_ms": mean("rtt_ms"),
        "bitrate_kbps": mean("bitrate_kbps"), "fps": mean("fps"),
        "freezes": sum(r.get("freezes", 0) or 0 for r in rows),
        "loss_pct_mean": mean("loss_pct"),
    }


def incidents(db, visit_id: str) -> List[Dict[str, Any]]:
    rs = store.rows(db, "SELECT leg, medium, kind, started_at, ended_at, detail_json "
                        "FROM incidents WHERE visit_id = ? ORDER BY started_at, id", (visit_id,))
    for r in rs:
        r["detail"] = json.loads(r["detail_json"]) if r["detail_json"] else None
        r["duration_s"] = ((r["ended_at"] - r["started_at"]) / 1e6
                           if r["ended_at"] is not None else None)
    return rs


def quality_messages(peer, since_mono: float = 0.0) -> List[Tuple[float, dict]]:
    """(arrival monotonic time, message) of every `quality` message the peer
    got on its alliance channel since `since_mono` (not consumed)."""
    return [(m.at, m.json) for m in peer.messages
            if isinstance(m.json, dict) and m.json.get("type") == "quality" and m.at >= since_mono]


# -- numbers nobody here wrote -------------------------------------------------------------
def janus_media(info: dict, kind: str) -> Dict[str, Any]:
    """One medium of an Admin API handle_info (Janus 1.1 layout:
    webrtc.media.<mindex>.{stats.in, stats.out, rtcp.main})."""
    for m in (info.get("webrtc", {}).get("media", {}) or {}).values():
        if m.get("type") == kind:
            rtcp = (m.get("rtcp") or {}).get("main", {})
            st = m.get("stats") or {}
            return {"in_packets": st.get("in", {}).get("packets"),
                    "retransmissions": st.get("in", {}).get("retransmissions"),
                    "lost": rtcp.get("lost"), "jitter_ms": rtcp.get("jitter-local"),
                    "rtt_ms": rtcp.get("rtt"), "lost_by_remote": rtcp.get("lost-by-remote")}
    raise AssertionError(f"handle_info has no {kind} medium: {list(info.get('webrtc', {}))}")


async def aiortc_stats(peer) -> Dict[Tuple[str, str], Any]:
    """{(type, kind): stats object} of a peer's getStats()."""
    out = {}
    for s in (await peer.pc.getStats()).values():
        kind = getattr(s, "kind", None)
        out[(s.type, kind)] = s
    return out


async def snapshot(janus, v) -> Dict[str, Any]:
    """One reading of the core's and aiortc's view of the client's audio:
    Janus handle_info (client handle; in a thread so the event loop that
    paces aiortc's media is not blocked), the client's outbound-rtp and
    remote-inbound-rtp (Janus's receiver reports), the therapist's
    inbound-rtp (what arrived after the relay)."""
    wall = time.time()
    info = await asyncio.to_thread(janus.handle_info, v.cl.session.id, v.cl.id)
    cs = await aiortc_stats(v.pc)
    ts = await aiortc_stats(v.pt)
    out = {"t_us": int(wall * 1e6), "janus_audio": janus_media(info, "audio"),
           "janus_video": janus_media(info, "video")}
    o = cs.get(("outbound-rtp", "audio"))
    ri = cs.get(("remote-inbound-rtp", "audio"))
    ti = ts.get(("inbound-rtp", "audio"))
    out["client_sent"] = o.packetsSent if o else None
    out["client_ri_lost"] = ri.packetsLost if ri else None
    # Janus's own RFC 3550 jitter of the client's audio as it put it into its
    # receiver reports (RTP units, so finer than handle_info's integer ms)
    out["client_ri_jitter_ms"] = (ri.jitter / 48.0) if ri else None
    out["client_ri_rtt_ms"] = (ri.roundTripTime * 1000.0) if ri and ri.roundTripTime is not None \
        else None
    out["th_in_received"] = ti.packetsReceived if ti else None
    out["th_in_lost"] = ti.packetsLost if ti else None
    out["th_in_jitter_ms"] = (ti.jitter / 48.0) if ti else None       # RTP units of 48 kHz
    return out


def nearest(snaps: Sequence[Dict[str, Any]], t_us: int) -> Dict[str, Any]:
    return min(snaps, key=lambda s: abs(s["t_us"] - t_us))


def within(a: float, b: float, abs_tol: float, rel_tol: float = 0.0) -> bool:
    return abs(a - b) <= max(abs_tol, rel_tol * max(abs(a), abs(b)))
