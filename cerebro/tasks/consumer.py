"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The worker's consumer: stop on a refused broker login; follow module folders as they come.
Tagline: Knock on every new door in the street, and never at a locked one twice.

Two additions to Celery's consumer, both installed by ``cerebro worker``
(:mod:`.cli`):

* :class:`Consumer` (``worker_consumer``, :func:`stop_on_refusal`): when
  RabbitMQ refuses the broker URL (``ACCESS_REFUSED``, ``NOT_ALLOWED``), at
  start-up or on a reconnection, Celery would stop with exit 1 or retry
  forever; retrying cannot fix it, so the consumer raises
  :class:`BrokerRefused` (the worker stops) and keeps the error in
  :data:`REFUSED`, which ``cerebro worker`` raises as a
  :class:`~cerebro.settings.ConfigurationError`: exit 2 with a message naming
  ``CEREBRO_BROKER_URL``. A broker that cannot be reached is retried as before.
* :class:`ModuleQueues`, a consumer bootstep (:func:`follow_modules`), for a
  worker serving every module (no ``--queues``): every
  ``CEREBRO_RELOAD_INTERVAL`` seconds, on the consumer's timer, the main
  process rescans the modules package (:meth:`cerebro.registry.Registry.scan`;
  its models are never loaded there). It declares the task queue of each
  module added (exactly as ``--queues`` would, bound to Celery's native delayed
  delivery on quorum queues) and consumes it with ``Consumer.add_task_queue``,
  and stops consuming a removed module's queue with ``cancel_task_queue`` (its
  messages wait in it). Both run on the consumer's own loop (directly when its
  timer fires there, else through ``call_soon``, as Celery's ``add_consumer``
  control command does). A module whose queue cannot be declared (it exists
  with other arguments) is reported and left out; the others are served. The
  pool processes learn of the new module through their own cores (:mod:`.task`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer

from cerebro.clients.rabbitmq import refusal, refused
from cerebro.reporting import report
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from kombu import Connection, Queue

    from cerebro.core import Core

log = logging.getLogger(__name__)

CONSUMER = "cerebro.tasks.consumer:Consumer"
REFUSED: list[ConfigurationError] = []  # what the broker refused, for ``cerebro worker``


class BrokerRefused(Exception):
    """RabbitMQ refused the broker URL: stops the worker (see :data:`REFUSED`)."""


def _stop_if_refused(exc: BaseException, url: str) -> None:
    """Raise :class:`BrokerRefused` (and remember why) when ``exc`` is a refusal."""
    reason = refusal(exc)
    if reason is None:
        return
    error = refused(reason, url)
    if not REFUSED:
        REFUSED.append(error)
    log.critical("%s", error)
    raise BrokerRefused(str(error)) from None


class Consumer(CeleryConsumer):
    """Celery's consumer, but a refused login stops the worker instead of a retry loop."""

    def ensure_connected(self, conn: Connection) -> Connection:
        """Connect as Celery does; raise :class:`BrokerRefused` when RabbitMQ refuses."""
        url = self.app.conf.broker_url
        ensure = conn.ensure_connection

        def refusing(errback: Callable[..., object] | None = None,
                     *args: Any, **kwargs: Any) -> Connection:
            """``ensure_connection`` whose error callback first stops on a refusal."""
            def on_error(exc: BaseException, interval: float) -> None:
                """One failed attempt: a refusal stops, anything else goes on."""
                _stop_if_refused(exc, url)
                if errback is not None:
                    errback(exc, interval)
            return ensure(on_error, *args, **kwargs)

        conn.ensure_connection = refusing  # type: ignore[method-assign]
        try:
            return super().ensure_connected(conn)
        except BrokerRefused:
            raise
        except Exception as exc:  # ACCESS_REFUSED is not retried by kombu: it lands here
            _stop_if_refused(exc, url)
            raise


class ModuleQueues(bootsteps.StartStopStep):
    """Consumer bootstep following the module folders (see the module docstring)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)
    core: Core  # set by :func:`follow_modules`

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.served = set(self.core.registry.modules)
        self.pending: set[str] = set()
        self.left_out: set[str] = set()  # queue refused by the broker: reported once
        self.timer: Any = None

    def start(self, parent: Any) -> None:
        """Rescan every ``CEREBRO_RELOAD_INTERVAL`` seconds on the consumer's timer."""
        if self.timer is None:
            self.timer = parent.timer.call_repeatedly(
                self.core.settings.reload_interval, self.rescan, (parent,))

    def stop(self, parent: Any) -> None:
        """Stop rescanning (the consumer restarts it after a reconnection)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def shutdown(self, parent: Any) -> None:
        """Stop rescanning for good."""
        self.stop(parent)

    def rescan(self, consumer: Any) -> None:
        """One rescan: consume the queues of modules added, cancel those of modules removed."""
        try:
            added, removed = self.core.registry.scan()
        except Exception as exc:  # the rescan must never stop the consumer
            report(exc, f"worker: rescanning the modules failed: {exc}", service="worker")
            return
        self.pending |= {name for name in added if name not in self.served}
        for name in removed:
            self.pending.discard(name)
            self.left_out.discard(name)
            if name in self.served:
                self.served.discard(name)
                _on_loop(consumer, consumer.cancel_task_queue, self._queue(name))
        for name in sorted(self.pending):
            self._add(consumer, name)

    def _add(self, consumer: Any, name: str) -> None:
        """Declare module ``name``'s queue, then consume it on the consumer's loop."""
        queue = self._queue(name)
        spec: Queue = consumer.app.amqp.queues.new_missing(queue)
        try:
            with consumer.app.connection_for_write() as connection:
                _declare(connection, spec, self.core.settings.queue_type)
        except Exception as exc:  # broker away: next rescan; a channel error: left out
            if not hasattr(exc, "reply_code"):
                log.warning("new module %s: queue %s not declared yet (%s: %s); trying again",
                            name, queue, type(exc).__name__, exc)
                return
            self.pending.discard(name)
            if name not in self.left_out:
                self.left_out.add(name)
                report(exc, f"new module {name}: its queue {queue} cannot be declared, so this "
                            f"worker does not serve it: {exc}", service="worker", module=name)
            return
        self.pending.discard(name)
        self.served.add(name)
        log.info("new module %s: consuming its queue %s", name, queue)
        _on_loop(consumer, _consume, consumer, spec)

    def _queue(self, name: str) -> str:
        """The task queue of module ``name``."""
        return self.core.names.task_queue(name)


def _declare(connection: Connection, spec: Queue, queue_type: str) -> None:
    """Declare ``spec`` (queue, exchange, binding) and, on quorum queues, bind it to Celery's
    native delayed delivery, as the worker does at start for its queues."""
    spec.bind(connection.default_channel).declare()
    if queue_type == "quorum":
        from kombu.transport.native_delayed_delivery import (
            bind_queue_to_native_delayed_delivery_exchange)
        bind_queue_to_native_delayed_delivery_exchange(connection, spec)


def _on_loop(consumer: Any, func: Callable[..., object], *args: object) -> None:
    """Run ``func(*args)`` on the consumer's loop: now when the timer fired on it (the event
    loop's timer, prefork and solo pools), else through ``call_soon`` (a timer thread)."""
    if consumer.hub is not None:
        func(*args)
    else:
        consumer.call_soon(func, *args)


def _consume(consumer: Any, spec: Queue) -> None:
    """On the consumer's loop: select ``spec`` and consume it (``add_task_queue``)."""
    queues = consumer.app.amqp.queues
    if spec.name not in queues:
        queues.add(spec)
    consumer.add_task_queue(spec.name)


def stop_on_refusal(app: Any) -> None:
    """Make the worker of ``app`` stop when RabbitMQ refuses its broker URL."""
    app.conf.worker_consumer = CONSUMER


def follow_modules(app: Any, core: Core) -> None:
    """Make the worker of ``app`` follow the module folders with ``core`` (the main
    process's, models not loaded): consume the queues of modules added, cancel removed ones."""

    class Step(ModuleQueues):
        """:class:`ModuleQueues` on this worker's core."""

    Step.core = core
    app.steps["consumer"].add(Step)
