"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Routing by declaration: which expose functions handle a topic, and how a record is read.
Tagline: Every letter finds its door by the name written on it.

A topic is handled by every expose function that declares it
(``@endpoint(..., topics=("listings",))``). A record's value is a JSON object;
it is decoded here and validated by the dispatch core, exactly like a REST
body. Its idempotency key is the event's own id (the field named by
``CEREBRO_CONSUMER_EVENT_ID_FIELD``) or, when it has none, ``topic-partition-offset``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kafka.util import ensure_valid_topic_name

from cerebro import jsonio
from cerebro.errors import InvalidPayload
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from kafka.consumer.fetcher import ConsumerRecord

    from cerebro.endpoint import Endpoint
    from cerebro.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One Kafka record as the consumer sees it: where it came from, its key, its payload."""

    topic: str
    partition: int
    offset: int
    key: str
    payload: object = None
    sticky_key: str | None = None  # the record's Kafka key: a canary keeps it on one version

    @property
    def position(self) -> str:
        """``topic-partition-offset``: where the record sits in Kafka."""
        return f"{self.topic}-{self.partition}-{self.offset}"


class UndecodableRecord(InvalidPayload):
    """A record whose value is not a JSON document; ``event`` says which record it is."""

    def __init__(self, message: str, event: Event) -> None:
        super().__init__(message)
        self.event = event


class Router:
    """Maps topics to the endpoints declaring them; decodes records into :class:`Event`.

    ``strict`` (start-up) raises :class:`ConfigurationError` for a topic no function
    declares, a topic name Kafka refuses, or nothing to consume; a router
    :meth:`rebuilt` while running (modules added or removed) leaves such topics out
    with an error in the log, so one module's mistake never stops the others."""

    def __init__(self, registry: Registry, topics: Iterable[str] = (),
                 event_id_field: str = "event_id", strict: bool = True) -> None:
        self.requested = tuple(topics)
        self.event_id_field = event_id_field
        table = registry.topics()
        wanted = self.requested or tuple(sorted(table))
        problems = _problems(wanted, table)
        if strict and problems:
            raise ConfigurationError("; ".join(problems))
        for problem in problems:
            log.error("%s: not consumed", problem)
        self.routes: dict[str, tuple[Endpoint, ...]] = {
            topic: tuple(table[topic]) for topic in wanted
            if topic in table and _invalid(topic) is None}
        if strict and not self.routes:
            raise ConfigurationError("no expose function declares a Kafka topic: "
                                     "nothing to consume "
                                     "(declare one with @endpoint(..., topics=(...)))")

    def rebuilt(self, registry: Registry) -> Router:
        """A router over the modules ``registry`` holds now (the same topics requested)."""
        return Router(registry, self.requested, self.event_id_field, strict=False)

    def without(self, topics: Iterable[str]) -> Router:
        """A copy of this router leaving ``topics`` out."""
        left_out = set(topics)
        router = copy.copy(self)
        router.routes = {t: e for t, e in self.routes.items() if t not in left_out}
        return router

    @property
    def topics(self) -> list[str]:
        """The topics consumed, sorted."""
        return sorted(self.routes)

    def endpoints(self, topic: str) -> tuple[Endpoint, ...]:
        """The endpoints handling ``topic``."""
        return self.routes[topic]

    def event_key(self, record: ConsumerRecord, payload: object) -> str:
        """The idempotency key: the event's own id when it has one, else topic-partition-offset."""
        if isinstance(payload, dict):
            value = payload.get(self.event_id_field)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return str(value)
        return f"{record.topic}-{record.partition}-{record.offset}"

    def decode(self, record: ConsumerRecord) -> Event:
        """An :class:`Event` for a record; raises :class:`UndecodableRecord` (an
        :class:`InvalidPayload` naming the record's event) when its value is not JSON."""
        try:
            if record.value is None:
                raise InvalidPayload("the record has no value (a tombstone)", None)
            payload = jsonio.loads(record.value)
        except InvalidPayload as exc:
            event = Event(record.topic, record.partition, record.offset,
                          self.event_key(record, None))
            raise UndecodableRecord(exc.message, event) from None
        return Event(record.topic, record.partition, record.offset,
                     self.event_key(record, payload), payload, _sticky(record.key))

    def payload_for(self, endpoint: Endpoint, payload: object) -> object:
        """The payload an endpoint is validated against: the event id field is envelope,
        so it is dropped unless the function declares it or ignores extra fields anyway."""
        field = self.event_id_field
        schema = endpoint.schema
        if (isinstance(payload, dict) and field in payload and schema.extra == "forbid"
                and field not in schema.fields):
            return {k: v for k, v in payload.items() if k != field}
        return payload


def _problems(wanted: Iterable[str], table: Mapping[str, object]) -> list[str]:
    """Why some ``wanted`` topics cannot be consumed (no handler, a name Kafka refuses)."""
    problems = []
    missing = [t for t in wanted if t not in table]
    if missing:
        declared = ", ".join(sorted(table)) or "none"
        problems.append(f"no expose function handles topic(s) {', '.join(missing)} "
                        f"(declared topics: {declared})")
    for topic in wanted:
        invalid = _invalid(topic)
        if invalid:
            problems.append(f"topic {topic!r} cannot be consumed: {invalid} (rename it in "
                            "its @endpoint(topics=...) or CEREBRO_KAFKA_TOPICS)")
    return problems


def _invalid(topic: str) -> str | None:
    """Why Kafka refuses the topic name, or None when it is valid."""
    try:
        ensure_valid_topic_name(topic)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _sticky(key: object) -> str | None:
    """A record's Kafka key as text (at most 128 characters), or ``None`` without one."""
    if isinstance(key, bytes):
        try:
            return key.decode("utf-8")[:128] or None
        except UnicodeDecodeError:
            return key.hex()[:128]  # a binary key: every byte counts, none collide
    return key[:128] if isinstance(key, str) and key else None
