"""pytest wiring for the integration suite.

* The whole pytest process runs as root. At session start it creates a
  namespace pair (harness.netns), moves its own main thread into the
  *client* namespace (setns) and pins aioice's host candidates to the client
  veth address. Every socket the tests open (Janus API clients, aiortc) is
  therefore in the client namespace; Janus runs in the server namespace.
* `janus` (module scope) starts one Janus with the alliance plugin per test
  module; `keys` holds that module's per-run credentials. Its store is an
  SQLite file, or with ALLIANCE_TEST_DB=postgresql a fresh database of the
  session's private PostgreSQL server (`pg_server`, tests/pg/pg-test-server).
* `async def test_…` functions are run with asyncio.run() by the
  pytest_pyfunc_call hook below (no pytest-asyncio needed), with a per-test
  timeout (`@pytest.mark.timeout_s(N)`, default 60 s).
* After every test the Janus processes are checked: a sanitizer report in
  the log or a dead janus fails the test. Failed tests get the plugin's log
  lines and the (redacted) API trace attached.
* At the end of the session, no janus of ours and no namespace of ours may
  be left behind.
"""
from __future__ import annotations

import asyncio
import atexit
import faulthandler
import inspect
import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import api as _api  # noqa: E402
from harness import janus as _janus  # noqa: E402
from harness import pg as _pg  # noqa: E402
from harness.evh import EventCollector  # noqa: E402
from harness.janus import AllianceKeys, alliance_server  # noqa: E402
from harness.netns import NetnsPair, install_signal_teardown  # noqa: E402
from harness.peer import pin_host_addresses  # noqa: E402

DEFAULT_TIMEOUT_S = 60


def pytest_configure(config):
    # `kill -USR1 <pytest pid>` prints every thread's Python stack (for hangs)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    config.addinivalue_line("markers", "timeout_s(n): per-test asyncio timeout in seconds")


def _kill_running_janus():
    for srv in list(_janus.RUNNING):
        try:
            srv.stop(grace=3)
        except Exception:
            pass


# -- namespaces ---------------------------------------------------------------
@pytest.fixture(scope="session")
def net():
    if os.geteuid() != 0:
        pytest.exit("the integration suite needs root (ip netns); use tests/integration/run.sh",
                    returncode=2)
    pair = NetnsPair()

    def _emergency_cleanup():
        _kill_running_janus()
        pair.teardown()
    install_signal_teardown(_emergency_cleanup)
    atexit.register(_kill_running_janus)        # runs before the netns atexit teardown
    _atexit_cleanups.append(pair.teardown)
    pair.setup()
    pair.enter_client()
    pin_host_addresses(pair.client_ip)
    try:
        yield pair
    finally:
        _kill_running_janus()
        pair.teardown()
        left = pair.leftovers()
        alive = [pid for pid in _janus.STARTED_PIDS if _pid_alive(pid)]
        assert not left, f"left behind: {left}"
        assert not alive, f"janus processes still running: {alive}"


_atexit_cleanups = []          # namespace teardowns, also run by hand below
_interrupted = False


def pytest_keyboard_interrupt(excinfo):
    global _interrupted
    _interrupted = True


def pytest_unconfigure(config):
    # After an interrupted run (Ctrl-C) aiortc/asyncio worker threads can keep
    # the interpreter from exiting. Make sure the cleanup ran (normally the
    # fixture finalizers did it already; both are idempotent), then leave
    # without waiting for those threads. Exit status 2 = pytest's "interrupted".
    if _interrupted:
        _kill_running_janus()
        for fn in _atexit_cleanups:
            fn()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not running; we reap our children in stop()
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


# -- Janus with the alliance plugin --------------------------------------------
@pytest.fixture(scope="module")
def keys():
    return AllianceKeys()


def _start_checked(server):
    server.start()
    return server


def _stop_checked(server, secrets=()):
    # the sessions are gone; let janus finish freeing their handles first
    # (a Janus 1.1.2 shutdown race otherwise, see wait_handles_freed)
    server.wait_handles_freed(5.0)
    log = server.stop()
    problems = []
    if server.exit_problem:
        problems.append(server.exit_problem)
    problems += server.health_problems() if server.proc else []
    problems = [p for p in problems if "not running" not in p]   # it was stopped on purpose
    leaked = sum(1 for s in set(secrets) if s and s in log)
    if leaked:   # never print them: say how many
        problems.append(f"{leaked} credential value(s) (keys/invites/rejoin keys) appear in the janus log")
    if problems:
        pytest.fail("janus shutdown: " + "; ".join(problems) + "\n--- plugin log lines ---\n"
                    + server.plugin_lines() + "\n--- log tail ---\n"
                    + "\n".join(log.splitlines()[-40:]), pytrace=False)


# -- PostgreSQL ------------------------------------------------------------------
_pg_servers = []


@pytest.fixture(scope="session")
def pg_server():
    """The session's private PostgreSQL server (started on first use,
    stopped and removed at the end of the session)."""
    srv = _pg.PgServer()
    _pg_servers.append(srv)
    _atexit_cleanups.append(srv.destroy)
    try:
        srv.start()
    except RuntimeError as e:
        pytest.fail(f"cannot start the test PostgreSQL server: {e}", pytrace=False)
    try:
        yield srv
    finally:
        srv.destroy()


@pytest.fixture(scope="module")
def module_db(request, tmp_path_factory):
    """The store for this module's Janus: None (an SQLite file in its work
    folder) or, with ALLIANCE_TEST_DB=postgresql, a fresh PostgreSQL
    database."""
    if not _pg.wanted():
        return None
    return request.getfixturevalue("pg_server").new_database(request.module.__name__.split(".")[-1])


@pytest.fixture(scope="module")
def janus(net, keys, tmp_path_factory, request, module_db):
    """One Janus per module. A module may set ALLIANCE_CONFIG = {...} to pass
    plugin settings (end_grace_s, events, extra_general, ...) to
    alliance_config(), and ALLIANCE_EVENT_HANDLER = "plugins" (or another
    sampleevh events mask) to have Janus's sample event handler POST its
    events to `janus.collector` (harness/evh.py)."""
    so = _janus.plugin_so_path()
    if not so.exists():
        pytest.fail(f"alliance plugin not built ({so}); run ./autogen.sh && ./configure && make "
                    "or set ALLIANCE_PLUGIN_SO", pytrace=False)
    cfg = dict(getattr(request.module, "ALLIANCE_CONFIG", {}))
    # ALLIANCE_EVENT_HANDLER = "plugins" (a sampleevh events mask): load the
    # stock sample event handler, POSTing to a collector in the client
    # namespace (janus.collector, harness/evh.py)
    evh_mask = getattr(request.module, "ALLIANCE_EVENT_HANDLER", None)
    collector = None
    if evh_mask:
        collector = EventCollector(net.client_ip).start()
        cfg["event_handler"] = {"backend": collector.url,
                                "events": evh_mask if isinstance(evh_mask, str) else "plugins"}
    env = getattr(request.module, "ALLIANCE_JANUS_ENV", None)   # e.g. ALLIANCE_FAILPOINTS
    if module_db is not None and "db_path" not in cfg:
        cfg["db_path"] = module_db           # a module naming its own store keeps it
    srv = alliance_server(net, tmp_path_factory.mktemp("janus"), keys, extra_env=env, **cfg)
    srv.collector = collector
    try:
        _start_checked(srv)
    except BaseException:
        if collector is not None:
            collector.stop()
        raise
    try:
        yield srv
    finally:
        try:
            _stop_checked(srv, secrets=list(keys.therapists.values())
                          + list(keys.supervisors.values()) + list(_api.SEEN_SECRETS))
        finally:
            if collector is not None:
                collector.stop()


# -- async tests -----------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("timeout_s")
    timeout = marker.args[0] if marker else DEFAULT_TIMEOUT_S
    kwargs = {n: pyfuncitem.funcargs[n] for n in pyfuncitem._fixtureinfo.argnames}

    async def _body():
        # a TimeoutError from inside the test (a reply that never came) is
        # its own failure, not the test's overall timeout
        try:
            await pyfuncitem.obj(**kwargs)
        except TimeoutError as e:
            raise AssertionError(f"timed out waiting inside the test: {e}") from e

    async def _run():
        try:
            await asyncio.wait_for(_body(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"test did not finish within {timeout}s") from None

    asyncio.run(_run())
    return True


# -- per-test health check and failure context --------------------------------------
_call_offsets = pytest.StashKey[dict]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    item.stash[_call_offsets] = {id(s): s.log_size() for s in _janus.RUNNING}
    _api.TRACE.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call":
        return
    problems = []
    for srv in list(_janus.RUNNING):
        for p in srv.health_problems():
            problems.append(f"{srv.workdir.name}: {p}")
    if problems and not rep.failed:
        rep.outcome = "failed"
        rep.longrepr = "Janus health check failed after the test:\n  " + "\n  ".join(problems)
    elif problems:
        rep.sections.append(("janus health", "\n".join(problems)))
    if rep.failed:
        offsets = item.stash.get(_call_offsets, {})
        for srv in list(_janus.RUNNING) + _stopped_recently(item):
            lines = srv.plugin_lines(since=offsets.get(id(srv), 0))
            rep.sections.append((f"janus log, plugin/sanitizer lines ({srv.log_path})",
                                 lines or "(none)"))
            rep.sections.append(("janus log tail", srv.log_tail(40)))
        if _api.TRACE:
            rep.sections.append(("Janus API trace (redacted, last 120)",
                                 "\n".join(list(_api.TRACE)[-120:])))


def _stopped_recently(item):
    srv = item.funcargs.get("janus") if hasattr(item, "funcargs") else None
    return [srv] if srv is not None and srv not in _janus.RUNNING else []
