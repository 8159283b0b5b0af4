"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The callback contract: signed, addressed, dead-lettered calls to the main app.
Tagline: Knock, sign your name, and knock again until someone answers.

The Celery worker and the Kafka consumer both tell the main app about a
finished piece of work (through :class:`cerebro.clients.http.MainAppClient`,
the one client of the main app) under this contract:

* :mod:`~cerebro.callbacks.signing` signs every main-app call (scheme ``v2``:
  HMAC-SHA256 over timestamp, method, request target, idempotency key and body)
  and verifies it on the receiving side;
* :mod:`~cerebro.callbacks.urls` resolves where a callback goes (main-app
  base URL plus a per-function path, or an allow-listed ``callback_url``, the
  allow-list taking hosts, ports and path prefixes);
* :mod:`~cerebro.callbacks.seal` seals the worker's own retry messages, so a
  ``cerebro.deliver_callback`` task sends only what a worker computed;
* :mod:`~cerebro.callbacks.deadletter` keeps the callbacks that finally
  failed, durably, for ``cerebro callbacks failed`` and ``retry``;
* :mod:`~cerebro.callbacks.errors` says why a delivery failed.

Delivery is at-least-once: the signed ``Idempotency-Key`` header lets the main
app drop duplicates.
"""

from cerebro.callbacks.deadletter import DeadLetterStore, Entry, UnreadableEntry
from cerebro.callbacks.errors import DeliveryError, PermanentDeliveryError, RetryWindowExpired
from cerebro.callbacks.seal import SealedRetry, Sealer, SealError, open_retry
from cerebro.callbacks.signing import (IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
                                       SignatureError, check, sign, signed_headers, verify)
from cerebro.callbacks.urls import CallbackURLs

__all__ = [
    "CallbackURLs", "DeadLetterStore", "DeliveryError", "Entry", "IDEMPOTENCY_HEADER",
    "PermanentDeliveryError", "RetryWindowExpired", "SIGNATURE_HEADER", "SealError",
    "SealedRetry", "Sealer", "SignatureError", "TIMESTAMP_HEADER", "UnreadableEntry", "check",
    "open_retry", "sign", "signed_headers", "verify",
]
