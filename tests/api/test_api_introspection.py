"""Listing, health, readiness, metrics and OpenAPI over real HTTP."""

import pytest

from support import http

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


def test_openapi_covers_the_async_contract_and_platform_routes(server):
    """A client generated from /openapi.json can send callback_url to an async function, poll
    GET /v1/tasks/{task_id}, and call the platform's own routes."""
    doc = server.get("/openapi.json")[2]
    square = doc["paths"]["/v1/jobs/square"]["post"]
    body = square["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["callback_url"]["format"] == "uri"
    assert body["additionalProperties"] is False and "202" in square["responses"]
    sync = doc["paths"]["/v1/echo/say"]["post"]["requestBody"]["content"]["application/json"]
    assert "callback_url" not in sync["schema"]["properties"]
    status = doc["paths"]["/v1/tasks/{task_id}"]["get"]
    assert status["parameters"][0]["name"] == "task_id"
    assert status["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TaskStatus"}
    assert "TaskStatus" in doc["components"]["schemas"]
    assert {"/v1/modules", "/healthz", "/readyz"} <= set(doc["paths"])


def test_health_and_readiness_answer_head(server):
    """Load-balancer health checks that send HEAD get the status without a body."""
    status, _, body = http("HEAD", server.url + "/healthz")
    assert status == 200 and body == b""
    assert http("HEAD", server.url + "/readyz")[0] == 200
    assert http("HEAD", server.url + "/readyz?module=broken_import")[0] == 503
