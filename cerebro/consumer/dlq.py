"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The dead-letter topic: records that cannot be processed, kept with their error and origin.
Tagline: Set the broken letter aside, label it, and keep the line moving.

A record that does not decode, does not validate, or whose handler keeps
failing is produced to ``<topic>.dlq`` with its original key and bytes and
these headers (UTF-8 values) beside its own headers::

    cerebro-error-type      invalid_payload | internal | model_not_ready | callback_refused ...
    cerebro-error           the error message
    cerebro-stage           decode | validate | handler | callback
    cerebro-source-topic    the original topic
    cerebro-source-partition, cerebro-source-offset
    cerebro-event-id        the idempotency key
    cerebro-function        module.function (when known)
    cerebro-error-id        the id Sherlock recorded the traceback under (internal errors)

Replaying is producing the value back to the original topic once fixed. The
dead-letter topics are created at start-up (:mod:`.topics`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka import KafkaProducer

from cerebro.consumer.config import producer_kwargs
from cerebro.errors import InternalError
from cerebro.names import dlq_topic

if TYPE_CHECKING:
    from kafka.consumer.fetcher import ConsumerRecord
    from kafka.producer.future import FutureRecordMetadata

    from cerebro.settings import Settings


class DeadLetters:
    """Produces dead-lettered records; thread-safe (one kafka-python producer)."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer

    @classmethod
    def from_settings(cls, settings: Settings) -> DeadLetters:
        """A dead-letter producer for the configured cluster."""
        return cls(KafkaProducer(**producer_kwargs(settings)))

    @staticmethod
    def headers(record: ConsumerRecord, error: Exception, stage: str, event_key: str,
                function: str | None = None) -> list[tuple[str, bytes]]:
        """The record's own headers plus the ``cerebro-*`` ones describing the failure."""
        items = {
            "cerebro-error-type": getattr(error, "type", type(error).__name__),
            "cerebro-error": getattr(error, "message", None) or str(error),
            "cerebro-stage": stage,
            "cerebro-source-topic": record.topic,
            "cerebro-source-partition": str(record.partition),
            "cerebro-source-offset": str(record.offset),
            "cerebro-event-id": event_key,
        }
        if function:
            items["cerebro-function"] = function
        if isinstance(error, InternalError):
            items["cerebro-error-id"] = error.error_id
        own = [(k, v) for k, v in (record.headers or []) if not k.startswith("cerebro-")]
        return own + [(k, str(v).encode("utf-8")) for k, v in items.items()]

    def send(self, record: ConsumerRecord, error: Exception, stage: str, event_key: str,
             function: str | None = None) -> FutureRecordMetadata:
        """Produce the original bytes to ``<topic>.dlq``; returns the send future
        (check it before committing the record's offset)."""
        return self.producer.send(dlq_topic(record.topic), value=record.value, key=record.key,
                                  headers=self.headers(record, error, stage, event_key, function))

    def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every pending send."""
        self.producer.flush(timeout=timeout)

    def close(self, timeout: float = 10) -> None:
        """Flush and close the producer."""
        self.producer.close(timeout=timeout)
