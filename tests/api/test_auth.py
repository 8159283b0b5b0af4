"""API keys: every /v1 call needs one when configured; health stays open."""

import pytest


@pytest.fixture
def server(server_factory):
    """A server with two API keys configured."""
    return server_factory({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                           "CEREBRO_API_KEYS": "key-one,key-two"})


def test_v1_needs_a_key(server):
    """No key or a wrong key is 401; either configured key works, by header or Bearer."""
    body = {"text": "a"}
    code, _, error = server.post("/v1/echo/say", body)
    assert code == 401 and error["error"]["type"] == "unauthorized"
    assert server.post("/v1/echo/say", body, {"X-API-Key": "key-three"})[0] == 401
    assert server.post("/v1/echo/say", body, {"X-API-Key": "key-on"})[0] == 401
    assert server.post("/v1/echo/say", body, {"X-API-Key": "key-one"})[0] == 200
    assert server.post("/v1/echo/say", body, {"Authorization": "Bearer key-two"})[0] == 200
    assert server.get("/v1/modules")[0] == 401
    assert server.get("/v1/modules", {"X-API-Key": "key-two"})[0] == 200


def test_health_stays_open(server):
    """Liveness and readiness need no key."""
    assert server.get("/healthz")[0] == 200
    assert server.get("/readyz?module=echo")[0] == 200


def test_bad_input_with_key_still_400(server):
    """Authentication comes first, then validation."""
    assert server.post("/v1/echo/say", {}, {"X-API-Key": "key-one"})[0] == 400
