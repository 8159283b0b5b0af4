"""
Author:  Cerebro team
Date:    2026-11-29
Subject: A real HTTP callback receiver for tests: records requests, verifies signatures (v2).
Tagline: A main app in forty lines, failing on cue.

Each POST is verified with :func:`cerebro.callbacks.signing.verify` over the
method, the request target exactly as received, the ``Idempotency-Key`` and
the raw body; an unverified call is answered 401.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cerebro.callbacks import signing


class Receiver:
    """A small main-app stand-in on 127.0.0.1: every POST is recorded with its verdict.

    ``statuses`` is a list of status codes to answer in turn (then 200);
    ``down`` makes it refuse by closing the listening socket (see :meth:`stop`).
    """

    def __init__(self, secret, port=0, statuses=None):
        self.secret = secret
        self.statuses = list(statuses or [])
        self.received = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            """Record the callback and answer."""

            protocol_version = "HTTP/1.1"

            def do_POST(self):
                """Record one callback."""
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = signing.verify(receiver.secret, self.headers.get(signing.TIMESTAMP_HEADER),
                                    body, self.headers.get(signing.SIGNATURE_HEADER),
                                    method=self.command, target=self.path,
                                    idempotency_key=self.headers.get(signing.IDEMPOTENCY_HEADER))
                with receiver.cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if not ok:
                        status = 401
                    receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                              "raw": body, "body": json.loads(body or b"null"),
                                              "verified": ok, "status": status,
                                              "at": time.time()})
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count=1, timeout=30, status=None):
        """Wait until ``count`` callbacks (with ``status`` if given) arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                matching = [r for r in self.received if status is None or r["status"] == status]
                if len(matching) >= count:
                    return list(self.received)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"only {len(matching)} of {count} callbacks in "
                                         f"{timeout}s: {self.received}")
                self.cond.wait(left)

    def stop(self):
        """Stop listening (the port then refuses connections)."""
        self.server.shutdown()
        self.server.server_close()
