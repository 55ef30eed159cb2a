"""A bad database at start-up: random bytes where the store should be, and
a db_path whose folder does not exist. Janus starts, logs a clear error
naming the problem, the plugin refuses to initialise (not listed in
`info`, attaching it fails with 460), the bad file is left untouched, and
janus itself keeps working and exits cleanly on SIGTERM.

Each test starts its own janus (no module janus here: the harness runs one
instance at a time on fixed ports).
"""
import hashlib
import os
import time

import pytest

from conftest import _stop_checked
from harness.alliance import PLUGIN
from harness.api import JanusError, connect
from harness.janus import alliance_server


async def refused_start(net, keys, workdir, db_path, expect_text):
    srv = alliance_server(net, workdir, keys, db_path=db_path)
    srv.start(require_plugins=False)
    try:
        info = srv.server_info()
        assert info.get("janus") == "server_info", info
        assert PLUGIN not in info.get("plugins", {}), \
            f"the plugin initialised on a bad database: {list(info.get('plugins', {}))}"
        log = srv.wait_log("cannot open the store")
        lines = [l for l in log.splitlines() if "cannot open the store" in l]
        assert lines, "no 'cannot open the store' line in the janus log:\n" + srv.log_tail(30)
        assert any(all(t in l for t in expect_text) for l in lines), \
            f"the store error does not say {expect_text}: {lines}"
        assert not any("Alliance Pulse initialized" in l for l in log.splitlines())
        # janus itself works: sessions, and attaching the plugin is refused cleanly
        s = await connect(srv, "ws")
        try:
            with pytest.raises(JanusError) as e:
                await s.attach(PLUGIN)
            assert e.value.code == 460, e.value       # JANUS_ERROR_PLUGIN_NOT_FOUND
        finally:
            await s.destroy()
        time.sleep(0.3)
        assert srv.alive(), "janus died"
        assert srv.server_info().get("janus") == "server_info"
        return srv
    finally:
        _stop_checked(srv)                  # clean SIGTERM exit, no sanitizer report


async def test_corrupt_database_refused(net, keys, tmp_path_factory):
    work = tmp_path_factory.mktemp("corrupt")
    db = work / "alliance.sqlite"
    db.write_bytes(os.urandom(64 * 1024))
    os.chmod(db, 0o600)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    await refused_start(net, keys, work, db, ["not an SQLite database", str(db)])
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest, "the corrupt file was modified"
    assert not os.path.exists(f"{db}-wal") and not os.path.exists(f"{db}-shm"), \
        "the refused database got -wal/-shm files"


async def test_missing_db_folder_refused(net, keys, tmp_path_factory):
    work = tmp_path_factory.mktemp("nofolder")
    folder = work / "no-such-folder"
    db = folder / "alliance.sqlite"
    await refused_start(net, keys, work, db, ["does not exist", str(folder)])
    assert not folder.exists(), "the plugin created the missing folder"


async def test_read_only_database_refused(net, keys, tmp_path_factory):
    """A database on a read-only mount (as root, file modes alone would not
    stop writes): the plugin refuses to start with a clear error, and the
    file is untouched."""
    from harness.store import read_only_db
    work = tmp_path_factory.mktemp("readonly")
    folder = work / "ro"
    with read_only_db(folder) as db:
        digest = hashlib.sha256(db.read_bytes()).hexdigest()
        await refused_start(net, keys, work, db, ["read-only", str(folder)])
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest, "the read-only file was modified"
