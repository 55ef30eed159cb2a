"""A small HTTP server that collects what Janus's stock sample event
handler (libjanus_sampleevh.so) POSTs.

    col = EventCollector(net.client_ip).start()     # aiohttp, own thread + loop
    srv = alliance_server(..., event_handler={"backend": col.url, "events": "plugins"})
    ...
    ev = await col.wait_plugin_event(lambda d: d.get("event") == "answer", timeout=5)
    col.stop()

* It runs in a thread of its own with its own asyncio loop, so it lives as
  long as the Janus it serves (a module), across the per-test loops. The
  thread is started from the pytest main thread, which conftest moved into
  the client namespace, so it listens there (threads inherit the creating
  thread's network namespace); sampleevh in the server namespace reaches it
  over the veth.
* sampleevh sends either one JSON object per POST or, with `grouping`, a
  JSON array of them: both are flattened into `events`, in arrival order.
  A body that is not JSON is kept in `bad` (tests may assert it is empty)
  and still answered 200, so sampleevh does not retry it.
* `plugin_events(package)` picks the plugin events (Janus type 64) of one
  plugin and returns their `event.data` objects, with the envelope's
  session_id/handle_id added under `_session_id`/`_handle_id`.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from aiohttp import web

PLUGIN_EVENT_TYPE = 64


class EventCollector:
    def __init__(self, host: str, port: int = 0, path: str = "/evh") -> None:
        self.host = host
        self.port = port
        self.path = path
        self.events: List[Dict[str, Any]] = []
        self.bad: List[bytes] = []
        self.posts = 0
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    # -- server --------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            with self._lock:
                self.bad.append(body[:2000])
            return web.Response(text="ok")
        items = obj if isinstance(obj, list) else [obj]
        with self._lock:
            self.posts += 1
            for it in items:
                if isinstance(it, dict):
                    self.events.append(it)
                else:
                    self.bad.append(json.dumps(it).encode()[:2000])
        return web.Response(text="ok")

    async def _serve(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]     # the port the kernel chose

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as e:          # reported by start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self, timeout: float = 5.0) -> "EventCollector":
        self._thread = threading.Thread(target=self._run, name="evh-collector", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("event collector did not start")
        if self._error:
            raise RuntimeError(f"event collector failed to start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # -- reading --------------------------------------------------------------
    def snapshot(self) -> List[Dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def plugin_events(self, package: str = "janus.plugin.alliance") -> List[Dict[str, Any]]:
        out = []
        for e in self.snapshot():
            if e.get("type") != PLUGIN_EVENT_TYPE:
                continue
            ev = e.get("event") or {}
            if ev.get("plugin") != package or not isinstance(ev.get("data"), dict):
                continue
            d = dict(ev["data"])
            d["_session_id"] = e.get("session_id")
            d["_handle_id"] = e.get("handle_id")
            out.append(d)
        return out

    async def wait_plugin_event(self, predicate: Callable[[Dict[str, Any]], bool],
                                timeout: float = 5.0,
                                package: str = "janus.plugin.alliance") -> Dict[str, Any]:
        """The first plugin event (its data) matching predicate, waiting up to
        timeout s (polls; the collector runs in another thread)."""
        deadline = time.monotonic() + timeout
        while True:
            for d in self.plugin_events(package):
                if predicate(d):
                    return d
            if time.monotonic() > deadline:
                kinds = [d.get("event") for d in self.plugin_events(package)]
                raise AssertionError(f"no matching plugin event within {timeout}s; "
                                     f"plugin events so far: {kinds[-40:]}")
            await asyncio.sleep(0.05)
