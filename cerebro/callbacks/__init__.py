"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The callback contract: signed, addressed, dead-lettered calls to the main app.
Tagline: Knock, sign your name, and knock again until someone answers.

The Celery worker and the Kafka consumer both tell the main app about a
finished piece of work (through :class:`cerebro.clients.http.MainAppClient`,
the one client of the main app) under this contract:

* :mod:`~cerebro.callbacks.signing` signs a body (HMAC-SHA256 over
  ``timestamp + "." + body``) and verifies it on the receiving side;
* :mod:`~cerebro.callbacks.urls` resolves where a callback goes (main-app
  base URL plus a per-function path, or an allow-listed ``callback_url``);
* :mod:`~cerebro.callbacks.deadletter` keeps the callbacks that finally
  failed, durably, for ``cerebro callbacks failed`` and ``retry``;
* :mod:`~cerebro.callbacks.errors` says why a delivery failed.

Delivery is at-least-once: the ``Idempotency-Key`` header lets the main app
drop duplicates.
"""

from cerebro.callbacks.deadletter import DeadLetterStore, Entry, UnreadableEntry
from cerebro.callbacks.errors import DeliveryError, PermanentDeliveryError, RetryWindowExpired
from cerebro.callbacks.signing import (IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
                                       SignatureError, check, sign, signed_headers, verify)
from cerebro.callbacks.urls import CallbackURLs

__all__ = [
    "CallbackURLs", "DeadLetterStore", "DeliveryError", "Entry", "IDEMPOTENCY_HEADER",
    "PermanentDeliveryError", "RetryWindowExpired", "SIGNATURE_HEADER", "SignatureError",
    "TIMESTAMP_HEADER", "UnreadableEntry", "check", "sign", "signed_headers", "verify",
]
