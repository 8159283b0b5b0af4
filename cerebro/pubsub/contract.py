"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The pub-sub contract: exchange and queue names, headers, request and result messages.
Tagline: Agree on the envelope once, and any hand can post a letter.

Everything the main app has to know is here (and in ``examples/java/pubsub``).

Request: published to the requests exchange with routing key
``<module>.<function>``; the body is the JSON payload the REST endpoint takes;
properties ``message_id`` (idempotency key, becomes the request id),
``correlation_id`` (copied to the result) and optionally ``reply_to`` (a queue
name: the result goes there through the default exchange instead of the
results exchange). Publish it persistent (delivery mode 2).

Result: JSON ``{"status": "succeeded", "module", "function", "message_id",
"correlation_id", "result"}`` or ``{"status": "failed", ..., "error": {"type",
"message", "field", "error_id"?}}``, published persistent with the request's
``correlation_id`` and ``message_id`` and the header ``x-cerebro-status``.
A request may be answered more than once (at-least-once): deduplicate results
by ``message_id``.

Dead letter: the original body and properties, to the dead-letter exchange with
the original routing key, plus the ``x-cerebro-error*`` headers below.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pika

from cerebro import jsonio
from cerebro.errors import CerebroError, InternalError, InvalidPayload
from cerebro.names import Names, result_key

if TYPE_CHECKING:
    from pika.data import _ArgumentMapping


SUCCEEDED = "succeeded"
FAILED = "failed"

ATTEMPTS = "x-cerebro-attempts"          # retries so far (absent: first attempt)
ROUTING_KEY = "x-cerebro-routing-key"    # original <module>.<function> of a retried request
STICKY_KEY = "x-cerebro-sticky-key"      # a canary sends the same key to the same version
STATUS = "x-cerebro-status"              # succeeded | failed, on results
ERROR_TYPE = "x-cerebro-error-type"      # invalid_payload | not_found | internal | ...
ERROR = "x-cerebro-error"                # the error message
ERROR_ID = "x-cerebro-error-id"          # Sherlock's id for an internal error
STAGE = "x-cerebro-stage"                # decode | validate | handler | redelivery
SOURCE_QUEUE = "x-cerebro-source-queue"  # the module queue the request came from
ISOLATE = "x-cerebro-isolate"            # run alone: it was held by a subscriber that died
WAITING_SINCE = "x-cerebro-waiting-since"  # Unix time its wait for a model began

JSON = "application/json"
PERSISTENT = pika.DeliveryMode.Persistent


@dataclass
class Delivery:
    """One request as delivered, tagged with the connection generation it came on."""

    generation: int
    module: str
    queue: str
    tag: int
    routing_key: str
    redelivered: bool
    properties: pika.BasicProperties
    body: bytes
    message_id: str = field(init=False, default="")

    @property
    def headers(self) -> _ArgumentMapping:
        """The message headers (an empty dict when none)."""
        return self.properties.headers or {}

    @property
    def key(self) -> str:
        """``<module>.<function>`` as first published (kept in a header across retries)."""
        value = self.headers.get(ROUTING_KEY)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value if isinstance(value, str) and value else self.routing_key

    @property
    def canary_key(self) -> str | None:
        """The ``x-cerebro-sticky-key`` header (at most 128 characters), else ``None``."""
        value = self.headers.get(STICKY_KEY)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return value if isinstance(value, str) and 0 < len(value) <= 128 else None

    @property
    def function(self) -> str:
        """The function named by the routing key ('' when it names none)."""
        module, _, function = self.key.partition(".")
        return function if module == self.module else ""

    @property
    def attempts(self) -> int:
        """Retries so far, from the ``x-cerebro-attempts`` header."""
        try:
            # any header value: one int() refuses is a TypeError, caught below
            return max(0, int(self.headers.get(ATTEMPTS, 0)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return 0

    def __post_init__(self) -> None:
        """Fix the idempotency key: ``message_id``, else ``correlation_id``, else a fresh id."""
        props = self.properties
        self.message_id = props.message_id or props.correlation_id or f"amqp-{uuid.uuid4().hex}"

    @property
    def waiting_since(self) -> float | None:
        """When this request's wait for its model began (Unix time), or None."""
        try:
            # any header value: one float() refuses is a TypeError, caught below
            return float(self.headers[WAITING_SINCE])  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def isolate(self) -> bool:
        """True when the request must run alone (it was held when a subscriber died)."""
        return bool(self.headers.get(ISOLATE))

    def payload(self) -> object:
        """The decoded JSON body; raises :class:`InvalidPayload`."""
        if self.properties.content_encoding not in (None, "", "utf-8", "identity"):
            raise InvalidPayload("unsupported content encoding "
                                 f"{self.properties.content_encoding!r}")
        return jsonio.loads(self.body)


@dataclass
class Publish:
    """One message to publish (with a confirm) before its request may be acked."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    mandatory: bool = True


@dataclass
class Outcome:
    """What becomes of one delivery: messages to publish, then ack (``kind`` is for stats)."""

    delivery: Delivery
    kind: str
    publishes: list[Publish] = field(default_factory=list)
    waiting: int = 0
    nacked: bool = False


def result_message(names: Names, delivery: Delivery, status: str, *, result: object = None,
                   error: BaseException | None = None) -> Publish:
    """The :class:`Publish` carrying a result (to ``reply_to`` when the request names one)."""
    body: dict[str, object] = {
        "status": status, "module": delivery.module, "function": delivery.function,
        "message_id": delivery.message_id,
        "correlation_id": delivery.properties.correlation_id}
    if status == SUCCEEDED:
        body["result"] = result
    else:
        body["error"] = error.to_dict() if isinstance(error, CerebroError) else \
            {"type": type(error).__name__, "message": str(error), "field": None}
    props = pika.BasicProperties(content_type=JSON, delivery_mode=PERSISTENT,
                                 correlation_id=delivery.properties.correlation_id,
                                 message_id=delivery.message_id, app_id="cerebro",
                                 timestamp=int(time.time()), headers={STATUS: status})
    reply_to = delivery.properties.reply_to
    if reply_to:
        return Publish("", reply_to, jsonio.dumps(body), props)
    return Publish(names.results, result_key(delivery.module, delivery.function or "_", status),
                   jsonio.dumps(body), props)


def _copy(properties: pika.BasicProperties, headers: _ArgumentMapping,
          **changes: object) -> pika.BasicProperties:
    """The request's properties with new headers (and other changes), made persistent."""
    values = {name: getattr(properties, name) for name in (
        "content_type", "content_encoding", "priority", "correlation_id", "reply_to",
        "message_id", "timestamp", "type", "user_id", "app_id")}
    values.update(changes)
    values.pop("user_id")  # RabbitMQ refuses a user_id that is not the publisher's
    return pika.BasicProperties(delivery_mode=PERSISTENT, headers=headers, **values)


def retry_message(names: Names, delivery: Delivery, delay: float, *, charge: bool = True,
                  isolate: bool | None = None, waiting_since: float | None = None) -> Publish:
    """The request again, to its module's retry queue, delayed ``delay`` seconds.

    ``charge`` counts an attempt (``x-cerebro-attempts`` + 1); ``isolate`` sets
    or keeps the ``x-cerebro-isolate`` mark (None keeps what the request had);
    ``waiting_since`` marks when its wait for a model began (a charged retry without it
    ends the wait: a later one starts afresh).
    """
    headers = dict(delivery.headers)
    headers[ATTEMPTS] = delivery.attempts + (1 if charge else 0)
    headers[ROUTING_KEY] = delivery.key
    if waiting_since is not None:
        headers[WAITING_SINCE] = str(waiting_since)
    elif charge:  # a charged retry is a failure of another kind: any wait for the model ended
        headers.pop(WAITING_SINCE, None)
    if isolate is not None:
        headers[ISOLATE] = 1 if isolate else 0
    headers.pop("x-death", None)  # the broker's dead-lettering history grows otherwise
    for name in [h for h in headers if h.startswith(("x-first-death-", "x-last-death-"))]:
        headers.pop(name)
    props = _copy(delivery.properties, headers, message_id=delivery.message_id,
                  expiration=str(max(1, int(delay * 1000))))
    return Publish("", names.retry_queue(delivery.module), delivery.body, props)


def dead_letter_message(names: Names, delivery: Delivery, error: BaseException,
                        stage: str) -> Publish:
    """The request, unchanged but for the ``x-cerebro-error*`` headers, to the DLX."""
    headers = dict(delivery.headers)
    headers.update({
        ERROR_TYPE: getattr(error, "type", type(error).__name__),
        ERROR: getattr(error, "message", None) or str(error),
        STAGE: stage,
        ATTEMPTS: delivery.attempts,
        ROUTING_KEY: delivery.key,
        SOURCE_QUEUE: delivery.queue,
    })
    if isinstance(error, InternalError):
        headers[ERROR_ID] = error.error_id
    props = _copy(delivery.properties, headers, message_id=delivery.message_id)
    return Publish(names.dlx, delivery.key, delivery.body, props)
