"""Alliance-specific helpers built on api.py and peer.py.

`Scope` tracks everything a test opens (Janus sessions, aiortc peers) and
closes it at the end even when the test fails:

    async with Scope(janus) as sc:
        th = await sc.handle()                 # new WS session + attached alliance handle
        cl = await sc.handle("http")           # ... or over HTTP
        peer = sc.peer("client")

The request helpers assert the documented answer shape and return the
answer's `data`; `expect_error()` asserts an exact error code.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Set

from .api import Handle, JanusError, PluginResponse, Session, _redact, connect
from .peer import Peer

PLUGIN = "janus.plugin.alliance"
URLSAFE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,}$")

ERRORS = {
    "no_message": 470, "invalid_json": 471, "unknown_request": 472, "missing_element": 473,
    "invalid_element": 474, "unauthorized": 475, "no_such_visit": 476, "invalid_invite": 477,
    "invite_used": 478, "forbidden": 479, "not_joined": 480, "already_joined": 481,
    "not_admitted": 482, "wrong_state": 483, "invalid_sdp": 484, "no_consent": 485,
    "limit_reached": 486, "internal": 499,
}


class Scope:
    def __init__(self, server, transport: str = "ws", plugin: str = PLUGIN) -> None:
        self.server = server
        self.transport = transport
        self.plugin = plugin
        self.sessions: List[Session] = []
        self.peers: List[Peer] = []

    async def session(self, transport: Optional[str] = None) -> Session:
        s = await connect(self.server, transport or self.transport)
        self.sessions.append(s)
        return s

    async def handle(self, transport: Optional[str] = None) -> Handle:
        """A new Janus session (one per participant, as a browser would) with
        the plugin attached."""
        s = await self.session(transport)
        return await s.attach(self.plugin)

    def peer(self, name: str, **kw) -> Peer:
        p = Peer(name, **kw)
        self.peers.append(p)
        return p

    async def close(self) -> None:
        for p in self.peers:
            await p.close()
        for s in self.sessions:
            try:
                await s.destroy()
            except Exception:
                await s.close()

    async def __aenter__(self) -> "Scope":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


# -- assertions ---------------------------------------------------------------
def expect(resp: PluginResponse, alliance: str) -> dict:
    assert isinstance(resp.data, dict), f"plugin answer has no data: {resp!r}"
    assert resp.data.get("alliance") == alliance, \
        f"expected alliance={alliance!r}, got {_redact(resp.data)}"
    return resp.data


def expect_error(resp: PluginResponse, code: int) -> dict:
    assert isinstance(resp.data, dict), f"plugin answer has no data: {resp!r}"
    d = resp.data
    assert d.get("alliance") == "error", f"expected error {code}, got {_redact(d)}"
    assert d.get("error_code") == code, f"expected error_code {code}, got {_redact(d)}"
    assert isinstance(d.get("error"), str) and d["error"], f"error text missing: {_redact(d)}"
    assert resp.jsep is None, f"an error answer carries a JSEP: {resp!r}"
    return d


async def request_error(h: Handle, body: Any, code: int, jsep: Optional[dict] = None) -> dict:
    return expect_error(await h.request(body, jsep=jsep), code)


# -- requests -------------------------------------------------------------------
async def create_visit(h: Handle, therapist_key: str, client_code: str = "C-0042",
                       **extra: Any) -> dict:
    r = await h.request({"request": "create", "therapist_key": therapist_key,
                         "client_code": client_code, **extra})
    d = expect(r, "created")
    assert r.sync, "create must be answered synchronously"
    assert isinstance(d.get("visit_id"), str) and d["visit_id"], f"bad visit_id in {_redact(d)}"
    assert isinstance(d.get("invite"), str) and URLSAFE_TOKEN.match(d["invite"]), \
        "invite must be >= 22 URL-safe characters"
    return d


async def join_therapist(h: Handle, visit_id: str, therapist_key: str) -> dict:
    r = await h.request({"request": "join", "role": "therapist", "visit_id": visit_id,
                         "therapist_key": therapist_key})
    d = expect(r, "joined")
    assert d.get("role") == "therapist", _redact(d)
    assert d.get("visit_id") == visit_id, _redact(d)
    return d


async def join_client(h: Handle, invite: str, research: bool = True,
                      rejoin_key: Optional[str] = None) -> dict:
    body: Dict[str, Any] = {"request": "join", "role": "client", "invite": invite,
                            "consent": {"research": research}}
    if rejoin_key is not None:
        body["rejoin_key"] = rejoin_key
    d = expect(await h.request(body), "joined")
    assert d.get("role") == "client", _redact(d)
    return d


async def status(h: Handle) -> dict:
    r = await h.request({"request": "status"})
    d = expect(r, "status") if r.data.get("alliance") == "status" else r.data
    assert d.get("alliance") != "error", f"status failed: {_redact(d)}"
    return d


def participant_roles(st: dict) -> Set[str]:
    """Roles present according to a status answer. PROTOCOL.md fixes that
    status carries `participants` but not its shape; accept a list of role
    strings, a list of objects with `role`, or an object keyed by role whose
    values say `present` (what the plugin sends today)."""
    ps = st.get("participants")
    if isinstance(ps, dict):
        # {"therapist": {"present": true, ...}, "client": {...}, "observers": 0}
        out = set()
        for k, v in ps.items():
            if isinstance(v, dict):
                if v.get("present", True) is not False:
                    out.add(k)
            elif v is True:
                out.add(k)
        return out
    if isinstance(ps, list):
        out = set()
        for p in ps:
            if isinstance(p, str):
                out.add(p)
            elif isinstance(p, dict) and "role" in p:
                if p.get("present", True) is not False and p.get("joined", True) is not False:
                    out.add(p["role"])
        return out
    raise AssertionError(f"status has no participants list/object: {_redact(st)}")


def visit_view(st: dict) -> Dict[str, Any]:
    """The part of a status answer that a refused request must not change."""
    return {"state": st.get("state"), "participants": sorted(participant_roles(st)),
            "visit_id": st.get("visit_id")}


async def configure(h: Handle, peer: Peer, audio: bool = True, video: bool = True,
                    timeout: float = 10.0) -> dict:
    offer = await peer.offer()
    r = await h.request({"request": "configure", "audio": audio, "video": video}, jsep=offer,
                        timeout=timeout)
    d = expect(r, "configured")
    await peer.apply_answer(r.jsep)
    return d


__all__ = ["Scope", "PLUGIN", "ERRORS", "expect", "expect_error", "request_error",
           "create_visit", "join_therapist", "join_client", "status", "participant_roles",
           "visit_view", "configure", "JanusError", "URLSAFE_TOKEN"]
