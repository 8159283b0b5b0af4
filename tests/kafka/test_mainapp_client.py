"""The main-app client (MainAppClient) against real sockets: pipelined signed calls to the
real receiver, a server closing connections after a few requests (Tomcat's
maxKeepAliveRequests), chunked and Connection: close answers, 4xx final / 5xx+Retry-After
retryable, timeouts, refused connections, and header values HTTP cannot carry."""

import socketserver
import threading
import time

import pytest

from cerebro.callbacks import verify
from cerebro.clients.http import MainAppClient
from conftest import SECRET
from support import free_port


class Scripted(socketserver.ThreadingTCPServer):
    """A raw HTTP/1.1 server: ``answer(n, head, body)`` returns the bytes of the n-th answer
    (or None to stay silent); ``close_after`` closes a connection after that many answers."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer, close_after=None):
        self.answer = answer
        self.close_after = close_after
        self.count = 0
        self.seen = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(socketserver.BaseRequestHandler):
    """Reads pipelined requests (Content-Length bodies) and writes the scripted answers."""

    def handle(self):
        """Serve one connection."""
        server, buffer, served = self.server, b"", 0
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                data = self.request.recv(65536)
                if not data:
                    return
                buffer += data
                continue
            head = buffer[:end].decode("latin-1")
            length = int(next((line.split(":", 1)[1] for line in head.split("\r\n")
                               if line.lower().startswith("content-length:")), "0"))
            while len(buffer) < end + 4 + length:
                data = self.request.recv(65536)
                if not data:
                    return
                buffer += data
            body, buffer = buffer[end + 4:end + 4 + length], buffer[end + 4 + length:]
            with server.lock:
                server.count += 1
                number = server.count
                server.seen.append((head, body))
            out = server.answer(number, head, body)
            if out is None:
                time.sleep(30)
                return
            self.request.sendall(out)
            served += 1
            if server.close_after and served >= server.close_after:
                self.request.close()
                return


def ok(_number, _head, _body):
    """A plain 200 with a Content-Length body."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def calls(url, count, prefix="k"):
    """``count`` distinct calls to ``url``."""
    return [(url + "/cerebro/events/m/f", b'{"n": %d}' % i, f"{prefix}{i}") for i in range(count)]


@pytest.fixture
def client():
    """A small pipelined client; closed after the test."""
    made = []

    def make(**kwargs):
        """A MainAppClient with test defaults."""
        options = {"timeout": 2.0, "connections": 3, "pipeline": 8, **kwargs}
        made.append(MainAppClient(SECRET, **options))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_pipelined_calls_reach_the_receiver_signed_once_each(client, receiver):
    """2,000 calls in one go over 3 connections: every key once, every signature valid."""
    main_app = receiver()
    results = client().post_many(calls(main_app.url, 2000))
    assert all(r.ok and r.status == 200 for r in results)
    stats = main_app.stats(keys=True)
    assert stats["calls"] == 2000 and stats["unique"] == 2000
    assert stats["signature_errors"] == 0


def test_server_closing_after_a_few_requests_loses_nothing(client):
    """A server answering 5 requests per connection then closing (pipelined requests
    behind the 5th are unanswered): they are sent again, every call ends 200."""
    server = Scripted(ok, close_after=5)
    results = client(connections=2, pipeline=16).post_many(calls(server.url, 200))
    assert [r.status for r in results] == [200] * 200
    keys = [line.split(":", 1)[1].strip() for head, _ in server.seen
            for line in head.split("\r\n") if line.startswith("Idempotency-Key")]
    assert set(keys) == {f"k{i}" for i in range(200)}
    server.shutdown()


def test_signature_and_headers_of_each_call(client):
    """Each request carries Host, Content-Length, a valid signature and its own key."""
    server = Scripted(ok)
    client().post_many(calls(server.url, 3))
    for head, body in server.seen:
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
        assert head.startswith("POST /cerebro/events/m/f HTTP/1.1")
        assert headers["Host"] == server.url.split("//")[1]
        assert int(headers["Content-Length"]) == len(body)
        assert verify(SECRET, headers["X-Cerebro-Timestamp"], body,
                      headers["X-Cerebro-Signature"], method="POST",
                      target=head.split(" ")[1], idempotency_key=headers["Idempotency-Key"])
        assert not verify(SECRET, headers["X-Cerebro-Timestamp"], body,
                          headers["X-Cerebro-Signature"], method="POST",
                          target="/cerebro/events/m/other",
                          idempotency_key=headers["Idempotency-Key"])
    server.shutdown()


def test_chunked_interim_and_connection_close_answers(client):
    """Chunked bodies, a 100 Continue before the answer, and Connection: close answers
    (the rest is resent on a new connection) are all read correctly."""
    def answer(number, _head, _body):
        """Alternate the three shapes."""
        if number % 3 == 0:
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        if number % 3 == 1:
            return (b"HTTP/1.1 100 Continue\r\n\r\n"
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"

    server = Scripted(answer)
    results = client().post_many(calls(server.url, 30))
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    assert {r.response_body for r in results} <= {b"abc", b"", b"x"}
    server.shutdown()


def test_statuses_are_classified_like_the_shared_client(client):
    """4xx final, 5xx and 429 retryable with Retry-After, 3xx final (never followed)."""
    statuses = {1: b"400 Bad Request", 2: b"503 Service Unavailable", 3: b"429 Too Many",
                4: b"302 Found", 5: b"408 Request Timeout"}

    def answer(number, _head, _body):
        """The status scripted for this call."""
        return (b"HTTP/1.1 " + statuses[number] + b"\r\nRetry-After: 7\r\n"
                b"Content-Length: 4\r\n\r\nnope")

    server = Scripted(answer)
    results = client(connections=1, pipeline=1).post_many(calls(server.url, 5))
    assert [r.status for r in results] == [400, 503, 429, 302, 408]
    assert [r.retryable for r in results] == [False, True, True, False, True]
    assert results[1].retry_after == 7.0 and results[0].response_body == b"nope"
    server.shutdown()


def test_silence_times_out_and_refusal_fails_fast_both_retryable(client):
    """No answer within the timeout, or nothing listening: retryable failures, no hang."""
    server = Scripted(lambda *_: None)
    started = time.monotonic()
    results = client(timeout=0.5).post_many(calls(server.url, 4))
    assert time.monotonic() - started < 5
    assert all(r.status is None and r.retryable and "Timeout" in r.error for r in results)
    server.shutdown()
    closed = f"http://127.0.0.1:{free_port()}"
    results = client().post_many(calls(closed, 3))
    assert all(r.status is None and r.retryable for r in results)


def test_header_injection_is_a_final_failure(client, receiver):
    """A key with a line break is never sent (final); the other calls of the batch are."""
    main_app = receiver()
    batch = calls(main_app.url, 3)
    batch[1] = (batch[1][0], batch[1][1], "evil\r\nX-Admin: 1")
    results = client().post_many(batch)
    assert [r.ok for r in results] == [True, False, True]
    assert not results[1].retryable and "control characters" in results[1].error
    assert main_app.stats()["calls"] == 2


def test_a_dropped_keep_alive_connection_is_replaced(client):
    """A connection the server closed while idle is not reused: the next batch works."""
    server = Scripted(ok, close_after=1)
    fast = client(connections=1, pipeline=1)
    assert fast.post_many(calls(server.url, 1))[0].ok
    time.sleep(0.2)
    assert all(r.ok for r in fast.post_many(calls(server.url, 3, "again")))
    server.shutdown()


CUT_SHORT = [b"HTTP/1.1 100 Continue\r\n\r\n",
             b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
             b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab"]


@pytest.mark.parametrize("answer", CUT_SHORT)
def test_an_answer_cut_short_is_no_answer(client, answer):
    """A connection closed after only an interim 100, or inside a body with a length or chunks
    of its own, gave no answer: the call is resent, then retryable; never delivered, never a
    final status."""
    server = Scripted(lambda *_: answer, close_after=1)
    [result] = client().post_many(calls(server.url, 1))
    assert result.status is None and result.retryable and not result.ok, result.describe()
    server.shutdown()


def test_a_body_delimited_by_the_end_of_the_connection_is_read_whole(client):
    """No length and not chunked: the body ends with the connection."""
    server = Scripted(lambda *_: b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close_after=1)
    [result] = client().post_many(calls(server.url, 1))
    assert result.ok and result.response_body == b"until the end"
    server.shutdown()
