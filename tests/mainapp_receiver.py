"""A stand-in for the main app: a Tornado server counting the consumer's calls by idempotency key.

Run as a process: ``python tests/mainapp_receiver.py --port P [--secret S] [--fail-first N]``.
``POST /<any path>`` records the call (401 when ``--secret`` is given and the
signature is wrong; 503 for the first ``--fail-first`` calls); ``GET /stats``
answers ``{"calls", "unique", "duplicates", "by_status", "signature_errors"}``,
and with ``?keys=1`` also ``"keys": {key: [count, status, path]}``.
"""

import argparse
import collections

import orjson
import tornado.ioloop
import tornado.web


class State:
    """What the receiver saw."""

    def __init__(self, secret, fail_first):
        self.secret = secret
        self.fail_first = fail_first
        self.calls = 0
        self.refused = 0
        self.signature_errors = 0
        self.keys = {}
        self.by_status = collections.Counter()


class Receive(tornado.web.RequestHandler):
    """Record one main-app call."""

    def initialize(self, state):
        """Keep the shared state."""
        self.state = state

    def post(self, path):
        """Count the call under its Idempotency-Key."""
        state = self.state
        if state.refused < state.fail_first:
            state.refused += 1
            self.set_status(503)
            return self.finish(b"try later")
        if state.secret:
            from cerebro.callbacks import verify
            headers = self.request.headers
            if not verify(state.secret, headers.get("X-Cerebro-Timestamp", ""), self.request.body,
                          headers.get("X-Cerebro-Signature", "")):
                state.signature_errors += 1
                self.set_status(401)
                return self.finish(b"bad signature")
        key = self.request.headers.get("Idempotency-Key", "")
        status = orjson.loads(self.request.body).get("status")
        state.calls += 1
        state.by_status[status] += 1
        entry = state.keys.get(key)
        if entry is None:
            state.keys[key] = [1, status, "/" + path]
        else:
            entry[0] += 1
        self.set_status(200)
        self.finish(b'{"ok":true}')


class Stats(tornado.web.RequestHandler):
    """Report what was received."""

    def initialize(self, state):
        """Keep the shared state."""
        self.state = state

    def get(self):
        """Counts, and every key with ``?keys=1``."""
        state = self.state
        body = {"calls": state.calls, "unique": len(state.keys),
                "duplicates": state.calls - len(state.keys), "by_status": dict(state.by_status),
                "signature_errors": state.signature_errors, "refused": state.refused}
        if self.get_argument("keys", ""):
            body["keys"] = state.keys
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps(body))


def main():
    """Parse options and serve forever."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default="")
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    state = State(args.secret, args.fail_first)
    app = tornado.web.Application([(r"/stats", Stats, {"state": state}),
                                   (r"/(.*)", Receive, {"state": state})])
    app.listen(args.port, address="127.0.0.1", xheaders=False)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
