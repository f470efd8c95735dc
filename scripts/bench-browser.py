#!/usr/bin/env python3
"""Opens examples/basic/bench.html (built by scripts/demo.sh into target/demo) in headless
Chromium through ChromeDriver's WebDriver HTTP API (no client library needed) and prints the
timings the page measured. Usage: scripts/bench-browser.py [runs]"""
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from functools import partial

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "demo")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if not os.path.exists(os.path.join(ROOT, "bench.html")):
        sys.exit("target/demo is missing: run scripts/demo.sh once (it builds the release SDK)")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=ROOT)
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver_port = free_port()
    driver = subprocess.Popen([os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"), f"--port={driver_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{driver_port}"
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        results = []
        for _ in range(runs):
            caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ARGS}}}}
            session = call(base, "POST", "/session", caps)["sessionId"]
            try:
                call(base, "POST", f"/session/{session}/url", {"url": f"http://127.0.0.1:{server.server_port}/bench.html"})
                for _ in range(600):
                    r = call(base, "POST", f"/session/{session}/execute/sync", {"script": "return window.benchResult || null", "args": []})
                    if r:
                        break
                    time.sleep(0.2)
                if not r or "error" in r:
                    sys.exit(f"bench page failed: {r}")
                results.append(r)
            finally:
                call(base, "DELETE", f"/session/{session}")
        keys = [k for k in results[0] if k != "userAgent"]
        summary = {k: statistics.median(r[k] for r in results) for k in keys}
        print(json.dumps({"browser": results[0]["userAgent"], "page_loads": runs, "median_of_page_medians": summary}, indent=2))
    finally:
        driver.terminate()
        server.shutdown()


if __name__ == "__main__":
    main()
