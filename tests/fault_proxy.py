"""A small HTTP proxy in front of the S3 server that answers 503 (or stalls first) on every Nth request: the
transient faults object storage gives at scale, made deterministic so a test can count them."""
from __future__ import annotations

import http.client
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, fail_every: int, stall_s: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urlparse(upstream)
        self.fail_every, self.stall_s = fail_every, stall_s
        self.requests = self.faults = self.stalls = 0
        self.lock = threading.Lock()

    def next_fault(self) -> str | None:
        """'fail' on every Nth request, 'stall' on the one after it, else None."""
        with self.lock:
            self.requests += 1
            if self.requests % self.fail_every == 0:
                self.faults += 1
                return "fail"
            if self.requests % self.fail_every == 1 and self.requests > 1:
                self.stalls += 1
                return "stall"
            return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: the test counts
        pass

    def _forward(self):

        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        body = self._dechunked_body() if chunked else self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fault = self.server.next_fault()
        if fault == "fail":
            payload = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                       b"<Message>Please reduce your request rate.</Message></Error>")
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if fault == "stall":
            time.sleep(self.server.stall_s)
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=60)
        # Expect: 100-continue was answered here already; the body goes upstream in one piece
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "expect", "transfer-encoding",
                                                                              "content-length")}
        headers["Content-Length"] = str(len(body))
        headers["Host"] = self.headers.get("Host", "")  # the signature covers the host the client spoke to
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            upstream.putheader(key, value)
        upstream.endheaders(body)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():  # a HEAD's Content-Length is the object's: kept as it came
            if key.lower() not in ("transfer-encoding", "connection") and \
                    (key.lower() != "content-length" or self.command == "HEAD"):
                self.send_header(key, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    def _dechunked_body(self) -> bytes:
        """A chunked request body without its HTTP framing, forwarded with a Content-Length (what is inside,
        AWS's own signed chunks, goes on untouched)."""
        body = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # HTTP trailers
                return body
            body += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


@contextmanager
def fault_proxy(upstream: str, fail_every: int = 10, stall_s: float = 0.5):
    """``(endpoint, proxy)``: the proxy's URL, and the proxy (its counters) while the block runs."""
    proxy = FaultProxy(upstream, fail_every, stall_s)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
