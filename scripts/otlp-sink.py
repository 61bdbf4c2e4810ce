#!/usr/bin/env python3
"""A minimal OTLP/HTTP receiver for benchmarks: accepts POST /v1/traces, reads and counts the
bodies, answers 200 with an empty ExportTraceServiceResponse. Prints its counts on SIGUSR1
and at exit.

    scripts/otlp-sink.py PORT
"""
import http.server
import signal
import sys
import threading

lock = threading.Lock()
counts = {"exports": 0, "bytes": 0}


def report(*_):
    with lock:
        print(f"{counts['exports']} exports, {counts['bytes']} bytes", flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        ok = self.path == "/v1/traces"
        if ok:
            with lock:
                counts["exports"] += 1
                counts["bytes"] += n
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


signal.signal(signal.SIGUSR1, report)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
try:
    server.serve_forever()
finally:
    report()
