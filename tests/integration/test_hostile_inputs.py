"""Hostile input, measured: every row of docs/hostile-inputs.md is sent to a
real Janus with the plugin, in a live A/V visit, and gets exactly the answer
the table says; after each row Janus is still up and the visit is exactly
as it was (state, participants, and every stored pulse/answer row).

The table is CASES below; docs/hostile-inputs.md is rendered from it
(`/usr/bin/python3 tests/integration/test_hostile_inputs.py --write-docs`)
and test_docs_match_the_table fails when the two differ.

Layers: the Janus API (the `body` of a message, and raw transport bytes),
JSEP, the `alliance` data channel, RTP/RTCP (SRTP-protected by the client's
own aiortc transport, so they reach the plugin as if from a broken or
malicious browser) and instrument files (a folder of bad definitions next
to the shipped ones: each refused with its reason, the rest load)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO = HERE.parents[1]
DOC = REPO / "docs" / "hostile-inputs.md"

# -- the table ----------------------------------------------------------------
# (id, layer, what is sent, how it is sent, payload, expected)
#   how: "api" a request body on the client's handle (c) or therapist's (t)
#          or a fresh handle (f); expected (code, reason_start)
#        "core" the Janus core refuses it before the plugin: expected ("core", code)
#        "raw" bytes on the WebSocket: expected ("core", code)
#        "jsep" a request with a JSEP: payload (body, jsep) ; expected (code, reason_start)
#        "dc" a data-channel message from the client: expected (slug, reason_start)
#        "rtp" / "rtcp" bytes sent SRTP/SRTCP-protected by the client:
#          expected ("ignored", what happens)
#        "file" an instrument file in instruments_dir: expected ("refused", log reason)
BIG = "x" * 300
LONG_REF = "r" * 100

CASES: List[Tuple[str, str, str, str, Any, Tuple[Any, str]]] = [
    # --- Janus API: shape -------------------------------------------------------
    ("A01", "API", "body is a JSON array", "core", ["request", "status"], ("core", 467)),
    ("A02", "API", "body without `request`", "api-c", {}, (473, "Missing element (request)")),
    ("A03", "API", "`request` is a number", "api-c", {"request": 42},
     (474, "Invalid element type (request should be a string)")),
    ("A04", "API", "`request` is empty", "api-c", {"request": ""}, (474, "Invalid element (request is empty)")),
    ("A05", "API", "unknown request", "api-c", {"request": "dance"}, (472, "Unknown request 'dance'")),
    ("A06", "API", "`request` of 300 characters", "api-c", {"request": BIG},
     (474, "Invalid element (request longer than 256)")),
    ("A07", "API", "a NUL inside a string (WebSocket)", "raw",
     '{"janus":"message","transaction":"t","body":{"request":"status","x":"a\\u0000b"}}', ("core", 454)),
    ("A08", "API", "join with role \"admin\"", "api-f", {"request": "join", "role": "admin"},
     (474, "Invalid element (role must be")),
    ("A09", "API", "therapist join without visit_id", "api-f", {"request": "join", "role": "therapist",
                                                                "therapist_key": "k" * 43},
     (473, "Missing element (visit_id)")),
    ("A10", "API", "client join, consent a string", "api-f", {"request": "join", "role": "client",
                                                              "invite": "i" * 32, "consent": "yes"},
     (474, "Invalid element type (consent should be an object)")),
    ("A11", "API", "client join, consent.research \"yes\"", "api-f",
     {"request": "join", "role": "client", "invite": "i" * 32, "consent": {"research": "yes"}},
     (474, "Invalid element type (consent.research should be a boolean)")),
    ("A12", "API", "language tag with punctuation", "api-f",
     {"request": "join", "role": "client", "invite": "i" * 32, "consent": {"research": True}, "language": "en;DROP"},
     (474, "Invalid element (language should be a tag")),
    ("A13", "API", "create, a client code with a space (a name)", "api-t",
     {"request": "create", "therapist_key": "@T", "client_code": "Jane Doe"},
     (474, "Invalid element (client_code must be a pseudonymous code")),
    ("A14", "API", "create, modality \"phone\"", "api-t",
     {"request": "create", "therapist_key": "@T", "client_code": "C-H", "modality": "phone"},
     (474, "Invalid element (modality must be")),
    ("A15", "API", "create, 17 schedule offsets", "api-t",
     {"request": "create", "therapist_key": "@T", "client_code": "C-H",
      "schedule": {"in_session_at_s": list(range(17))}},
     (474, "Invalid element (schedule.in_session_at_s should be an array of at most 16")),
    ("A16", "API", "create, schedule offsets descending", "api-t",
     {"request": "create", "therapist_key": "@T", "client_code": "C-H", "schedule": {"in_session_at_s": [60, 30]}},
     (474, "Invalid element (schedule.in_session_at_s must be ascending)")),
    ("A17", "API", "create, a negative offset", "api-t",
     {"request": "create", "therapist_key": "@T", "client_code": "C-H", "schedule": {"in_session_at_s": [-1]}},
     (474, "Invalid element (schedule.in_session_at_s[0] should be an integer")),
    ("A18", "API", "create, an unknown instrument", "api-t",
     {"request": "create", "therapist_key": "@T", "client_code": "C-H", "instruments": {"end": "srs-bootleg"}},
     (474, "Unknown instrument 'srs-bootleg'")),
    ("A19", "API", "create, an end form in the in-session slot", "api-t",
     {"request": "create", "therapist_key": "@T", "client_code": "C-H", "instruments": {"in_session": "ap-end"}},
     (474, "Instrument 'ap-end' is of kind end")),
    ("A20", "API", "configure, audio \"loud\"", "api-c", {"request": "configure", "audio": "loud"},
     (474, "Invalid element type (audio should be a boolean)")),
    ("A21", "API", "answer, responses a list", "api-c", {"request": "answer", "pulse_id": "@P", "responses": [1, 2]},
     (474, "Invalid element type (responses should be an object")),
    ("A22", "API", "answer, an unknown pulse", "api-c",
     {"request": "answer", "pulse_id": "nope", "responses": {"understood": 1}}, (488, "no such pulse")),
    ("A23", "API", "answer, a value of 1e308", "api-c",
     {"request": "answer", "pulse_id": "@P", "responses": {"understood": 1e308}, "final": False},
     (493, "")),
    ("A24", "API", "answer, a value as a string", "api-c",
     {"request": "answer", "pulse_id": "@P", "responses": {"understood": "7"}, "final": False}, (494, "")),
    ("A25", "API", "answer, an item the instrument lacks", "api-c",
     {"request": "answer", "pulse_id": "@P", "responses": {"rm -rf": 1}, "final": False}, (492, "")),
    ("A26", "API", "answer, the other participant's pulse", "api-t",
     {"request": "answer", "pulse_id": "@P", "responses": {"understood": 1}}, (491, "this pulse is for the other participant")),
    ("A27", "API", "report, an unknown filter", "api-f",
     {"request": "report", "supervisor_key": "@S", "kind": "visits", "filters": {"where": "1=1"}},
     (474, "Invalid element (unknown filter 'where'")),
    ("A28", "API", "report, from \"yesterday\"", "api-f",
     {"request": "report", "supervisor_key": "@S", "kind": "visits", "filters": {"from": "yesterday"}},
     (474, "Invalid element (filters.from should be an ISO 8601 date")),
    ("A29", "API", "report, limit 0", "api-f",
     {"request": "report", "supervisor_key": "@S", "kind": "visits", "filters": {"limit": 0}},
     (474, "Invalid element (filters.limit should be an integer 1..")),
    ("A30", "API", "forget, an empty client code", "api-f",
     {"request": "forget", "supervisor_key": "@S", "client_code": ""}, (474, "Invalid element (client_code is empty)")),
    ("A31", "API", "pulse, target \"everyone\"", "api-t", {"request": "pulse", "target": "everyone"},
     (474, "Invalid element (target must be")),
    ("A32", "API", "create with a wrong therapist key", "api-f",
     {"request": "create", "therapist_key": "W" * 43, "client_code": "C-H"}, (475, "Unauthorized (wrong therapist key)")),
    ("A33", "API", "join with a made-up invite", "api-f",
     {"request": "join", "role": "client", "invite": "Z" * 32, "consent": {"research": True}}, (477, "Invalid invite")),
    ("A34", "API", "join with the invite and a wrong rejoin key", "api-f",
     {"request": "join", "role": "client", "invite": "@I", "rejoin_key": "R" * 32, "consent": {"research": True}},
     (478, "Invite already used")),
    ("A35", "API", "the client asks `admit`", "api-c", {"request": "admit"}, (479, "This role may not make this request")),
    ("A36", "API", "`status` before joining", "api-f", {"request": "status"}, (480, "Join a visit first")),
    ("A37", "API", "a second `join` on a joined handle", "api-c",
     {"request": "join", "role": "client", "invite": "@I", "rejoin_key": "@R", "consent": {"research": True}},
     (481, "This handle already joined a visit")),
    ("A38", "API", "the client asks `reinvite`", "api-c", {"request": "reinvite"}, (479, "This role may not make this request")),
    ("A39", "API", "not JSON at all (WebSocket)", "raw", "{\"janus\": \"message\", ", ("core", 454)),
    ("A40", "API", "JSON nested 5,000 deep (WebSocket)", "raw", "[" * 5000 + "]" * 5000, ("core", 454)),
    ("A41", "API", "create with a signed token where Janus runs without token_auth", "api-f",
     {"request": "create", "therapist_token": "1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:"
      + "A" * 27 + "=", "client_code": "C-H"},
     (475, "Unauthorized (therapist token: signed tokens are not enabled on this server)")),
    ("A42", "API", "create with a key and a token", "api-f",
     {"request": "create", "therapist_key": "@T", "therapist_token": "x", "client_code": "C-H"},
     (474, "Invalid element (give therapist_key or therapist_token, not both)")),
    ("A43", "API", "report with a 3,000-byte supervisor token", "api-f",
     {"request": "report", "kind": "visits", "supervisor_token": "t" * 3000},
     (474, "Invalid element (supervisor_token should be a Janus signed token of at most 2048 bytes)")),
    # --- JSEP ------------------------------------------------------------------------
    ("J01", "JSEP", "configure with an `answer`", "jsep-c", ({"request": "configure"}, {"type": "answer", "sdp": "@SDP"}),
     ("core", 469)),
    ("J02", "JSEP", "configure with an SDP of garbage", "jsep-c", ({"request": "configure"}, {"type": "offer", "sdp": "v=0\r\nlol\r\n"}),
     ("core", 465)),
    ("J03", "JSEP", "configure with a JSEP without sdp", "jsep-c", ({"request": "configure"}, {"type": "offer"}),
     ("core", 456)),
    ("J04", "JSEP", "a JSEP offer on `status`", "jsep-c", ({"request": "status"}, {"type": "offer", "sdp": "@SDP"}),
     (474, "A JSEP goes with `configure` only")),
    ("J05", "JSEP", "JSEP type \"rollback\"", "jsep-c", ({"request": "configure"}, {"type": "rollback", "sdp": "@SDP"}),
     ("core", 464)),
    # --- data channel --------------------------------------------------------------------
    ("D01", "data channel", "not JSON", "dc", "hello there", ("bad_json", "not valid JSON")),
    ("D02", "data channel", "a binary message", "dc", b"\x00\x01\x02", ("bad_json", "binary messages are not accepted")),
    ("D03", "data channel", "a JSON array", "dc", "[1,2,3]", ("bad_json", "message is not a JSON object")),
    ("D04", "data channel", "no `v`", "dc", {"type": "ping"}, ("bad_version", "\"v\" must be 1")),
    ("D05", "data channel", "`v`: 2", "dc", {"v": 2, "type": "ping"}, ("bad_version", "\"v\" must be 1")),
    ("D06", "data channel", "an unknown type", "dc", {"v": 1, "type": "shell"}, ("unknown_type", "unknown message type")),
    ("D07", "data channel", "20 KB in one message", "dc", json.dumps({"v": 1, "type": "ping", "pad": "p" * 20000}),
     ("too_large", "message longer than 16384 bytes")),
    ("D08", "data channel", "answer, responses a list", "dc", {"v": 1, "type": "answer", "pulse_id": "@P", "responses": [1]},
     ("bad_responses", "\"responses\" must be an object")),
    ("D09", "data channel", "answer, final \"yes\"", "dc",
     {"v": 1, "type": "answer", "pulse_id": "@P", "responses": {"understood": 1}, "final": "yes"},
     ("bad_message", "\"final\" must be a boolean")),
    ("D10", "data channel", "answer, an empty pulse_id", "dc", {"v": 1, "type": "answer", "pulse_id": "", "responses": {}},
     ("bad_message", "\"pulse_id\" must be a non-empty string")),
    ("D11", "data channel", "answer, value out of the scale", "dc",
     {"v": 1, "type": "answer", "pulse_id": "@P", "responses": {"understood": 11}, "final": False},
     ("out_of_range", "")),
    ("D12", "data channel", "answer, value off the step grid", "dc",
     {"v": 1, "type": "answer", "pulse_id": "@P", "responses": {"understood": 3.14159}, "final": False},
     ("out_of_range", "")),
    ("D13", "data channel", "stats with a negative frame count", "dc",
     {"v": 1, "type": "stats", "inbound_video": {"framesDecoded": -5}},
     ("bad_stats", "stats fields must be non-negative finite numbers")),
    ("D14", "data channel", "stats with no known group", "dc", {"v": 1, "type": "stats", "evil": {}},
     ("bad_stats", "stats has none of")),
    ("D15", "data channel", "only white space", "dc", "   \n\t ", ("bad_json", "not valid JSON")),
    ("D16", "data channel", "60 pings in a burst", "dc-burst", {"v": 1, "type": "ping"},
     ("rate_limited", "too many messages; slow down")),
    # --- RTP / RTCP ---------------------------------------------------------------------------
    ("R01", "RTP", "a stream nobody negotiated (a new SSRC, payload type 99)", "rtp", "pt99",
     ("ignored", "dropped, never relayed to the other participant")),
    ("R02", "RTP", "RTP whose padding length (250) is longer than its payload (100)", "rtp", "padded",
     ("ignored", "dropped, never relayed to the other participant")),
    ("R03", "RTP", "a new SSRC whose first packets jump 30,000 sequence numbers", "rtp", "seqjump",
     ("ignored", "dropped, never relayed to the other participant")),
    ("R04", "RTCP", "a receiver report claiming 31 blocks in 8 bytes", "rtcp", "rr31",
     ("ignored", "the parser stops at the packet's end")),
    ("R05", "RTCP", "a compound packet whose length field points past its end", "rtcp", "longlen",
     ("ignored", "the parser stops at the packet's end")),
    ("R06", "RTCP", "a NACK with 200 entries", "rtcp", "nack200",
     ("ignored", "counted (bounded), no retransmission storm")),
    ("R07", "RTCP", "an APP packet of garbage", "rtcp", "app",
     ("ignored", "not understood, not forwarded")),
    ("R08", "RTCP", "a sender report with an NTP time in 2100", "rtcp", "sr2100",
     ("ignored", "no RTT from it (the LSR is not ours)")),
    # --- instrument files ------------------------------------------------------------------------
    ("I01", "instrument file", "not JSON", "file", ("zz-notjson.json", b"{ this is not json"), ("refused", "zz-notjson.json")),
    ("I02", "instrument file", "larger than 256 KiB", "file", ("zz-huge.json", b" " * (300 * 1024)),
     ("refused", "zz-huge.json: -: larger than 262144 bytes")),
    ("I03", "instrument file", "65 items", "file", ("zz-65items.json", "65items"), ("refused", "zz-65items.json")),
    ("I04", "instrument file", "a VAS step of 0", "file", ("zz-step0.json", "step0"), ("refused", "scale.step must be > 0")),
    ("I05", "instrument file", "a Likert scale of 50 points", "file", ("zz-likert50.json", "likert50"),
     ("refused", "scale.points must be an integer from")),
    ("I06", "instrument file", "the id of a shipped instrument", "file", ("zz-dupid.json", "dupid"),
     ("refused", "zz-dupid.json: -: id \"ap-pulse\" is already defined by ap-pulse.json")),
    ("I07", "instrument file", "a text of 2,000 bytes", "file", ("zz-longtext.json", "longtext"),
     ("refused", "is longer than 1000 bytes")),
    ("I08", "instrument file", "kind \"weekly\"", "file", ("zz-kind.json", "kind"),
     ("refused", "kind must be \"in_session\", \"end\", \"therapist_end\" or \"technology\"")),
    ("I09", "instrument file", "a FIFO named *.json", "file", ("zz-fifo.json", "fifo"), ("refused", "zz-fifo.json: -: not a regular file")),
    ("I10", "instrument file", "a cutoff on a score that does not exist", "file", ("zz-cutoff.json", "cutoff"),
     ("refused", "is neither \"total\" nor a subscale")),
]


def _item(i, text="Question?", scale=None):
    return {"id": f"q{i}", "text": {"en": text},
            "scale": scale or {"type": "vas", "min": 0, "max": 10, "step": 1,
                               "min_label": {"en": "no"}, "max_label": {"en": "yes"}}}


def _definition(variant: str) -> dict:
    d = {"id": f"bad-{variant}", "version": "1", "kind": "in_session", "validated": False,
         "languages": ["en"], "title": {"en": "Bad"}, "items": [_item(0)], "scoring": {"total": "sum"}}
    if variant == "65items":
        d["items"] = [_item(i) for i in range(65)]
    elif variant == "step0":
        d["items"][0]["scale"]["step"] = 0
    elif variant == "likert50":
        d["items"][0]["scale"] = {"type": "likert", "points": 50, "labels": {"en": [str(i) for i in range(50)]}}
    elif variant == "dupid":
        d["id"] = "ap-pulse"
    elif variant == "longtext":
        d["items"][0]["text"]["en"] = "y" * 2000
    elif variant == "kind":
        d["kind"] = "weekly"
    elif variant == "cutoff":
        d["rules"] = {"cutoff": {"score": "tsk", "below": 3}}
    return d


def make_instruments_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="ap-hostile-instruments-"))
    for f in (REPO / "conf" / "instruments").glob("*.json"):
        shutil.copy(f, d / f.name)
    for cid, layer, what, how, payload, _ in CASES:
        if how != "file":
            continue
        name, content = payload
        if content == "fifo":
            os.mkfifo(d / name)
        elif isinstance(content, bytes):
            (d / name).write_bytes(content)
        else:
            (d / name).write_text(json.dumps(_definition(content)))
    return d


# -- the document -----------------------------------------------------------------
def _show(how: str, payload: Any) -> str:
    if how == "file":
        return f"`{payload[0]}`"
    if how in ("rtp", "rtcp"):
        return ""
    if isinstance(payload, bytes):
        return f"{len(payload)} binary bytes"
    if isinstance(payload, tuple):
        body, jsep = payload
        return "`" + json.dumps(body) + "` + JSEP `" + json.dumps({k: (v if v != "@SDP" else "<a valid offer>")
                                                                    for k, v in jsep.items()})[:80] + "`"
    text = payload if isinstance(payload, str) else json.dumps(payload)
    n = len(text)
    text = re.sub(r"(.)\1{11,}", lambda m: f"<{len(m.group(0))}×{m.group(1)}>", text)
    if len(text) > 140:
        text = text[:110] + f"… ({n} bytes)"
    return "`" + text.replace("|", "\\|").replace("\u0000", "\\u0000") + "`"


def _answer(how: str, expected: Tuple[Any, str]) -> str:
    a, b = expected
    if a == "core":
        return f"Janus core error {b} (the plugin never sees it)"
    if how.startswith("api") or how.startswith("jsep"):
        return f"`{a}` {_slug(a)}: \"{b}…\"" if b else f"`{a}` {_slug(a)}"
    if how.startswith("dc"):
        return f"`error` `{a}`" + (f": \"{b}…\"" if b else "")
    if a == "ignored":
        return b
    return f"refused at start-up, logged: \"…{b}…\"; the other instruments load"


def _slug(code: int) -> str:
    from harness.alliance import ERRORS
    from harness.pulses import PULSE_ERRORS
    names = {v: k for k, v in {**ERRORS, **PULSE_ERRORS}.items()}
    return names.get(code, {497: "rate_limited", 496: "store_failed"}.get(code, ""))


def render() -> str:
    out = ["# Hostile inputs and the answers they get", "",
           "Every row is sent by `tests/integration/test_hostile_inputs.py` to a real Janus",
           "with the plugin, in a live audio/video visit, which checks the exact answer,",
           "that Janus is still up and that the visit (state, participants, every stored",
           "pulse and answer row) is unchanged. This page is generated from that test's",
           "table (`/usr/bin/python3 tests/integration/test_hostile_inputs.py --write-docs`);",
           "the test fails when they differ. The parsers behind the rows are also fuzzed",
           "(tests/fuzz/README.md).", "",
           f"{len(CASES)} inputs. In the payloads, `@T`, `@S`, `@P`, `@I` and `@R` stand for the",
           "visit's real therapist key, supervisor key, open pulse id, invite and rejoin key;",
           "`<43×k>` for 43 times the character k.", "",
           "| # | layer | input | answer |", "|---|---|---|---|"]
    for cid, layer, what, how, payload, expected in CASES:
        shown = _show(how, payload)
        out.append(f"| {cid} | {layer} | {what}{(': ' + shown) if shown else ''} | {_answer(how, expected)} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__" and "--write-docs" in sys.argv:
    DOC.write_text(render())
    print(f"wrote {DOC} ({len(CASES)} rows)")
    sys.exit(0)

# -- the test ---------------------------------------------------------------------------
import pytest  # noqa: E402

from harness import quality, store  # noqa: E402
from harness.alliance import Scope, expect, status  # noqa: E402
from harness.api import JanusError  # noqa: E402
from harness.pulses import live_visit, trigger  # noqa: E402

INSTRUMENTS = make_instruments_dir() if "pytest" in sys.modules else None
ALLIANCE_CONFIG = {"events": False, "instruments_dir": INSTRUMENTS}


def test_docs_match_the_table():
    assert len(CASES) >= 40
    assert DOC.exists() and DOC.read_text() == render(), \
        "docs/hostile-inputs.md is out of date: /usr/bin/python3 tests/integration/test_hostile_inputs.py --write-docs"


def _fill(obj: Any, subst: Dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {k: _fill(v, subst) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, subst) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_fill(v, subst) for v in obj)
    if isinstance(obj, str) and obj in subst:
        return subst[obj]
    return obj


def _rtp(kind: str, ssrc: int, seq: int) -> bytes:
    if kind == "pt99":
        return struct.pack("!BBHII", 0x80, 99, seq, 12345, ssrc) + b"\x00" * 40
    if kind == "padded":
        return struct.pack("!BBHII", 0xA0, 111, seq, 12345, ssrc) + b"\x00" * 100 + bytes([250])
    if kind == "seqjump":
        return struct.pack("!BBHII", 0x80, 111, (seq + 30000) & 0xffff, 12345, ssrc) + b"\xf8\xff\xfe"
    raise ValueError(kind)


def _rtcp(kind: str, ssrc: int) -> bytes:
    if kind == "rr31":
        return struct.pack("!BBHI", 0x80 | 31, 201, 1, ssrc)
    if kind == "longlen":
        return struct.pack("!BBHI", 0x81, 201, 200, ssrc) + b"\x00" * 24
    if kind == "nack200":
        fci = b"".join(struct.pack("!HH", i * 17, 0xffff) for i in range(200))
        return struct.pack("!BBHII", 0x81, 205, 2 + 200, ssrc, ssrc + 1) + fci
    if kind == "app":
        return struct.pack("!BBHI", 0x80, 204, 4, ssrc) + b"EVIL" + b"\xff" * 8
    if kind == "sr2100":
        ntp_2100 = (4102444800 + 2208988800) & 0xffffffff
        return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, ntp_2100, 0, 0, 0, 0)
    raise ValueError(kind)


async def _snapshot(janus, v) -> Any:
    st = await status(v.th)
    rows = store.visit_snapshot(janus.db_path, v.visit_id)
    return (st["state"], json.dumps(st["participants"], sort_keys=True), json.dumps(rows, sort_keys=True, default=str))


@pytest.mark.timeout_s(240)
async def test_every_hostile_input_gets_its_answer(janus, keys):
    assert INSTRUMENTS is not None
    failures: List[str] = []
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-HOSTILE", media=True)
        [pid] = await trigger(v.th)
        await v.pc.wait_message(type="pulse", timeout=5)
        # every write the setup queued has landed (the snapshots compare rows)
        await store.wait_row(janus.db_path, "SELECT status FROM pulses WHERE pulse_id = ? AND status = 'delivered'",
                             (pid,))
        offer_peer = sc.peer("sdp-source")
        sdp = (await offer_peer.offer())["sdp"]
        subst = {"@T": keys.therapist("T-01"), "@S": keys.supervisor("s01"), "@P": pid,
                 "@I": v.invite, "@R": v.rejoin_key, "@SDP": sdp}
        media = quality.local_media(v.pc)
        audio_sender = [s for s in v.pc.pc.getSenders() if s.track and s.track.kind == "audio"][0]
        transport = audio_sender.transport
        seq = 1000
        for cid, layer, what, how, payload, expected in CASES:
            if how == "file":
                continue
            before = await _snapshot(janus, v)
            try:
                if how in ("api-c", "api-t", "api-f", "core"):
                    h = {"api-c": v.cl, "api-t": v.th}.get(how) or await sc.handle()
                    body = _fill(payload, subst)
                    if how == "core":
                        with pytest.raises(JanusError) as e:
                            await h.request(body)
                        assert e.value.code == expected[1], f"core error {e.value.code}"
                    else:
                        r = await h.request(body)
                        d = r.data
                        assert d.get("alliance") == "error" and d.get("error_code") == expected[0], d
                        assert d["error"].startswith(expected[1]), d["error"]
                elif how == "raw":
                    s = sc.sessions[0]
                    await s.send_raw(payload)
                    m = await s.wait_unrouted(lambda m: m.get("janus") == "error", timeout=5)
                    assert m["error"]["code"] == expected[1], m
                elif how == "jsep-c":
                    body, jsep = _fill(payload, subst)
                    h = await sc.handle()                  # a fresh PeerConnection-less handle
                    await h.request({"request": "join", "role": "therapist", "visit_id": "x",
                                     "therapist_key": keys.therapist("T-02")})
                    if expected[0] == "core":
                        with pytest.raises(JanusError) as e:
                            await h.request(body, jsep=jsep)
                        assert e.value.code == expected[1], f"core error {e.value.code}"
                    else:
                        r = await h.request(body, jsep=jsep)
                        assert r.data.get("error_code") == expected[0], r.data
                        assert r.data["error"].startswith(expected[1]), r.data
                elif how in ("dc", "dc-burst"):
                    ch = await v.pc.wait_channel_open()
                    msgs = [payload] * (60 if how == "dc-burst" else 1)
                    mark = len(v.pc.messages)
                    for p in msgs:
                        p = _fill(p, subst)
                        ch.send(p if isinstance(p, (str, bytes)) else json.dumps(p))
                    got = await v.pc.wait_message(
                        lambda m: v.pc.messages.index(m) >= mark and isinstance(m.json, dict)
                        and m.json.get("type") == "error" and m.json.get("code") == expected[0], timeout=5)
                    assert got["reason"].startswith(expected[1]), got
                    if how == "dc-burst":
                        await asyncio.sleep(2.5)       # let the bucket refill for the next rows
                elif how == "rtp":
                    # a fresh SSRC each: the real streams' SRTP replay windows stay intact
                    seq += 1
                    ssrc = (media["audio_ssrc"] ^ 0x5A5A0000) + seq
                    for k in range(5):
                        await transport._send_rtp(_rtp(payload, ssrc, seq * 10 + k))
                elif how == "rtcp":
                    await transport._send_rtp(_rtcp(payload, media["audio_ssrc"]))
                await asyncio.sleep(0.07)              # under the 20 requests/s of a handle
                assert janus.alive(), "janus died"
                after = await _snapshot(janus, v)
                assert after == before, f"the visit changed: {before} -> {after}"
            except (AssertionError, JanusError, TimeoutError) as e:
                failures.append(f"{cid} {what}: {type(e).__name__}: {e}")
        # media still flows both ways after all of it
        since_t, since_c = v.pt.snapshot(), v.pc.snapshot()
        await asyncio.gather(v.pt.wait_media(10, 3, 5, since=since_t), v.pc.wait_media(10, 3, 5, since=since_c))
    assert not failures, "\n".join(failures)


async def test_bad_instrument_files_refused_the_rest_load(janus):
    log = janus.wait_log("instruments loaded")
    refused = [l for l in log.splitlines() if "instrument refused:" in l]
    failures = []
    for cid, layer, what, how, payload, expected in CASES:
        if how != "file":
            continue
        name = payload[0]
        mine = [l for l in refused if name in l]
        if len(mine) != 1 or expected[1] not in mine[0]:
            failures.append(f"{cid} {what}: {mine}")
    assert not failures, "\n".join(failures)
    assert "4 instruments loaded" in log, [l for l in log.splitlines() if "instruments loaded" in l]
