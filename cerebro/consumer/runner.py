"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The poll loop: batches in, outcomes out, offsets committed only for finished work.
Tagline: Take a handful, finish it, write down how far you got, and never lose your place.

One :class:`Runner` per process. Each round it polls a batch (up to
``CEREBRO_KAFKA_MAX_POLL_RECORDS`` records), processes it to the end on the
processor's thread pool (handlers and main-app calls run concurrently), then
commits, synchronously, the offsets the batch finished (:mod:`.offsets`).
Nothing is in flight while ``poll()`` runs, so a rebalance never takes a
partition with unfinished work; offsets still waiting for a commit (the
broker was away) are committed, or dropped to be redelivered, when their
partitions are revoked. A partition with records to retry (the main app was
unreachable, a model is not loaded yet) is rewound and paused until they are
due, while the other partitions keep flowing. SIGTERM lets the current batch
finish (waits abandon at once), commits, leaves the group and exits. Broker trouble never ends the
loop: polls, commits and dead-letter sends are retried with capped backoff. A refusal no retry
can fix (:mod:`.fatal`: a session timeout or group the broker refuses, a permission missing,
another consumer with this process's group instance id) ends it with a
:class:`~cerebro.settings.ConfigurationError`: ``cerebro consume`` exits 2 saying what to change.

Module folders added or removed while running (:meth:`Runner.follow_modules`) change what is
consumed without a restart: the core's reloader thread builds the new :class:`Router` (and
creates the new topics' dead-letter topics), and the poll thread adopts it at the top of its
next round, with a new client when the topics changed (kafka-python's consumer is not
thread-safe, so only the poll thread touches it). Records already fetched from a topic no
longer consumed are never processed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError, KafkaError

from cerebro.consumer import fatal
from cerebro.consumer.config import consumer_kwargs
from cerebro.consumer.offsets import plan
from cerebro.consumer.topics import prepare
from cerebro.outcomes import backoff_delay
from cerebro.reporting import report
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

    from kafka.consumer.fetcher import ConsumerRecord

    from cerebro.consumer.processor import Outcome, Processor
    from cerebro.consumer.router import Router
    from cerebro.core import Core
    from cerebro.registry import Registry
    from cerebro.settings import Settings

Batches = dict[TopicPartition, list["ConsumerRecord"]]

_T = TypeVar("_T")
log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
COMMIT_TIMEOUT_MS = 5000
CLOSE_TIMEOUT_MS = 2000  # a stop never waits long on a broker that does not answer
STATS_INTERVAL = 10.0


class Backoff:
    """Capped exponential backoff with jitter; :meth:`reset` after a success."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        """The next delay in seconds (grows with every call until :meth:`reset`)."""
        delay = backoff_delay(self.failures, self.base, self.cap)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Start again from the base delay."""
        self.failures = 0


class Stats:
    """Counters the runner logs every :data:`STATS_INTERVAL` seconds."""

    def __init__(self) -> None:
        self.records = self.handled = self.dead = self.retried = self.commits = 0
        self.started = self.last_log = time.monotonic()

    def add(self, outcomes: Sequence[Outcome], retried: int) -> None:
        """Count a processed batch."""
        self.records += len(outcomes)
        self.handled += sum(o.handled for o in outcomes)
        self.dead += sum(o.dead for o in outcomes)
        self.retried += retried

    def maybe_log(self, force: bool = False) -> None:
        """Log the counters when the interval passed (or when ``force``)."""
        now = time.monotonic()
        if force or now - self.last_log >= STATS_INTERVAL:
            self.last_log = now
            elapsed = max(now - self.started, 1e-9)
            log.info("consumer: %d records (%.0f/s), %d handled, %d dead-lettered, "
                     "%d to retry, %d commits", self.records, self.records / elapsed,
                     self.handled, self.dead, self.retried, self.commits)


class Runner(ConsumerRebalanceListener):
    """The consumer loop of one process (see the module docstring)."""

    def __init__(self, settings: Settings, router: Router, processor: Processor, group: str,
                 stop_event: threading.Event | None = None,
                 consumer: KafkaConsumer | None = None, instance_id: str | None = None,
                 announce: Callable[..., None] | None = None) -> None:
        self.settings = settings
        self.announce = announce  # tells the roster this consumer's partitions
        self.router = router
        self.processor = processor
        self.group = group
        self.instance_id = instance_id
        self.context = fatal.Context.of(settings, group, instance_id)
        self.next_router: Router | None = None  # set by the reloader thread, adopted by poll's
        self.router_lock = threading.Lock()
        self.stop_event = stop_event or threading.Event()
        self.consumer: KafkaConsumer = consumer  # None until connect(), after close_consumer()
        self.pending: dict[TopicPartition, int] = {}
        self.stats = Stats()
        self.outage = Backoff(settings.retry_backoff, settings.max_backoff)
        self.held: dict[TopicPartition, float] = {}  # when it resumes (monotonic seconds)
        self.failures: dict[TopicPartition, Backoff] = {}  # grows with each rewind in a row

    # -- rebalance listener (called inside poll(), on kafka-python's IO loop) --

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        """Commit (asynchronously: blocking is not allowed here) what revoked partitions
        finished and no commit took yet; nothing is in flight during a poll."""
        offsets = {tp: OffsetAndMetadata(self.pending.pop(tp), "", -1)
                   for tp in list(revoked) if tp in self.pending}
        log.info("partitions revoked: %s", _names(revoked))
        self._announce_assignment(without=revoked)
        for tp in revoked:
            self.held.pop(tp, None)
            self.failures.pop(tp, None)
        self.processor.forget(revoked)
        if offsets:
            try:
                self.consumer.commit_async(offsets)
            except (KafkaError, RuntimeError) as exc:
                log.warning("could not commit %s on revocation (%s): they will be redelivered",
                            _names(offsets), exc)

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        """Log the new assignment (positions come from the committed offsets) and resume any
        partition held before it was revoked: kafka-python keeps a partition's paused flag
        when the same consumer gets it back."""
        log.info("partitions assigned: %s", _names(assigned))
        self._announce_assignment()
        stale = [tp for tp in assigned if tp not in self.held and tp in self.consumer.paused()]
        if stale:
            self.consumer.resume(*stale)

    def on_partitions_lost(self, lost: Collection[TopicPartition]) -> None:
        """The group evicted us: uncommitted offsets of these partitions cannot be committed."""
        dropped = [tp for tp in lost if self.pending.pop(tp, None) is not None]
        log.warning("partitions lost: %s%s", _names(lost),
                    f" (uncommitted, will be redelivered: {_names(dropped)})" if dropped else "")
        self._announce_assignment(without=lost)

    def _announce_assignment(self, without: Collection[TopicPartition] = ()) -> None:
        """Tell the roster (``cerebro status --all``) the partitions this consumer holds:
        its assignment less ``without`` (kafka-python calls the revoke and lost listeners
        before it clears the assignment); none once it has no client."""
        if self.announce is None:
            return
        gone = set(without)
        held: dict[str, list[int]] = {}
        for tp in self.consumer.assignment() if self.consumer is not None else ():
            if tp not in gone:
                held.setdefault(tp.topic, []).append(tp.partition)
        self.announce(group=self.group,
                      assignment={topic: sorted(parts) for topic, parts in held.items()})

    # -- the loop --

    def connect(self) -> bool:
        """Create the kafka-python consumer and subscribe (waiting while no broker answers);
        False when stopped first."""
        self.consumer = until_connected(
            lambda: KafkaConsumer(**consumer_kwargs(self.settings, self.group,
                                                    instance_id=self.instance_id)),
            "consumer", self.settings, self.stop_event, self.context)
        if self.consumer is None:
            return False
        self.consumer.subscribe(self.router.topics, listener=self)
        log.info("consuming %s in group %s from %s (%s)", ", ".join(self.router.topics),
                 self.group, ",".join(self.settings.kafka_bootstrap),
                 f"static member {self.instance_id}" if self.instance_id
                 else "dynamic membership")
        return True

    def run(self) -> None:
        """Consume until the stop event is set; then finish, commit and leave the group."""
        if self.consumer is None and not self.connect():
            return
        try:
            while not self.stop_event.is_set():
                self.round()
                self.stats.maybe_log()
        except ConfigurationError as exc:
            log.error("stopping: %s", exc)
            self.stop_event.set()
            raise
        finally:
            self.shutdown()

    def round(self) -> None:
        """One poll, process and commit round; raises only :class:`ConfigurationError`
        (a refusal no retry fixes), never for broker trouble."""
        self.adopt_router()
        if self.consumer is None:  # nothing to consume (every module declaring a topic left)
            self.stop_event.wait(POLL_TIMEOUT_MS / 1000)
            return
        if self.pending:
            self.commit()
        self.release()
        started = time.monotonic()
        batches = self.poll()
        if batches is None:
            return
        records = self.routed(batches)
        if not records:
            if self.held:  # every record waits on a held partition: poll again soon
                self.stop_event.wait(min(0.2, max(0.0, min(self.held.values()) - started)))
            elif time.monotonic() - started < 0.05:  # returned at once: do not spin
                self.stop_event.wait(min(self.outage.next(), 2.0))
            return
        self.outage.reset()
        outcomes = self.processor.process_batch(records)
        commits, rewinds = plan(outcomes)
        for tp, offset in rewinds.items():
            self.consumer.seek(tp, offset)
        self.pending.update(commits)
        self.stats.add(outcomes, sum(1 for o in outcomes if o.status != "done"))
        self.commit()
        for tp in set(commits) - set(rewinds):
            self.failures.pop(tp, None)  # it got through: its next trouble starts afresh
        self.hold(rewinds, outcomes)

    def poll(self) -> Batches | None:
        """One ``poll()``: its batches, or None after a failure (waited out; a refusal no
        retry fixes raises :class:`ConfigurationError`)."""
        try:
            batches: Batches = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            return batches
        except KafkaError as exc:
            fatal.check(exc, self.context, f"the Kafka consumer of group {self.group}")
            delay = self.outage.next()
            log.warning("poll failed (%s); retrying in %.1fs", exc, delay)
        except Exception as exc:
            delay = self.outage.next()
            report(exc, f"consumer poll failed: {type(exc).__name__}: {exc}", service="consumer")
        self.stop_event.wait(delay)
        return None

    def routed(self, batches: Batches) -> list[ConsumerRecord]:
        """The records of the topics the router has handlers for. A client is replaced when
        the topics change, so there should be no other; should one come, it is never
        processed without a handler: its partition is rewound and paused, uncommitted."""
        records: list[ConsumerRecord] = []
        for tp, batch in batches.items():
            if tp.topic in self.router.routes:
                records.extend(batch)
            elif batch:
                self.consumer.seek(tp, batch[0].offset)
                self.consumer.pause(tp)
        return records

    # -- modules added or removed while running --

    def follow_modules(self, core: Core) -> None:
        """Consume the topics of module folders the core finds added, stop consuming those
        only removed modules declared (see the module docstring)."""
        core.on_modules_changed(
            lambda added, removed: self.modules_changed(core.registry, added, removed))

    def modules_changed(self, registry: Registry, added: list[str], removed: list[str]) -> None:
        """On the reloader thread: build the router of the modules now there, check the new
        topics and create their dead-letter topics, and leave the router for the poll thread.
        New topics the cluster refuses (missing where topics are not created, not allowed)
        are left out with an error: a new module never stops the others."""
        with self.router_lock:
            current = self.next_router or self.router
        router = current.rebuilt(registry)
        new = sorted(set(router.topics) - set(current.topics))
        if new:
            try:
                prepare(self.settings, new)
            except ConfigurationError as exc:
                log.error("not consuming the new topic(s) %s: %s", ", ".join(new), exc)
                router = router.without(new)
        log.info("modules changed (added: %s; removed: %s): topics %s",
                 ", ".join(added) or "none", ", ".join(removed) or "none",
                 ", ".join(router.topics) or "none")
        with self.router_lock:
            self.next_router = router

    def adopt_router(self) -> None:
        """On the poll thread: switch to the router the reloader left; when the topics changed,
        replace the client (see :meth:`replace_consumer`)."""
        with self.router_lock:
            router, self.next_router = self.next_router, None
        if router is None:
            return
        before = self.router.topics
        self.router = self.processor.router = router
        if router.topics != before:
            self.replace_consumer()
            log.info("now consuming %s (was %s)", ", ".join(router.topics) or "nothing",
                     ", ".join(before) or "nothing")

    def replace_consumer(self) -> None:
        """Commit what is finished, close the client (its partitions are revoked) and, when
        there is something to consume, connect a new one subscribed to the router's topics.
        A new client rather than ``subscribe()`` again: a static member changing its
        subscription in place is a corner some brokers get wrong (tansu 0.6 never completes
        that rebalance), while a member joining afresh under its instance id works on all."""
        if self.pending:
            self.commit()
        self.close_consumer()
        if self.router.topics:
            self.connect()

    def hold(self, rewinds: Mapping[TopicPartition, int], outcomes: Sequence[Outcome]) -> None:
        """Pause the rewound partitions until their records are due again; the others
        keep flowing. The wait is the outcome policy's when it gave one (a model not
        ready yet), else a backoff growing with each rewind of that partition (the main
        app or the dead-letter topic unreachable)."""
        if not rewinds:
            return
        hints: dict[TopicPartition, list[float | None]] = {}
        for outcome in outcomes:
            if outcome.status == "retry":
                tp = TopicPartition(outcome.record.topic, outcome.record.partition)
                hints.setdefault(tp, []).append(outcome.retry_after)
        now = time.monotonic()
        for tp in rewinds:
            waits = hints.get(tp, [None])
            given = [wait for wait in waits if wait is not None]
            if len(given) < len(waits):  # some record has no wait of the policy's
                backoff = self.failures.get(tp)
                if backoff is None:
                    backoff = self.failures[tp] = Backoff(self.settings.retry_backoff,
                                                          self.settings.max_backoff)
                delay = backoff.next()
            else:
                delay = min(given)
            self.held[tp] = now + delay
        self.consumer.pause(*rewinds)
        log.warning("%d partition(s) rewound to retry unfinished events in %.1fs (%s)",
                    len(rewinds), min(self.held[tp] for tp in rewinds) - now, _names(rewinds))

    def release(self) -> None:
        """Resume the held partitions that are due (and still ours)."""
        if not self.held:
            return
        now = time.monotonic()
        due = [tp for tp, until in self.held.items() if until <= now]
        for tp in due:
            del self.held[tp]
        due = [tp for tp in due if tp in self.consumer.assignment()]
        if due:
            self.consumer.resume(*due)

    def commit(self) -> bool:
        """Commit pending offsets synchronously; True when they were committed."""
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self.pending.items()}
        if not offsets:
            return True
        try:
            self.consumer.commit(offsets, timeout_ms=COMMIT_TIMEOUT_MS)
        except CommitFailedError as exc:
            # The group moved on (rebalance or eviction): these partitions may belong to
            # someone else now, who starts from the last committed offset: redelivery.
            log.warning("commit refused after a rebalance (%s); %s will be redelivered",
                        exc, _names(offsets))
            for tp in offsets:
                self.pending.pop(tp, None)
            return False
        except KafkaError as exc:
            fatal.check(exc, self.context, f"committing offsets of group {self.group}")
            delay = self.outage.next()
            log.warning("commit failed (%s); keeping %d offsets and retrying in %.1fs",
                        exc, len(offsets), delay)
            self.stop_event.wait(delay)
            return False
        for tp, meta in offsets.items():
            if self.pending.get(tp) == meta.offset:
                del self.pending[tp]
        self.stats.commits += 1
        return True

    def shutdown(self) -> None:
        """Commit what is finished, leave the group, close clients."""
        log.info("consumer stopping")
        self.stats.maybe_log(force=True)
        try:
            if self.pending and self.consumer is not None:
                self.commit()
        except ConfigurationError as exc:
            log.error("the last offsets were not committed (they will be redelivered): %s", exc)
        finally:
            self.close_consumer()

    def close_consumer(self) -> None:
        """Close the client (static members keep their partitions until their session
        times out; dynamic ones leave the group)."""
        if self.consumer is None:
            return
        try:
            self.consumer.close(autocommit=False, timeout_ms=CLOSE_TIMEOUT_MS)
        except KafkaError as exc:
            log.warning("closing the Kafka consumer: %s", exc)
        self.consumer = None
        self._announce_assignment()  # holds nothing now


def until_connected(factory: Callable[[], _T], what: str, settings: Settings,
                    stop_event: threading.Event,
                    context: fatal.Context | None = None) -> _T | None:
    """Call ``factory()`` until it stops raising ``KafkaError`` (no broker yet), waiting
    with capped backoff in between; ``None`` when ``stop_event`` is set first. A refusal
    no retry fixes (such as settings kafka-python refuses) raises
    :class:`ConfigurationError` at once."""
    backoff = Backoff(settings.retry_backoff, settings.max_backoff)
    context = context or fatal.Context.of(settings)
    while not stop_event.is_set():
        try:
            return factory()
        except KafkaError as exc:
            fatal.check(exc, context, f"creating the Kafka {what}")
            delay = backoff.next()
            log.warning("Kafka %s: no broker reachable at %s (%s); retrying in %.1fs", what,
                        ",".join(settings.kafka_bootstrap), exc, delay)
            stop_event.wait(delay)
    return None


def _names(partitions: Iterable[TopicPartition]) -> str:
    """``topic-partition`` names of some partitions, sorted, for logs."""
    return ", ".join(sorted(f"{tp.topic}-{tp.partition}" for tp in partitions)) or "none"
