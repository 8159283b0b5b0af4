"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Every broker name Cerebro uses (queues, exchanges, topics, routing keys), in one place.
Tagline: Call each door by one name, wherever you stand.

The API publishes to the task queues the worker consumes, ``cerebro status``
counts their depth, the subscriber and the main app meet on the pub-sub
exchanges, the consumer dead-letters to ``<topic>.dlq``: all of them take the
names from here, derived from the settings (``CEREBRO_QUEUE_PREFIX`` and
``CEREBRO_PUBSUB_*``), so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cerebro.settings import Settings

DEFAULT_QUEUE = "default"
DLQ_SUFFIX = ".dlq"
RETRY_SUFFIX = ".retry"


@dataclass(frozen=True)
class Names:
    """The broker names of one deployment."""

    queue_prefix: str
    requests: str
    results: str
    dlx: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Names:
        """The names configured by ``CEREBRO_QUEUE_PREFIX`` and ``CEREBRO_PUBSUB_*``."""
        return cls(settings.queue_prefix, settings.pubsub_requests_exchange,
                   settings.pubsub_results_exchange, settings.pubsub_dlx)

    # -- Celery task queues (RabbitMQ) --

    def task_queue(self, module: str) -> str:
        """The durable task queue of ``module`` (and its exchange): ``<prefix>.<module>``."""
        return f"{self.queue_prefix}.{module}"

    @property
    def default_task_queue(self) -> str:
        """The queue of scheduled jobs (Sherlock's digest): ``<prefix>.default``."""
        return self.task_queue(DEFAULT_QUEUE)

    def task_queues(self, modules: Iterable[str]) -> list[str]:
        """The task queues of ``modules`` and the default queue."""
        return [self.task_queue(m) for m in [*modules, DEFAULT_QUEUE]]

    def worker_queues(self, names: Iterable[str]) -> list[str]:
        """Queue names for a worker: each of ``names`` is a module (``echo``) or a full
        queue name (``cerebro.echo``)."""
        prefix = self.queue_prefix + "."
        return [n if n.startswith(prefix) else self.task_queue(n) for n in names]

    # -- pub-sub (RabbitMQ) --

    def queue(self, module: str) -> str:
        """The durable request queue of ``module``: ``<requests exchange>.<module>``."""
        return f"{self.requests}.{module}"

    def retry_queue(self, module: str) -> str:
        """Where retried requests of ``module`` wait (per-message TTL) before going back."""
        return self.queue(module) + RETRY_SUFFIX

    @property
    def dead_letter_queue(self) -> str:
        """The durable queue keeping every dead letter (named like its exchange)."""
        return self.dlx

    def pubsub_queues(self, modules: Iterable[str]) -> list[str]:
        """Every pub-sub queue of ``modules``: request and retry queues, and the dead letters."""
        modules = list(modules)
        return ([self.queue(m) for m in modules] + [self.retry_queue(m) for m in modules]
                + [self.dead_letter_queue])


def request_key(module: str, function: str) -> str:
    """The routing key of a pub-sub request: ``<module>.<function>``."""
    return f"{module}.{function}"


def result_key(module: str, function: str, status: str) -> str:
    """The routing key of a pub-sub result: ``<module>.<function>.<status>``."""
    return f"{module}.{function}.{status}"


def dlq_topic(topic: str) -> str:
    """The Kafka dead-letter topic of ``topic``: ``<topic>.dlq``."""
    return topic + DLQ_SUFFIX
