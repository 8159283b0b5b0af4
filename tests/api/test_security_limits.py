"""Clients nobody has authenticated cannot exhaust the API: bodies over the limit are refused
before they are read on every route, slow and silent connections are closed, and open
connections are capped while the server goes on answering. Each case runs in seconds."""

import socket
import time

import pytest

LIMITS = {"CEREBRO_MODULES_PACKAGE": "fixture_modules", "CEREBRO_MODULES": "echo",
          "CEREBRO_IDLE_TIMEOUT": "1", "CEREBRO_BODY_TIMEOUT": "1",
          "CEREBRO_MAX_CONNECTIONS": "8"}
HUGE = 95 * 1024 * 1024


@pytest.fixture
def server(server_factory):
    """A server with short timeouts and a small connection cap."""
    return server_factory(LIMITS)


def _connect(server):
    """A raw TCP connection to the server."""
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _answer(sock):
    """Everything the server sends until it closes the connection (or 5 s pass)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def _head(method, path, extra=""):
    """A request head announcing a 95 MB body."""
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {HUGE}\r\n{extra}\r\n").encode()


def _rss_kb(pid):
    """Resident memory of ``pid`` in kB."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1])


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/healthz", b"413"), ("GET", "/readyz", b"413"), ("GET", "/v1/tasks/abc", b"413"),
    ("POST", "/healthz", b"405"), ("PUT", "/v1/modules", b"405"),
    ("POST", "/no/such/path", b"404"), ("POST", "/v1/echo/say", b"413")])
def test_a_huge_body_is_refused_before_it_is_read(server, method, path, status):
    """Every route answers at once from the headers and closes: the body is never read."""
    with _connect(server) as sock:
        sock.sendall(_head(method, path))
        started = time.monotonic()
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b'"error"' in answer and b"Traceback" not in answer
    assert time.monotonic() - started < 1.0


def test_a_chunked_body_over_the_limit_is_cut_off(server):
    """A body sent in chunks with no length announced is refused once it passes the limit."""
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/echo/say HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        try:
            for _ in range(40):  # 2.5 MB, over the 1 MB default
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_many_huge_bodies_do_not_grow_memory(server):
    """Twenty connections each sending 3 MiB of a declared 95 MB body to routes that take
    none (and to an endpoint) leave the API's memory where it was."""
    before = _rss_kb(server.proc.pid)
    socks = []
    for i in range(20):
        sock = _connect(server)
        sock.sendall(_head("GET", "/healthz" if i % 2 else "/v1/echo/say"))
        try:
            sock.sendall(b"x" * (3 * 1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass
        socks.append(sock)
    time.sleep(0.3)
    grown = _rss_kb(server.proc.pid) - before
    for sock in socks:
        sock.close()
    assert grown < 10 * 1024, f"RSS grew by {grown} kB"
    assert server.get("/healthz")[0] == 200


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
                                  b"POST /v1/echo/say HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                  b"application/json\r\nContent-Length: 100\r\n\r\n{\"te"])
def test_silent_half_headed_and_trickling_clients_are_closed(server, sent):
    """No request, half a request head, or a body that stops coming: closed after the
    configured timeout (1 s here), not held open for ever."""
    with _connect(server) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        _answer(sock)
        took = time.monotonic() - started
    assert 0.8 < took < 3.0, took


@pytest.mark.parametrize("first", [b"", b"POST /v1/echo/say HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                   b"application/json\r\nContent-Length: 13\r\n\r\n"
                                   b"{\"text\": \"a\"}"])
def test_a_body_still_trickling_in_at_the_timeout_is_cut(server, first):
    """The body timeout bounds the whole body, not the gap between its bytes: a body sent a
    byte every 0.2 s is cut about 1 s (the timeout here) after its head, on a fresh
    connection or after an answered request on the same one."""
    with _connect(server) as sock:
        if first:
            sock.sendall(first)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"POST /v1/echo/say HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 100\r\n\r\n")
        started, cut = time.monotonic(), None
        while time.monotonic() - started < 4 and cut is None:
            try:
                sock.sendall(b" ")
                sock.settimeout(0.2)
                if sock.recv(65536) == b"":
                    cut = time.monotonic() - started
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                cut = time.monotonic() - started
    assert cut is not None and 0.8 < cut < 2.0, cut


@pytest.mark.parametrize("first", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"])
def test_a_head_still_trickling_in_at_the_timeout_is_cut(server, first):
    """The idle timeout bounds the whole request head, not the gap between its bytes: a head
    sent a byte every 0.2 s is cut about 1 s (the timeout here) after its first byte, on a
    fresh connection or after an answered request on the same one."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100
    with _connect(server) as sock:
        if first:
            sock.sendall(first)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started, cut = time.monotonic(), None
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(0.2)
                if sock.recv(65536) == b"":
                    cut = time.monotonic() - started
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                cut = time.monotonic() - started
                break
    assert cut is not None and 0.8 < cut < 2.0, cut


def test_a_keep_alive_connection_idle_after_a_request_is_closed(server):
    """After its answer, a kept-alive connection waits for the next head: closed once idle
    for the timeout (1 s here)."""
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = _answer(sock)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1") == 1
    assert 0.8 < took < 3.0, took


def test_a_request_still_being_answered_is_never_timed_out(server_factory):
    """The timeouts bound the wait for a client's head and body, not the answer: a call
    running longer than both (2.5 s against 1 s) is answered, and the connection then serves
    the next request."""
    slow = server_factory({**LIMITS, "CEREBRO_MODULES": "slow"})
    with _connect(slow) as sock:
        sock.settimeout(10)
        body = b'{"seconds": 2.5}'
        request = (b"POST /v1/slow/wait HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                   b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        sock.sendall(request)
        data = b""
        while b"slept" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed before the answer: {data!r}"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_at_the_connection_cap_new_ones_get_503_and_open_ones_are_served(server_factory):
    """Over CEREBRO_MAX_CONNECTIONS, a new connection gets a JSON 503 at once and is closed,
    while the connections already open are still answered."""
    server = server_factory(dict(LIMITS, CEREBRO_IDLE_TIMEOUT="30"))
    held, refused = [], None
    try:
        for _ in range(12):  # each one answered, then kept alive, idle
            sock = _connect(server)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = sock.recv(65536)
            if not answer.startswith(b"HTTP/1.1 200"):
                refused = answer + _answer(sock)
                sock.close()
                break
            held.append(sock)
        assert refused is not None and refused.startswith(b"HTTP/1.1 503"), refused
        assert b"CEREBRO_MAX_CONNECTIONS" in refused and 6 <= len(held) <= 8
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and server.get("/healthz")[0] != 200:
        time.sleep(0.1)
    assert server.get("/healthz")[0] == 200


def test_an_overlong_request_id_is_replaced(server):
    """X-Request-Id travels into logs and callbacks: a 10 kB one is replaced by our own."""
    code, headers, _ = server.post("/v1/echo/say", {"text": "a"}, {"X-Request-Id": "r" * 10000})
    assert code == 200 and len(headers["X-Request-Id"]) < 64
    code, headers, _ = server.post("/v1/echo/say", {"text": "a"}, {"X-Request-Id": "mine-1"})
    assert headers["X-Request-Id"] == "mine-1"


def test_the_server_answers_others_while_slow_clients_wait(server):
    """While slow clients hold connections, another client is answered at once."""
    slow = [_connect(server) for _ in range(4)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    try:
        started = time.monotonic()
        assert server.get("/healthz")[0] == 200
        assert time.monotonic() - started < 0.5
    finally:
        for sock in slow:
            sock.close()


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_body_that_is_not_declared_json_is_415(server, content_type):
    """A browser's cross-site "simple request" (text/plain, a form, or no type) cannot trigger
    work: an endpoint takes only a body declared JSON."""
    headers = {"Content-Type": content_type} if content_type else {}
    with _connect(server) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /v1/echo/say HTTP/1.1\r\nHost: x\r\n{head}Content-Length: 13\r\n"
                     f"Connection: close\r\n\r\n{{\"text\": \"a\"}}".encode())
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 415"), answer[:100]
    assert b"unsupported_media_type" in answer


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/vnd.api+json"])
def test_json_in_its_spellings_is_taken(server, content_type):
    """application/json with parameters or in any case, and application/*+json, are JSON."""
    assert server.post("/v1/echo/say", {"text": "a"}, {"Content-Type": content_type})[0] == 200
