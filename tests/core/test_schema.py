"""Declared inputs: validation rules and JSON Schema."""

import pytest

from cerebro import Field, endpoint
from cerebro.endpoint import build_endpoint
from cerebro.errors import InvalidPayload
from cerebro.schema import Schema

SCHEMA = Schema({
    "city": Field(str, choices=("Pune", "Mumbai")),
    "bhk": Field(int, minimum=1, maximum=10),
    "area": Field(float, minimum=100),
    "tags": Field(list, items=str, default=[], max_length=3),
    "furnished": Field(bool, default=False),
})


def _field_of(payload):
    """The field named by the InvalidPayload raised for ``payload``."""
    with pytest.raises(InvalidPayload) as info:
        SCHEMA.validate(payload)
    return info.value.field


def test_valid_payload_fills_defaults_and_coerces_int_to_float():
    """Defaults are filled; an integer is accepted where a float is declared."""
    clean = SCHEMA.validate({"city": "Pune", "bhk": 2, "area": 900})
    assert clean == {"city": "Pune", "bhk": 2, "area": 900.0, "tags": [], "furnished": False}
    assert isinstance(clean["area"], float)


@pytest.mark.parametrize("payload, field", [
    ({"bhk": 2, "area": 900}, "city"),
    ({"city": "Delhi", "bhk": 2, "area": 900}, "city"),
    ({"city": "Pune", "bhk": 2.5, "area": 900}, "bhk"),
    ({"city": "Pune", "bhk": True, "area": 900}, "bhk"),
    ({"city": "Pune", "bhk": 11, "area": 900}, "bhk"),
    ({"city": "Pune", "bhk": 2, "area": 99.9}, "area"),
    ({"city": "Pune", "bhk": 2, "area": None}, "area"),
    ({"city": "Pune", "bhk": 2, "area": 900, "tags": ["a", 1]}, "tags"),
    ({"city": "Pune", "bhk": 2, "area": 900, "tags": ["a"] * 4}, "tags"),
    ({"city": "Pune", "bhk": 2, "area": 900, "furnished": 1}, "furnished"),
    ({"city": "Pune", "bhk": 2, "area": 900, "garden": True}, "garden"),
])
def test_invalid_payloads_name_their_field(payload, field):
    """Each rule violation names the offending field."""
    assert _field_of(payload) == field


def test_extra_ignore_drops_unknown_fields():
    """extra='ignore' drops undeclared fields instead of refusing them."""
    schema = Schema({"a": Field(int)}, extra="ignore")
    assert schema.validate({"a": 1, "b": 2}) == {"a": 1}


def test_json_schema():
    """The JSON Schema carries types, limits, enums, defaults and required fields."""
    js = SCHEMA.json_schema()
    assert js["required"] == ["city", "bhk", "area"]
    assert js["properties"]["city"]["enum"] == ["Pune", "Mumbai"]
    assert js["properties"]["tags"] == {"type": "array", "maxItems": 3,
                                        "items": {"type": "string"}, "default": []}
    assert js["additionalProperties"] is False


def test_signature_inference_and_its_limits():
    """Undecorated functions declare inputs by annotation; unannotated ones are refused."""
    def area(width: float, height: float = 2.0):
        """Area."""
        return width * height
    ep = build_endpoint("m", area)
    assert ep.schema.validate({"width": 3}) == {"width": 3.0, "height": 2.0}

    def loose(x):
        """No annotation."""
    with pytest.raises(TypeError, match="needs a type annotation"):
        build_endpoint("m", loose)


def test_decorator_records_transport():
    """@endpoint records external and topics and leaves the function callable."""
    @endpoint(inputs={"x": Field(int)}, external=True, topics="listings", example={"x": 1})
    def f(x):
        """Double."""
        return 2 * x
    ep = build_endpoint("m", f)
    assert (ep.external, ep.topics, ep.example, f(x=2)) == (True, ("listings",), {"x": 1}, 4)


@pytest.mark.parametrize("field, value, message", [
    (Field(str, min_length=1), "", "'x' must have at least 1 characters, got 0"),
    (Field(str, max_length=3), "abcd", "'x' must have at most 3 characters, got 4"),
    (Field(list, max_length=1), [1, 2], "'x' must have at most 1 items, got 2"),
    (Field(int), 18446744073709551616.0, "'x' is out of range: integers must fit in 64 bits"),
    (Field(int), 3.0, "'x' must be of type integer, got number"),
])
def test_messages_say_what_is_wrong(field, value, message):
    """Lengths are counted in characters for strings and items for lists; an integer too big
    for 64 bits (decoded as a float) is out of range, not of the wrong type."""
    with pytest.raises(InvalidPayload) as info:
        field.validate("x", value)
    assert str(info.value) == message and info.value.field == "x"
