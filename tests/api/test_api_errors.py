"""REST API error contract against a real `cerebro serve` process."""

import json
import socket

import pytest

from support import http

FIXTURES = {"CEREBRO_MODULES_PACKAGE": "fixture_modules"}


@pytest.fixture
def server(server_factory):
    """A server over the fixture modules (echo, boom, broken_import, slow)."""
    return server_factory(FIXTURES)


def _error(response, status, error_type, field="__any__"):
    """Assert a JSON error response and return its error object."""
    code, headers, body = response
    assert code == status, body
    assert headers["Content-Type"].startswith("application/json")
    assert set(body) == {"error"}
    assert body["error"]["type"] == error_type
    if field != "__any__":
        assert body["error"]["field"] == field
    assert "Traceback" not in json.dumps(body)
    return body["error"]


def test_success_returns_result(server):
    """A valid call answers 200 with the function's JSON result."""
    code, _, body = server.post("/v1/echo/say", {"text": "hi", "times": 2})
    assert code == 200
    assert body == {"text": "hi hi", "ratio": 0.5}


def test_signature_declared_inputs(server):
    """Inputs read from annotations are validated and defaulted."""
    assert server.post("/v1/echo/add", {"a": 2})[2] == {"sum": 3.0}
    _error(server.post("/v1/echo/add", {"a": "x"}), 400, "invalid_payload", "a")


def test_malformed_json_is_400(server):
    """Broken JSON is the client's mistake."""
    _error(server.post("/v1/echo/say", b'{"text": '), 400, "invalid_payload", None)


def test_body_must_be_an_object(server):
    """A JSON array is not a payload."""
    _error(server.post("/v1/echo/say", b"[1, 2]"), 400, "invalid_payload", None)


@pytest.mark.parametrize("payload, field, words", [
    ({}, "text", "missing"),
    ({"text": 5}, "text", "type string"),
    ({"text": "a", "times": "2"}, "times", "type integer"),
    ({"text": "a", "times": True}, "times", "type integer"),
    ({"text": "a", "times": 9}, "times", "<= 5"),
    ({"text": "a", "ratio": -0.1}, "ratio", ">= 0.0"),
    ({"text": "a", "colour": "red"}, "colour", "unexpected"),
    ({"text": ""}, "text", "at least"),
])
def test_invalid_payload_names_the_field(server, payload, field, words):
    """Wrong types, missing, out-of-range and unexpected fields are 400s naming the field."""
    error = _error(server.post("/v1/echo/say", payload), 400, "invalid_payload", field)
    assert words in error["message"]


def test_unknown_module_and_function_are_404(server):
    """Unknown names are 404s naming which part is unknown."""
    _error(server.post("/v1/nope/say", {}), 404, "not_found", "module")
    _error(server.post("/v1/echo/nope", {}), 404, "not_found", "function")
    _error(server.post("/v2/echo/say", {}), 404, "not_found", "path")


def test_wrong_method_is_405(server):
    """GET on an endpoint, POST on the listing: 405 with an Allow header."""
    response = server.get("/v1/echo/say")
    _error(response, 405, "method_not_allowed")
    assert response[1]["Allow"] == "POST"
    _error(server.post("/v1/modules", {}), 405, "method_not_allowed")


def test_body_over_limit_is_413(server_factory):
    """Bodies over CEREBRO_MAX_BODY_BYTES are refused, by length or while streaming."""
    server = server_factory(dict(FIXTURES, CEREBRO_MAX_BODY_BYTES=1000))
    big = json.dumps({"text": "x" * 2000}).encode()
    _error(server.post("/v1/echo/say", big), 413, "payload_too_large")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        chunk = b"x" * 1500
        sock.sendall(b"POST /v1/echo/say HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Type: application/json\r\n\r\n"
                     + b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n")
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert server.post("/v1/echo/say", {"text": "small"})[0] == 200


def test_bug_is_500_with_error_id_and_no_traceback(server):
    """An exception in a function is a 500 carrying an error id, never a traceback."""
    error = _error(server.post("/v1/boom/explode", {"n": 2}), 500, "internal")
    assert len(error["error_id"]) == 32
    assert "ZeroDivisionError" in error["message"]
    assert "boom 2 / 0" not in error["message"]
    _error(server.post("/v1/boom/unserializable", {}), 500, "internal")


def test_model_not_ready_is_503(server_factory):
    """A module whose model is not built answers 503 naming the fix."""
    server = server_factory({"CEREBRO_MODULES": "rent_predictor"})
    code, _, body = server.get("/v1/modules")
    assert body["modules"][0]["status"] == "no_model"
    payload = body["modules"][0]["functions"][0]["example"] or {}
    error = _error(server.post("/v1/rent_predictor/predict", payload), 503, "model_not_ready")
    assert "cerebro build rent_predictor" in error["message"]


def test_broken_module_is_reported_and_others_serve(server):
    """A module that fails to import is 503 and reported; the others keep serving, and the
    node stays in rotation (every node has the same code: taking them out serves no one)."""
    _error(server.post("/v1/broken_import/predict", {"x": 1}), 503, "model_not_ready")
    code, _, ready = server.get("/readyz")
    assert code == 200 and ready["ready"] is True and ready["why"] == ""
    assert ready["modules"]["broken_import"]["status"] == "broken"
    assert "this_package_does_not_exist" in ready["modules"]["broken_import"]["errors"][0]
    assert ready["modules"]["echo"]["ready"] is True
    assert server.post("/v1/echo/say", {"text": "still"})[0] == 200
    code, _, ready = server.get("/readyz?module=echo&module=boom")
    assert code == 200 and set(ready["modules"]) == {"echo", "boom"}
    code, _, ready = server.get("/readyz?module=broken_import")
    assert code == 503 and ready["why"].startswith("broken_import: failed to import")
    assert server.get("/readyz?module=nope")[0] == 404


def test_request_id_is_echoed(server):
    """The caller's X-Request-Id comes back, on success and on error."""
    rid = "req-123"
    headers = server.post("/v1/echo/say", {"text": "a"}, {"X-Request-Id": rid})[1]
    assert headers["X-Request-Id"] == rid
    assert server.post("/v1/echo/say", {}, {"X-Request-Id": rid})[1]["X-Request-Id"] == rid


def test_slow_call_never_blocks_the_ioloop(server):
    """While a model call sleeps, health and other endpoints answer at once."""
    import threading
    import time
    slow = threading.Thread(target=server.post, args=("/v1/slow/wait", {"seconds": 1.5}))
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert server.get("/healthz")[0] == 200
    assert server.post("/v1/echo/say", {"text": "quick"})[0] == 200
    assert time.monotonic() - started < 0.5
    slow.join()
