#!/usr/bin/python3
"""Tiny static file server for the local run of Alliance Pulse.

Serves web-client/ plus a few aliases (Debian's janus.js and webrtc-adapter,
a generated config.json) so the browser finds everything on one origin.
For development only: production serves web-client/ behind nginx.

Usage: serve-web.py --dir web-client --port 8080 [--bind 0.0.0.0]
                    [--alias /janus.js=/usr/share/javascript/janus-gateway/janus.js ...]
"""
import argparse
import functools
import http.server
import os
import sys

JS = "text/javascript; charset=utf-8"


class Handler(http.server.SimpleHTTPRequestHandler):
    aliases = {}

    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map)
    extensions_map.update({
        ".js": JS, ".mjs": JS, ".json": "application/json",
        ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
    })

    def translate_path(self, path):
        bare = path.split("?", 1)[0].split("#", 1)[0]
        if bare in self.aliases:
            return self.aliases[bare]
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def list_directory(self, path):  # no directory listings
        self.send_error(404, "Not found")
        return None

    def log_message(self, fmt, *args):
        sys.stderr.write("web: %s %s\n" % (self.address_string(), fmt % args))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--alias", action="append", default=[],
                    help="URLPATH=FILE, served instead of a file under --dir")
    a = ap.parse_args()
    aliases = {}
    for spec in a.alias:
        url, _, target = spec.partition("=")
        if not url.startswith("/") or not target:
            ap.error("bad --alias %r (want /path=FILE)" % spec)
        if os.path.exists(target):
            aliases[url] = os.path.abspath(target)
    Handler.aliases = aliases
    handler = functools.partial(Handler, directory=os.path.abspath(a.dir))
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    with http.server.ThreadingHTTPServer((a.bind, a.port), handler) as srv:
        srv.daemon_threads = True
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
