"""
Author:  Cerebro team
Date:    2026-11-24
Subject: One record end to end: decode, validate, run (with retries), call the main app, or dead-letter.
Tagline: Each letter is read, answered and filed, or set aside with a note saying why.

:meth:`Processor.process` never raises: every record ends ``done`` (handled
and the main app told, or dead-lettered) or ``retry`` (the main app was
unreachable, or the consumer is stopping), and the runner commits accordingly.
Bad input (undecodable JSON, an invalid payload, a client error raised by the
handler) is dead-lettered at once; a failing handler is retried
``CEREBRO_CONSUMER_RETRIES`` times with exponential backoff first.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kafka.errors import KafkaError

from cerebro.callbacks import PermanentDeliveryError, backoff_delay
from cerebro.consumer.dlq import dlq_topic
from cerebro.consumer.notify import CallbackUnavailable
from cerebro.errors import CerebroError, InternalError, InvalidPayload
from cerebro.reporting import report

log = logging.getLogger(__name__)

DONE = "done"
RETRY = "retry"


class CallbackRefused(CerebroError):
    """The main app refused an event's outcome with a final status (a 4xx)."""

    type = "callback_refused"


@dataclass
class Outcome:
    """What became of one record: ``done`` or ``retry``, and its pending dead-letter sends."""

    record: object
    status: str = DONE
    dead_letters: list = field(default_factory=list)
    handled: int = 0
    dead: int = 0


class Processor:
    """Processes records through the dispatch core, concurrently, on a thread pool."""

    def __init__(self, router, dispatcher, notifier, dead_letters, *, concurrency=16,
                 retries=3, backoff=0.2, max_backoff=30.0, stop_event):
        self.router = router
        self.dispatcher = dispatcher
        self.notifier = notifier
        self.dead_letters = dead_letters
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop_event = stop_event
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cerebro-event")

    def process_batch(self, records, dlq_timeout=30.0):
        """Process ``records`` concurrently and return their :class:`Outcome` list, in order.

        A dead-lettered record counts as done only once the dead-letter topic
        acknowledged it; otherwise it is retried later (it is never lost).
        """
        outcomes = list(self.pool.map(self.process, records))
        if any(o.dead_letters for o in outcomes):
            try:
                self.dead_letters.flush(dlq_timeout)
            except KafkaError as exc:
                log.warning("dead-letter flush did not finish: %s", exc)
            for outcome in outcomes:
                for future in outcome.dead_letters:
                    if not (future.is_done and future.succeeded()):
                        error = future.exception if future.is_done else TimeoutError(
                            f"not acknowledged within {dlq_timeout:g}s")
                        log.warning("dead-lettering %s-%s-%s failed (%s); it will be retried",
                                    outcome.record.topic, outcome.record.partition,
                                    outcome.record.offset, error)
                        outcome.status = RETRY
                        break
        return outcomes

    def process(self, record):
        """Process one record; never raises (see the module docstring)."""
        outcome = Outcome(record)
        endpoints = self.router.endpoints(record.topic)
        try:
            event = self.router.decode(record)
        except InvalidPayload as exc:
            for endpoint in endpoints:
                self._dead_letter(outcome, exc.event, endpoint, exc, "decode")
            return outcome
        for endpoint in endpoints:
            try:
                status = self._handle(outcome, event, endpoint)
            except Exception as exc:  # a bug in the consumer itself: never stall the partition
                error = InternalError(f"consumer failed on {endpoint.key}: {type(exc).__name__}")
                report(exc, service="consumer", module=endpoint.module, function=endpoint.name,
                       event_id=event.key, error_id=error.error_id)
                self._dead_letter(outcome, event, endpoint, error, "consumer", notify=False)
                status = DONE
            if status == RETRY:
                outcome.status = RETRY
        return outcome

    def _handle(self, outcome, event, endpoint):
        """Validate, run with retries and tell the main app; returns ``done`` or ``retry``."""
        try:
            call = self.dispatcher.prepare(endpoint.module, endpoint.name,
                                           self.router.payload_for(endpoint, event.payload))
        except CerebroError as exc:
            self._dead_letter(outcome, event, endpoint, exc, "validate")
            return DONE
        attempt = 0
        while True:
            try:
                result = self.dispatcher.run(call, service="consumer", request_id=event.key)
                break
            except CerebroError as exc:
                if exc.client_error or attempt >= self.retries:
                    self._dead_letter(outcome, event, endpoint, exc, "handler")
                    return DONE
                delay = backoff_delay(attempt, self.backoff, self.max_backoff)
                log.info("event %s: %s failed (%s); retry %d/%d in %.2fs", event.key,
                         endpoint.key, exc.message, attempt + 1, self.retries, delay)
                if self.stop_event.wait(delay):
                    return RETRY
                attempt += 1
        try:
            self.notifier.send(event, endpoint, "ok", result=result)
        except PermanentDeliveryError as exc:
            self._dead_letter(outcome, event, endpoint, CallbackRefused(str(exc)), "callback",
                              notify=False)
            return DONE
        except CallbackUnavailable as exc:
            log.warning("%s; the event will be processed again", exc)
            return RETRY
        outcome.handled += 1
        return DONE

    def _dead_letter(self, outcome, event, endpoint, error, stage, notify=True):
        """Send the record to ``<topic>.dlq``, report it, and tell the main app (best effort)."""
        record = outcome.record
        target = dlq_topic(record.topic)
        report(error, f"event {event.key} ({event.position}) dead-lettered to {target} at stage "
                      f"{stage}: {getattr(error, 'type', type(error).__name__)}: {error}",
               service="consumer", module=endpoint.module, function=endpoint.name,
               event_id=event.key, stage=stage)
        outcome.dead_letters.append(
            self.dead_letters.send(record, error, stage, event.key, endpoint.key))
        outcome.dead += 1
        if not notify:
            return
        detail = error.to_dict() if isinstance(error, CerebroError) else \
            {"type": type(error).__name__, "message": str(error), "field": None}
        detail.update({"stage": stage, "dlq_topic": target})
        try:
            self.notifier.send(event, endpoint, "dead_lettered", error=detail)
        except (PermanentDeliveryError, CallbackUnavailable) as exc:
            log.warning("event %s: the main app was not told it was dead-lettered: %s",
                        event.key, exc)

    def close(self):
        """Wait for running records and stop the thread pool."""
        self.pool.shutdown(wait=True)
