"""The API's own HTTP/1.1 connection (cerebro.api.wire) under a small Tornado application, over
real sockets: what Tornado's HTTP1Connection promised still holds (order of pipelined answers,
100-continue, HTTP/1.0 keep-alive, chunked bodies both ways, HEAD, bare 400s for malformed
requests, an answer sent before the body closes the connection), and the headers it builds are
Tornado's own."""

import asyncio
import socket
import threading
import time

import pytest
from tornado import httputil, web

from cerebro.api.limits import BoundedHTTPServer
from cerebro.api.wire import request_headers


class Echo(web.RequestHandler):
    """POST: the method, the body's length and the client address; GET after a pause."""

    def post(self):
        """Answer at once."""
        self.write({"method": self.request.method, "size": len(self.request.body),
                    "ip": self.request.remote_ip, "protocol": self.request.protocol})

    async def get(self):
        """Answer a little later (so a request pipelined behind it is parsed first)."""
        await asyncio.sleep(float(self.get_argument("wait", "0.05")))
        self.write({"path": self.request.uri})


class Big(web.RequestHandler):
    """A 100 kB answer."""

    def get(self):
        """The answer."""
        self.write(b"b" * 100_000)


@web.stream_request_body
class Streamed(web.RequestHandler):
    """A handler reading its body as it comes, after an asynchronous prepare."""

    async def prepare(self):
        """Wait a little before the body is read."""
        self.size = 0
        await asyncio.sleep(0.01)

    def data_received(self, chunk):
        """Count the body."""
        self.size += len(chunk)

    def post(self):
        """How much came."""
        self.write({"size": self.size})


class AtOnce(httputil.HTTPServerConnectionDelegate):
    """An application answering every request inside ``finish``, at once."""

    def start_request(self, server_conn, request_conn):
        """A delegate answering its request when it is complete."""
        outer = self

        class Answer(httputil.HTTPMessageDelegate):
            """Answers 200 with the request's path."""

            def headers_received(self, start_line, headers):
                """Keep the path."""
                self.path = start_line.path

            def finish(self):
                """Answer now (8 MB for /big)."""
                body = b"B" * 8_000_000 if self.path == "/big" else self.path.encode()
                request_conn.write_headers(
                    httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
                    httputil.HTTPHeaders({"Content-Length": str(len(body))}), body)
                request_conn.finish()
                outer.answered += 1

        return Answer()

    answered = 0


class Stream(web.RequestHandler):
    """An answer written in two flushed pieces, with no Content-Length: chunked."""

    async def get(self):
        """Two pieces."""
        self.write("first,")
        await self.flush()
        self.write("second")


def _serve(app, **limits):
    """Serve ``app`` on a fresh port in a background event loop; returns (port, stop)."""
    loop = asyncio.new_event_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = BoundedHTTPServer(app, **limits)
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve([sock]))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)

    def stop():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    stop.server, stop.loop = server, loop  # for a test to look inside
    return sock.getsockname()[1], stop


@pytest.fixture(scope="module")
def port():
    """The test application's port."""
    app = web.Application([(r"/echo", Echo), (r"/stream", Stream), (r"/big", Big),
                           (r"/streamed", Streamed)])
    port, stop = _serve(app, max_connections=16, max_header_size=4096, max_body_size=1000)
    yield port
    stop()


def _exchange(port, data, timeout=5):
    """Send ``data`` on a new connection; everything received until it closes (or a pause)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return _exchange_rest(sock)


def _post(path, body=b"{}", version="1.1", extra=""):
    """A POST request."""
    return (f"POST {path} HTTP/{version}\r\nHost: x\r\n{extra}Content-Length: {len(body)}"
            "\r\n\r\n").encode() + body


def test_pipelined_requests_are_answered_in_the_order_they_came(port):
    """A slow GET then two POSTs sent at once: three answers, in order, then close."""
    data = (b"GET /echo?wait=0.1 HTTP/1.1\r\nHost: x\r\n\r\n" + _post("/echo", b"12")
            + _post("/echo", b"1234", extra="Connection: close\r\n"))
    answer = _exchange(port, data)
    assert answer.count(b"HTTP/1.1 200 OK") == 3, answer
    first, second, third = (answer.index(part) for part in
                            (b'"path": "/echo?wait=0.1"', b'"size": 2', b'"size": 4'))
    assert first < second < third
    assert answer.rstrip().endswith(b'"protocol": "http"}')


@pytest.mark.parametrize("path", ["/echo", "/streamed"])
def test_expect_100_continue_is_answered_before_the_body(port, path):
    """The client waits for 100 Continue before it sends its body: at once for a plain
    handler, once an asynchronous prepare is done for one that streams its body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     "Content-Length: 3\r\n\r\n".encode())
        assert sock.recv(100) == b"HTTP/1.1 100 (Continue)\r\n\r\n"
        sock.sendall(b"abc")
        assert b'"size": 3' in sock.recv(65536)


def test_trailing_blanks_in_header_values_are_not_part_of_them(port):
    """'Connection: close ' closes, 'Host: x ' is a host, as Tornado read them."""
    answer = _exchange(port, b"POST /echo HTTP/1.1\r\nHost: x \t\r\nConnection: close \r\n"
                             b"Content-Length: 2\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in answer


def test_a_client_that_does_not_read_its_answers_holds_one_not_all():
    """Three hundred pipelined requests for 100 kB each, never read: the server stops taking
    requests while the client's answers back up, so what it holds for that connection stays
    near one answer, not 30 MB; the idle timeout then drops the connection."""
    app = web.Application([(r"/big", Big)])
    slow_reader, stop = _serve(app, idle_timeout=0.5)

    def buffered():
        """What the server holds, unsent, for its connections (read on its loop)."""
        async def sizes():
            return [wire.transport.get_write_buffer_size() for wire in stop.server.connections]
        return asyncio.run_coroutine_threadsafe(sizes(), stop.loop).result(5)

    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", slow_reader))
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 300)
            time.sleep(0.3)
            held = buffered()
            assert held and max(held) < 1_000_000, held
            time.sleep(1.5)
            assert buffered() == []  # dropped by the idle timeout, unsent answers and all
    finally:
        stop()


def test_pipelined_requests_answered_at_once_do_not_recurse():
    """Four hundred pipelined requests, each answered inside its delegate's finish: every
    one answered, in order (the queue is served by a loop, not one call per request)."""
    app = AtOnce()
    quick, stop = _serve(app)
    try:
        data = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(400))
        answer = _exchange(quick, data + b"GET /last HTTP/1.1\r\nHost: x\r\n"
                                         b"Connection: close\r\n\r\n", timeout=10)
    finally:
        stop()
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in answer.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"/%d" % i for i in range(400)] + [b"/last"]


def test_reading_resumes_once_a_backed_up_answer_drains():
    """An 8 MB answer backs the connection up while the next request's head and half its body
    are in: once the client takes the answer, the rest of the body is read and answered."""
    quick, stop = _serve(AtOnce())
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", quick))
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nPOST /after HTTP/1.1\r\n"
                         b"Host: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n12345")
            time.sleep(0.2)
            received = b""
            while len(received) < 8_000_000:
                received += sock.recv(1 << 20)
            sock.sendall(b"67890")
            received += _exchange_rest(sock)
    finally:
        stop()
    assert received.endswith(b"\r\n\r\n/after"), received[-200:]


def test_requests_queued_behind_one_that_cannot_be_made_are_not_answered(port):
    """A slow request, then one without Host, then a good one: the slow one's answer, the
    400, and the connection closes; the third is never answered (its answer would be taken
    for the second's)."""
    answer = _exchange(port, b"GET /echo?wait=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /echo?n=2 HTTP/1.1\r\n\r\n"
                             b"GET /echo?wait=0&n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.count(b"HTTP/1.1 ") == 2 and b"n=3" not in answer
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def test_a_large_body_and_the_start_of_the_next_head_are_not_a_large_head():
    """A 20 kB body and, in the same send, the first bytes of the next request's head: the
    head limit (4 kB here) counts heads only."""
    app = web.Application([(r"/echo", Echo)])
    roomy, stop = _serve(app, max_header_size=4096, max_body_size=1_000_000)
    try:
        with socket.create_connection(("127.0.0.1", roomy), timeout=5) as sock:
            sock.sendall(_post("/echo", b"x" * 20_000) + b"GET /echo?wait=0 HTTP/1.1\r\nHo")
            first = sock.recv(65536)
            sock.sendall(b"st: x\r\nConnection: close\r\n\r\n")
            rest = _exchange_rest(sock)
    finally:
        stop()
    assert first.startswith(b"HTTP/1.1 200 ") and b'"size": 20000' in first
    assert rest.startswith(b"HTTP/1.1 200 ") and b'"path": "/echo?wait=0"' in rest


def _exchange_rest(sock):
    """What a connection still sends until it closes."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return received


def test_a_head_over_the_limit_behind_a_slow_request_waits_for_its_answer(port):
    """The 431 comes after the answer to the request before it, not in its place."""
    answer = _exchange(port, b"GET /echo?wait=0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
                             b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000
                             + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"path": "/echo?wait=0.2"' in answer
    assert b"HTTP/1.1 431 " in answer and answer.index(b"431") > answer.index(b'"path"')


def test_http_1_0_keeps_alive_only_when_asked(port):
    """An HTTP/1.0 request asking for keep-alive is told so and kept; one that does not is
    answered and closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(_post("/echo", version="1.0", extra="Connection: keep-alive\r\n"))
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection: Keep-Alive" in answer
    answer = _exchange(port, _post("/echo", version="1.0"))
    assert answer.startswith(b"HTTP/1.1 200 ") and b"Connection:" not in answer


def test_a_chunked_request_body_is_read_and_a_flushed_answer_is_chunked(port):
    """Chunks in, chunks out."""
    answer = _exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"Connection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert b'"size": 5' in answer
    answer = _exchange(port, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in answer
    assert answer.endswith(b"6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n")


def test_head_gets_no_body(port):
    """HEAD on a route without it: 405 with its length, and no body after the head."""
    answer = _exchange(port, b"HEAD /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405 ") and answer.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("request_bytes", [
    b"GET /echo HTTP/2.0\r\nHost: x\r\n\r\n",
    b"BREW /echo HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nHost: a b\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /echo?" + b"x&" * 1500 + b" HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_a_malformed_request_is_a_bare_400_and_the_connection_closes(port, request_bytes):
    """Bad versions, unknown methods, smuggling-prone framing, a body over the backstop, a
    broken header line, no Host or a bad one, a query string over Tornado's limit: 400,
    nothing else, closed."""
    assert _exchange(port, request_bytes) == b"HTTP/1.1 400 Bad Request\r\n\r\n"


def test_requests_before_a_malformed_one_are_answered_first(port):
    """Two good requests, then garbage: two answers, then the 400, then close."""
    answer = _exchange(port, _post("/echo") + _post("/echo") + b"NOT HTTP\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.endswith(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def test_a_head_over_the_limit_is_431(port):
    """A head over max_header_size (4 KiB here) is refused, not buffered for ever."""
    answer = _exchange(port, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_an_upgrade_offer_is_ignored_as_tornado_did(port):
    """No route upgrades, so Upgrade is ignored (RFC 9110 7.8): a POST offering h2c, with a
    body (what Java's HTTP client sends), is read and answered as HTTP/1.1, and the connection
    goes on with the next request; a GET offering websocket likewise."""
    h2c = ("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
           "HTTP2-Settings: AAEAAEAAAAIAAAAAAAMAAAAAAAQBAAAAAAUAAEAA\r\n")
    answer = _exchange(port, _post("/echo", b'{"a": 1}', extra=h2c)
                       + b"POST /echo HTTP/1.1\r\nHost: x\r\n" + h2c.encode()
                       + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                       + b"GET /echo?wait=0 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       + b"Upgrade: websocket\r\n\r\n"
                       + _post("/echo", b"123", extra="Connection: close\r\n"))
    assert answer.count(b"HTTP/1.1 200 OK") == 4, answer
    assert [answer.index(part) for part in (b'"size": 8', b'"size": 2', b'"path"',
                                            b'"size": 3')] == sorted(
        answer.index(part) for part in (b'"size": 8', b'"size": 2', b'"path"', b'"size": 3'))


def test_xheaders_apply_per_request_and_not_to_the_next(port):
    """With xheaders, X-Real-Ip names the client for its own request only."""
    app = web.Application([(r"/echo", Echo)])
    proxied, stop = _serve(app, xheaders=True)
    try:
        answer = _exchange(proxied, _post("/echo", extra="X-Real-Ip: 10.1.2.3\r\n"
                                          "X-Forwarded-Proto: https\r\n")
                           + _post("/echo", extra="Connection: close\r\n"))
    finally:
        stop()
    assert b'"ip": "10.1.2.3", "protocol": "https"' in answer
    assert b'"ip": "127.0.0.1", "protocol": "http"' in answer


def test_the_connection_cap_answers_503_and_serves_the_open_ones():
    """Over max_connections a new connection gets the JSON 503 and is closed."""
    app = web.Application([(r"/echo", Echo)])
    capped, stop = _serve(app, max_connections=1)
    try:
        with socket.create_connection(("127.0.0.1", capped), timeout=5) as first:
            first.sendall(_post("/echo"))
            assert first.recv(65536).startswith(b"HTTP/1.1 200 ")
            refused = _exchange(capped, _post("/echo"))
            first.sendall(_post("/echo"))
            assert first.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        stop()
    assert refused.startswith(b"HTTP/1.1 503 ") and b"CEREBRO_MAX_CONNECTIONS=1" in refused


@pytest.mark.parametrize("fields", [
    [(b"Host", b"x"), (b"content-TYPE", b"application/json"), (b"X-API-Key", b"k")],
    [(b"X-Thing", b"a"), (b"x-thing", b"b"), (b"X-Empty", b""), (b"x-latin", b"caf\xe9")],
    []])
def test_request_headers_are_what_tornado_builds(fields):
    """The wire's header builder against HTTPHeaders.add: same names, values, order and
    lookups (it writes Tornado's internals, so a Tornado upgrade that changes them fails
    here)."""
    built = request_headers(fields)
    expected = httputil.HTTPHeaders()
    for name, value in fields:
        expected.add(name.decode("latin1"), value.decode("latin1"))
    assert list(built.get_all()) == list(expected.get_all())
    assert dict(built) == dict(expected)
    for name in [name.decode() for name, _ in fields] + ["X-Absent", "content-length"]:
        for key in (name, name.upper(), name.lower()):
            assert built.get(key) == expected.get(key)
            assert built.get(key, "dflt") == expected.get(key, "dflt")
            assert built.get_list(key) == expected.get_list(key)
            assert (key in built) == (key in expected)
            if key in expected:
                assert built[key] == expected[key]
            else:
                with pytest.raises(KeyError):
                    built[key]
    assert 3 not in built and 3 not in expected
    for changed in (built, expected):
        changed.add("X-New", "1")
        changed.add("x-new", "2")
        changed["X-Set"] = "s"
        if "x-thing" in changed:
            del changed["X-THING"]
    assert dict(built) == dict(expected) and built["x-new"] == expected["x-new"] == "1,2"
    assert built.get("x-thing") is None and built["x-set"] == "s"


@pytest.mark.parametrize("target", [
    "/v1/jobs/noop", "/v1/jobs/noop?x=1&y=2", "/v1/tasks/abc", "/v1/modules", "/v1/modules/x/drift",
    "/v1/modules/x", "/v1/a/b/c", "/v1/9a/b", "/v1/a%62/b", "/v1/_a/b_1", "/healthz",
    "/v1/jobs/noop/", "/v1//b", "/v2/a/b", "/v1/a/b#frag"])
def test_the_endpoint_lane_takes_what_the_application_routes_to_the_endpoint_route(target):
    """The server's lane and Tornado's route table decide alike, path by path."""
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    from cerebro.api.app import make_app
    from cerebro.api.endpoint_route import EndpointLane, EndpointRouter

    start_line = RequestStartLine("POST", target, "HTTP/1.1")
    request = HTTPServerRequest(start_line=start_line, headers=HTTPHeaders({"Host": "x"}))
    routed = next(((rule.target, match) for rule in make_app(None).wildcard_router.rules
                   if (match := rule.matcher.match(request)) is not None), (None, None))

    class Exchange:
        """What the lane reads of an exchange."""
        wire = None
        context = None
        headers = HTTPHeaders({"Host": "x"})

    Exchange.start_line = start_line
    taken = EndpointLane(None, None)(Exchange())
    assert (taken is not None) == isinstance(routed[0], EndpointRouter)
    if taken is not None:  # the same module and function as the route's own groups
        assert taken.path_args == tuple(arg.decode() for arg in routed[1]["path_args"])


@pytest.mark.parametrize("target,version,host", [
    ("/v1/jobs/noop", "HTTP/1.1", "127.0.0.1:8000"),
    ("/v1/jobs/noop?x=1&x=2&y=", "HTTP/1.1", "a.b"),
    ("/v1/jobs/noop", "HTTP/1.0", None), ("/v1/jobs/noop", "HTTP/1.1", "[::1]:80")])
def test_an_endpoint_calls_request_is_the_one_tornado_makes(target, version, host):
    """LaneRequest, the first time a Host is seen (Tornado makes it) and every time after (made
    the quick way), has exactly the attributes of Tornado's own HTTPServerRequest."""
    from types import SimpleNamespace

    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    from cerebro.api.endpoint_route import LaneRequest

    LaneRequest._checked.clear()
    headers = HTTPHeaders({"Host": host} if host else {})
    exchange = SimpleNamespace(start_line=RequestStartLine("POST", target, version),
                               headers=headers, wire=object(),
                               context=SimpleNamespace(remote_ip="10.0.0.7", protocol="https"))
    tornados = HTTPServerRequest(connection=exchange, server_connection=exchange.wire,
                                 start_line=exchange.start_line, headers=headers)
    for _ in range(2):  # first Tornado's checks, then (without a query) the quick way
        ours = LaneRequest(exchange)
        mine, theirs = vars(ours), vars(tornados)
        assert set(mine) == set(theirs)
        assert {k: v for k, v in mine.items() if k != "_start_time"} == \
            {k: v for k, v in theirs.items() if k != "_start_time"}
        assert abs(ours._start_time - tornados._start_time) < 5


@pytest.mark.parametrize("host", ["a,b", "bad host", "x/y"])
def test_a_host_tornado_refuses_is_refused_every_time(host):
    """A Host that Tornado refuses (400) is never remembered as checked: each request with it
    is refused again."""
    from types import SimpleNamespace

    from tornado.httputil import HTTPHeaders, HTTPInputError, RequestStartLine

    from cerebro.api.endpoint_route import LaneRequest

    exchange = SimpleNamespace(start_line=RequestStartLine("POST", "/v1/jobs/noop", "HTTP/1.1"),
                               headers=HTTPHeaders({"Host": host}), wire=None, context=None)
    for _ in range(2):
        with pytest.raises(HTTPInputError):
            LaneRequest(exchange)
    assert host not in LaneRequest._checked
