"""
Author:  Cerebro team
Date:    2026-11-29
Subject: A stand-in for the main app: a small asyncio HTTP/1.1 server counting calls by key.
Tagline: Counts every knock, checks every seal, never the slowest in the room.

Fast enough (~20 microseconds a request, pipelined) never to be the bottleneck
of the consumer's benchmark. Signatures are checked inline (scheme v2 of
``cerebro.callbacks.signing``: HMAC-SHA256 over ``cerebro-v2``, timestamp,
method, request target, Idempotency-Key and body, joined by line feeds).

Run as a process: ``python tests/mainapp_receiver.py --port P [--secret S] [--fail-first N]``.
``POST /<any path>`` records the call (401 when ``--secret`` is given and the
signature is wrong; 503 for the first ``--fail-first`` calls); ``GET /stats``
answers ``{"calls", "unique", "duplicates", "by_status", "signature_errors", "refused"}``,
and with ``?keys=1`` also ``"keys": {key: [count, status, path]}`` and ``"versions":
{key: model_version}`` (the first call's result's ``model_version``, or null). Connections
are kept alive (HTTP/1.1, ``Content-Length`` bodies), as the consumer's pool expects.
"""

import argparse
import asyncio
import collections
import hashlib
import hmac
import time

import orjson

TOLERANCE = 300


class State:
    """What the receiver saw."""

    def __init__(self, secret, fail_first):
        self.secret = secret.encode()
        self.fail_first = fail_first
        self.calls = 0
        self.refused = 0
        self.signature_errors = 0
        self.keys = {}
        self.versions = {}
        self.by_status = collections.Counter()

    def stats(self, keys):
        """The counters as JSON bytes."""
        body = {"calls": self.calls, "unique": len(self.keys),
                "duplicates": self.calls - len(self.keys), "by_status": dict(self.by_status),
                "signature_errors": self.signature_errors, "refused": self.refused}
        if keys:
            body["keys"] = self.keys
            body["versions"] = self.versions
        return orjson.dumps(body)

    def signed(self, method, target, headers, body):
        """True when X-Cerebro-Signature is ``v2=`` HMAC of the call (see the module docstring)
        and the timestamp is within five minutes."""
        stamp = headers.get(b"x-cerebro-timestamp", b"")
        scheme, _, given = headers.get(b"x-cerebro-signature", b"").partition(b"=")
        key = headers.get(b"idempotency-key", b"")
        if scheme != b"v2" or not key or not stamp.isdigit() \
                or abs(time.time() - int(stamp)) > TOLERANCE:
            return False
        signed = b"\n".join((b"cerebro-v2", stamp, method, target, key, body))
        expected = hmac.new(self.secret, signed, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(expected, given)

    def post(self, target, headers, body):
        """Handle one POST to ``target`` (raw bytes, as on the request line); returns
        (status, body)."""
        if self.refused < self.fail_first:
            self.refused += 1
            return 503, b"try later"
        if self.secret and not self.signed(b"POST", target, headers, body):
            self.signature_errors += 1
            return 401, b"bad signature"
        path = target.partition(b"?")[0].decode("latin-1")
        key = headers.get(b"idempotency-key", b"").decode("latin-1")
        sent = orjson.loads(body)
        status = str(sent.get("status"))
        result = sent.get("result")
        version = result.get("model_version") if isinstance(result, dict) else None
        self.calls += 1
        self.by_status[status] += 1
        entry = self.keys.get(key)
        if entry is None:
            self.keys[key] = [1, status, path]
            self.versions[key] = version
        else:
            entry[0] += 1
        return 200, b'{"ok":true}'


REASONS = {200: b"OK", 401: b"Unauthorized", 404: b"Not Found", 503: b"Service Unavailable"}


class Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: parses (pipelined) requests with Content-Length
    bodies and answers all the requests of one read with one write."""

    def __init__(self, state):
        self.state = state
        self.buffer = bytearray()
        self.transport = None

    def connection_made(self, transport):
        """Keep the transport."""
        self.transport = transport

    def data_received(self, data):
        """Answer every complete request in the buffer, in one write."""
        buffer = self.buffer
        buffer += data
        pos, out, close = 0, [], False
        while True:
            end = buffer.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            head = bytes(buffer[pos:end]).split(b"\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if len(buffer) < end + 4 + length:
                break
            body = bytes(buffer[end + 4:end + 4 + length])
            pos = end + 4 + length
            method, target = head[0].split(b" ")[:2]
            out.append(self.respond(method, target, headers, body))
            if headers.get(b"connection", b"").lower() == b"close":
                close = True
                break
        if pos:
            del buffer[:pos]
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()

    def respond(self, method, target, headers, body):
        """Route one request; returns the bytes of its response."""
        path, _, query = target.partition(b"?")
        if method == b"GET" and path == b"/stats":
            status, out = 200, self.state.stats(b"keys=1" in query)
        elif method == b"POST":
            status, out = self.state.post(target, headers, body)
        else:
            status, out = 404, b"not found"
        return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (status, REASONS[status], len(out)) + out)


async def serve(port, state):
    """Listen on 127.0.0.1:port until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(state), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main():
    """Parse options and serve forever."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default="")
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, State(args.secret, args.fail_first)))


if __name__ == "__main__":
    main()
