"""Two network namespaces joined by a veth pair, plus a way to move the
calling thread into one of them.

ICE does not work over loopback (libnice and aiortc both skip it), so Janus
runs in the *server* namespace and the test clients in the *client*
namespace; the two talk over a veth pair with addresses from 198.18.0.0/15
(the benchmarking range), chosen per run.

`add_side()` adds a further namespace with a veth pair of its own to the
server namespace (the e2e TURN test puts a browser there that may reach
only the TURN server).

Names include the pid and a random suffix so parallel runs never collide.
`NetnsPair.teardown()` is idempotent and is also registered with `atexit`,
so the namespaces go away on failure, on KeyboardInterrupt and on SIGTERM
(see `install_signal_teardown`).
"""
from __future__ import annotations

import atexit
import ctypes
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Callable, List, Optional

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

BASE_NET = ipaddress.ip_network("198.18.0.0/15")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def list_netns() -> List[str]:
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


class Side:
    """A further namespace joined to the server namespace by its own veth
    pair and /30; a route sends its traffic for server_ip (the address
    Janus and its transports bind) over that link."""

    def __init__(self, ns: str, ifname: str, server_ifname: str, ip: str, server_side_ip: str) -> None:
        self.ns, self.ifname, self.server_ifname = ns, ifname, server_ifname
        self.ip, self.server_side_ip = ip, server_side_ip


class NetnsPair:
    """server_ns <-> client_ns over veth (server_if, client_if)."""

    def __init__(self, prefix: str = "ap") -> None:
        pid = os.getpid()
        tag = f"{pid:x}{secrets.token_hex(2)}"          # <= 10 hex chars
        self.server_ns = f"{prefix}j-{tag}"
        self.client_ns = f"{prefix}c-{tag}"
        self.server_if = f"{prefix}j{tag}"[:15]         # IFNAMSIZ - 1
        self.client_if = f"{prefix}c{tag}"[:15]
        # one /30 out of 198.18.0.0/15 per run
        n_subnets = BASE_NET.num_addresses // 4
        base = int(BASE_NET.network_address) + 4 * secrets.randbelow(n_subnets)
        self.server_ip = str(ipaddress.ip_address(base + 1))
        self.client_ip = str(ipaddress.ip_address(base + 2))
        self._prefix, self._tag = prefix, tag
        self._subnets = {base}
        self.sides: List[Side] = []
        self._created = False
        self._torn_down = False
        self._orig_ns_fd: Optional[int] = None
        self._entered: Optional[str] = None

    # -- life -------------------------------------------------------------
    def setup(self) -> "NetnsPair":
        atexit.register(self.teardown)
        self._created = True
        try:
            for ns in (self.server_ns, self.client_ns):
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            self._veth((self.server_ns, self.server_if, self.server_ip), (self.client_ns, self.client_if, self.client_ip))
        except BaseException:
            self.teardown()
            raise
        return self

    def _veth(self, *ends) -> None:
        """A veth pair between two namespaces: ends are (ns, ifname, ip)
        with a /30 each, up and with carrier."""
        (ns_a, if_a, _), (ns_b, if_b, _) = ends
        _ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        for ns, ifname, ip in ends:
            _ip("-n", ns, "addr", "add", f"{ip}/30", "dev", ifname)
            _ip("-n", ns, "link", "set", ifname, "up")
        self._wait_carrier([(ns, ifname) for ns, ifname, _ in ends])

    def _wait_carrier(self, links, timeout: float = 3.0) -> None:
        """Both veth ends operationally up (LOWER_UP) before anyone gathers
        ICE candidates or picks a local address."""
        deadline = time.monotonic() + timeout
        for ns, ifname in links:
            while "LOWER_UP" not in _ip("-n", ns, "-o", "link", "show", "dev", ifname).stdout:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ifname} in {ns} did not come up")
                time.sleep(0.02)

    def add_side(self, letter: str) -> Side:
        """One more namespace (`<prefix><letter>-<tag>`) joined to the server
        namespace; torn down with the pair. Call after setup()."""
        assert self._created and not self._torn_down and len(letter) == 1
        n_subnets = BASE_NET.num_addresses // 4
        while True:
            base = int(BASE_NET.network_address) + 4 * secrets.randbelow(n_subnets)
            if base not in self._subnets:
                break
        self._subnets.add(base)
        side = Side(f"{self._prefix}{letter}-{self._tag}", f"{self._prefix}{letter}{self._tag}"[:15],
                    f"{self._prefix}{letter}s{self._tag}"[:15],
                    str(ipaddress.ip_address(base + 2)), str(ipaddress.ip_address(base + 1)))
        self.sides.append(side)
        _ip("netns", "add", side.ns)
        _ip("-n", side.ns, "link", "set", "lo", "up")
        self._veth((self.server_ns, side.server_ifname, side.server_side_ip), (side.ns, side.ifname, side.ip))
        _ip("-n", side.ns, "route", "add", f"{self.server_ip}/32", "via", side.server_side_ip)
        return side

    def __enter__(self) -> "NetnsPair":
        return self.setup()

    def __exit__(self, *exc) -> None:
        self.teardown()

    def enter_client(self) -> None:
        """Move the calling thread (pytest's main thread) into the client
        namespace. Sockets created afterwards, and threads/processes spawned
        afterwards, live there. Undo with `leave()`."""
        self.enter(self.client_ns)

    def enter(self, ns: str) -> None:
        if self._orig_ns_fd is None:
            self._orig_ns_fd = os.open(f"/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        self._entered = ns

    def leave(self) -> None:
        if self._orig_ns_fd is not None:
            _setns(self._orig_ns_fd)
            os.close(self._orig_ns_fd)
            self._orig_ns_fd = None
            self._entered = None

    def pids(self, ns: str) -> List[int]:
        out = _ip("netns", "pids", ns, check=False).stdout
        return [int(p) for p in out.split()]

    def teardown(self) -> None:
        """Kill anything left in our namespaces, delete them. Idempotent."""
        if self._torn_down or not self._created:
            return
        self._torn_down = True
        try:
            self.leave()
        except OSError:
            pass
        for ns in [self.server_ns, self.client_ns] + [s.ns for s in self.sides]:
            if ns in list_netns():
                for pid in self.pids(ns):
                    if pid != os.getpid():
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                _ip("netns", "del", ns, check=False)

    def leftovers(self) -> List[str]:
        """What of ours still exists (empty list == clean)."""
        mine = [self.server_ns, self.client_ns] + [s.ns for s in self.sides]
        left = [ns for ns in list_netns() if ns in mine]
        for ifname in [self.server_if, self.client_if] + [s.ifname for s in self.sides]:
            if _ip("link", "show", ifname, check=False).returncode == 0:
                left.append(f"link {ifname}")
        return left


def install_signal_teardown(cleanup: Callable[[], None]) -> None:
    """On SIGTERM/SIGHUP: run `cleanup` (stop janus, delete the namespaces)
    right in the handler and exit with 128+signum. Raising
    KeyboardInterrupt instead is not reliable here: it can land inside
    asyncio/aiortc internals and be delayed or swallowed. (SIGINT / Ctrl-C
    keeps pytest's own KeyboardInterrupt handling; fixture finalizers and
    atexit do the cleanup then.)"""
    def _handler(signum, frame):
        try:
            cleanup()
        finally:
            sys.stderr.write(f"\nintegration harness: signal {signum}, cleaned up, exiting\n")
            sys.stderr.flush()
            os._exit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _handler)
