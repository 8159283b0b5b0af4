"""
Author:  Cerebro team
Date:    2026-11-24
Subject: JSON in and out, fast, with numpy values understood.
Tagline: Bytes in, bytes out, nothing lost in translation.
"""

from __future__ import annotations

from typing import Any

import orjson

from cerebro.errors import InvalidPayload

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode a JSON document; malformed input raises :class:`InvalidPayload`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(f"malformed JSON: {exc}", None) from None


def dumps(value: object) -> bytes:
    """Encode a value (numpy scalars and arrays included) to JSON bytes.

    Raises ``TypeError`` for a value JSON cannot hold.
    """
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(str(exc)) from None


def _default(value: object) -> object:
    """Encode the few types orjson leaves out: numpy scalars of other kinds, sets, tuples."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
