"""Loopback servers for the benchmarks.

* `HangingServer`: a health endpoint; healthy (or answering `status`), except that the next `hang`
  requests are accepted, read, and never answered (until `release()`).
* `AwsProxy`: sits in front of a moto_server and adds what real AWS adds: a fixed latency per call
  (`delay_s`), or no answer at all (`hang()`); counts every call by operation.
"""

from __future__ import annotations

import collections
import http.client
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b'{"status": "ok"}'


class HangingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hang_left = 0
        self.status = 200
        self.gate = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/healthz"

    def arm(self, hang: int, status: int = 200) -> None:
        """The next `hang` requests hang; the rest answer `status`."""
        with self.lock:
            self.hang_left = hang
            self.status = status
            self.gate = threading.Event()

    def release(self) -> None:
        self.gate.set()

    def stop(self) -> None:
        self.release()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address):
        pass


class _Handler(BaseHTTPRequestHandler):
    server: HangingServer
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def do_GET(self):
        with self.server.lock:
            hang = self.server.hang_left > 0
            if hang:
                self.server.hang_left -= 1
            gate = self.server.gate
            status = self.server.status
        if hang:
            gate.wait(120)
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        except OSError:
            pass


_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade", "te", "server", "date"}  # not forwarded


class AwsProxy(ThreadingHTTPServer):
    """A loopback endpoint for boto3 that forwards every call to `upstream` (a moto_server) after
    `delay_s`, or never answers while hung. `calls` counts calls by operation name."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, upstream: str, delay_s: float = 0.05):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urllib.parse.urlsplit(upstream).netloc
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.hung = threading.Event()  # set: calls hang until release()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self) -> collections.Counter[str]:
        """The calls counted since the last take(), by operation."""
        with self.lock:
            out, self.calls = self.calls, collections.Counter()
        return out

    def hang(self) -> None:
        self.released = threading.Event()
        self.hung.set()

    def release(self) -> None:
        self.hung.clear()
        self.released.set()

    def stop(self) -> None:
        self.release()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address):
        pass


def _operation(path: str, headers, body: bytes) -> str:
    """The AWS operation of a call: X-Amz-Target (JSON), /operation/<name> (RPCv2 CBOR), or Action= (query)."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "/operation/" in path:
        return path.rstrip("/").rsplit("/", 1)[-1]
    action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action") or urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("Action")
    return action[0] if action else "?"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: AwsProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.calls[_operation(self.path, self.headers, body)] += 1
        if self.server.hung.is_set():
            self.server.released.wait(120)
            self.close_connection = True
            return
        time.sleep(self.server.delay_s)
        conn = http.client.HTTPConnection(self.server.upstream, timeout=30)
        try:
            conn.request(self.command, self.path, body, {k: v for k, v in self.headers.items() if k.lower() not in _HOP})
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward
