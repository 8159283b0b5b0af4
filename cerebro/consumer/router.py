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

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cerebro import jsonio
from cerebro.errors import InvalidPayload
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from kafka.consumer.fetcher import ConsumerRecord

    from cerebro.endpoint import Endpoint
    from cerebro.registry import Registry


@dataclass(frozen=True)
class Event:
    """One Kafka record as the consumer sees it: where it came from, its key, its payload."""

    topic: str
    partition: int
    offset: int
    key: str
    payload: object = None

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
    """Maps topics to the endpoints declaring them; decodes records into :class:`Event`."""

    def __init__(self, registry: Registry, topics: Iterable[str] = (),
                 event_id_field: str = "event_id") -> None:
        table = registry.topics()
        wanted = tuple(topics) or tuple(sorted(table))
        missing = [t for t in wanted if t not in table]
        if missing:
            declared = ", ".join(sorted(table)) or "none"
            raise ConfigurationError(f"no expose function handles topic(s) {', '.join(missing)} "
                                     f"(declared topics: {declared})")
        if not wanted:
            raise ConfigurationError("no expose function declares a Kafka topic: "
                                     "nothing to consume "
                                     "(declare one with @endpoint(..., topics=(...)))")
        self.routes: dict[str, tuple[Endpoint, ...]] = {topic: tuple(table[topic])
                                                        for topic in wanted}
        self.event_id_field = event_id_field

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
                     self.event_key(record, payload), payload)

    def payload_for(self, endpoint: Endpoint, payload: object) -> object:
        """The payload an endpoint is validated against: the event id field is envelope,
        so it is dropped unless the function declares it or ignores extra fields anyway."""
        field = self.event_id_field
        schema = endpoint.schema
        if (isinstance(payload, dict) and field in payload and schema.extra == "forbid"
                and field not in schema.fields):
            return {k: v for k, v in payload.items() if k != field}
        return payload
