#!/usr/bin/python3
"""Is there a path from here to HOST:PORT? For the e2e TURN test.

    probe.py serve HOST PORT       # echo every UDP datagram and TCP line (runs
                                   # in the server namespace; launcher.py)
    probe.py try HOST PORT         # prints {"udp": bool, "tcp": bool}: did the
                                   # echo answer (runs in a client namespace)

The relay-only namespace must get no answer by either protocol (nftables
drops all but TURN and signalling), while the ordinary client namespace
gets both — which shows the echo works, so a missing answer means the path
is blocked, not that the server was slow.
"""
import json
import socket
import socketserver
import sys
import threading

TRY_S = 2.0     # one try each; the echo answers in well under a millisecond


class Udp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


class Tcp(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline(64))


def serve(host, port):
    socketserver.ThreadingUDPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    udp = socketserver.ThreadingUDPServer((host, port), Udp)
    tcp = socketserver.ThreadingTCPServer((host, port), Tcp)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    print("ready", flush=True)
    tcp.serve_forever()


def try_udp(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TRY_S)
        try:
            s.sendto(b"probe\n", (host, port))   # EPERM when the output chain drops it
            return s.recvfrom(64)[0] == b"probe\n"
        except OSError:
            return False


def try_tcp(host, port):
    try:
        with socket.create_connection((host, port), timeout=TRY_S) as s:
            s.sendall(b"probe\n")
            return s.recv(64) == b"probe\n"
    except OSError:
        return False


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("serve", "try"):
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[2], int(sys.argv[3])
    if sys.argv[1] == "serve":
        serve(host, port)
        return 0
    print(json.dumps({"udp": try_udp(host, port), "tcp": try_tcp(host, port)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
