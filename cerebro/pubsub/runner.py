"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The subscriber's worker loop: handle what the prefetch window delivered as one batch.
Tagline: Empty the letterbox in one sweep, answer everything, sweep again.

The worker runs on the main thread (so signals reach it) while the
:class:`~cerebro.pubsub.session.Session` runs the connection on its own. Each
round takes every delivery waiting in the inbox (at most the prefetch window
of every queue), drops those of a lost connection (RabbitMQ redelivers them),
hands them to the :class:`~cerebro.pubsub.handler.Handler` as one batch and
gives the outcomes back to the session to publish, confirm and ack. An
isolated request (``x-cerebro-isolate``: it was held by a subscriber that died)
runs alone, with deliveries paused, so its own crash is charged to it only. SIGTERM
ends the loop after the batch in hand; the session then waits for its
confirms and closes, so unanswered requests go back to their queues.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

    from cerebro.pubsub.contract import Delivery, Outcome
    from cerebro.pubsub.handler import Handler
    from cerebro.pubsub.session import Session

log = logging.getLogger(__name__)

STATS_INTERVAL = 10.0
IDLE_WAIT = 0.5


class Runner:
    """Moves deliveries from the session's inbox through the handler and back."""

    def __init__(self, session: Session, handler: Handler, inbox: queue.SimpleQueue[Delivery],
                 stop_event: threading.Event, max_batch: int) -> None:
        self.session = session
        self.handler = handler
        self.inbox = inbox
        self.stop_event = stop_event
        self.max_batch = max_batch
        self.requests = 0
        self.stale = 0
        self.started = self.last_log = time.monotonic()

    def run(self) -> None:
        """Handle deliveries until the stop event is set."""
        while not self.stop_event.is_set():
            batch = self.take()
            if batch:
                self.round(batch)
            self.maybe_log()
        self.maybe_log(force=True)

    def take(self) -> list[Delivery]:
        """Every delivery waiting now (blocking up to :data:`IDLE_WAIT` for the first)."""
        try:
            batch = [self.inbox.get(timeout=IDLE_WAIT)]
        except queue.Empty:
            return []
        while len(batch) < self.max_batch:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def round(self, batch: Sequence[Delivery]) -> None:
        """Handle one batch of the current connection and submit its outcomes."""
        generation = self.session.generation
        fresh = self._current(batch, generation)
        if not fresh:
            return
        if any(_runs_alone(d) for d in fresh):
            self.isolated(fresh, generation)
        else:
            self._submit(self.handler.handle(fresh), generation)

    def isolated(self, batch: list[Delivery], generation: int) -> None:
        """Run one isolated request with nothing else held, so that if it kills the process
        no other request is redelivered on its account.

        Deliveries stop (consumers cancelled), everything else held is handled
        and settled first, other isolated requests go round again, then the
        one runs alone and is settled before deliveries resume.
        """
        if not self.session.pause(generation):
            return
        try:
            batch = batch + self._current(self._drain(), generation)
            alone = [d for d in batch if _runs_alone(d)]
            others = [d for d in batch if not _runs_alone(d)]
            outcomes = self.handler.handle(others) + self.handler.defer(alone[1:])
            if outcomes and not self._submit(outcomes, generation):
                return
            if not self.session.wait_settled(generation, held=1):
                return
            log.info("running request %s (%s) alone: it was held by a subscriber that died",
                     alone[0].message_id, alone[0].key)
            if self._submit(self.handler.handle(alone[:1]), generation):
                self.session.wait_settled(generation)
        finally:
            self.session.resume(generation)

    def _current(self, batch: Sequence[Delivery], generation: int) -> list[Delivery]:
        """The deliveries of ``generation`` (those of a lost connection are redelivered)."""
        fresh = [d for d in batch if d.generation == generation]
        self.stale += len(batch) - len(fresh)
        return fresh

    def _drain(self) -> list[Delivery]:
        """Everything in the inbox now, without waiting."""
        items = []
        while True:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                return items

    def _submit(self, outcomes: list[Outcome], generation: int) -> bool:
        """Hand outcomes to the session; False when their connection is gone."""
        self.requests += len(outcomes)
        if self.session.submit(outcomes, generation):
            return True
        self.stale += len(outcomes)
        return False

    def maybe_log(self, force: bool = False) -> None:
        """Log the counters every :data:`STATS_INTERVAL` seconds (or when ``force``)."""
        now = time.monotonic()
        if not force and now - self.last_log < STATS_INTERVAL:
            return
        self.last_log = now
        counts = self.handler.counts
        elapsed = max(now - self.started, 1e-9)
        log.info("subscriber: %d requests (%.0f/s), %d succeeded, %d retried, %d dead-lettered, "
                 "%d acked, %d requeued, %d returned unroutable, %d dropped with a lost "
                 "connection", self.requests, self.requests / elapsed, counts["succeeded"],
                 counts["retried"], counts["dead"], self.session.acked, self.session.nacked,
                 self.session.returned, self.stale)


def _runs_alone(delivery: Delivery) -> bool:
    """True for an isolated request to run now (a redelivered one is charged, not run)."""
    return delivery.isolate and not delivery.redelivered
