"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The consumer's main-app call: one signed, idempotent POST per event outcome.
Tagline: Tell the main app what happened, once in its eyes, however often we knock.

Every processed event ends with a POST to ``CEREBRO_MAIN_APP_URL`` +
``CEREBRO_CONSUMER_CALLBACK_PATH`` (``{module}``, ``{function}`` and
``{topic}`` are filled in). A batch's calls go out together through the
platform's one main-app client, :class:`~cerebro.clients.http.MainAppClient` (kept-alive,
pipelined, each call signed with :mod:`cerebro.callbacks.signing`, scheme ``v2``: the
signature covers the timestamp, method, path, ``Idempotency-Key`` and body). The body::

    {"event_id": "...", "topic": "listings", "partition": 3, "offset": 1234,
     "module": "vigilante", "function": "screen",
     "status": "ok", "result": {...}}                       # or
     "status": "dead_lettered", "error": {"type", "message", "field", "dlq_topic"}}

and the ``Idempotency-Key`` header is the event id (or ``topic-partition-offset``),
so the main app drops the duplicates at-least-once delivery can cause. The event id
is the producer's choice: two producers giving different events one id would make
the main app drop the second as a duplicate, so producers must scope their ids
(the README's Kafka section says how).
Retryable failures (timeouts, connection errors, 5xx, 408, 429) are retried
``CEREBRO_RETRIES`` times with backoff, all of a batch's together;
a 4xx is final.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cerebro import jsonio
from cerebro.callbacks import PermanentDeliveryError
from cerebro.clients.http import MainAppClient
from cerebro.outcomes import backoff_delay

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cerebro.consumer.router import Event
    from cerebro.endpoint import Endpoint
    from cerebro.outcomes import OutcomePolicy
    from cerebro.settings import Settings


class CallbackUnavailable(Exception):
    """The main app did not take a call after the quick retries; try the event again later."""


@dataclass
class Note:
    """One main-app call to make: the event, its endpoint, and the encoded body."""

    event: Event
    endpoint: Endpoint
    status: str
    data: bytes


class Notifier:
    """Posts event outcomes to the main app, retrying retryable failures a few times."""

    def __init__(self, client: MainAppClient, base_url: str, path_template: str,
                 retries: int = 3, backoff: float = 0.2, max_backoff: float = 30.0,
                 stop_event: threading.Event | None = None) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.path_template = path_template
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop_event = stop_event or threading.Event()
        self._urls: dict[tuple[str, str], str] = {}

    @classmethod
    def from_settings(cls, settings: Settings, policy: OutcomePolicy,
                      stop_event: threading.Event | None = None) -> Notifier:
        """A notifier with its own pool of kept-alive, pipelined connections, retrying as
        the outcome ``policy`` retries (a main app unavailable is a dependency unavailable)."""
        client = MainAppClient.from_settings(settings)
        return cls(client, settings.main_app_url.get_secret_value(),
                   settings.consumer_callback_path,
                   policy.retries, policy.backoff, policy.max_backoff, stop_event)

    def url(self, endpoint: Endpoint, topic: str) -> str:
        """The main-app URL of ``endpoint``'s outcomes for events of ``topic``."""
        cache_key = (endpoint.key, topic)
        url = self._urls.get(cache_key)
        if url is None:
            path = self.path_template.format(module=endpoint.module, function=endpoint.name,
                                             topic=topic)
            url = path if path.startswith(("http://", "https://")) else \
                self.base_url + "/" + path.lstrip("/")
            self._urls[cache_key] = url
        return url

    @staticmethod
    def body(event: Event, endpoint: Endpoint, status: str, result: object = None,
             error: dict[str, object] | None = None) -> dict[str, object]:
        """The JSON body of one outcome (see the module docstring)."""
        body = {"event_id": event.key, "topic": event.topic, "partition": event.partition,
                "offset": event.offset, "module": endpoint.module, "function": endpoint.name,
                "status": status}
        if error is not None:
            body["error"] = error
        else:
            body["result"] = result
        return body

    def note(self, event: Event, endpoint: Endpoint, status: str, result: object = None,
             error: dict[str, object] | None = None) -> Note:
        """A :class:`Note` with its body encoded (``TypeError`` if the result is not JSON-able)."""
        return Note(event, endpoint, status,
                    jsonio.dumps(self.body(event, endpoint, status, result, error)))

    def send_many(self, notes: Sequence[Note]
                  ) -> list[PermanentDeliveryError | CallbackUnavailable | None]:
        """POST every note; returns one outcome per note, in order: ``None`` (delivered),
        :class:`~cerebro.callbacks.PermanentDeliveryError` (the main app refused it: a
        4xx other than 408/429) or :class:`CallbackUnavailable` (every quick retry
        failed: timeouts, connection errors, 5xx, 408, 429; or the consumer is stopping)."""
        outcomes: list[PermanentDeliveryError | CallbackUnavailable | None] = [None] * len(notes)
        pending = list(range(len(notes)))
        attempt = 0
        while pending:
            results = self.client.post_many(
                [(self.url(notes[i].endpoint, notes[i].event.topic), notes[i].data,
                  notes[i].event.key) for i in pending])
            retry, delay = [], 0.0
            for index, outcome in zip(pending, results):
                key = notes[index].event.key
                if outcome.ok:
                    continue
                if not outcome.retryable:
                    outcomes[index] = PermanentDeliveryError(
                        f"main app refused event {key}: {outcome.describe()}", outcome.url, key,
                        outcome, attempt + 1)
                elif attempt >= self.retries:
                    outcomes[index] = CallbackUnavailable(
                        f"main app unavailable for event {key} after {attempt + 1} attempts: "
                        f"{outcome.describe()}")
                else:
                    retry.append(index)
                    delay = max(delay, backoff_delay(attempt, self.backoff, self.max_backoff),
                                min(outcome.retry_after or 0, self.max_backoff))
            if retry and self.stop_event.wait(delay):
                for index in retry:
                    outcomes[index] = CallbackUnavailable(
                        f"stopping before event {notes[index].event.key} was delivered")
                break
            pending = retry
            attempt += 1
        return outcomes

    def close(self) -> None:
        """Close the kept-alive connections."""
        self.client.close()
