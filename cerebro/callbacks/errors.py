"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Why a callback could not be delivered: the errors the worker dead-letters with.
Tagline: When the knocking stops, say why.

The main app is called through :class:`cerebro.clients.http.MainAppClient`
(every transport's one client); a delivery that finally fails is described by
one of these, kept in the dead-letter store and reported to Sherlock.
"""


class DeliveryError(Exception):
    """A callback could not be delivered; carries the URL, key and last outcome."""

    def __init__(self, message, url=None, idempotency_key=None, result=None, attempts=0):
        super().__init__(message)
        self.url = url
        self.idempotency_key = idempotency_key
        self.result = result
        self.attempts = attempts


class PermanentDeliveryError(DeliveryError):
    """The main app answered with a final status (a 4xx other than 408/429, or a 3xx)."""


class RetryWindowExpired(DeliveryError):
    """Every attempt inside the retry window failed with a retryable outcome."""
