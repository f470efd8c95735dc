#!/usr/bin/env python3
"""A scriptable front for the real collector, for the browser delivery tests.

Each test uses a channel of its own, /c/NAME/… (browser tests run concurrently):
POST /c/NAME/script       body "500,429": the next report POSTs get these statuses, then forwarding.
POST /c/NAME/v1/reports   answered from the script, else forwarded to the collector.
GET  /c/NAME/log          every report POST seen: [{"status", "contentType", "body"}].

Usage: flaky-collector.py PORT UPSTREAM_BASE_URL
"""

import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
scripts: dict[str, list[int]] = {}
logs: dict[str, list[dict]] = {}


def channel(path: str):
    """`/c/NAME/rest?query` → (NAME, `/rest?query`), or (None, path)."""
    parts = path.split("/", 3)
    if len(parts) == 4 and parts[1] == "c" and parts[2]:
        return parts[2], "/" + parts[3]
    return None, path


class Handler(BaseHTTPRequestHandler):
    upstream = ""

    def cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "content-type, x-foresight-key")

    def answer(self, status: int, body: bytes, content_type="application/json", extra=()):
        self.send_response(status)
        self.cors()
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_OPTIONS(self):
        self.send_response(204)
        self.cors()
        self.end_headers()

    def do_GET(self):
        name, rest = channel(self.path)
        if name and rest == "/log":
            with lock:
                self.answer(200, json.dumps(logs.get(name, [])).encode())
        else:
            self.answer(404, b'{"error":"not found"}')

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        name, rest = channel(self.path)
        if name and rest == "/script":
            with lock:
                scripts[name] = [int(s) for s in body.decode().split(",") if s.strip()]
                logs[name] = []
            self.answer(200, b"{}")
            return
        if not name or not rest.startswith("/v1/reports"):
            self.answer(404, b'{"error":"not found"}')
            return
        content_type = self.headers.get("Content-Type", "")
        with lock:
            script = scripts.setdefault(name, [])
            scripted = script.pop(0) if script else None
        if scripted is not None:
            status, reply, extra = scripted, json.dumps({"error": f"scripted {scripted}"}).encode(), []
            if scripted == 429:
                extra = [("Retry-After", "1")]
        else:
            request = urllib.request.Request(self.upstream + rest, data=body, method="POST", headers={"Content-Type": content_type})
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    status, reply = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, reply = e.code, e.read()
            extra = []
        with lock:
            logs.setdefault(name, []).append({"status": status, "contentType": content_type, "body": body.decode(errors="replace")})
        self.answer(status, reply, extra=extra)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    Handler.upstream = sys.argv[2].rstrip("/")
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
