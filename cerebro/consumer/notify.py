"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The consumer's main-app call: one signed, idempotent POST per event outcome.
Tagline: Tell the main app what happened, once in its eyes, however often we knock.

Every processed event ends with a POST to ``CEREBRO_MAIN_APP_URL`` +
``CEREBRO_CONSUMER_CALLBACK_PATH`` (``{module}``, ``{function}`` and
``{topic}`` are filled in) through the shared, keep-alive, signed
:class:`~cerebro.callbacks.MainAppClient`. The body::

    {"event_id": "...", "topic": "listings", "partition": 3, "offset": 1234,
     "module": "vigilante", "function": "screen",
     "status": "ok", "result": {...}}                       # or
     "status": "dead_lettered", "error": {"type", "message", "field", "dlq_topic"}}

and the ``Idempotency-Key`` header is the event id (or ``topic-partition-offset``),
so the main app drops the duplicates at-least-once delivery can cause.
"""

import threading

from cerebro import jsonio
from cerebro.callbacks import MainAppClient, PermanentDeliveryError, backoff_delay


class CallbackUnavailable(Exception):
    """The main app did not take a call after the quick retries; try the event again later."""


class Notifier:
    """Posts event outcomes to the main app, retrying retryable failures a few times."""

    def __init__(self, client, base_url, path_template, retries=3, backoff=0.2,
                 max_backoff=30.0, stop_event=None):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.path_template = path_template
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop_event = stop_event or threading.Event()
        self._urls = {}

    @classmethod
    def from_settings(cls, settings, stop_event=None):
        """A notifier with its own keep-alive pool as large as the consumer's concurrency."""
        client = MainAppClient(settings.callback_secret, timeout=settings.callback_timeout,
                               maxsize=max(10, settings.consumer_concurrency))
        return cls(client, settings.main_app_url, settings.consumer_callback_path,
                   settings.consumer_retries, settings.consumer_retry_backoff,
                   settings.consumer_max_backoff, stop_event)

    def url(self, endpoint, topic):
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
    def body(event, endpoint, status, result=None, error=None):
        """The JSON body of one outcome (see the module docstring)."""
        body = {"event_id": event.key, "topic": event.topic, "partition": event.partition,
                "offset": event.offset, "module": endpoint.module, "function": endpoint.name,
                "status": status}
        if error is not None:
            body["error"] = error
        else:
            body["result"] = result
        return body

    def send(self, event, endpoint, status, result=None, error=None):
        """POST one outcome. Returns the successful attempt; raises
        :class:`~cerebro.callbacks.PermanentDeliveryError` when the main app refuses
        it (a 4xx other than 408/429) and :class:`CallbackUnavailable` when every
        quick retry failed (timeouts, connection errors, 5xx, 408, 429) or the
        consumer is stopping."""
        url = self.url(endpoint, event.topic)
        data = jsonio.dumps(self.body(event, endpoint, status, result, error))
        attempt = 0
        while True:
            outcome = self.client.attempt(url, data, event.key)
            if outcome.ok:
                return outcome
            if not outcome.retryable:
                raise PermanentDeliveryError(f"main app refused event {event.key}: "
                                             f"{outcome.describe()}", url, event.key, outcome,
                                             attempt + 1)
            if attempt >= self.retries:
                raise CallbackUnavailable(f"main app unavailable for event {event.key} after "
                                          f"{attempt + 1} attempts: {outcome.describe()}")
            delay = max(backoff_delay(attempt, self.backoff, self.max_backoff),
                        min(outcome.retry_after or 0, self.max_backoff))
            if self.stop_event.wait(delay):
                raise CallbackUnavailable(f"stopping before event {event.key} was delivered")
            attempt += 1

    def close(self):
        """Close the kept-alive connections."""
        self.client.close()
