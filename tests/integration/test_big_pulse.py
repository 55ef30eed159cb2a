"""A pulse message larger than one data-channel message can carry (Janus's
relay_data takes a 16-bit length: 65,535 bytes): an instrument within the
documented limits (64 items of up to 1,000 bytes of text each) makes a
pulse of ~75 KB. It used to go out truncated on the data channel (broken
JSON, the pulse never showed); now it comes whole as a Janus event, while
small messages keep using the data channel."""
import json
import shutil
import tempfile
from pathlib import Path

from harness.janus import REPO_ROOT
from harness.pulses import live_visit, trigger

ITEMS = 64
TEXT = "This is a long question text, as a licensed instrument may have. " * 15   # ~990 bytes


def _instruments() -> Path:
    d = Path(tempfile.mkdtemp(prefix="ap-instruments-"))
    for f in (REPO_ROOT / "conf" / "instruments").glob("*.json"):
        shutil.copy(f, d / f.name)
    big = {
        "id": "big-form", "version": "1", "kind": "in_session", "validated": False,
        "languages": ["en"], "title": {"en": "A long form"},
        "items": [{"id": f"q{i:02d}", "text": {"en": TEXT[:1000]},
                   "scale": {"type": "vas", "min": 0, "max": 10, "step": 1,
                             "min_label": {"en": "not at all"}, "max_label": {"en": "completely"}}}
                  for i in range(ITEMS)],
        "scoring": {"total": "sum"},
    }
    (d / "zz-big-form.json").write_text(json.dumps(big))
    return d


INSTRUMENTS = _instruments()
ALLIANCE_CONFIG = {"events": False, "instruments_dir": INSTRUMENTS}


async def test_pulse_over_64k_arrives_whole(janus, keys):
    from harness.alliance import Scope
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-BIG", media=True)
        [pid] = await trigger(v.th, instrument="big-form")
        ev = await v.cl.wait_event(alliance="pulse", timeout=5)
        assert ev.data["pulse_id"] == pid
        items = ev.data["instrument"]["items"]
        assert len(items) == ITEMS and all(i["text"] == TEXT[:1000] for i in items)
        assert len(json.dumps(ev.data)) > 65535
        # nothing broken went out on the data channel
        for m in v.pc.messages:
            assert m.json is not None, f"a data-channel message is not JSON (truncated?): {m!r}"
            assert m.json.get("type") != "pulse", m
        # a small pulse still takes the data channel
        r = await v.cl.request({"request": "dismiss", "pulse_id": pid})
        assert r.data.get("alliance") == "dismissed", r.data
        [small] = await trigger(v.th)
        p = await v.pc.wait_message(type="pulse", timeout=5)
        assert p["pulse_id"] == small
    shutil.rmtree(INSTRUMENTS, ignore_errors=True)
