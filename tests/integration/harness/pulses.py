"""Helpers for the pulse tests (test_pulse*.py, test_store_*.py): a visit
brought to `live` (with or without media), the shape checks of a pulse,
answers over the data channel and over the `answer` request.

    v = await live_visit(sc, keys, "C-0100")              # no media: pulses come as events
    v = await live_visit(sc, keys, "C-0101", media=True)  # aiortc A/V + `alliance` DC, hello seen
    ids = await trigger(v.th)                              # therapist `pulse` -> pulse_ids
    p = await v.pc.wait_message(type="pulse")              # ...on the DC, or
    p = (await v.cl.wait_event(alliance="pulse")).data     # ...as a Janus event
    check_pulse(p, kind="in_session", instrument="ap-pulse")
    ack = await dc_answer(v.pc, pid, {"understood": 7.3, "focus": 2.5})
    err = await dc_answer(v.pc, pid, {"bogus": 1}, expect="error")
    r = await api_answer(v.cl, pid, {...})                 # PluginResponse
"""
from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .alliance import configure, create_visit, expect, join_therapist
from .api import Handle, PluginResponse, _redact

PULSE_ERRORS = {
    "pulse_pending": 487, "unknown_pulse": 488, "already_answered": 489, "expired": 490,
    "not_yours": 491, "unknown_item": 492, "out_of_range": 493, "wrong_type": 494,
    "incomplete": 495,
}

AP_PULSE_ITEMS = ["understood", "focus"]
AP_END_ITEMS = ["goals", "tasks", "bond", "overall"]

_ref = itertools.count(1)


@dataclass
class LiveVisit:
    th: Handle
    cl: Handle
    visit_id: str
    invite: str
    rejoin_key: str
    client_code: str
    admitted_at: float                   # time.monotonic() when `admitted` was answered
    pt: Any = None                       # therapist Peer (media=True)
    pc: Any = None                       # client Peer (media=True)
    extra: Dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:           # never show invite / rejoin key
        return f"LiveVisit({self.visit_id}, {self.client_code})"


async def live_visit(sc, keys, client_code: str, *, media: bool = False, research: bool = True,
                     language: Optional[str] = None, therapist: str = "T-01",
                     transport: Optional[str] = None, **create_extra: Any) -> LiveVisit:
    """create, therapist joins, client joins (consent.research=`research`,
    optional `language`), admit; with media=True both negotiate A/V + the
    `alliance` data channel and the test waits for each side's `hello` (sent
    when the plugin sees the channel ready, so DC delivery is on from then)."""
    key = keys.therapist(therapist)
    th = await sc.handle(transport)
    created = await create_visit(th, key, client_code, **create_extra)
    await join_therapist(th, created["visit_id"], key)
    cl = await sc.handle(transport)
    body: Dict[str, Any] = {"request": "join", "role": "client", "invite": created["invite"],
                            "consent": {"research": research}}
    if language:
        body["language"] = language
    jc = expect(await cl.request(body), "joined")
    assert jc.get("state") == "waiting", _redact(jc)
    await th.wait_event(alliance="waiting", timeout=5)
    expect(await th.request({"request": "admit"}), "admitted")
    admitted_at = time.monotonic()
    await cl.wait_event(alliance="admitted", timeout=5)
    v = LiveVisit(th, cl, created["visit_id"], created["invite"], jc["rejoin_key"], client_code,
                  admitted_at)
    if media:
        v.pt, v.pc = sc.peer(f"therapist-{client_code}"), sc.peer(f"client-{client_code}")
        await asyncio.gather(configure(th, v.pt), configure(cl, v.pc))
        await asyncio.gather(v.pt.wait_connected(5), v.pc.wait_connected(5))
        for peer, role in ((v.pt, "therapist"), (v.pc, "client")):
            hello = await peer.wait_message(type="hello", timeout=5)
            assert hello.get("role") == role and hello.get("visit_id") == v.visit_id, hello
        await asyncio.gather(v.pt.wait_media(25, 5, 5), v.pc.wait_media(25, 5, 5))
    return v


async def trigger(th: Handle, **body: Any) -> List[str]:
    """Therapist `pulse`; asserts `pulse_sent` and returns the pulse_ids."""
    r = await th.request({"request": "pulse", **body})
    d = expect(r, "pulse_sent")
    ids = d.get("pulse_ids")
    assert isinstance(ids, list) and ids and all(isinstance(i, str) and i for i in ids), d
    return ids


def check_pulse(p: Dict[str, Any], *, kind: str, instrument: str, pulse_id: Optional[str] = None,
                lang: str = "en", items: Optional[List[str]] = None,
                expires_max: Optional[int] = None) -> Dict[str, Any]:
    """The documented pulse fields (PROTOCOL.md, docs/instruments.md)."""
    assert isinstance(p.get("pulse_id"), str) and p["pulse_id"], p
    if pulse_id is not None:
        assert p["pulse_id"] == pulse_id, f"pulse {p['pulse_id']} != expected {pulse_id}"
    assert p.get("kind") == kind, p
    e = p.get("expires_in_s")
    assert isinstance(e, int) and e > 0, f"expires_in_s {e!r}"
    if expires_max is not None:
        assert expires_max - 3 <= e <= expires_max, f"expires_in_s {e}, expected ~{expires_max}"
    ins = p.get("instrument")
    assert isinstance(ins, dict), p
    assert ins.get("id") == instrument, ins.get("id")
    assert isinstance(ins.get("version"), str) and ins["version"], ins
    assert ins.get("lang") == lang, f"instrument.lang {ins.get('lang')!r}, expected {lang!r}"
    assert isinstance(ins.get("title"), str) and ins["title"], ins
    got_items = ins.get("items")
    assert isinstance(got_items, list) and got_items, ins
    if items is not None:
        assert [i.get("id") for i in got_items] == items, [i.get("id") for i in got_items]
    for it in got_items:
        assert isinstance(it.get("text"), str) and it["text"], it
        sc = it.get("scale")
        assert isinstance(sc, dict) and sc.get("type") in ("vas", "likert"), it
        if sc["type"] == "vas":
            assert (sc.get("min"), sc.get("max")) == (0, 10) and abs(sc.get("step") - 0.1) < 1e-9, sc
            assert isinstance(sc.get("min_label"), str) and isinstance(sc.get("max_label"), str), sc
    return p


async def dc_answer(peer, pulse_id: Optional[str], responses: Any = None, *,
                    final: Any = None, expect: str = "ack", msg_type: str = "answer",
                    raw: Optional[Dict[str, Any]] = None, timeout: float = 5.0) -> Dict[str, Any]:
    """Send an `answer` (or `dismiss`) on the DC with a fresh `ref` and wait
    for the server's `ack` (expect="ack", matched by pulse_id) or `error`
    (expect="error", matched by ref), or whichever of the two comes
    (expect="any", matched by ref). `raw` sends that object instead
    (still with v/type/ref added if missing)."""
    ref = f"ref-{next(_ref)}"
    if raw is not None:
        msg = {"v": 1, "type": msg_type, "ref": ref, **raw}
    else:
        msg = {"v": 1, "type": msg_type, "pulse_id": pulse_id, "ref": ref}
        if msg_type == "answer":
            msg["responses"] = responses
            if final is not None:
                msg["final"] = final
    await peer.send(msg)
    if expect == "ack":
        def match(m):
            j = m.json
            return isinstance(j, dict) and (
                (j.get("type") == "ack" and j.get("pulse_id") == pulse_id)
                or (j.get("type") == "error" and j.get("ref") == ref))
        got = await peer.wait_message(match, timeout=timeout)
        assert got.get("type") == "ack", f"expected an ack for {msg}, got {got}"
        return got
    got = await peer.wait_message(lambda m: isinstance(m.json, dict) and m.json.get("ref") == ref,
                                  timeout=timeout)
    if expect == "any":                  # the ack or the error, whichever came (acks echo the ref)
        return got
    assert got.get("type") == "error", f"expected an error for {msg}, got {got}"
    return got


async def api_answer(h: Handle, pulse_id: Any, responses: Any = None, final: Any = None,
                     **extra: Any) -> PluginResponse:
    body: Dict[str, Any] = {"request": "answer", "pulse_id": pulse_id, **extra}
    if responses is not None:
        body["responses"] = responses
    if final is not None:
        body["final"] = final
    r = await h.request(body)
    assert r.sync, f"`answer` must be answered synchronously: {r!r}"
    return r


def expect_stored(r: PluginResponse, pulse_id: str, complete: bool) -> dict:
    d = expect(r, "answer_stored")
    assert d.get("pulse_id") == pulse_id and d.get("complete") is complete, d
    return d


async def no_dc_message(peer, within: float = 0.5, **fields: Any) -> None:
    try:
        m = await peer.wait_message(timeout=within, **fields)
    except AssertionError:
        return
    raise AssertionError(f"{peer.name}: unexpected data-channel message {m}")


def close_to(a: Any, b: float, eps: float = 1e-6) -> bool:
    return isinstance(a, (int, float)) and abs(a - b) <= eps


async def acked_until(peer, pulse_id, responses, *, final, timeout):
    """Send the answer on the data channel until it is acked (the
    participant's retry while the store is unavailable: each refusal must be
    `store_failed`)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await dc_answer(peer, pulse_id, responses, final=final, expect="any")
        if r.get("type") == "ack":
            return r
        assert r.get("code") == "store_failed", r
        assert time.monotonic() < deadline, f"still refused after {timeout} s: {r}"
        await asyncio.sleep(0.5)
