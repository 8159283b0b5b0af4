"""
Author:  Cerebro team
Date:    2026-11-24
Subject: HMAC-SHA256 signatures of callback bodies, with a timestamp against replays.
Tagline: A seal on the envelope and the hour it was pressed.

The signed message is ``<timestamp>.<body>``: the decimal Unix time in
seconds, a dot, and the exact body bytes sent. Headers::

    X-Cerebro-Timestamp: 1764000000
    X-Cerebro-Signature: sha256=<hex HMAC-SHA256(secret, b"1764000000." + body)>
    Idempotency-Key: <task id>

A receiver recomputes the HMAC over the raw body it received, compares in
constant time, and rejects timestamps further than a tolerance from its
clock (default five minutes) so a captured request cannot be replayed later;
it drops repeated ``Idempotency-Key`` values inside that tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Cerebro-Timestamp"
SIGNATURE_HEADER = "X-Cerebro-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SCHEME = "sha256"
DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """A callback's signature is missing, malformed, wrong or too old."""


def _key(secret: str | bytes) -> bytes:
    """The secret as bytes; an empty secret is refused rather than silently signing with it."""
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("the callback signing secret is empty (CEREBRO_CALLBACK_SECRET)")
    return secret


def sign(secret: str | bytes, timestamp: float, body: bytes | bytearray) -> str:
    """Hex HMAC-SHA256 of ``b"<timestamp>." + body`` with ``secret``."""
    message = f"{int(timestamp)}.".encode() + bytes(body)
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str | bytes, body: bytes | bytearray, idempotency_key: object,
                   timestamp: float | None = None) -> dict[str, str]:
    """The three callback headers for ``body`` signed now (or at ``timestamp``)."""
    timestamp = int(time.time() if timestamp is None else timestamp)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={sign(secret, timestamp, body)}",
        IDEMPOTENCY_HEADER: str(idempotency_key),
    }


def check(secret: str | bytes, timestamp: object, body: bytes | bytearray,
          signature: str | None, tolerance: float | None = DEFAULT_TOLERANCE,
          now: float | None = None) -> None:
    """Raise :class:`SignatureError` unless ``signature`` (``sha256=<hex>``) signs
    ``timestamp`` + ``body`` and the timestamp is within ``tolerance`` seconds of now."""
    try:
        stamp = int(str(timestamp).strip())
    except ValueError:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not an integer: {timestamp!r}") from None
    now = time.time() if now is None else now
    if tolerance is not None and abs(now - stamp) > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {int(now - stamp)}s away from now "
                             f"(tolerance {tolerance}s): possible replay")
    scheme, _, given = str(signature or "").partition("=")
    if scheme != SCHEME or not given:
        raise SignatureError(f"{SIGNATURE_HEADER} must look like '{SCHEME}=<hex>'")
    expected = sign(secret, stamp, body)
    # compared as bytes: compare_digest refuses text that is not ASCII with a TypeError
    if not hmac.compare_digest(expected.encode(),
                               given.strip().lower().encode("utf-8", "replace")):
        raise SignatureError("signature does not match the body")


def verify(secret: str | bytes, timestamp: object, body: bytes | bytearray,
           signature: str | None, tolerance: float | None = DEFAULT_TOLERANCE,
           now: float | None = None) -> bool:
    """True when :func:`check` accepts the signature, False otherwise."""
    try:
        check(secret, timestamp, body, signature, tolerance, now)
    except SignatureError:
        return False
    return True
