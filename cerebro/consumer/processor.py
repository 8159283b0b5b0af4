"""
Author:  Cerebro team
Date:    2026-11-24
Subject: A polled batch: decode, validate, run in batches, call the main app or dead-letter.
Tagline: Sort the sack by addressee, answer each pile at once, and file every letter.

:meth:`Processor.process_batch` never raises, but for a
:class:`~cerebro.settings.ConfigurationError` when the dead-letter topic refuses
this client in a way no retry fixes (:mod:`.fatal`; nothing of the batch is
committed then): every record ends ``done`` (handled and the main app told, or
dead-lettered) or ``retry`` (the main app or the dead-letter topic was
unreachable, or the consumer is stopping), and the runner commits accordingly.
The steps, for one polled batch:

1. decode every record; one that is not JSON is dead-lettered (stage ``decode``);
2. validate it for each endpoint of its topic; invalid ones are dead-lettered
   (stage ``validate``); the valid calls are grouped by endpoint;
3. run each endpoint's group through :meth:`cerebro.dispatch.Dispatcher.run_batch`,
   the same mechanism as REST micro-batching: a batch function
   (``@endpoint(..., batch=Batching(max_size=N))``) gets up to ``N`` inputs per
   call; a plain function is called once per event, spread over the thread pool;
4. post every outcome to the main app together (:mod:`.notify`).

Failures follow the outcome policy every transport shares
(:mod:`cerebro.outcomes`): a final error (a client error such as
``InvalidPayload``) is dead-lettered at once (stage ``handler``); a retryable
one (a bug, a dependency unavailable) is retried in place ``CEREBRO_RETRIES``
times with exponential backoff, then dead-lettered; a model that is not ready
makes its record wait: the record ends ``retry`` with a ``retry_after`` hint,
its partition is rewound and paused that long, and it is tried again every
``CEREBRO_MODEL_RETRY_DELAY`` seconds until ``CEREBRO_MODEL_WAIT`` seconds
after this process first saw it fail, then dead-lettered. When a *whole* batch
call fails, it is bisected at once so one poison record does not fail its
neighbours: halves that succeed are done, failing halves are split again down
to the record. If both halves of a split fail too, the failure is not one
record's: the rows are retried as a batch, and only the last attempt isolates
every record before dead-lettering. A dead-lettered record counts as done only
once the dead-letter topic acknowledged it.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kafka.errors import KafkaError

import sherlock
from cerebro.callbacks import PermanentDeliveryError
from cerebro.consumer import fatal
from cerebro.consumer.notify import CallbackUnavailable
from cerebro.consumer.router import UndecodableRecord
from cerebro.errors import FINAL, WAIT_MODEL, CallbackRefused, CerebroError, InternalError
from cerebro.names import dlq_topic
from cerebro.reporting import report

if TYPE_CHECKING:
    import threading
    from collections.abc import Collection, Sequence
    from typing import TypeGuard

    from kafka import TopicPartition
    from kafka.consumer.fetcher import ConsumerRecord
    from kafka.producer.future import FutureRecordMetadata

    from cerebro.consumer.dlq import DeadLetters
    from cerebro.consumer.notify import Note, Notifier
    from cerebro.consumer.router import Event, Router
    from cerebro.core import Core
    from cerebro.dispatch import Call
    from cerebro.endpoint import Endpoint

log = logging.getLogger(__name__)

DONE = "done"
RETRY = "retry"


@dataclass
class Outcome:
    """What became of one record: ``done`` or ``retry`` (``retry_after`` seconds, when the
    policy says how long), and its pending dead-letter sends."""

    record: ConsumerRecord
    status: str = DONE
    dead_letters: list[FutureRecordMetadata] = field(default_factory=list)
    handled: int = 0
    dead: int = 0
    retry_after: float | None = None


@dataclass(frozen=True)
class Later:
    """A row the policy retries after ``delay`` seconds on a later poll (its model is not
    ready): the record is rewound, not retried in place."""

    delay: float


@dataclass
class _Item:
    """One valid call of a batch: the record's outcome, its event and the prepared call."""

    outcome: Outcome
    event: Event
    call: Call


def _whole_failure(values: Sequence[object]) -> TypeGuard[Sequence[CerebroError]]:
    """True when a multi-row batch call failed as a whole (every row the same error)."""
    first = values[0]
    return len(values) > 1 and isinstance(first, CerebroError) and \
        all(value is first for value in values)


class Processor:
    """Processes polled batches through the core (see the module docstring)."""

    def __init__(self, router: Router, core: Core, notifier: Notifier,
                 dead_letters: DeadLetters, *, stop_event: threading.Event) -> None:
        self.router = router
        self.core = core
        self.dispatcher = core.dispatcher
        self.policy = core.policy
        self.notifier = notifier
        self.dead_letters = dead_letters
        self.concurrency = max(1, core.settings.consumer_concurrency)
        self.stop_event = stop_event
        self.context = fatal.Context.of(core.settings)
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency,
                                       thread_name_prefix="cerebro-event")
        # (topic, partition, offset) -> when its wait for a model began
        # (topic, partition, offset, handler) -> when that handler's wait for its model began
        self.first_failed: dict[tuple[str, int, int, str], float] = {}

    # -- one polled batch --

    def process_batch(self, records: Sequence[ConsumerRecord],
                      dlq_timeout: float = 30.0) -> list[Outcome]:
        """Process ``records`` and return their :class:`Outcome` list, in order."""
        outcomes = [Outcome(record) for record in records]
        notes: list[tuple[Outcome, Note, bool]] = []
        groups: dict[str, tuple[Endpoint, list[_Item]]] = {}
        for outcome in outcomes:
            self._prepare(outcome, groups, notes)
        for endpoint, items in groups.values():
            try:
                values = self._run_group(endpoint, items)
            except Exception as exc:  # a bug in the consumer itself: never stall the partition
                error = InternalError(f"consumer failed on {endpoint.key}: {type(exc).__name__}")
                report(exc, service="consumer", module=endpoint.module, function=endpoint.name,
                       error_id=error.error_id, batch_size=len(items))
                values = [error] * len(items)
            for item, value in zip(items, values):
                self._conclude(item, endpoint, value, notes)
        self._notify(notes)
        self._await_dead_letters(outcomes, dlq_timeout)
        return outcomes

    def _prepare(self, outcome: Outcome, groups: dict[str, tuple[Endpoint, list[_Item]]],
                 notes: list[tuple[Outcome, Note, bool]]) -> None:
        """Decode and validate one record, adding its valid calls to ``groups``."""
        record = outcome.record
        endpoints = self.router.endpoints(record.topic)
        try:
            event = self.router.decode(record)
        except UndecodableRecord as exc:
            for endpoint in endpoints:
                self._dead_letter(outcome, exc.event, endpoint, exc, "decode", notes)
            return
        for endpoint in endpoints:
            try:
                call = self.dispatcher.prepare(endpoint.module, endpoint.name,
                                               self.router.payload_for(endpoint, event.payload),
                                               sticky_key=event.sticky_key or event.key)
            except CerebroError as exc:
                later = self._wait(record, endpoint, exc) if exc.queued is WAIT_MODEL else None
                if later is not None:  # a module that failed to import: wait like for a model
                    self._later(outcome, later)
                else:
                    self._dead_letter(outcome, event, endpoint, exc, "validate", notes)
                continue
            group = groups.get(endpoint.key)
            if group is None:
                group = groups[endpoint.key] = (endpoint, [])
            group[1].append(_Item(outcome, event, call))

    def _conclude(self, item: _Item, endpoint: Endpoint, value: object,
                  notes: list[tuple[Outcome, Note, bool]]) -> None:
        """Turn one row's final value into a main-app note, a dead letter or a retry."""
        if value is RETRY:
            item.outcome.status = RETRY
            return
        if isinstance(value, Later):
            self._later(item.outcome, value)
            return
        self.first_failed.pop(_waiting(item.outcome.record, endpoint), None)
        if isinstance(value, CerebroError):
            self._dead_letter(item.outcome, item.event, endpoint, value, "handler", notes)
            return
        try:
            note = self.notifier.note(item.event, endpoint, "ok", result=value)
        except TypeError as exc:
            error: CerebroError
            try:  # reports a result JSON cannot hold as the handler's bug
                self.dispatcher.encode(value, item.call, service="consumer",
                                       request_id=item.event.key)
                error = InternalError(f"consumer could not encode the outcome of {endpoint.key}")
                report(exc, service="consumer", module=endpoint.module, function=endpoint.name,
                       event_id=item.event.key, error_id=error.error_id)
            except CerebroError as encode_error:
                error = encode_error
            self._dead_letter(item.outcome, item.event, endpoint, error, "handler", notes)
            return
        notes.append((item.outcome, note, True))

    # -- running handlers --

    def _run_group(self, endpoint: Endpoint, items: Sequence[_Item]) -> list[object]:
        """Run every call of one endpoint, retried as the outcome policy says; one value per
        item: a result, a final :class:`CerebroError`, :class:`Later` (wait for the model on
        a later poll) or :data:`RETRY` (stopping while waiting)."""
        values: list[object] = [None] * len(items)
        pending = list(range(len(items)))
        attempt = 1
        while pending:
            last = attempt > self.policy.retries
            got = self._run_all(endpoint, [items[i] for i in pending], last)
            retry: list[int] = []
            delay = 0.0
            first = ("", "", "")  # the first row to retry: its key, its error, the reason
            for index, value in zip(pending, got):
                values[index] = value
                if not isinstance(value, CerebroError):
                    continue
                if value.queued is WAIT_MODEL:
                    values[index] = self._wait(items[index].outcome.record, endpoint,
                                               value) or value
                    continue
                decision = self.policy.decide(value, attempt=attempt, waited=0.0)
                if decision.retry:
                    retry.append(index)
                    delay = max(delay, decision.delay)
                    if not first[0]:
                        first = (items[index].event.key, value.message, decision.reason)
            if not retry:
                break
            log.info("%d event(s) of %s failed (first %s: %s); %s in %.2fs", len(retry),
                     endpoint.key, *first, delay)
            if self.stop_event.wait(delay):
                for index in retry:
                    values[index] = RETRY
                break
            pending = retry
            attempt += 1
        return values

    def _wait(self, record: ConsumerRecord, endpoint: Endpoint,
              error: CerebroError) -> Later | None:
        """A :class:`Later` while the policy still waits for the model of ``endpoint`` (one of
        ``record``'s handlers), else None (the wait is over: the error is final)."""
        now = time.monotonic()
        key = _waiting(record, endpoint)
        started = self.first_failed.setdefault(key, now)
        decision = self.policy.decide(error, attempt=1, waited=now - started)
        if decision.retry:
            return Later(decision.delay)
        self.first_failed.pop(key, None)
        return None

    def forget(self, partitions: Collection[TopicPartition]) -> None:
        """Drop the waits of records of ``partitions`` (revoked: their next owner decides)."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for key in [k for k in self.first_failed if (k[0], k[1]) in gone]:
            del self.first_failed[key]

    def _later(self, outcome: Outcome, later: Later) -> None:
        """Mark ``outcome`` to be consumed again after the policy's delay (rewound)."""
        outcome.status = RETRY
        outcome.retry_after = min(outcome.retry_after or later.delay, later.delay)

    def _run_all(self, endpoint: Endpoint, items: Sequence[_Item],
                 thorough: bool) -> list[object]:
        """One attempt at ``items``: batch functions in chunks of ``max_size`` (one at a
        time, isolating whole-chunk failures), plain ones spread over the pool."""
        if endpoint.batch is not None:
            size = self.core.batch_size(endpoint)
            values = []
            for start in range(0, len(items), size):
                values += self._isolate(endpoint, items[start:start + size], thorough)
            return values
        size = -(-len(items) // self.concurrency)
        chunks = [items[start:start + size] for start in range(0, len(items), size)]
        values = []
        for chunk_values in (map if len(chunks) == 1 else self.pool.map)(
                lambda chunk: [self._run(endpoint, [item])[0] for item in chunk], chunks):
            values += chunk_values
        return values

    def _isolate(self, endpoint: Endpoint, items: Sequence[_Item],
                 thorough: bool) -> list[object]:
        """Run one chunk; when the whole call fails, find the rows that make it fail."""
        values = self._run(endpoint, items)
        if not _whole_failure(values):
            return values
        return self._bisect(endpoint, items, values[0], thorough)

    def _bisect(self, endpoint: Endpoint, items: Sequence[_Item], error: CerebroError,
                thorough: bool) -> list[object]:
        """Values of ``items`` whose batch call failed as a whole with ``error``."""
        mid = len(items) // 2
        halves = (items[:mid], items[mid:])
        outs = [self._run(endpoint, half) for half in halves]
        failed = [len(half) > 1 and _whole_failure(out) or
                  (len(half) == 1 and isinstance(out[0], CerebroError))
                  for half, out in zip(halves, outs)]
        if all(failed):
            # Both halves fail: not one poison record. Retry them all later unless this
            # is the last attempt (or a final error, never retried): then row by row.
            if not (thorough or error.queued is FINAL):
                return outs[0] + outs[1]
            values = []
            for half, out in zip(halves, outs):
                values += out if len(half) == 1 else \
                    [self._run(endpoint, [item])[0] for item in half]
            return values
        values = []
        for half, out, bad in zip(halves, outs, failed):
            # a bad half failed as a whole: out[0] is the CerebroError of every row
            values += (self._bisect(endpoint, half, out[0], thorough)  # type: ignore[arg-type]
                       if bad and len(half) > 1 else out)
        return values

    def _run(self, endpoint: Endpoint, items: Sequence[_Item]) -> list[object]:
        """One :meth:`~cerebro.dispatch.Dispatcher.run_batch` call; a lone event's id is
        in Sherlock's context, so a handler's traceback is recorded with its event id."""
        calls = [item.call for item in items]
        keys = [item.event.key for item in items]
        if len(items) == 1:
            with sherlock.watching(event_id=keys[0]):
                return self.dispatcher.run_batch(calls, service="consumer", request_ids=keys)
        return self.dispatcher.run_batch(calls, service="consumer", request_ids=keys)

    # -- the main app and the dead-letter topic --

    def _notify(self, notes: list[tuple[Outcome, Note, bool]]) -> None:
        """Make every main-app call of the batch; a refused outcome is dead-lettered, an
        undeliverable one makes its record retry later."""
        if not notes:
            return
        try:
            results = self.notifier.send_many([note for _, note, _ in notes])
        except Exception as exc:  # a bug of ours: retry the records rather than lose them
            report(exc, service="consumer", batch_size=len(notes))
            results = [CallbackUnavailable(f"{type(exc).__name__}: {exc}")] * len(notes)
        for (outcome, note, final), result in zip(notes, results):
            if result is None:
                if final:
                    outcome.handled += 1
            elif not final:
                log.warning("event %s: the main app was not told it was dead-lettered: %s",
                            note.event.key, result)
            elif isinstance(result, PermanentDeliveryError):
                self._dead_letter(outcome, note.event, note.endpoint, CallbackRefused(str(result)),
                                  "callback", None)
            else:
                log.warning("%s; the event will be processed again", result)
                outcome.status = RETRY

    def _dead_letter(self, outcome: Outcome, event: Event, endpoint: Endpoint, error: Exception,
                     stage: str, notes: list[tuple[Outcome, Note, bool]] | None) -> None:
        """Send the record to ``<topic>.dlq`` and report it; queue the main-app call telling
        it (best effort) when ``notes`` is a list."""
        record = outcome.record
        target = dlq_topic(record.topic)
        try:
            sent = self.dead_letters.send(record, error, stage, event.key, endpoint.key)
        except KafkaError as exc:
            fatal.check(exc, self.context, f"producing to the dead-letter topic {target}")
            log.warning("dead-lettering %s failed (%s); it will be retried", event.position, exc)
            outcome.status = RETRY
            return
        report(error, f"event {event.key} ({event.position}) dead-lettered to {target} at stage "
                      f"{stage}: {getattr(error, 'type', type(error).__name__)}: {error}",
               service="consumer", module=endpoint.module, function=endpoint.name,
               event_id=event.key, stage=stage)
        outcome.dead_letters.append(sent)
        outcome.dead += 1
        if notes is None:
            return
        detail: dict[str, object] = error.to_dict() if isinstance(error, CerebroError) else \
            {"type": type(error).__name__, "message": str(error), "field": None}
        detail.update({"stage": stage, "dlq_topic": target})
        notes.append((outcome, self.notifier.note(event, endpoint, "dead_lettered", error=detail),
                      False))

    def _await_dead_letters(self, outcomes: Sequence[Outcome], dlq_timeout: float) -> None:
        """Wait for the dead-letter sends; a record whose send failed is retried later."""
        if not any(o.dead_letters for o in outcomes):
            return
        try:
            self.dead_letters.flush(dlq_timeout)
        except KafkaError as exc:
            log.warning("dead-letter flush did not finish: %s", exc)
        for outcome in outcomes:
            for future in outcome.dead_letters:
                if not (future.is_done and future.succeeded()):
                    error = future.exception if future.is_done else TimeoutError(
                        f"not acknowledged within {dlq_timeout:g}s")
                    fatal.check(error, self.context,
                                f"producing to {dlq_topic(outcome.record.topic)}")
                    log.warning("dead-lettering %s-%s-%s failed (%s); it will be retried",
                                outcome.record.topic, outcome.record.partition,
                                outcome.record.offset, error)
                    outcome.status = RETRY
                    break

    def close(self) -> None:
        """Wait for running handlers and stop the thread pool."""
        self.pool.shutdown(wait=True)


def _waiting(record: ConsumerRecord, endpoint: Endpoint) -> tuple[str, int, int, str]:
    """The key of one handler's wait on one record: ``(topic, partition, offset, handler)``."""
    return record.topic, record.partition, record.offset, endpoint.key
