"""A throwaway Janus instance for one test module.

`JanusServer` writes a config folder of its own (janus.jcfg, the HTTP and
WebSocket transport configs, any plugin configs), points the plugins/
transports/events/loggers folders at temp folders holding symlinks to just
what the run needs, starts `ip netns exec <server-ns> janus -F <confdir>`
with stdout+stderr captured to a log file, waits for the HTTP API to answer
`{"janus":"info"}` listing the required plugins, and on `stop()` sends
SIGTERM (then SIGKILL after a grace period) and returns the log.
`kill()` is a crash (SIGKILL, no cleanup); `restart()` starts the same
configuration and workdir again (same database), e.g. after a `kill()`.
`start(require_plugins=False)` only waits for the core (for tests of a
plugin that refuses to initialise).

With `event_handler={"backend": url, "events": "plugins"}` the stock
sample event handler (libjanus_sampleevh.so) is loaded and POSTs Janus
events to `url` (see harness/evh.py for a collector), and the core's
`events.broadcast` is on.

`health_problems()` is what the per-test check uses: the process must still
run and the log must not contain sanitizer reports.

Environment:
  ALLIANCE_PLUGIN_SO   the plugin under test (default
                       <repo>/plugin/.libs/libjanus_alliance.so; relative
                       paths are resolved against the repository root)
  ALLIANCE_SANITIZE=1  the plugin was built with ASan+UBSan: preload gcc's
                       libasan/libubsan into janus and make both fatal
  ALLIANCE_JANUS_DEBUG Janus debug_level (default 4)
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .netns import NetnsPair

REPO_ROOT = Path(__file__).resolve().parents[3]
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
TRANSPORTS = ("libjanus_http.so", "libjanus_websockets.so")
SAMPLE_EVH = "libjanus_sampleevh.so"
ALLIANCE_PACKAGE = "janus.plugin.alliance"

HTTP_PORT = 8088
WS_PORT = 8188
ADMIN_PORT = 7088

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "UndefinedBehaviorSanitizer",
                     "LeakSanitizer")

# every janus process this interpreter started (for the end-of-suite check)
STARTED_PIDS: List[int] = []
RUNNING: List["JanusServer"] = []


def plugin_so_path() -> Path:
    p = Path(os.environ.get("ALLIANCE_PLUGIN_SO", "plugin/.libs/libjanus_alliance.so"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def sanitize_enabled() -> bool:
    return os.environ.get("ALLIANCE_SANITIZE", "") not in ("", "0", "no", "false")


def sanitizer_env() -> Dict[str, str]:
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                              text=True, check=True).stdout.strip()
        if not os.path.isabs(path) or not os.path.exists(path):
            raise RuntimeError(f"ALLIANCE_SANITIZE=1 but gcc does not know {name}")
        libs.append(os.path.realpath(path))
    return {
        "LD_PRELOAD": " ".join(libs),
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }


# -- keys -------------------------------------------------------------------
def new_key() -> str:
    """32 random bytes, base64url without padding (43 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class AllianceKeys:
    """Per-run credentials. Only their hashes go into the config file; the
    keys themselves live in memory and are never printed (repr hides them)."""
    therapists: Dict[str, str] = field(default_factory=lambda: {"T-01": new_key(), "T-02": new_key()})
    supervisors: Dict[str, str] = field(default_factory=lambda: {"s01": new_key()})

    def __repr__(self) -> str:  # keep keys out of pytest's assertion output
        return f"AllianceKeys(therapists={list(self.therapists)}, supervisors={list(self.supervisors)})"

    def therapist(self, code: str = "T-01") -> str:
        return self.therapists[code]

    def supervisor(self, name: str = "s01") -> str:
        return self.supervisors[name]


def alliance_config(db_path, keys: AllianceKeys, *, instruments_dir: Optional[Path] = None,
                    end_grace_s: int = 180, events: bool = False, max_visits: int = 100,
                    extra_general: str = "") -> str:
    """db_path: a Path (SQLite), or a harness.pg.PgDb (db_url = its URL)."""
    instruments_dir = instruments_dir or (REPO_ROOT / "conf" / "instruments")
    store_line = (f'    db_url = "{db_path.url}"' if hasattr(db_path, "url")
                  else f'    db_path = "{db_path}"')
    lines = [
        "general: {",
        store_line,
        f'    instruments_dir = "{instruments_dir}"',
        f"    end_grace_s = {int(end_grace_s)}",
        f"    events = {'true' if events else 'false'}",
        f"    max_visits = {int(max_visits)}",
    ]
    if extra_general:
        lines.append("    " + extra_general.strip())
    lines += ["}", "therapists: {"]
    for i, (code, key) in enumerate(keys.therapists.items(), 1):
        lines.append(f'    t{i:02d}: {{ code = "{code}", key_sha256 = "{sha256_hex(key)}" }}')
    lines += ["}", "supervisors: {"]
    for name, key in keys.supervisors.items():
        lines.append(f'    {name}: {{ key_sha256 = "{sha256_hex(key)}" }}')
    lines += ["}", ""]
    return "\n".join(lines)


# -- Janus signed tokens ------------------------------------------------------
def sign_token(secret: str, descriptors: Iterable[str], expiry: Optional[int] = None,
               realm: str = "janus") -> str:
    """A Janus signed token, made as the Janus documentation's sample code
    makes it: "<expiry>,<realm>,<descriptor>,...:" + base64(HMAC-SHA1).
    expiry: seconds since the epoch (default: an hour from now)."""
    import hmac
    if expiry is None:
        expiry = int(time.time()) + 3600
    text = ",".join([str(int(expiry)), realm, *descriptors])
    sig = base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return f"{text}:{sig}"


# -- the server -------------------------------------------------------------
class JanusStartError(RuntimeError):
    pass


class JanusServer:
    def __init__(self, net: NetnsPair, workdir: Path, *, plugin_sos: Iterable[Path],
                 required_plugins: Iterable[str], plugin_configs: Optional[Dict[str, str]] = None,
                 debug_level: Optional[int] = None, sanitize: Optional[bool] = None,
                 session_timeout: int = 60, event_handler: Optional[Dict[str, str]] = None,
                 umask: Optional[int] = None, extra_env: Optional[Dict[str, str]] = None,
                 port_offset: int = 0, token_secret: Optional[str] = None,
                 core_general: str = "") -> None:
        self.net = net
        # more lines for janus.jcfg's general section (bench/load --event-loops);
        # ALLIANCE_JANUS_EVENT_LOOPS=N runs every test's Janus with shared loops
        loops = os.environ.get("ALLIANCE_JANUS_EVENT_LOOPS", "").strip()
        if loops and not core_general:
            if not loops.isdigit() or not 1 <= int(loops) <= 64:
                raise ValueError(f"ALLIANCE_JANUS_EVENT_LOOPS={loops!r}: a number 1..64")
            core_general = f"event_loops = {int(loops)}"
        self.core_general = core_general
        self.workdir = Path(workdir)
        self.plugin_sos = [Path(p) for p in plugin_sos]
        self.required_plugins = list(required_plugins)
        self.plugin_configs = dict(plugin_configs or {})
        self.debug_level = int(debug_level if debug_level is not None
                               else os.environ.get("ALLIANCE_JANUS_DEBUG", "4"))
        self.sanitize = sanitize_enabled() if sanitize is None else sanitize
        self.session_timeout = session_timeout
        self.event_handler = dict(event_handler) if event_handler else None
        self.umask = umask                       # janus's umask (None: inherit ours)
        # more environment for janus (ALLIANCE_FAILPOINTS, ...); LD_PRELOAD is
        # appended after the sanitizer runtimes, which must come first
        self.extra_env = dict(extra_env or {})
        self.db_path: Optional[Path] = None      # set by alliance_server()
        self.collector = None                    # an evh.EventCollector, if a fixture made one
        self.admin_secret = secrets.token_hex(16)
        # token_secret: janus.jcfg gets token_auth = true and this
        # token_auth_secret; every Janus API request must then carry a
        # signed token naming the plugins it attaches to (api.py sends
        # `api_token` with each request unless told otherwise)
        self.token_secret = token_secret
        self.extra_args: List[str] = []          # more janus command-line options
        self.api_token = (sign_token(token_secret, self.required_plugins, int(time.time()) + 86400)
                          if token_secret else None)
        # unique per instance: start() checks that the janus answering on the
        # (fixed) ports is this one and not another instance still running
        self.server_name = f"alliance-it-{secrets.token_hex(4)}"
        self.ip = net.server_ip
        # a second instance next to the first (two instances, one database)
        # takes other ports: port_offset is added to each
        self.http_port, self.ws_port, self.admin_port = (HTTP_PORT + port_offset, WS_PORT + port_offset,
                                                         ADMIN_PORT + port_offset)
        self.http_url = f"http://{self.ip}:{self.http_port}/janus"
        self.ws_url = f"ws://{self.ip}:{self.ws_port}/"
        self.admin_url = f"http://{self.ip}:{self.admin_port}/admin"
        self.confdir = self.workdir / "conf"
        self.log_path = self.workdir / "janus.log"
        self.proc: Optional[subprocess.Popen] = None
        self.info: Optional[dict] = None
        self.exit_problem: Optional[str] = None
        self._checked_offset = 0

    # -- config folder ---------------------------------------------------
    def _link_folder(self, name: str, targets: Iterable[Path]) -> Path:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        for t in targets:
            if not t.exists():
                raise JanusStartError(f"{t} does not exist")
            link = folder / t.name
            if link.is_symlink() and os.path.realpath(link) == str(t.resolve()):
                continue          # restart(): the folder is already there
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(t.resolve())
        return folder

    def _token_lines(self) -> str:
        if not self.token_secret:
            return ""
        return f'    token_auth = true\n    token_auth_secret = "{self.token_secret}"\n'

    def _ice_interfaces(self) -> str:
        """Janus gathers on the veth to the client namespace, and on those
        to the namespaces NetnsPair.add_side() added (a direct path there
        exists unless something blocks it)."""
        return ",".join([self.net.server_if] + [s.server_ifname for s in getattr(self.net, "sides", [])])

    def _core_general_lines(self) -> str:
        return "".join(f"    {ln.strip()}\n" for ln in self.core_general.splitlines() if ln.strip())

    def write_config(self) -> None:
        self.confdir.mkdir(parents=True, exist_ok=True)
        plugins = self._link_folder("plugins", self.plugin_sos)
        transports = self._link_folder("transports", [JANUS_LIB / "transports" / t for t in TRANSPORTS])
        events = self._link_folder("events", [JANUS_LIB / "events" / SAMPLE_EVH]
                                   if self.event_handler else [])
        loggers = self._link_folder("loggers", [])
        (self.confdir / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{self.confdir}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    events_folder = "{events}"
    loggers_folder = "{loggers}"
    debug_level = {self.debug_level}
    debug_timestamps = true
    debug_colors = false
    admin_secret = "{self.admin_secret}"
    session_timeout = {self.session_timeout}
    server_name = "{self.server_name}"
    interface = "{self.ip}"
{self._token_lines()}{self._core_general_lines()}}}
certificates: {{
}}
media: {{
}}
nat: {{
    nice_debug = false
    ice_enforce_list = "{self._ice_interfaces()}"
}}
plugins: {{
}}
transports: {{
}}
loggers: {{
}}
events: {{
    broadcast = {"true" if self.event_handler else "false"}
}}
""")
        if self.event_handler:
            (self.confdir / "janus.eventhandler.sampleevh.jcfg").write_text(f"""general: {{
    enabled = true
    events = "{self.event_handler.get('events', 'plugins')}"
    grouping = {self.event_handler.get('grouping', 'true')}
    json = "plain"
    backend = "{self.event_handler['backend']}"
    max_retransmissions = 3
    retransmissions_backoff = 50
}}
""")
        (self.confdir / "janus.transport.http.jcfg").write_text(f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {self.http_port}
    ip = "{self.ip}"
    https = false
}}
admin: {{
    admin_base_path = "/admin"
    admin_http = true
    admin_port = {self.admin_port}
    admin_ip = "{self.ip}"
    admin_https = false
}}
cors: {{
}}
""")
        (self.confdir / "janus.transport.websockets.jcfg").write_text(f"""general: {{
    json = "plain"
    ws = true
    ws_port = {self.ws_port}
    ws_ip = "{self.ip}"
    wss = false
}}
admin: {{
    admin_ws = false
    admin_wss = false
}}
cors: {{
}}
""")
        for name, text in self.plugin_configs.items():
            (self.confdir / name).write_text(text)

    # -- process -----------------------------------------------------------
    def start(self, timeout: float = 15.0, require_plugins: bool = True) -> "JanusServer":
        """Start janus and wait until `GET /info` answers (listing the
        required plugins unless require_plugins=False)."""
        self.write_config()
        cmd = ["ip", "netns", "exec", self.net.server_ns]
        env_vars = sanitizer_env() if self.sanitize else {}
        for k, v in self.extra_env.items():
            env_vars[k] = (env_vars[k] + " " + v) if k == "LD_PRELOAD" and k in env_vars else v
        if env_vars:
            cmd += ["env"] + [f"{k}={v}" for k, v in env_vars.items()]
        cmd += ["janus", "-F", str(self.confdir), "-C", str(self.confdir / "janus.jcfg"), "-o", *self.extra_args]
        self._start_offset = self.log_size()
        self._log_fh = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir,
                                     start_new_session=True,
                                     umask=-1 if self.umask is None else self.umask)
        STARTED_PIDS.append(self.proc.pid)
        RUNNING.append(self)
        try:
            self._wait_ready(timeout, require_plugins)
        except BaseException:
            self.stop()
            raise
        self._checked_offset = self.log_size()
        return self

    def _wait_ready(self, timeout: float, require_plugins: bool = True) -> None:
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise JanusStartError(f"janus exited with {self.proc.returncode} during start-up\n"
                                      + self.log_tail(80))
            try:
                info = self.http_json("GET", f"{self.http_url}/info", timeout=1.0)
                if info.get("janus") == "server_info":
                    if info.get("server-name") != self.server_name:
                        raise JanusStartError(
                            f"another janus ({info.get('server-name')!r}) answers on {self.http_url}; "
                            "only one instance can run at a time (fixed ports)\n" + self.log_tail(20))
                    missing = [p for p in self.required_plugins if p not in info.get("plugins", {})] \
                        if require_plugins else []
                    if missing:
                        raise JanusStartError(f"janus is up but plugin(s) {missing} not loaded; "
                                              f"loaded: {list(info.get('plugins', {}))}\n"
                                              + self.log_tail(80))
                    transports = info.get("transports", {})
                    if "janus.transport.websockets" not in transports:
                        raise JanusStartError("websockets transport not loaded\n" + self.log_tail(80))
                    self.info = info
                    return
            except (urllib.error.URLError, ConnectionError, OSError, ValueError) as e:
                last_err = e
            time.sleep(0.05)
        raise JanusStartError(f"janus did not answer info within {timeout}s ({last_err})\n"
                              + self.log_tail(80))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_peerconnections_gone(self, timeout: float = 10.0, handle_id: Optional[int] = None) -> bool:
        """Wait until every PeerConnection Janus set up has been torn down
        (its log has as many "WebRTC resources freed" as "Creating ICE
        agent" lines). Debian's Janus 1.1.2 can crash at exit when a
        PeerConnection is still being torn down after its SCTP tables were
        destroyed (janus-gateway #3089, fixed in 1.2.2); stopping only once
        the teardowns are done keeps a test's SIGTERM from meeting that.
        Returns False if some remain (a test that keeps media up on purpose).
        handle_id: only that handle's PeerConnections."""
        deadline = time.monotonic() + timeout
        tag = f"[{handle_id}] " if handle_id is not None else ""
        while True:
            text = self.log_text(getattr(self, "_start_offset", 0))     # this process's lines
            if text.count(tag + "Creating ICE agent") <= text.count(tag + "WebRTC resources freed"):
                return True
            if time.monotonic() > deadline or not self.alive():
                return False
            time.sleep(0.05)

    def handle_loops(self) -> int:
        """How many handle loop threads ("hloop <id>") janus runs: one per
        handle (no static event loops configured), ending only when the
        handle and its PeerConnection are freed."""
        if not self.alive():
            return 0
        n = 0
        try:
            tids = os.listdir(f"/proc/{self.proc.pid}/task")
        except FileNotFoundError:
            return 0
        for tid in tids:
            try:
                with open(f"/proc/{self.proc.pid}/task/{tid}/comm") as f:
                    n += f.read().startswith("hloop")
            except FileNotFoundError:
                pass
        return n

    def wait_handles_freed(self, timeout: float = 5.0) -> bool:
        """Wait until janus has freed every handle (no handle loop thread is
        left), up to `timeout` s; True if it did. Call before a clean stop:
        Janus 1.1.2 destroys the SCTP id table at shutdown while handle loops
        may still be freeing PeerConnections with a data channel, and the
        SCTP association's g_hash_table_remove() on the destroyed table dies
        with SIGFPE (seen as "janus exited with status -8 after SIGTERM" when
        a module's last sessions were destroyed right before the stop)."""
        deadline = time.monotonic() + timeout
        while self.handle_loops():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, grace: float = 10.0, settle: bool = True) -> str:
        """SIGTERM, then SIGKILL after `grace` s. Returns the whole log.
        Sets `exit_problem` when janus had to be killed or exited badly.
        settle: first wait (a bounded while) for PeerConnections being torn
        down and handles being freed to finish (wait_peerconnections_gone,
        wait_handles_freed: Janus 1.1.2's exit crashes)."""
        if self.proc is not None and self.proc.poll() is None:
            if settle:
                self.wait_peerconnections_gone()
                self.wait_handles_freed()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.exit_problem = f"janus did not exit within {grace}s of SIGTERM; killed"
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            else:
                if self.proc.returncode not in (0, -signal.SIGTERM):
                    self.exit_problem = f"janus exited with status {self.proc.returncode} after SIGTERM"
        if self in RUNNING:
            RUNNING.remove(self)
        if getattr(self, "_log_fh", None):
            self._log_fh.close()
            self._log_fh = None
        return self.log_text()

    def kill(self) -> None:
        """A crash: SIGKILL to janus's process group, no shutdown, no
        checkpoint. The process is reaped; the workdir stays."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self in RUNNING:
            RUNNING.remove(self)
        if getattr(self, "_log_fh", None):
            self._log_fh.close()
            self._log_fh = None

    def restart(self, *, hard: bool = True, timeout: float = 15.0,
                require_plugins: bool = True) -> "JanusServer":
        """Start again with the same config folder and workdir (so the same
        database). hard=True: kill() first (if still running); else stop()."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.exit_problem = None
        return self.start(timeout=timeout, require_plugins=require_plugins)

    # -- log -----------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        """The log once it contains `needle` (Janus writes its log from a
        logger thread, so a line can land a moment after the event it
        reports); the log as it is if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if needle in text or time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def plugin_lines(self, since: int = 0, limit: int = 200) -> str:
        """Log lines that look like they come from the plugin under test (or
        a sanitizer), for failure reports."""
        pat = re.compile(r"alliance|AddressSanitizer|runtime error:|UndefinedBehaviorSanitizer|"
                         r"SUMMARY:|^\s+#\d+ 0x", re.I)
        lines = [l for l in self.log_text(since).splitlines() if pat.search(l)]
        return "\n".join(lines[-limit:])

    def health_problems(self, since: Optional[int] = None) -> List[str]:
        """[] if janus is alive and the log (from `since`, default: since the
        previous check) has no sanitizer report."""
        start = self._checked_offset if since is None else since
        text = self.log_text(start)
        self._checked_offset = start + len(text.encode("utf-8", "replace"))
        problems = []
        for m in SANITIZER_MARKERS:
            if m in text:
                problems.append(f"janus log contains {m!r}")
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
            problems.append(f"janus process is not running (exit status {rc})")
        return problems

    # -- HTTP helpers (sync; used for readiness and admin) ---------------------
    @staticmethod
    def http_json(method: str, url: str, body: Optional[dict] = None, timeout: float = 5.0,
                  raw: Optional[bytes] = None) -> dict:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def server_info(self) -> dict:
        return self.http_json("GET", f"{self.http_url}/info")

    def admin(self, path: str, request: str, **extra) -> dict:
        body = {"janus": request, "transaction": secrets.token_hex(6),
                "admin_secret": self.admin_secret, **extra}
        return self.http_json("POST", f"{self.admin_url}{path}", body)

    def list_sessions(self) -> List[int]:
        return self.admin("", "list_sessions").get("sessions", [])

    def list_handles(self, session_id: int) -> List[int]:
        return self.admin(f"/{session_id}", "list_handles").get("handles", [])

    def handle_info(self, session_id: int, handle_id: int) -> dict:
        return self.admin(f"/{session_id}/{handle_id}", "handle_info").get("info", {})

    def message_plugin(self, request: dict, plugin: str = ALLIANCE_PACKAGE) -> dict:
        """Admin API `message_plugin`: the plugin's answer (`response`)."""
        body = {"janus": "message_plugin", "transaction": secrets.token_hex(6),
                "admin_secret": self.admin_secret, "plugin": plugin, "request": request}
        r = self.http_json("POST", self.admin_url, body)
        if r.get("janus") != "success":
            raise RuntimeError(f"message_plugin refused: {r}")
        return r.get("response", {})

    def health(self) -> dict:
        return self.message_plugin({"request": "health"})


def alliance_server(net: NetnsPair, workdir: Path, keys: AllianceKeys, *,
                    db_path=None,
                    event_handler: Optional[Dict[str, str]] = None,
                    extra_env: Optional[Dict[str, str]] = None, port_offset: int = 0,
                    token_secret: Optional[str] = None, **cfg) -> JanusServer:
    """A JanusServer loading only the alliance plugin, configured with `keys`.
    The store is `<workdir>/alliance.sqlite` unless `db_path` says otherwise
    (a Path, or a harness.pg.PgDb for PostgreSQL); `server.db_path` either
    way, and harness.store reads both. `event_handler` as for JanusServer."""
    so = plugin_so_path()
    if db_path is None:
        db = Path(workdir) / "alliance.sqlite"
    else:
        db = db_path if hasattr(db_path, "url") else Path(db_path)
    text = alliance_config(db, keys, **cfg)
    srv = JanusServer(net, workdir, plugin_sos=[so], required_plugins=[ALLIANCE_PACKAGE],
                      plugin_configs={f"{ALLIANCE_PACKAGE}.jcfg": text},
                      event_handler=event_handler, extra_env=extra_env, port_offset=port_offset,
                      token_secret=token_secret)
    srv.db_path = db
    return srv
