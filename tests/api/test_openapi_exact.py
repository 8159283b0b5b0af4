"""The OpenAPI document says what the server does: a Java client generated from it sends
only what the server accepts, and knows every answer it can get."""

from pathlib import Path

import pytest

from cerebro.schema import Field


@pytest.fixture
def server(server_factory, built_volume):
    """A server over the repository's modules, with their models."""
    return server_factory({"CEREBRO_DATA_VOLUME": built_volume}, ready=True)


def test_allowed_list_items_are_in_the_schema(server):
    """The amenity values a function accepts are the schema's item enum, and a value outside
    it is refused with a 400 naming the field."""
    doc = server.get("/openapi.json")[2]
    for path in ("/v1/rent_predictor/predict", "/v1/locality_score/score"):
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        items = schema["schema"]["properties"]["amenities"]["items"]
        assert items["type"] == "string" and len(items["enum"]) >= 5
    payload = doc["paths"]["/v1/rent_predictor/predict"]["post"]["requestBody"]["content"][
        "application/json"]["example"]
    code, _, body = server.post("/v1/rent_predictor/predict", dict(payload, amenities=["moat"]))
    assert code == 400 and body["error"]["field"] == "amenities"
    assert "moat" in body["error"]["message"]


def test_a_null_callback_url_is_refused_as_the_schema_says(server):
    """callback_url is a string in the schema: null is a 400, not silently the default."""
    doc = server.get("/openapi.json")[2]
    op = doc["paths"]["/v1/listing_enrichment/enrich"]["post"]
    example = op["requestBody"]["content"]["application/json"]["example"]
    code, _, body = server.post("/v1/listing_enrichment/enrich", dict(example, callback_url=None))
    assert code == 400 and body["error"]["field"] == "callback_url"


def test_every_platform_route_and_answer_is_documented(server):
    """/metrics, /openapi.json, /readyz's 404 for an unknown module and its 503 are in it."""
    doc = server.get("/openapi.json")[2]
    assert {"/metrics", "/openapi.json", "/readyz", "/healthz", "/v1/modules"} <= set(doc["paths"])
    ready = doc["paths"]["/readyz"]["get"]["responses"]
    assert {"200", "404", "503"} <= set(ready)
    assert server.get("/readyz?module=nope")[0] == 404
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_list_choices_validate_each_item():
    """On a list, choices constrain each item (and a scalar's choices the value)."""
    field = Field(list, items=str, choices=("a", "b"))
    assert field.validate("x", ["a", "b", "a"]) == ["a", "b", "a"]
    with pytest.raises(Exception, match="items must be among"):
        field.validate("x", ["a", "c"])
    assert field.json_schema()["items"] == {"type": "string", "enum": ["a", "b"]}
    assert "enum" not in field.json_schema()


def test_fuzzing_from_the_document_finds_no_server_error(server, tmp_path):
    """schemathesis, every check, generates ~1,000 requests from /openapi.json (examples,
    coverage, fuzzing, stateful): no 5xx, every status and body as documented. Only
    "schema-valid request rejected" is left out: cross-field rules (floor <= total_floors)
    and the callback allow-list cannot be said in JSON Schema; they are in the descriptions."""
    import subprocess
    import sys
    schemathesis = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(schemathesis), "run", server.url + "/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--max-examples", "25", "--seed", "7"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "No issues found" in result.stdout
