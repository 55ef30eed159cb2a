#!/usr/bin/python3
"""Prometheus exporter for Alliance Pulse (janus.plugin.alliance).

Each scrape of /metrics asks the Janus Admin API for the plugin's health
(`message_plugin` with `{"request":"health"}`, docs/api.md "Health") and
answers the same figures in Prometheus's text exposition format 0.0.4.
Nothing is cached; a scrape costs one Admin API request. If the Admin API
does not answer (Janus down, wrong secret, plugin not loaded),
`alliance_up` is 0 and the reason goes to stderr.

Only the Python standard library (Debian's python3); no pip packages.

Usage:
  alliance-exporter.py [--admin-url http://127.0.0.1:7088/admin]
                       [--admin-secret-file FILE]   (else $JANUS_ADMIN_SECRET)
                       [--listen 127.0.0.1:9478] [--timeout 5]
  alliance-exporter.py --once ...   print one exposition to stdout and exit

Keep it on localhost (or behind your Prometheus's network): the figures are
counts only (no codes, keys or visit ids), but the Admin API secret it holds
is not.
"""
import argparse
import http.server
import json
import math
import os
import secrets
import sys
import urllib.error
import urllib.request

PLUGIN = "janus.plugin.alliance"

# (metric, type, help, path in the health answer, scale)
METRICS = [
    ("alliance_visits_open", "gauge", "Visits open on this instance (not yet closed)", ("visits_open",), 1),
    ("alliance_visits_live", "gauge", "Visits whose client was admitted and that have not ended", ("visits_live",), 1),
    ("alliance_visits_waiting", "gauge", "Visits whose client is in the waiting room", ("visits_waiting",), 1),
    ("alliance_participants", "gauge", "Participants seated in open visits (therapists, clients, observers)",
     ("participants",), 1),
    ("alliance_observers", "gauge", "Observers seated in open visits", ("observers",), 1),
    ("alliance_handles", "gauge", "Janus handles attached to the plugin", ("handles",), 1),
    ("alliance_store_queue", "gauge", "Jobs waiting for the store's writer", ("store", "queue"), 1),
    ("alliance_store_analytics_queue", "gauge", "Jobs waiting for the store's analytics lane",
     ("store", "analytics_queue"), 1),
    ("alliance_store_commit_p99_seconds", "gauge",
     "99th percentile of the writer's transaction times over its last 1024 transactions",
     ("store", "commit_ms_p99"), 0.001),
    ("alliance_store_degraded", "gauge", "1 while the store waits for a fault to clear", ("store", "degraded"), 1),
    ("alliance_store_failed", "counter", "Store jobs refused or failed for a fault", ("store", "failed"), 1),
    ("alliance_store_commits", "counter", "Transactions the store's writer ran", ("store", "commits"), 1),
    ("alliance_samples_dropped", "counter", "Quality samples not stored (queue full or write failed)",
     ("samples_dropped",), 1),
    ("alliance_instruments", "gauge", "Instrument definitions loaded", ("instruments",), 1),
    ("alliance_tokens_enabled", "gauge", "1 if Janus signed tokens are accepted in place of keys", ("tokens",), 1),
    ("alliance_uptime_seconds", "gauge", "Seconds since the plugin started", ("uptime_s",), 1),
]


def fetch_health(admin_url, secret, timeout):
    body = {"janus": "message_plugin", "transaction": secrets.token_hex(8), "plugin": PLUGIN,
            "request": {"request": "health"}}
    if secret:
        body["admin_secret"] = secret
    req = urllib.request.Request(admin_url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        answer = json.loads(r.read().decode())
    if answer.get("janus") != "success":
        raise RuntimeError(f"Admin API refused: {answer.get('error', answer)}")
    health = answer.get("response") or {}
    if health.get("alliance") != "health":
        raise RuntimeError(f"not a health answer: {health}")
    return health


def number(value, scale):
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value) * scale


def fmt(v):
    if math.isnan(v):
        return "NaN"
    if v == int(v) and abs(v) < 2 ** 53:
        return str(int(v))
    return repr(v)


def label(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(health):
    """The text exposition of one health answer (None: the scrape failed)."""
    out = ["# HELP alliance_up 1 if the plugin's health was read from the Janus Admin API",
           "# TYPE alliance_up gauge", f"alliance_up {0 if health is None else 1}"]
    if health is None:
        return "\n".join(out) + "\n"
    store = health.get("store") or {}
    out += ["# HELP alliance_info The plugin's version, instance and store backend",
            "# TYPE alliance_info gauge",
            'alliance_info{version="%s",instance="%s",store_backend="%s"} 1' % (
                label(health.get("version", "")), label(health.get("instance_id", "")),
                label(store.get("backend", "")))]
    for name, kind, help_text, path, scale in METRICS:
        v = health
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if v is None and name != "alliance_store_commit_p99_seconds":
            continue                       # an older plugin without this figure
        sample = name + ("_total" if kind == "counter" else "")
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{sample} {fmt(number(v, scale))}"]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admin-url", default="http://127.0.0.1:7088/admin")
    ap.add_argument("--admin-secret-file", help="a file holding Janus's admin_secret (else $JANUS_ADMIN_SECRET)")
    ap.add_argument("--listen", default="127.0.0.1:9478", help="host:port to serve /metrics on")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--once", action="store_true", help="print one exposition and exit (1 if the scrape failed)")
    args = ap.parse_args()
    secret = os.environ.get("JANUS_ADMIN_SECRET", "")
    if args.admin_secret_file:
        with open(args.admin_secret_file) as f:
            secret = f.read().strip()

    def scrape():
        try:
            return fetch_health(args.admin_url, secret, args.timeout)
        except (OSError, ValueError, RuntimeError, urllib.error.URLError) as e:
            print(f"alliance-exporter: {e}", file=sys.stderr, flush=True)
            return None

    if args.once:
        h = scrape()
        sys.stdout.write(exposition(h))
        return 0 if h is not None else 1

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = exposition(scrape()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    host, _, port = args.listen.rpartition(":")
    srv = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    print(f"alliance-exporter: serving http://{host or '127.0.0.1'}:{srv.server_address[1]}/metrics "
          f"from {args.admin_url}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
