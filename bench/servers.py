"""Minimal loopback HTTP server for the benchmarks: healthy, except that the next `hang` requests
are accepted, read, and never answered (until `release()`)."""

from __future__ import annotations

import threading
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
        self.gate = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/healthz"

    def arm(self, hang: int) -> None:
        """The next `hang` requests hang; the rest answer 200."""
        with self.lock:
            self.hang_left = hang
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
        if hang:
            gate.wait(120)
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        except OSError:
            pass
