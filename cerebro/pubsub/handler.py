"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Deliveries in, outcomes out: decode, validate, run in batches, answer, retry, dead-letter.
Tagline: Sort the post by door, open each door once, and leave a note for every letter.

:meth:`Handler.handle` never raises and decides, per delivery, what must be
published (and confirmed) before the request is acked:

* success: the result;
* otherwise what the outcome policy every transport shares says
  (:mod:`cerebro.outcomes`): a final error (malformed JSON, an invalid
  payload, an unknown function, a client error raised by the function) gives
  a failed result and a dead letter; a retryable one (a bug, a dependency
  unavailable) sends the request again, to the module's retry queue with
  ``x-cerebro-attempts`` + 1 and an exponential delay, and past
  ``CEREBRO_RETRIES`` retries a failed result and a dead letter; a model that
  is not ready sends it round every ``CEREBRO_MODEL_RETRY_DELAY`` seconds
  (uncharged, ``x-cerebro-waiting-since`` marking when the wait began) until
  ``CEREBRO_MODEL_WAIT`` seconds have passed;
* a redelivery (a subscriber died holding it, or RabbitMQ went away): the
  request may be the culprit or a bystander, so it is not charged but marked
  ``x-cerebro-isolate`` and sent round again; an isolated request runs alone
  (see :mod:`.runner`), and when *that* is redelivered it is charged an
  attempt. A message that kills its subscriber is thus dead-lettered after
  the retry limit instead of looping, and its neighbours are not.

Valid calls to one endpoint are run together through ``Dispatcher.run_batch``
(in chunks of the endpoint's batch size): a batch function such as
``rent_predictor.predict`` makes one vectorised call for a whole prefetch window.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cerebro.errors import FINAL, WAIT_MODEL, CerebroError, InternalError, RedeliveryLimit
from cerebro.pubsub.contract import (FAILED, SUCCEEDED, Outcome, dead_letter_message,
                                     result_message, retry_message)
from cerebro.reporting import report

if TYPE_CHECKING:
    from cerebro.core import Core
    from cerebro.dispatch import Call
    from cerebro.pubsub.contract import Delivery

log = logging.getLogger(__name__)

SERVICE = "subscriber"
DEFAULT_CHUNK = 256


class Handler:
    """Turns deliveries into :class:`~cerebro.pubsub.contract.Outcome` lists."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.dispatcher = core.dispatcher
        self.policy = core.policy
        self.names = core.names
        self.counts: Counter[str] = Counter()

    def handle(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """One outcome per delivery, in order; never raises."""
        found: dict[int, Outcome] = {}
        groups: dict[str, list[tuple[int, Delivery, Call]]] = {}
        for index, delivery in enumerate(deliveries):
            try:
                prepared = self._prepare(delivery)
            except Exception as exc:  # a bug of ours: never stall the queue
                prepared = self._bug(delivery, exc)
            if isinstance(prepared, Outcome):
                found[index] = prepared
            else:
                groups.setdefault(prepared.endpoint.key, []).append((index, delivery, prepared))
        for members in groups.values():
            endpoint = members[0][2].endpoint
            size = self.core.batch_size(endpoint) if endpoint.batch is not None else DEFAULT_CHUNK
            for start in range(0, len(members), size):
                chunk = members[start:start + size]
                for (index, delivery, _call), outcome in zip(chunk, self._run(chunk)):
                    found[index] = outcome
        outcomes = [found[index] for index in range(len(deliveries))]
        for outcome in outcomes:
            self.counts[outcome.kind] += 1
        return outcomes

    def _prepare(self, delivery: Delivery) -> Call | Outcome:
        """A validated call, or the outcome of a delivery that will not run now."""
        if delivery.redelivered and delivery.isolate:
            # It ran alone and its subscriber died (or lost RabbitMQ): charge it.
            return self._again(delivery, RedeliveryLimit(
                f"redelivered {delivery.attempts + 1} times while running alone: it kills "
                f"its subscriber (or RabbitMQ kept going away)"), "redelivery")
        if delivery.redelivered:
            # Held by a subscriber that died: maybe the culprit, maybe a bystander. Not
            # charged; from now on it runs alone, so a next death is its own.
            return Outcome(delivery, "isolated", [retry_message(
                self.names, delivery, self.policy.backoff / 10, charge=False, isolate=True)])
        try:
            payload = delivery.payload()
        except CerebroError as error:
            return self._dead(delivery, error, "decode")
        try:
            return self.dispatcher.prepare(delivery.module, delivery.function, payload,
                                           delivery.canary_key)
        except CerebroError as error:
            return self._again(delivery, error, "validate")

    def _run(self, chunk: Sequence[tuple[int, Delivery, Call]]) -> list[Outcome]:
        """Run one chunk of calls to one endpoint; one outcome per call."""
        calls = [call for _i, _d, call in chunk]
        deliveries = [delivery for _i, delivery, _c in chunk]
        try:
            results = self.dispatcher.run_batch(calls, service=SERVICE,
                                                request_ids=[d.message_id for d in deliveries])
        except Exception as exc:  # run_batch types every error; anything else is a bug of ours
            return [self._bug(delivery, exc) for delivery in deliveries]
        outcomes: list[Outcome] = []
        for delivery, call, result in zip(deliveries, calls, results):
            if isinstance(result, CerebroError):
                outcomes.append(self._again(delivery, result, "handler"))
                continue
            try:
                publish = result_message(self.names, delivery, SUCCEEDED, result=result)
            except TypeError as exc:  # a value JSON cannot hold: a bug in the function
                error = self.dispatcher.bug(exc, call, SERVICE, delivery.message_id)
                outcomes.append(self._again(delivery, error, "handler"))
                continue
            outcomes.append(Outcome(delivery, "succeeded", [publish]))
        return outcomes

    def defer(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Outcomes sending requests back through the retry queue unchanged and uncharged
        (isolated requests waiting for their turn to run alone)."""
        outcomes = [Outcome(d, "deferred", [retry_message(self.names, d, self.policy.backoff / 10,
                                                          charge=False)]) for d in deliveries]
        for outcome in outcomes:
            self.counts[outcome.kind] += 1
        return outcomes

    def _again(self, delivery: Delivery, error: CerebroError, stage: str) -> Outcome:
        """What the outcome policy says after a failed attempt: the request again through
        the retry queue, or (final) a failed result and a dead letter."""
        if error.queued is FINAL:
            return self._dead(delivery, error, stage)
        if error.queued is WAIT_MODEL:
            since = delivery.waiting_since or time.time()
            decision = self.policy.decide(error, attempt=delivery.attempts + 1,
                                          waited=time.time() - since)
            retry = decision.retry and retry_message(self.names, delivery, decision.delay,
                                                     charge=False, waiting_since=since)
        else:
            decision = self.policy.decide(error, attempt=delivery.attempts + 1, waited=0.0)
            retry = decision.retry and retry_message(self.names, delivery, decision.delay)
        if not retry:
            return self._dead(delivery, error, stage)
        log.info("request %s (%s): %s; %s, again in %.2fs", delivery.message_id, delivery.key,
                 getattr(error, "message", error), decision.reason, decision.delay)
        return Outcome(delivery, "retried", [retry])

    def _dead(self, delivery: Delivery, error: CerebroError, stage: str) -> Outcome:
        """A failed result for the caller and a dead letter; reported (never silent)."""
        report(error, f"request {delivery.message_id} ({delivery.key}) dead-lettered to "
                      f"{self.names.dlx} at stage {stage} after {delivery.attempts} retries: "
                      f"{getattr(error, 'type', type(error).__name__)}: "
                      f"{getattr(error, 'message', error)}",
               service=SERVICE, module=delivery.module, function=delivery.function or None,
               request_id=delivery.message_id, stage=stage)
        return Outcome(delivery, "dead", [result_message(self.names, delivery, FAILED, error=error),
                                          dead_letter_message(self.names, delivery, error, stage)])

    def _bug(self, delivery: Delivery, exc: Exception) -> Outcome:
        """A bug in the subscriber itself: reported, then handled like a failing function."""
        error = InternalError(f"subscriber failed on {delivery.key}: {type(exc).__name__}")
        report(exc, service=SERVICE, module=delivery.module, function=delivery.function or None,
               request_id=delivery.message_id, error_id=error.error_id)
        try:
            return self._again(delivery, error, "subscriber")
        except Exception as again:  # cannot even build the retry: keep the message safe
            report(again, service=SERVICE, request_id=delivery.message_id)
            return Outcome(delivery, "requeued")
