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

from kombu import Connection
from kombu.transport.native_delayed_delivery import (CELERY_DELAYED_DELIVERY_EXCHANGE, MAX_LEVEL,
                                                     level_name)

DELAYED_QUEUES = tuple(level_name(level) for level in range(MAX_LEVEL + 1))
SHARED_QUEUES = DELAYED_QUEUES
SHARED_EXCHANGES = ("celeryev", "celery.pidbox", "reply.celery.pidbox",
                    CELERY_DELAYED_DELIVERY_EXCHANGE) + DELAYED_QUEUES


def _broker_error(exc):
    """True for an AMQP channel error (404 NOT_FOUND, 406 PRECONDITION_FAILED...)."""
    return hasattr(exc, "reply_code") or "NOT_FOUND" in str(exc) or "PRECONDITION" in str(exc)


def existing(url, queues=(), exchanges=(), timeout=2):
    """``(queues, exchanges)``: the names among those given that exist on the broker."""
    found = ([], [])
    with Connection(url, connect_timeout=timeout) as conn:
        for names, kind, into in ((queues, "queue", found[0]),
                                  (exchanges, "exchange", found[1])):
            for name in names:
                channel = conn.channel()  # a 404 closes the channel: one per check
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


def delete(url, queues=(), exchanges=(), if_empty=False, timeout=2):
    """Delete ``queues`` (only empty ones with ``if_empty``), then ``exchanges``.

    A name that does not exist is no error. Returns ``{name: messages}`` of the
    queues kept because they still held messages.
    """
    kept = {}
    with Connection(url, connect_timeout=timeout) as conn:
        for name in queues:
            channel = conn.channel()
            try:
                if if_empty:
                    _, messages, _ = channel.queue_declare(queue=name, passive=True)
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
            channel = conn.channel()
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

    def __init__(self, url):
        self.url = url
        self.queues, self.exchanges = existing(url, SHARED_QUEUES, SHARED_EXCHANGES)

    def restore(self):
        """Delete the shared queues and exchanges that did not exist at the snapshot."""
        delete(self.url, [q for q in SHARED_QUEUES if q not in self.queues],
               [e for e in SHARED_EXCHANGES if e not in self.exchanges])


def _close(channel):
    """Close ``channel``; one the broker closed already is fine."""
    try:
        channel.close()
    except Exception:  # noqa: BLE001 - closed by the broker after a channel error
        pass
