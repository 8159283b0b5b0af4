"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Declared inputs of an expose function: fields, validation and JSON Schema.
Tagline: Say what you take, and every caller is told the same story.

A :class:`Schema` is a mapping of field names to :class:`Field` declarations.
It validates a decoded JSON payload (raising :class:`InvalidPayload` naming
the field) and describes itself as JSON Schema for ``/openapi.json``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

from cerebro.errors import InvalidPayload

_MISSING = object()
_JSON_TYPES: dict[type[object], str] = {str: "string", int: "integer", float: "number",
                                        bool: "boolean", list: "array", dict: "object"}


class Field:
    """One declared input: its type, whether it is required, and its limits.

    ``Field(float, minimum=0, maximum=1)``; ``Field(str, choices=("a", "b"),
    default="a")``; ``Field(list, items=float, min_length=1)``. A field with a
    default is optional. On a ``list``, ``choices`` are the values each item may
    take (``Field(list, items=str, choices=("gym", "lift"))``).
    """

    def __init__(self, type: type[object], *, default: object = _MISSING,
                 minimum: float | None = None, maximum: float | None = None,
                 choices: Iterable[object] | None = None, min_length: int | None = None,
                 max_length: int | None = None, items: type[object] | None = None,
                 description: str = "") -> None:
        if type not in _JSON_TYPES:
            raise TypeError(f"Field type must be one of {sorted(t.__name__ for t in _JSON_TYPES)}")
        self.type = type
        self.default = default
        self.minimum = minimum
        self.maximum = maximum
        self.choices = tuple(choices) if choices is not None else None
        self.min_length = min_length
        self.max_length = max_length
        self.items = items
        self.description = description

    @property
    def required(self) -> bool:
        """True when the field has no default."""
        return self.default is _MISSING

    def validate(self, name: str, value: Any) -> Any:
        """Return ``value`` converted to the declared type, or raise :class:`InvalidPayload`."""
        value = _check_type(name, self.type, value)
        if self.choices is not None and self.type is list:
            unknown = [item for item in value if item not in self.choices]
            if unknown:
                raise InvalidPayload(f"'{name}' items must be among {list(self.choices)}, "
                                     f"got {unknown!r}", name)
        elif self.choices is not None and value not in self.choices:
            raise InvalidPayload(f"'{name}' must be one of {list(self.choices)}, "
                                 f"got {value!r}", name)
        if self.minimum is not None and value < self.minimum:
            raise InvalidPayload(f"'{name}' must be >= {self.minimum}, got {value!r}", name)
        if self.maximum is not None and value > self.maximum:
            raise InvalidPayload(f"'{name}' must be <= {self.maximum}, got {value!r}", name)
        unit = "characters" if self.type is str else "items"
        if self.min_length is not None and len(value) < self.min_length:
            raise InvalidPayload(f"'{name}' must have at least {self.min_length} {unit}, "
                                 f"got {len(value)}", name)
        if self.max_length is not None and len(value) > self.max_length:
            raise InvalidPayload(f"'{name}' must have at most {self.max_length} {unit}, "
                                 f"got {len(value)}", name)
        if self.items is not None:
            value = [_check_type(f"{name}[{i}]", self.items, item, field=name)
                     for i, item in enumerate(value)]
        return value

    def json_schema(self) -> dict[str, object]:
        """This field as a JSON Schema fragment."""
        schema: dict[str, object] = {"type": _JSON_TYPES[self.type]}
        for key, attr in (("minimum", "minimum"), ("maximum", "maximum"),
                          ("minLength" if self.type is str else "minItems", "min_length"),
                          ("maxLength" if self.type is str else "maxItems", "max_length")):
            if getattr(self, attr) is not None:
                schema[key] = getattr(self, attr)
        if self.choices is not None and self.type is not list:
            schema["enum"] = list(self.choices)
        if self.items is not None or self.choices is not None:
            items: dict[str, object] = {}
            if self.items is not None:
                items["type"] = _JSON_TYPES[self.items]
            if self.choices is not None:
                items["enum"] = list(self.choices)
            schema["items"] = items
        if not self.required:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        return schema


def _check_type(name: str, expected: type[object], value: Any, field: str | None = None) -> Any:
    """Check one JSON value against a Python type; ints are accepted as floats."""
    field = field or name
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and expected is not bool:
        ok = False
    else:
        ok = isinstance(value, expected)
    if expected is int and isinstance(value, float) and abs(value) >= 2 ** 63:
        # the JSON decoder turns integers beyond 64 bits into floats: say what really went wrong
        raise InvalidPayload(f"'{name}' is out of range: integers must fit in 64 bits", field)
    if not ok:
        got = _JSON_TYPES.get(type(value), type(value).__name__) if value is not None else "null"
        raise InvalidPayload(f"'{name}' must be of type {_JSON_TYPES[expected]}, got {got}", field)
    if expected is float and not math.isfinite(value):
        raise InvalidPayload(f"'{name}' must be a finite number", field)
    return value


class Schema:
    """The declared inputs of one function: an ordered mapping of name to :class:`Field`.

    ``extra`` says what happens to fields that are not declared: ``"forbid"``
    (a 400 naming the field, the default: typos are caught) or ``"ignore"``
    (dropped, for events that carry more than the function needs).
    """

    def __init__(self, fields: Mapping[str, Field], extra: str = "forbid") -> None:
        if extra not in ("forbid", "ignore"):
            raise ValueError("extra must be 'forbid' or 'ignore'")
        self.fields = dict(fields)
        self.extra = extra
        self._required = [n for n, f in self.fields.items() if f.required]

    def validate(self, payload: object) -> dict[str, object]:
        """Return the validated payload as a new dict with defaults filled in."""
        if not isinstance(payload, dict):
            raise InvalidPayload("the payload must be a JSON object", None)
        if self.extra == "forbid":
            for name in payload:
                if name not in self.fields:
                    raise InvalidPayload(f"unexpected field '{name}'", name)
        for name in self._required:
            if name not in payload:
                raise InvalidPayload(f"missing required field '{name}'", name)
        clean: dict[str, object] = {}
        for name, field in self.fields.items():
            if name in payload:
                clean[name] = field.validate(name, payload[name])
            elif isinstance(field.default, (list, dict)):
                clean[name] = copy.deepcopy(field.default)  # never share a mutable default
            else:
                clean[name] = field.default
        return clean

    def json_schema(self) -> dict[str, object]:
        """The whole payload as a JSON Schema object."""
        schema: dict[str, object] = {
            "type": "object",
            "properties": {n: f.json_schema() for n, f in self.fields.items()},
            "additionalProperties": self.extra != "forbid",
        }
        if self._required:
            schema["required"] = list(self._required)
        return schema
