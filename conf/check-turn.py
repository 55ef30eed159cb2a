#!/usr/bin/python3
"""Check the TURN servers that the pages' config.json names.

For each turn: URL in its iceServers (UDP and TCP transports), with the
entry's own username and credential: an allocation is made (so the
credential is one the server accepts), a permission for the allowed peer
(Janus's address) is granted, and permissions for addresses the server
must not relay to are refused (403): its own loopback, a private network
address and the cloud metadata address — the server is not an open relay.
The
allocation is released afterwards. One line per check; exit 0 only if all
pass. The TURN client is aioice's (python3-aioice, from python3-aiortc),
not code of ours.

Usage: check-turn.py --config web-config.json --peer JANUS_IP
                     [--denied IP ...] [--wait SECONDS]
"""
import argparse
import asyncio
import json
import re
import sys
import time

from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol

# addresses a TURN server for Janus must never relay to: its own loopback,
# a private network, the cloud metadata service
DENIED = ["127.0.0.1", "10.0.0.1", "169.254.169.254"]
URL_RE = re.compile(r"^turn:(\[[0-9a-fA-F:.]+\]|[^:?\[\]]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$")


class CheckFailed(Exception):
    pass


async def allocate(host, port, transport, user, password):
    loop = asyncio.get_running_loop()
    kw = dict(username=user, password=password, lifetime=120, channel_refresh_time=60)
    if transport == "tcp":
        tr, proto = await loop.create_connection(lambda: TurnClientTcpProtocol((host, port), **kw), host=host, port=port)
    else:
        tr, proto = await loop.create_datagram_endpoint(lambda: TurnClientUdpProtocol((host, port), **kw),
                                                        remote_addr=(host, port))
    return tr, proto


async def check_url(url, user, password, peer, denied, wait_s):
    m = URL_RE.match(url)
    if not m:
        raise CheckFailed(f"{url}: not a turn:host[:port][?transport=] URL this check understands")
    host, port, transport = m.group(1).strip("[]"), int(m.group(2) or 3478), m.group(3) or "udp"
    deadline = time.monotonic() + wait_s
    while True:                                   # the server may still be starting
        tr = None
        try:
            tr, proto = await allocate(host, port, transport, user, password)
            relayed = await asyncio.wait_for(proto.connect(), 10)
            break
        except (OSError, asyncio.TimeoutError, stun.TransactionTimeout) as e:
            if tr:
                tr.close()
            if time.monotonic() > deadline:
                raise CheckFailed(f"{url}: no allocation ({type(e).__name__}: {e})")
            await asyncio.sleep(0.2)
        except stun.TransactionFailed as e:
            tr.close()
            raise CheckFailed(f"{url}: allocation refused ({e}): wrong credential or realm?")
    try:
        try:
            await asyncio.wait_for(proto.channel_bind(0x4000, (peer, 9)), 10)
        except stun.TransactionFailed as e:
            raise CheckFailed(f"{url}: a permission for the allowed peer {peer} was refused ({e})")
        for n, ip in enumerate(denied):
            try:
                await asyncio.wait_for(proto.channel_bind(0x4001 + n, (ip, 9)), 10)
                raise CheckFailed(f"{url}: relays to {ip} — an open relay (see denied-peer-ip)")
            except stun.TransactionFailed as e:
                code = e.response.attributes.get("ERROR-CODE", (0, ""))[0]
                if code != 403:
                    raise CheckFailed(f"{url}: a permission for {ip} failed with {e}, not 403")
        try:
            await asyncio.wait_for(proto.delete(), 5)
        except Exception:  # noqa: BLE001 - it expires anyway
            pass
    finally:
        tr.close()
    return f"{url}: allocation {relayed[0]}:{relayed[1]}, relays to {peer}, refuses {', '.join(denied)}"


async def run(a):
    with open(a.config, encoding="utf-8") as f:
        cfg = json.load(f)
    entries = [s for s in cfg.get("iceServers", []) if isinstance(s, dict)]
    urls = [(u, s.get("username"), s.get("credential")) for s in entries
            for u in ([s["urls"]] if isinstance(s.get("urls"), str) else s.get("urls", []))
            if isinstance(u, str) and u.startswith("turn:")]
    if not urls:
        raise CheckFailed(f"{a.config}: no turn: URL in iceServers")
    denied = [ip for ip in (a.denied or DENIED) if ip != a.peer]
    for url, user, password in urls:
        print(f"  ok   {await check_url(url, user, password, a.peer, denied, a.wait)}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="the pages' config.json")
    ap.add_argument("--peer", required=True, help="an address the server must relay to (Janus's)")
    ap.add_argument("--denied", action="append", help=f"an address it must refuse (repeatable; default {', '.join(DENIED)})")
    ap.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the server to answer")
    a = ap.parse_args()
    try:
        asyncio.run(run(a))
    except (CheckFailed, OSError, ValueError, KeyError) as e:
        print(f"  FAIL {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
