"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Signatures of every main-app call (scheme v2): timestamp, method, target, key and body.
Tagline: A seal on the envelope, the address, the hour it was pressed and the number on it.

Every call Cerebro makes to the main app (Celery callbacks, the Kafka
consumer's outcomes, ``cerebro callbacks retry``) carries three headers::

    X-Cerebro-Timestamp: 1764000000
    X-Cerebro-Signature: v2=<hex HMAC-SHA256(CEREBRO_CALLBACK_SECRET, message)>
    Idempotency-Key: <task id, or event id>

where ``message`` is six parts joined by a line feed (``\\n``, 0x0A)::

    cerebro-v2
    <timestamp>          the X-Cerebro-Timestamp value, decimal Unix seconds
    <METHOD>             the request method as sent: POST
    <request-target>     path and query exactly as on the request line, e.g. /cb/m/f?x=1
    <Idempotency-Key>    the header's value
    <body>               the raw body bytes (the last part: it may hold line feeds)

Each part is taken as the octets sent on the wire (headers are ISO-8859-1;
the label, the timestamp, the method and the request target are ASCII). None
of the first five can hold a line feed, so the split is unambiguous (a dot
would not be: paths and keys contain dots). A receiver recomputes the HMAC
from what it received, compares in constant time, rejects a timestamp further
than a tolerance from its clock (default five minutes) and drops a repeated
``Idempotency-Key``: a captured call replayed within the tolerance is then a
duplicate, and replayed with a fresh key or to another path it fails.

The former scheme (``sha256=``, over ``<timestamp>.<body>`` only) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Cerebro-Timestamp"
SIGNATURE_HEADER = "X-Cerebro-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "v2"
LABEL = "cerebro-v2"
FORMER_SCHEME = "sha256"
METHOD = "POST"
DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """A call's signature is missing, malformed, wrong or too old."""


def secret_bytes(secret: str | bytes) -> bytes:
    """The secret as bytes; an empty secret is refused rather than silently signing with it."""
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("the callback signing secret is empty (CEREBRO_CALLBACK_SECRET)")
    return secret


def message(timestamp: float, method: str, target: str, idempotency_key: object,
            body: bytes | bytearray) -> bytes:
    """The signed bytes of one call (see the module docstring).

    Raises ``ValueError`` when a part holds a line break or a character HTTP
    cannot send in it (``UnicodeEncodeError`` is a ``ValueError``).
    """
    parts = (LABEL, str(int(timestamp)), method, target, str(idempotency_key))
    for part in parts:
        if "\n" in part or "\r" in part:
            raise ValueError(f"a signed part holds a line break: {part!r:.80}")
    return "\n".join(parts).encode("latin-1") + b"\n" + bytes(body)


def sign(secret: str | bytes, timestamp: float, method: str, target: str,
         idempotency_key: object, body: bytes | bytearray) -> str:
    """Hex HMAC-SHA256 with ``secret`` of :func:`message`."""
    data = message(timestamp, method, target, idempotency_key, body)
    return hmac.new(secret_bytes(secret), data, hashlib.sha256).hexdigest()


def signed_headers(secret: str | bytes, body: bytes | bytearray, idempotency_key: object, *,
                   target: str, method: str = METHOD,
                   timestamp: float | None = None) -> dict[str, str]:
    """The three headers of a call of ``method`` to ``target`` (path and query) carrying
    ``body``, signed now (or at ``timestamp``)."""
    timestamp = int(time.time() if timestamp is None else timestamp)
    signature = sign(secret, timestamp, method, target, idempotency_key, body)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={signature}",
        IDEMPOTENCY_HEADER: str(idempotency_key),
    }


def _timestamp(value: object, tolerance: float | None, now: float | None) -> int:
    """The integer timestamp, or :class:`SignatureError` when malformed or out of tolerance."""
    try:
        stamp = int(str(value).strip())
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not an integer: {value!r:.40}") from None
    now = time.time() if now is None else now
    if tolerance is not None and abs(now - stamp) > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {int(now - stamp)}s away from now "
                             f"(tolerance {tolerance}s): possible replay")
    return stamp


def _given(signature: str | None) -> bytes:
    """The hex digest of a ``v2=<hex>`` header value, as bytes; :class:`SignatureError` else."""
    scheme, _, given = str(signature or "").strip().partition("=")
    if scheme == FORMER_SCHEME:
        raise SignatureError(f"{SIGNATURE_HEADER} uses the former '{FORMER_SCHEME}=' scheme "
                             f"(timestamp and body only), no longer accepted: expected "
                             f"'{SCHEME}=<hex>'")
    if scheme != SCHEME or not given:
        raise SignatureError(f"{SIGNATURE_HEADER} must look like '{SCHEME}=<hex>'")
    # compared as bytes: compare_digest refuses text that is not ASCII with a TypeError
    return given.strip().lower().encode("utf-8", "replace")


def check(secret: str | bytes, timestamp: object, body: bytes | bytearray,
          signature: str | None, tolerance: float | None = DEFAULT_TOLERANCE,
          now: float | None = None, *, method: str | None = None, target: str | None = None,
          idempotency_key: str | None = None) -> None:
    """Raise :class:`SignatureError` unless ``signature`` (``v2=<hex>``) signs this call:
    ``timestamp`` (within ``tolerance`` seconds of now), ``method``, ``target`` (the request
    target as received: path and query), ``idempotency_key`` (the header) and ``body`` (raw).

    Method, target and key are keywords so that no call can leave them out by
    position; a call without one of them is refused.
    """
    stamp = _timestamp(timestamp, tolerance, now)
    given = _given(signature)
    if not method or not target or not idempotency_key:
        missing = [name for name, value in (("method", method), ("request target", target),
                                            (IDEMPOTENCY_HEADER, idempotency_key)) if not value]
        raise SignatureError(f"cannot verify a {SCHEME} signature without the "
                             f"{' and '.join(missing)}")
    try:
        expected = sign(secret, stamp, method, target, idempotency_key, body)
    except ValueError as exc:  # a part HTTP cannot carry: Cerebro never signed it
        raise SignatureError(f"unsignable request: {exc}") from None
    if not hmac.compare_digest(expected.encode(), given):
        raise SignatureError("signature does not match the request (timestamp, method, "
                             "target, Idempotency-Key and body)")


def verify(secret: str | bytes, timestamp: object, body: bytes | bytearray,
           signature: str | None, tolerance: float | None = DEFAULT_TOLERANCE,
           now: float | None = None, *, method: str | None = None, target: str | None = None,
           idempotency_key: str | None = None) -> bool:
    """True when :func:`check` accepts the signature, False otherwise."""
    try:
        check(secret, timestamp, body, signature, tolerance, now, method=method, target=target,
              idempotency_key=idempotency_key)
    except SignatureError:
        return False
    return True
