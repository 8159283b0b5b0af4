"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The rooted tree of errors every transport shares, each saying what it means everywhere.
Tagline: Name the failure once, and every door reports it the same way.

The dispatch core raises only these. Each kind carries its whole meaning, in
one place, for every transport (the outcome policy, :mod:`cerebro.outcomes`):

* ``http_status``: what the REST API answers;
* ``queued``: what queued work (a Celery task, a Kafka event, a pub-sub
  request) does with it: :data:`FINAL` (a failed result, a dead letter, now),
  :data:`RETRY` (again with exponential backoff, ``CEREBRO_RETRIES`` times,
  then final) or :data:`WAIT_MODEL` (again every ``CEREBRO_MODEL_RETRY_DELAY``
  seconds for up to ``CEREBRO_MODEL_WAIT`` seconds, then final);
* ``client_error``: a caller's mistake, never reported to Sherlock.

The README's outcome table is this module, and a contract test runs every
kind through every transport.
"""

from __future__ import annotations

import enum
import uuid
from typing import ClassVar


class Disposition(enum.Enum):
    """What queued work does with an error."""

    FINAL = "final"
    RETRY = "retry"
    WAIT_MODEL = "wait for the model"


FINAL = Disposition.FINAL
RETRY = Disposition.RETRY
WAIT_MODEL = Disposition.WAIT_MODEL


class CerebroError(Exception):
    """Root of every error Cerebro reports to a client; an unknown one is a bug of ours."""

    type: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    queued: ClassVar[Disposition] = RETRY
    client_error: ClassVar[bool] = False

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        """The JSON error body: ``{"type", "message", "field"}``."""
        return {"type": self.type, "message": self.message, "field": self.field}


class ClientError(CerebroError):
    """A caller's mistake: final everywhere, a 4xx over HTTP, never reported to Sherlock."""

    http_status = 400
    queued = FINAL
    client_error = True


class InvalidPayload(ClientError):
    """The payload is malformed, has a wrong type, misses a field or is out of range."""

    type = "invalid_payload"


class Unauthorized(ClientError):
    """A required API key is missing or wrong."""

    type = "unauthorized"
    http_status = 401


class NotFound(ClientError):
    """No such module, function, path or task."""

    type = "not_found"
    http_status = 404


class MethodNotAllowed(ClientError):
    """The HTTP method is not served on this path."""

    type = "method_not_allowed"
    http_status = 405


class PayloadTooLarge(ClientError):
    """The request body is larger than the configured limit."""

    type = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(ClientError):
    """A request body that is not declared JSON (``Content-Type: application/json``)."""

    type = "unsupported_media_type"
    http_status = 415


class TooManyRequests(ClientError):
    """The client sent too many wrong API keys; ``retry_after`` says when it may try again."""

    type = "too_many_requests"
    http_status = 429

    def __init__(self, message: str, retry_after: float = 60.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelNotReady(CerebroError):
    """The module's model is not loaded (not built yet, loading, failed to load, or the module
    failed to import): queued work waits for it."""

    type = "model_not_ready"
    http_status = 503
    queued = WAIT_MODEL


class Unavailable(CerebroError):
    """A service Cerebro depends on (such as the message broker) is unreachable."""

    type = "unavailable"
    http_status = 503
    queued = RETRY


class InternalError(CerebroError):
    """A bug: an expose function (or Cerebro) raised something unexpected.

    Carries an ``error_id`` that the client sees and Sherlock records, so a
    report from the main app can be matched to its traceback.
    """

    type = "internal"
    http_status = 500
    queued = RETRY

    def __init__(self, message: str = "internal error", error_id: str | None = None) -> None:
        self.error_id = error_id or uuid.uuid4().hex
        super().__init__(f"{message} (error id {self.error_id})")

    def to_dict(self) -> dict[str, object]:
        """The JSON error body, with the error id."""
        body = super().to_dict()
        body["error_id"] = self.error_id
        return body


class CallbackRefused(CerebroError):
    """The main app refused an outcome with a final status (a 4xx): retrying cannot help."""

    type = "callback_refused"
    http_status = 502
    queued = FINAL


class RedeliveryLimit(CerebroError):
    """A pub-sub request was redelivered while running alone (it may kill its subscriber):
    charged as a failed attempt, then dead-lettered past ``CEREBRO_RETRIES``."""

    type = "redelivery_limit"
    http_status = 500
    queued = RETRY


#: Every kind, in the order of the README's outcome table.
KINDS: tuple[type[CerebroError], ...] = (
    InvalidPayload, Unauthorized, NotFound, MethodNotAllowed, PayloadTooLarge,
    UnsupportedMediaType, TooManyRequests, ModelNotReady, Unavailable, InternalError,
    CallbackRefused, RedeliveryLimit)


def http_status(error: BaseException) -> int:
    """The HTTP status of an error (500 for anything that is not a :class:`CerebroError`)."""
    return error.http_status if isinstance(error, CerebroError) else 500
