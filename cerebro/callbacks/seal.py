"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Seals on the worker's own callback retries, so no broker message makes a worker sign.
Tagline: Only letters we sealed ourselves leave by our post.

A callback that fails with a retryable outcome is retried by a
``cerebro.deliver_callback`` task carrying the finished call. Anyone who can
publish to RabbitMQ could publish such a task too, with a body and URL of
their choosing, and the worker would sign and send it. So the worker seals
each retry it schedules, and a delivery task sends nothing unless its seal
holds:

* the seal is ``HMAC-SHA256(seal key, fields)``, the fields being the exact body
  bytes the worker encoded once from the task's result, the resolved URL, the
  time of the first attempt and the attempt number, each as a netstring
  (``<length>:<bytes>,``) so no field can spill into the next;
* the seal key is derived from ``CEREBRO_CALLBACK_SECRET`` with a label of its
  own (``HMAC-SHA256(secret, "cerebro/deliver_callback/seal/v1")``): a seal is
  made under another key than any main-app signature (which uses the secret
  itself), so a seal is never a valid signature, nor a signature a valid seal.

The message is ``[body text, url, first_attempt_at, attempt, seal]``: plain
JSON for Celery. :func:`open_retry` checks its shape and its seal before any
field is used, and raises :class:`SealError` for anything else.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from cerebro.callbacks.signing import secret_bytes

SEAL_LABEL = b"cerebro/deliver_callback/seal/v1"
FIELDS = ("body", "url", "first_attempt_at", "attempt", "seal")


class SealError(Exception):
    """A ``cerebro.deliver_callback`` message the worker did not seal (forged, altered,
    malformed or from a version before seals): it is refused and nothing is sent."""


def _netstring(value: bytes) -> bytes:
    """``<length>:<value>,``: a field that cannot run into the next."""
    return b"%d:%s," % (len(value), value)


class Sealer:
    """Seals and checks retry messages with the key derived from the callback secret."""

    def __init__(self, secret: str | bytes) -> None:
        self._key = hmac.new(secret_bytes(secret), SEAL_LABEL, hashlib.sha256).digest()

    def seal(self, data: bytes, url: str, first_attempt_at: float, attempt: int) -> str:
        """The hex seal of one retry."""
        fields = (data, url.encode("utf-8"), repr(float(first_attempt_at)).encode(),
                  str(int(attempt)).encode())
        message = b"".join(_netstring(field) for field in fields)
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def check(self, data: bytes, url: str, first_attempt_at: float, attempt: int,
              seal: str) -> None:
        """Raise :class:`SealError` unless ``seal`` seals these fields."""
        expected = self.seal(data, url, first_attempt_at, attempt)
        if not hmac.compare_digest(expected.encode(), seal.encode("utf-8", "replace")):
            raise SealError("the seal does not match the message (not sealed by a worker "
                            "with this CEREBRO_CALLBACK_SECRET, or altered since)")


@dataclass(frozen=True)
class SealedRetry:
    """One later attempt at a callback: the exact body bytes, where they go, since when."""

    data: bytes
    url: str
    first_attempt_at: float
    attempt: int

    def message(self, sealer: Sealer) -> tuple[str, str, float, int, str]:
        """The task's arguments, seal included."""
        return (self.data.decode("utf-8"), self.url, self.first_attempt_at, self.attempt,
                sealer.seal(self.data, self.url, self.first_attempt_at, self.attempt))


def _number(value: object) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shape(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str, float, int, str]:
    """The five fields of a retry message, or :class:`SealError` when it has another shape."""
    if kwargs or len(args) != len(FIELDS):
        raise SealError(f"expected the {len(FIELDS)} arguments ({', '.join(FIELDS)}), got "
                        f"{len(args)} positional and {len(kwargs)} keyword argument(s)")
    text, url, first, attempt, seal = args
    if not (isinstance(text, str) and isinstance(url, str) and isinstance(seal, str)
            and _number(first) and isinstance(attempt, int) and not isinstance(attempt, bool)
            and attempt >= 1):
        raise SealError("the arguments have the wrong types (body text, url, "
                        "first_attempt_at number, attempt >= 1, seal)")
    return text, url, float(first), attempt, seal


def open_retry(sealer: Sealer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SealedRetry:
    """The :class:`SealedRetry` a ``cerebro.deliver_callback`` message carries, once its shape
    and seal are checked; :class:`SealError` otherwise."""
    text, url, first, attempt, seal = _shape(args, kwargs)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise SealError("the body is not valid text") from None
    sealer.check(data, url, first, attempt, seal)
    return SealedRetry(data, url, first, attempt)
