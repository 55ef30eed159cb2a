"""asyncio Janus API clients: HTTP (POST + long-poll GET) and WebSocket
(subprotocol `janus-protocol`), with one interface:

    session = await connect(server, "ws")          # or "http"
    h = await session.attach("janus.plugin.alliance")
    r = await h.request({"request": "create", ...})  # -> PluginResponse
    r.data["alliance"], r.jsep
    ev = await h.wait_event(alliance="waiting", timeout=5)
    await h.detach(); await session.destroy()

`request()` handles both answer styles: a synchronous plugin answer comes
back in the POST/WS response (`"janus":"success"` with `plugindata`); an
asynchronous one is first acknowledged (`"janus":"ack"`) and then arrives
as an `event` carrying the same transaction. A Janus-level error (the core
refused the message before the plugin saw it) raises `JanusError`.

Every event for a handle is kept in `handle.events`; `wait_event()` returns
the first *unconsumed* matching event (already received or still to come)
and marks it consumed, so tests never race with event arrival.

The clients open their sockets in whatever network namespace the calling
thread is in; the test suite runs inside the client namespace (see
conftest.py).

A redacted trace of the traffic (credentials and SDP bodies elided) is kept
in `TRACE` for failure reports.
"""
from __future__ import annotations

import asyncio
import collections
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import aiohttp
import websockets

EVENT_TYPES = {"event", "webrtcup", "media", "hangup", "slowlink", "detached", "trickle"}
SECRET_FIELDS = {"therapist_key", "supervisor_key", "rejoin_key", "invite", "admin_secret",
                 "apisecret", "token", "therapist_token", "supervisor_token", "client_token"}

TRACE: Deque[str] = collections.deque(maxlen=400)
# every credential-like value seen in the traffic (keys, invites, rejoin
# keys), so a test can check that none of them ended up in the Janus log
SEEN_SECRETS: set = set()


def _collect_secrets(obj: Any) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in SECRET_FIELDS and isinstance(v, str) and len(v) >= 16:
                SEEN_SECRETS.add(v)
            else:
                _collect_secrets(v)
    elif isinstance(obj, list):
        for v in obj:
            _collect_secrets(v)


def _redact(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in SECRET_FIELDS and isinstance(v, str):
                out[k] = f"<{len(v)} chars>"
            elif k == "sdp" and isinstance(v, str):
                out[k] = f"<sdp {len(v)} bytes>"
            else:
                out[k] = _redact(v)
        return out
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


def _trace(direction: str, tag: str, msg: Any) -> None:
    _collect_secrets(msg)
    try:
        text = json.dumps(_redact(msg), separators=(",", ":")) if not isinstance(msg, (bytes, str)) \
            else repr(msg[:200])
    except (TypeError, ValueError):
        text = repr(msg)[:300]
    TRACE.append(f"{direction} {tag} {text[:600]}")


def new_transaction() -> str:
    return secrets.token_hex(8)


class JanusError(Exception):
    """The Janus core answered `{"janus":"error"}`."""

    def __init__(self, response: dict):
        err = response.get("error", {}) or {}
        self.code = err.get("code")
        self.reason = err.get("reason")
        self.response = response
        super().__init__(f"janus error {self.code}: {self.reason}")


@dataclass
class Event:
    raw: dict
    consumed: bool = False

    @property
    def janus(self) -> str:
        return self.raw.get("janus", "")

    @property
    def transaction(self) -> Optional[str]:
        return self.raw.get("transaction")

    @property
    def data(self) -> Optional[dict]:
        pd = self.raw.get("plugindata")
        return pd.get("data") if isinstance(pd, dict) else None

    @property
    def jsep(self) -> Optional[dict]:
        return self.raw.get("jsep")

    @property
    def alliance(self) -> Optional[str]:
        d = self.data
        return d.get("alliance") if isinstance(d, dict) else None


@dataclass
class PluginResponse:
    data: dict
    jsep: Optional[dict]
    raw: dict
    sync: bool

    @property
    def alliance(self) -> Optional[str]:
        return self.data.get("alliance") if isinstance(self.data, dict) else None

    @property
    def error_code(self) -> Optional[int]:
        return self.data.get("error_code") if isinstance(self.data, dict) else None

    def __repr__(self) -> str:  # redacted: safe to appear in assertion messages
        return f"PluginResponse({'sync' if self.sync else 'async'}, data={_redact(self.data)}, " \
               f"jsep={'yes' if self.jsep else 'no'})"


class Handle:
    def __init__(self, session: "Session", handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.events: List[Event] = []
        self._cond = asyncio.Condition()
        self._pending: Dict[str, asyncio.Future] = {}
        self.detached = False

    def __repr__(self) -> str:
        return f"Handle({self.id}, {self.plugin})"

    # -- events ------------------------------------------------------------
    async def _deliver(self, msg: dict) -> None:
        ev = Event(msg)
        tr = ev.transaction
        if ev.janus == "event" and tr in self._pending and not self._pending[tr].done():
            ev.consumed = True
            self._pending[tr].set_result(ev)
        if ev.janus == "detached":
            self.detached = True
        self.events.append(ev)
        async with self._cond:
            self._cond.notify_all()

    async def wait_event(self, predicate: Optional[Callable[[Event], bool]] = None,
                         timeout: float = 5.0, *, alliance: Optional[str] = None,
                         janus: str = "event") -> Event:
        """First unconsumed event matching janus type, `alliance` value and
        predicate, waiting up to `timeout` s. Raises TimeoutError with what
        did arrive."""
        def match(e: Event) -> bool:
            if e.consumed or (janus and e.janus != janus):
                return False
            if alliance is not None and e.alliance != alliance:
                return False
            return predicate(e) if predicate else True

        async def _wait() -> Event:
            async with self._cond:
                while True:
                    for e in self.events:
                        if match(e):
                            e.consumed = True
                            return e
                    await self._cond.wait()
        try:
            return await asyncio.wait_for(_wait(), timeout)
        except asyncio.TimeoutError:
            seen = [(e.janus, _redact(e.data)) for e in self.events if not e.consumed]
            raise TimeoutError(f"handle {self.id}: no {janus} event alliance={alliance!r} "
                               f"within {timeout}s; unconsumed events: {seen}") from None

    def unconsumed(self, alliance: Optional[str] = None) -> List[Event]:
        return [e for e in self.events if not e.consumed and e.janus == "event"
                and (alliance is None or e.alliance == alliance)]

    async def no_event(self, alliance: str, within: float = 0.5) -> bool:
        """True if no unconsumed `alliance` event shows up within `within` s."""
        try:
            await self.wait_event(alliance=alliance, timeout=within)
            return False
        except TimeoutError:
            return True

    # -- requests ----------------------------------------------------------
    async def message(self, body: Any, jsep: Optional[dict] = None,
                      transaction: Optional[str] = None) -> dict:
        """Send a Janus `message`; return the immediate Janus response
        (ack / success / error) without waiting for the async answer."""
        msg: Dict[str, Any] = {"janus": "message", "transaction": transaction or new_transaction(),
                               "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        return await self.session._call(msg, handle_id=self.id)

    async def request(self, body: Any, jsep: Optional[dict] = None,
                      timeout: float = 10.0) -> PluginResponse:
        tr = new_transaction()
        fut = asyncio.get_running_loop().create_future()
        self._pending[tr] = fut
        try:
            resp = await self.message(body, jsep, transaction=tr)
            kind = resp.get("janus")
            if kind == "error":
                raise JanusError(resp)
            if kind == "success":
                pd = resp.get("plugindata") or {}
                return PluginResponse(pd.get("data"), resp.get("jsep"), resp, sync=True)
            if kind != "ack":
                raise AssertionError(f"unexpected Janus response {_redact(resp)}")
            try:
                ev = await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"handle {self.id}: no answer to {_redact(body)} "
                                   f"within {timeout}s (got ack)") from None
            return PluginResponse(ev.data, ev.jsep, ev.raw, sync=False)
        finally:
            self._pending.pop(tr, None)

    async def detach(self) -> dict:
        resp = await self.session._call({"janus": "detach", "transaction": new_transaction()},
                                        handle_id=self.id)
        if resp.get("janus") == "error":
            raise JanusError(resp)
        self.detached = True
        return resp

    async def hangup(self) -> dict:
        return await self.session._call({"janus": "hangup", "transaction": new_transaction()},
                                        handle_id=self.id)


class Session:
    """Transport-independent part; subclasses implement _open/_send_raw/_close."""

    transport = "?"

    def __init__(self, server, token: Optional[str] = None) -> None:
        self.server = server
        # the Janus core's `token` (token_auth on): sent with every request
        self.token = token if token is not None else getattr(server, "api_token", None)
        self.id: Optional[int] = None
        self.handles: Dict[int, Handle] = {}
        self.unrouted: List[dict] = []
        self._pending: Dict[str, asyncio.Future] = {}
        self._tasks: List[asyncio.Task] = []
        self.closed = False

    async def _dispatch(self, msg: dict) -> None:
        _trace("<", f"{self.transport}:{self.id}", msg)
        kind = msg.get("janus")
        tr = msg.get("transaction")
        sender = msg.get("sender")
        if kind in EVENT_TYPES and sender in self.handles:
            await self.handles[sender]._deliver(msg)
            return
        if tr in self._pending and not self._pending[tr].done():
            self._pending[tr].set_result(msg)
            return
        self.unrouted.append(msg)

    async def _call(self, msg: dict, handle_id: Optional[int] = None, timeout: float = 10.0) -> dict:
        raise NotImplementedError

    async def _start(self) -> None:
        resp = await self._call({"janus": "create", "transaction": new_transaction()})
        if resp.get("janus") != "success":
            raise JanusError(resp)
        self.id = resp["data"]["id"]
        self._keepalive_task = asyncio.create_task(self._keepalive_loop())
        self._tasks.append(self._keepalive_task)

    async def _keepalive_loop(self) -> None:
        while not self.closed:
            await asyncio.sleep(15)
            try:
                await self.keepalive()
            except Exception:
                pass

    def abandon(self) -> None:
        """Stop keeping the session alive, without a goodbye and without
        closing the transport: what Janus sees of a tab on a network that
        went away (no detach, no destroy; the session lingers until its
        timeout). Events still arrive on it (a `replaced` can be seen)."""
        task = getattr(self, "_keepalive_task", None)
        if task is not None:
            task.cancel()

    async def keepalive(self) -> dict:
        return await self._call({"janus": "keepalive", "transaction": new_transaction()})

    async def attach(self, plugin: str) -> Handle:
        resp = await self._call({"janus": "attach", "plugin": plugin,
                                 "transaction": new_transaction()})
        if resp.get("janus") != "success":
            raise JanusError(resp)
        h = Handle(self, resp["data"]["id"], plugin)
        self.handles[h.id] = h
        return h

    async def destroy(self) -> None:
        if self.closed:
            return
        try:
            if self.id is not None:
                await self._call({"janus": "destroy", "transaction": new_transaction()}, timeout=5)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the transport without destroying the session."""
        self.closed = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        await self._close_transport()

    async def _close_transport(self) -> None:
        pass

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            await self.destroy()
        except Exception:
            await self.close()


class HttpSession(Session):
    transport = "http"

    def __init__(self, server, token: Optional[str] = None) -> None:
        super().__init__(server, token)
        self.base = server.http_url
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def _call(self, msg: dict, handle_id: Optional[int] = None, timeout: float = 10.0) -> dict:
        url = self.base
        if self.id is not None and msg.get("janus") != "create":
            url += f"/{self.id}"
            if handle_id is not None:
                url += f"/{handle_id}"
        if self.token and "token" not in msg:
            msg = {**msg, "token": self.token}
        _trace(">", f"http:{self.id}/{handle_id}", msg)
        async with self.http.post(url, json=msg, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            resp = await r.json(content_type=None)
        _trace("<", f"http:{self.id}/{handle_id}", resp)
        return resp

    async def post_raw(self, data: bytes, handle_id: Optional[int] = None) -> Tuple[int, str]:
        """POST arbitrary bytes (e.g. malformed JSON); returns (status, body)."""
        url = f"{self.base}/{self.id}" + (f"/{handle_id}" if handle_id is not None else "")
        _trace(">", f"http-raw:{self.id}/{handle_id}", data)
        async with self.http.post(url, data=data, headers={"Content-Type": "application/json"},
                                  timeout=aiohttp.ClientTimeout(total=10)) as r:
            return r.status, await r.text()

    async def _start(self) -> None:
        await super()._start()
        self._tasks.append(asyncio.create_task(self._poll_loop()))

    async def _poll_loop(self) -> None:
        url = f"{self.base}/{self.id}?maxev=10"
        if self.token:
            from urllib.parse import quote
            url += "&token=" + quote(self.token, safe="")
        while not self.closed:
            try:
                async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=70)) as r:
                    body = await r.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.closed:
                    return
                await asyncio.sleep(0.2)
                continue
            msgs = body if isinstance(body, list) else [body]
            for m in msgs:
                if isinstance(m, dict) and m.get("janus") != "keepalive":
                    await self._dispatch(m)
                if isinstance(m, dict) and m.get("janus") == "error" and \
                        (m.get("error") or {}).get("code") == 458:   # no such session
                    self.closed = True
                    return

    async def _close_transport(self) -> None:
        await self.http.close()


class WsSession(Session):
    transport = "ws"

    def __init__(self, server, token: Optional[str] = None) -> None:
        super().__init__(server, token)
        self.url = server.ws_url
        self.ws = None

    async def _open(self) -> None:
        self.ws = await websockets.connect(self.url, subprotocols=["janus-protocol"],
                                           open_timeout=5, ping_interval=None, max_size=2**24)
        self._tasks.append(asyncio.create_task(self._read_loop()))

    async def _read_loop(self) -> None:
        try:
            async for text in self.ws:
                try:
                    msg = json.loads(text)
                except ValueError:
                    self.unrouted.append({"unparseable": text})
                    continue
                await self._dispatch(msg)
        except websockets.ConnectionClosed:
            pass

    async def _call(self, msg: dict, handle_id: Optional[int] = None, timeout: float = 10.0) -> dict:
        msg = dict(msg)
        if self.id is not None and msg.get("janus") != "create":
            msg["session_id"] = self.id
            if handle_id is not None:
                msg["handle_id"] = handle_id
        if self.token and "token" not in msg:
            msg["token"] = self.token
        tr = msg["transaction"]
        fut = asyncio.get_running_loop().create_future()
        self._pending[tr] = fut
        try:
            _trace(">", f"ws:{self.id}/{handle_id}", msg)
            await self.ws.send(json.dumps(msg))
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no Janus response to {msg.get('janus')} within {timeout}s") from None
        finally:
            self._pending.pop(tr, None)

    async def send_raw(self, text: str) -> None:
        _trace(">", f"ws-raw:{self.id}", text)
        await self.ws.send(text)

    async def wait_unrouted(self, predicate: Callable[[dict], bool], timeout: float = 5.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for m in self.unrouted:
                if predicate(m):
                    self.unrouted.remove(m)
                    return m
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no matching unrouted message; have {self.unrouted}")
            await asyncio.sleep(0.05)

    async def _close_transport(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def connect(server, transport: str = "ws", token: Optional[str] = None) -> Session:
    """Open a transport connection and create a Janus session on it.
    token: the Janus core's API token (default: the server's `api_token`,
    set when it runs with token_auth)."""
    if transport == "ws":
        s: Session = WsSession(server, token)
        await s._open()
    elif transport == "http":
        s = HttpSession(server, token)
    else:
        raise ValueError(transport)
    try:
        await s._start()
    except BaseException:
        await s.close()
        raise
    return s
