"""Configuration faults never take Janus down (docs/api.md "Lifecycle";
the issue saw a missing instruments_dir crash Janus at start-up): each bad
or missing setting, folder or file ends the plugin's init with ONE log line
that says what is wrong, and Janus — with its other plugins — keeps
serving: here Janus's stock EchoTest, attached and asked, and (for the
first case) a real WebRTC echo. Each test starts its own Janus."""
import pytest

from conftest import _stop_checked
from harness.alliance import PLUGIN, Scope
from harness.api import JanusError, connect
from harness.janus import (ALLIANCE_PACKAGE, JANUS_LIB, REPO_ROOT, JanusServer, alliance_config,
                           plugin_so_path)

ECHO = "janus.plugin.echotest"
FATAL = f"[{ALLIANCE_PACKAGE}] plugin not started:"


def server(net, keys, workdir, text):
    confs = {f"{ALLIANCE_PACKAGE}.jcfg": text} if text is not None else {}
    return JanusServer(net, workdir, plugin_sos=[plugin_so_path(), JANUS_LIB / "plugins" / "libjanus_echotest.so"],
                       required_plugins=[ECHO], plugin_configs=confs)


async def refused(net, keys, workdir, text, *phrases, media=False):
    srv = server(net, keys, workdir, text)
    srv.start()
    try:
        info = srv.server_info()
        assert PLUGIN not in info.get("plugins", {}), "the plugin initialised on a bad configuration"
        lines = [l for l in srv.wait_log(FATAL).splitlines() if FATAL in l]
        assert len(lines) == 1, f"expected one '{FATAL}' line, got {lines}\n" + srv.log_tail(30)
        assert all(p in lines[0] for p in phrases), f"{lines[0]!r} does not say {phrases}"
        s = await connect(srv, "ws")
        try:
            with pytest.raises(JanusError) as e:
                await s.attach(PLUGIN)
            assert e.value.code == 460, e.value
        finally:
            await s.destroy()
        async with Scope(srv, plugin=ECHO) as sc:
            h = await sc.handle()
            if media:
                peer = sc.peer("echo-after-refusal")
                r = await h.request({"audio": True, "video": True}, jsep=await peer.offer())
                await peer.apply_answer(r.jsep)
                await peer.wait_media(audio=10, video=2, timeout=10)
                peer.assert_receiving_from(peer)
            else:
                r = await h.request({"audio": True})
                assert r.data == {"echotest": "event", "result": "ok"}, r.data
        assert srv.alive()
        return lines[0]
    finally:
        _stop_checked(srv)


def good(tmp, keys, **kw):
    kw.setdefault("instruments_dir", REPO_ROOT / "conf" / "instruments")
    return alliance_config(tmp / "alliance.sqlite", keys, **kw)


async def test_missing_instruments_dir(net, keys, tmp_path):
    missing = tmp_path / "no-instruments"
    line = await refused(net, keys, tmp_path, good(tmp_path, keys, instruments_dir=missing),
                         "general.instruments_dir", str(missing), "No such file", media=True)
    print(line)


async def test_db_path_in_a_missing_folder(net, keys, tmp_path):
    text = alliance_config(tmp_path / "nowhere" / "alliance.sqlite", keys,
                           instruments_dir=REPO_ROOT / "conf" / "instruments")
    await refused(net, keys, tmp_path, text, "cannot open the store", "does not exist")


async def test_read_only_database_file(net, keys, tmp_path):
    from harness.store import read_only_db
    with read_only_db(tmp_path / "ro") as db:
        await refused(net, keys, tmp_path, alliance_config(db, keys, instruments_dir=REPO_ROOT / "conf" / "instruments"),
                      "cannot open the store", "read-only")


@pytest.mark.parametrize("setting, phrases", [
    ('end_grace_s = "soon"', ["general.end_grace_s must be an integer", "soon"]),
    ("idle_close_s = -5", ["general.idle_close_s must be an integer"]),
    ('events = "maybe"', ["general.events must be true or false", "maybe"]),
    ('in_session_at_s = "600, 300"', ["general.in_session_at_s", "ascending"]),
    ("quality_sample_s = 7", ["general.quality_sample_s must be a multiple of 5"]),
    ('db_path = ""', ["general.db_path is empty"]),
    ('db_url = "not a connection string"', ["general.db_url must be a PostgreSQL connection URI"]),
    ('instance_id = "two words"', ["general.instance_id must be 1..64 characters"]),
    ('public_servers = "ftp://example.org/janus"', ["general.public_servers", "ftp://example.org/janus"]),
    ("noninferiority_margin = 0", ["general.noninferiority_margin must be a number > 0"]),
    ('noninferiority_margin = "wide"', ["general.noninferiority_margin must be a number > 0", "wide"]),
    ("pulse_hold_stable_s = 61", ["general.pulse_hold_stable_s must be an integer"]),
    ("pulse_hold_max_s = 0", ["general.pulse_hold_max_s must be an integer"]),
    ("pulse_hold_max_s = 3", ["general.pulse_hold_max_s (3) must be longer than pulse_hold_stable_s (3)"]),
])
async def test_garbled_value(net, keys, tmp_path, setting, phrases):
    key = setting.split("=")[0].strip()
    text = "\n".join(l for l in good(tmp_path, keys).splitlines() if not l.strip().startswith(key + " ="))
    text = text.replace("general: {", "general: {\n    " + setting, 1)
    await refused(net, keys, tmp_path, text, *phrases)


async def test_unreachable_database_server_and_its_password(net, keys, tmp_path):
    """A db_url whose server cannot be reached: refused with the reason, and
    the URL's password appears nowhere in Janus's log."""
    secret = "Pw-" + "k3y9" * 4
    text = good(tmp_path, keys).replace(
        "general: {", f'general: {{\n    db_url = "postgresql://alliance:{secret}@nowhere.invalid/alliance"', 1)
    line = await refused(net, keys, tmp_path, text, "cannot open the store", "db_url",
                         "postgresql://alliance@nowhere.invalid/alliance")
    assert secret not in line
    log = (tmp_path / "janus.log").read_text(errors="replace")
    assert secret not in log, "the db_url password is in the janus log"


async def test_bad_key_hash(net, keys, tmp_path):
    text = good(tmp_path, keys)
    import re
    text = re.sub(r'(t01: \{ code = "T-01", key_sha256 = ")[0-9a-f]{64}', r"\1zz", text)
    await refused(net, keys, tmp_path, text, "therapists.t01", "64 hex characters")


async def test_syntax_error(net, keys, tmp_path):
    await refused(net, keys, tmp_path, 'general: {\n  db_path = "x\n', "cannot be parsed")


async def test_missing_configuration_file(net, keys, tmp_path):
    await refused(net, keys, tmp_path, None, "does not exist", f"{ALLIANCE_PACKAGE}.jcfg")


async def test_unknown_setting_is_warned_not_fatal(net, keys, tmp_path):
    """A misspelt setting is not fatal (Janus configs grow), but it is said."""
    text = good(tmp_path, keys).replace("general: {", "general: {\n    end_grace = 10", 1)
    srv = server(net, keys, tmp_path, text)
    srv.start()
    try:
        assert PLUGIN in srv.server_info().get("plugins", {})
        assert "general.end_grace is not a setting of this plugin" in srv.wait_log("general.end_grace is not")
    finally:
        _stop_checked(srv)
