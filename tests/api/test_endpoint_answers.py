"""The endpoint route's answers on the wire (it is served without a RequestHandler, so what a
handler gave for free is checked here): the standard headers, keep-alive and pipelining,
HEAD without a body, a client that leaves before its answer, the bug path's 500."""

import json
import socket
import time

import pytest

FIXTURES = {"CEREBRO_MODULES_PACKAGE": "fixture_modules", "CEREBRO_MODULES": "echo,boom,slow"}
SAY = b'{"text": "a", "times": 2, "ratio": 0.5}'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module's tests."""
    from support import CerebroServer
    tmp = tmp_path_factory.mktemp("answers")
    server = CerebroServer(dict(FIXTURES, CEREBRO_DATA_VOLUME=tmp / "volume",
                                SHERLOCK_DIR=tmp / "sherlock"), log_path=tmp / "serve.log")
    yield server.start(ready=True)
    server.stop()


def _post(path, body, extra=""):
    """A POST request with a JSON body."""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _read_answer(sock):
    """One answer: (status line, headers as a list of (name, value), body). Not a byte more
    is taken from the socket: the answers to pipelined requests may arrive in one read."""
    while True:
        data = sock.recv(65536, socket.MSG_PEEK)
        if not data:
            raise ConnectionError("the server closed the connection")
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            lines = data[:end].decode().split("\r\n")
            headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
            total = end + 4 + int(dict(headers)["Content-Length"])
            if len(data) >= total:
                break
        time.sleep(0.005)  # the rest is on its way
    answer = b""
    while len(answer) < total:
        answer += sock.recv(total - len(answer))
    return lines[0], headers, answer[end + 4:]


def _connect(server):
    """A raw connection to the server."""
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_an_answer_has_the_standard_headers_and_the_connection_stays_open(server):
    with _connect(server) as sock:
        for _ in range(2):  # the same connection serves the next request
            sock.sendall(_post("/v1/echo/say", SAY, "X-Request-Id: mine-7\r\n"))
            status, headers, body = _read_answer(sock)
            assert status == "HTTP/1.1 200 OK"
            assert [name for name, _ in headers] == ["Server", "Content-Type", "Date",
                                                     "X-Request-Id", "Content-Length"]
            assert dict(headers)["Content-Type"] == "application/json"
            assert dict(headers)["X-Request-Id"] == "mine-7"
            assert json.loads(body) == {"text": "a a", "ratio": 0.5}


def test_pipelined_requests_are_answered_in_order(server):
    with _connect(server) as sock:
        sock.sendall(_post("/v1/echo/say", SAY) + _post("/v1/echo/say", b'{"text": "b"}'))
        first, second = _read_answer(sock), _read_answer(sock)
    assert json.loads(first[2])["text"] == "a a"
    assert json.loads(second[2])["text"] == "b"


def test_head_on_an_endpoint_is_405_with_allow_and_no_body(server):
    with _connect(server) as sock:
        sock.sendall(b"HEAD /v1/echo/say HTTP/1.1\r\nHost: x\r\n\r\n")
        data = sock.recv(65536)
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(65536)  # nothing after the head, though it announces a length
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: POST" in head
    assert b"Content-Length: " in head and rest == b""


def test_a_bug_is_a_500_naming_the_error_id_sherlock_has(server):
    with _connect(server) as sock:
        sock.sendall(_post("/v1/boom/explode", b'{"n": 1}'))
        status, headers, body = _read_answer(sock)
    error = json.loads(body)["error"]
    assert status == "HTTP/1.1 500 Internal Server Error"
    assert error["type"] == "internal" and error["error_id"] in error["message"]
    assert "Traceback" not in body.decode()


def test_a_client_gone_before_its_answer_leaves_nothing_in_flight(server_factory):
    """A client that sent its whole request and left while its call runs is no longer in
    flight: the next request is served, and a stop does not wait out its grace period for
    an answer nobody will read."""
    alone = server_factory(FIXTURES, ready=True)
    sock = _connect(alone)
    sock.sendall(_post("/v1/slow/wait", b'{"seconds": 8}'))
    time.sleep(0.3)
    sock.close()  # the call goes on; its answer has nowhere to go
    time.sleep(0.3)
    with _connect(alone) as again:
        again.sendall(_post("/v1/echo/say", SAY))
        assert _read_answer(again)[0] == "HTTP/1.1 200 OK"
    started = time.monotonic()
    alone.stop()
    assert time.monotonic() - started < 5
    log = alone.log_path.read_text(errors="replace")
    assert "still in flight" not in log and "StreamClosedError" not in log


def test_a_content_length_that_is_not_digits_is_a_bare_400_not_a_500(server):
    with _connect(server) as sock:  # "²" passes str.isdigit() but int() refuses it
        sock.sendall("POST /v1/echo/say HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                     "json\r\nContent-Length: \u00b2\r\n\r\n{}".encode("latin-1"))
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert "Uncaught exception" not in server.log_path.read_text(errors="replace")


def test_a_method_tornado_does_not_know_is_405_before_any_key_check(server_factory):
    keyed = server_factory(dict(FIXTURES, CEREBRO_API_KEYS="k" * 40))
    with _connect(keyed) as sock:
        sock.sendall(b"TRACE /v1/echo/say HTTP/1.1\r\nHost: x\r\nX-API-Key: wrong\r\n\r\n")
        status, headers, body = _read_answer(sock)
    assert status == "HTTP/1.1 405 Method Not Allowed" and dict(headers)["Allow"] == "POST"
    assert json.loads(body)["error"]["type"] == "method_not_allowed"


@pytest.mark.parametrize("head", ["POST /v1/echo/say HTTP/1.1\r\n",
                                  "POST /v1/echo/say HTTP/1.1\r\nHost: a,b\r\n"])
def test_an_endpoint_request_tornado_cannot_make_is_a_bare_400(server, head):
    """No Host header, or two: the endpoint route answers 400 as Tornado's router does, and
    nothing is logged as a bug."""
    with _connect(server) as sock:
        sock.sendall(f"{head}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
                     "{}".encode())
        answer = sock.recv(65536)
    assert answer == b"HTTP/1.1 400 Bad Request\r\n\r\n"
    assert "Uncaught exception" not in server.log_path.read_text(errors="replace")
