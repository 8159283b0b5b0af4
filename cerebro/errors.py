"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The small hierarchy of errors every transport shares, and its HTTP mapping.
Tagline: Name the failure, and every door reports it the same way.

The dispatch core raises only these. Each transport maps them once: the REST
API through :data:`HTTP_STATUS`, the Celery worker and the Kafka consumer to
their own outcomes. ``client_error`` tells a caller's mistake (never reported
to Sherlock) from a failure of ours.
"""

import uuid


class CerebroError(Exception):
    """Base of every error Cerebro reports to a client."""

    type = "internal"
    client_error = False

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self):
        """The JSON error body: ``{"type", "message", "field"}``."""
        return {"type": self.type, "message": self.message, "field": self.field}


class NotFound(CerebroError):
    """No such module or function."""

    type = "not_found"
    client_error = True


class InvalidPayload(CerebroError):
    """The payload is malformed, has a wrong type, misses a field or is out of range."""

    type = "invalid_payload"
    client_error = True


class PayloadTooLarge(CerebroError):
    """The request body is larger than the configured limit."""

    type = "payload_too_large"
    client_error = True


class MethodNotAllowed(CerebroError):
    """The HTTP method is not served on this path."""

    type = "method_not_allowed"
    client_error = True


class Unauthorized(CerebroError):
    """A required API key is missing or wrong."""

    type = "unauthorized"
    client_error = True


class ModelNotReady(CerebroError):
    """The module's model is not loaded (not built yet, loading, or failed to load)."""

    type = "model_not_ready"


class Unavailable(CerebroError):
    """A service Cerebro depends on (such as the message broker) is unreachable."""

    type = "unavailable"


class InternalError(CerebroError):
    """A bug: an expose function raised something unexpected.

    Carries an ``error_id`` that the client sees and Sherlock records, so a
    report from the main app can be matched to its traceback.
    """

    type = "internal"

    def __init__(self, message="internal error", error_id=None):
        self.error_id = error_id or uuid.uuid4().hex
        super().__init__(f"{message} (error id {self.error_id})")

    def to_dict(self):
        """The JSON error body, with the error id."""
        body = super().to_dict()
        body["error_id"] = self.error_id
        return body


HTTP_STATUS = {
    InvalidPayload: 400,
    Unauthorized: 401,
    NotFound: 404,
    MethodNotAllowed: 405,
    PayloadTooLarge: 413,
    ModelNotReady: 503,
    Unavailable: 503,
    InternalError: 500,
    CerebroError: 500,
}


def http_status(error):
    """The HTTP status code for a :class:`CerebroError` (500 for anything unknown)."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
