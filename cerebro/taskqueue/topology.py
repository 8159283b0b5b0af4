"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The RabbitMQ objects behind the task queues: which exist, and removing them.
Tagline: Leave the broker as you found it.

Three kinds of objects live on the broker for the async path:

* Cerebro's own, one pair per module plus the default queue: the queue
  ``<CEREBRO_QUEUE_PREFIX>.<module>`` and the exchange of the same name
  (:meth:`cerebro.names.Names.task_queues`);
* Celery's shared ones, declared by workers, Flower and ``celery inspect``:
  the event exchange ``celeryev``, the ``celery.pidbox`` and
  ``reply.celery.pidbox`` exchanges, and with quorum queues the native
  delayed-delivery topology (exchanges and quorum queues ``celery_delayed_0``
  to ``celery_delayed_27``, exchange ``celery_delayed_delivery``), shared by
  every Celery application on the virtual host (:data:`SHARED_QUEUES`,
  :data:`SHARED_EXCHANGES`);
* Celery's auto-delete queues (one pidbox queue per worker, Flower's event
  queues), which vanish with their consumer.

:func:`delete` removes queues (only empty ones when asked) and exchanges: the
migration to another queue type (``cerebro queues delete``) and the tests
and benchmark, which use their own prefixes and, with :class:`SharedSnapshot`,
remove the shared objects they created and no others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kombu import Connection
from kombu.transport.native_delayed_delivery import (CELERY_DELAYED_DELIVERY_EXCHANGE, MAX_LEVEL,
                                                     level_name)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from kombu.transport.pyamqp import Channel

DELAYED_QUEUES = tuple(level_name(level) for level in range(MAX_LEVEL + 1))
SHARED_QUEUES = DELAYED_QUEUES
SHARED_EXCHANGES = ("celeryev", "celery.pidbox", "reply.celery.pidbox",
                    CELERY_DELAYED_DELIVERY_EXCHANGE) + DELAYED_QUEUES


def _broker_error(exc: Exception) -> bool:
    """True for an AMQP channel error (404 NOT_FOUND, 406 PRECONDITION_FAILED...)."""
    return hasattr(exc, "reply_code") or "NOT_FOUND" in str(exc) or "PRECONDITION" in str(exc)


def existing(url: str, queues: Iterable[str] = (), exchanges: Iterable[str] = (),
             timeout: float = 2) -> tuple[list[str], list[str]]:
    """``(queues, exchanges)``: the names among those given that exist on the broker."""
    found: tuple[list[str], list[str]] = ([], [])
    with Connection(url, connect_timeout=timeout) as conn:
        for names, kind, into in ((queues, "queue", found[0]),
                                  (exchanges, "exchange", found[1])):
            for name in names:
                # a 404 closes the channel: one per check. kombu's stubs say a bare
                # StdChannel; on an AMQP URL it is py-amqp's, with the AMQP methods
                channel: Channel = conn.channel()  # type: ignore[assignment]
                try:
                    if kind == "queue":
                        channel.queue_declare(queue=name, passive=True)
                    else:
                        channel.exchange_declare(exchange=name, type="direct", passive=True)
                    into.append(name)
                except Exception as exc:  # noqa: BLE001 - anything but a 404 is news
                    if not _broker_error(exc):
                        raise
                finally:
                    _close(channel)
    return found


def delete(url: str, queues: Iterable[str] = (), exchanges: Iterable[str] = (),
           if_empty: bool = False, timeout: float = 2) -> dict[str, int | None]:
    """Delete ``queues`` (only empty ones with ``if_empty``), then ``exchanges``.

    A name that does not exist is no error. Returns ``{name: messages}`` of the
    queues kept because they still held messages.
    """
    kept: dict[str, int | None] = {}
    with Connection(url, connect_timeout=timeout) as conn:
        for name in queues:
            # py-amqp's channel on an AMQP URL (kombu's stubs say a bare StdChannel)
            channel: Channel = conn.channel()  # type: ignore[assignment]
            try:
                if if_empty:
                    # py-amqp answers the declare-ok tuple (its stubs allow None, for nowait)
                    _, messages, _ = channel.queue_declare(  # type: ignore[misc]
                        queue=name, passive=True)
                    if messages:
                        kept[name] = messages
                        continue
                channel.queue_delete(name, if_empty=if_empty)
            except Exception as exc:  # noqa: BLE001 - 404: gone already; 406: not empty
                if not _broker_error(exc):
                    raise
                if "PRECONDITION" in str(exc):
                    kept[name] = None
            finally:
                _close(channel)
        for name in exchanges:
            channel = conn.channel()  # type: ignore[assignment]  # as above
            try:
                channel.exchange_delete(name)
            except Exception as exc:  # noqa: BLE001 - a missing exchange
                if not _broker_error(exc):
                    raise
            finally:
                _close(channel)
    return kept


class SharedSnapshot:
    """Which of Celery's shared objects exist now, so that :meth:`restore` removes only
    those created since (by the tests or benchmark that took the snapshot)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.queues, self.exchanges = existing(url, SHARED_QUEUES, SHARED_EXCHANGES)

    def restore(self) -> None:
        """Delete the shared queues and exchanges that did not exist at the snapshot."""
        delete(self.url, [q for q in SHARED_QUEUES if q not in self.queues],
               [e for e in SHARED_EXCHANGES if e not in self.exchanges])


def _close(channel: Channel) -> None:
    """Close ``channel``; one the broker closed already is fine."""
    try:
        channel.close()
    except Exception:  # noqa: BLE001 - closed by the broker after a channel error
        pass
