"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Why a callback could not be delivered: the errors the worker dead-letters with.
Tagline: When the knocking stops, say why.

The main app is called through :class:`cerebro.clients.http.MainAppClient`
(every transport's one client); a delivery that finally fails is described by
one of these, kept in the dead-letter store and reported to Sherlock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cerebro.clients.http import AttemptResult


class DeliveryError(Exception):
    """A callback could not be delivered; carries the URL, key and last outcome."""

    def __init__(self, message: str, url: str | None = None, idempotency_key: str | None = None,
                 result: AttemptResult | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.url = url
        self.idempotency_key = idempotency_key
        self.result = result
        self.attempts = attempts


class PermanentDeliveryError(DeliveryError):
    """The main app answered with a final status (a 4xx other than 408/429, or a 3xx)."""


class RetryWindowExpired(DeliveryError):
    """Every attempt inside the retry window failed with a retryable outcome."""
