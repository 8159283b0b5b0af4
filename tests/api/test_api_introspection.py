"""Listing, health, readiness, metrics and OpenAPI over real HTTP."""

import pytest

FIXTURES = {"CEREBRO_MODULES_PACKAGE": "fixture_modules"}


@pytest.fixture
def server(server_factory):
    """A server over the fixture modules."""
    return server_factory(FIXTURES)


def test_modules_lists_functions_and_schemas(server):
    """/v1/modules shows every module, its functions, modes and input schemas."""
    code, _, body = server.get("/v1/modules")
    assert code == 200
    modules = {m["name"]: m for m in body["modules"]}
    assert {"echo", "boom", "broken_import", "slow"} <= set(modules)
    assert modules["broken_import"]["status"] == "broken" and modules["echo"]["status"] == "ready"
    say = {f["name"]: f for f in modules["echo"]["functions"]}["say"]
    assert say["mode"] == "sync"
    assert say["input_schema"]["required"] == ["text"]
    assert say["input_schema"]["properties"]["times"] == {
        "type": "integer", "minimum": 1, "maximum": 5, "default": 1}


def test_health_is_alive(server):
    """/healthz answers while the process lives."""
    assert server.get("/healthz")[:3:2] == (200, {"status": "alive"})


def test_metrics_count_requests_and_errors(server):
    """/metrics is Prometheus text with per-endpoint counts, errors and latency."""
    server.post("/v1/echo/say", {"text": "a"})
    server.post("/v1/echo/say", {})
    server.post("/v1/nope/x", {})
    code, headers, text = server.get("/metrics")
    text = text.decode()
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'cerebro_requests_total{function="say",module="echo",status="200"} 1.0' in text
    assert 'cerebro_errors_total{function="say",module="echo",type="invalid_payload"} 1.0' in text
    assert 'cerebro_request_seconds_bucket{function="say",le="+Inf",module="echo"}' in text
    assert 'module="nope"' not in text


def test_openapi_describes_every_endpoint(server):
    """/openapi.json is OpenAPI 3 with a path, body schema and error responses per endpoint."""
    code, _, doc = server.get("/openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.")
    op = doc["paths"]["/v1/echo/say"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["text"]["type"] == "string"
    assert {"200", "400", "404", "413", "500", "503"} <= set(op["responses"])
    assert "/v1/broken_import/predict" not in doc["paths"]
