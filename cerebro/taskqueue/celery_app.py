"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Celery application, configured from Cerebro's settings: durable, late-acked, JSON only.
Tagline: Nothing leaves the queue until the work is done.

:func:`make_app` builds the app from the settings the process started with
(nothing is configured at import time), so ``cerebro worker``, ``beat``,
``flower`` and the API's submitter share one configuration; the worker's
tasks (:mod:`cerebro.tasks.task`) are shared tasks that join every app made
in a process that imported them:

* tasks are acknowledged *after* they run (``task_acks_late``) and requeued
  when a worker process dies (``task_reject_on_worker_lost``), one at a time
  per process by default (``worker_prefetch_multiplier`` is
  ``CEREBRO_WORKER_PREFETCH``, 1; 2 lets the next task arrive while one runs):
  a worker killed with ``kill -9`` loses nothing, its tasks run again on the
  next worker. Delivery is therefore at-least-once;
* messages are persistent and every queue is durable: one queue per module,
  ``<CEREBRO_QUEUE_PREFIX>.<module>`` (:mod:`cerebro.names`), so a slow module never starves the
  others and workers can be started for chosen modules;
* the queues are RabbitMQ *quorum* queues (``CEREBRO_QUEUE_TYPE``, default
  ``quorum``): their publisher confirms come faster and steadier than a classic
  queue's, which is what the API's 202 waits for. Each queue is bound to a
  *topic* exchange of its own name, so countdown tasks (callback retries, the
  model-not-ready wait) go through Celery's native delayed delivery (the
  ``celery_delayed_*`` exchanges and queues a worker declares at start) instead
  of being held unacknowledged by a worker; quorum queues have whole-second
  delays, see :func:`countdown`. The worker notices the quorum queues and uses
  per-consumer prefetch (quorum queues refuse global QoS).
  ``CEREBRO_QUEUE_TYPE=classic`` declares exactly what Cerebro declared before
  (classic queues, direct exchanges), for a deployment not migrated yet;
* messages and results are plain JSON (ids, payloads, results), never pickles;
* a task's states go to Redis through :class:`~cerebro.taskqueue.backend.RedisBackend`:
  Celery's rule (a stored ``SUCCESS`` is never overwritten) in one script call instead
  of a read and a write; the worker's monitoring events (for Flower) go out without
  publisher confirms (:mod:`cerebro.taskqueue.events`), every task message with them;
* Sherlock's digest is registered here (task ``sherlock.digest`` on the
  default queue, and its Celery beat entry at ``SHERLOCK_DIGEST_AT``, or every
  ``SHERLOCK_DIGEST_EVERY`` seconds): ``cerebro beat`` schedules it, any ``cerebro
  worker`` serving the default queue runs it;
* beat's scheduler is celery-redbeat (:func:`beat_options`): the schedule lives in
  the Redis of ``CEREBRO_RESULT_BACKEND`` under keys prefixed by the queue prefix
  (:func:`beat_key_prefix`), and only the beat holding the Redis lock sends tasks.
  Every node of a deployment may run ``cerebro beat``: one is active, the others
  wait for the lock, and one of them takes over within about
  ``CEREBRO_BEAT_LOCK_TIMEOUT`` when the active one dies. The scheduler
  (:class:`~cerebro.taskqueue.beat.CerebroBeatScheduler`) stores the schedule
  again when Redis lost it (a restart without persistence).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from cerebro.names import Names
from cerebro.taskqueue.backend import backend_url
from cerebro.settings import Settings

RUN_TASK = "cerebro.run"
DELIVER_TASK = "cerebro.deliver_callback"
BEAT_SCHEDULER = "cerebro.taskqueue.beat:CerebroBeatScheduler"
BEAT_STATUS_NAME = "beat.json"


def beat_key_prefix(settings: Settings) -> str:
    """Prefix of beat's Redis keys (schedule, entries, lock): ``<CEREBRO_QUEUE_PREFIX>:redbeat:``,
    so two deployments (or test runs) sharing a Redis never share a schedule or a lock."""
    return f"{settings.queue_prefix}:redbeat:"


def beat_lock_key(settings: Settings) -> str:
    """The Redis key of the lock the active beat holds (redbeat's ``<prefix>:lock``)."""
    return beat_key_prefix(settings) + ":lock"


def beat_entry_key(settings: Settings, name: str) -> str:
    """The Redis hash of beat entry ``name`` (its definition and last run)."""
    return beat_key_prefix(settings) + name


def beat_status_path(settings: Settings) -> Path:
    """``CEREBRO_STATE_DIR/beat.json``: the running ``cerebro beat``'s pid and role (``active``:
    it holds the lock; ``standby``: it waits for it); removed when beat exits."""
    return Path(settings.state_dir) / BEAT_STATUS_NAME


def beat_options(settings: Settings) -> dict[str, Any]:
    """Celery settings making beat a celery-redbeat scheduler on the result backend's Redis:
    one active beat per deployment, holding a lock that expires ``CEREBRO_BEAT_LOCK_TIMEOUT``
    seconds after its last renewal. A Redis outage shorter than that is retried, not fatal.

    Only ``cerebro beat``'s app gets them: ``redbeat_redis_url`` carries the Redis password and
    Celery does not mask that key, so on a worker it would be shown to anyone asking the
    worker's configuration (Flower's Config tab, ``celery inspect conf``)."""
    timeout = settings.beat_lock_timeout
    return {
        "beat_scheduler": BEAT_SCHEDULER,
        "redbeat_redis_url": settings.result_backend.get_secret_value(),
        "redbeat_key_prefix": beat_key_prefix(settings),
        "redbeat_lock_timeout": timeout,
        "redbeat_redis_options": {"socket_connect_timeout": settings.broker_timeout,
                                  "socket_timeout": max(2.0, settings.broker_timeout),
                                  "retry_period": timeout},
    }


def queue_options(settings: Settings) -> dict[str, Any]:
    """Celery settings declaring every task queue with ``settings.queue_type``.

    Quorum: the default queue and the queues Celery creates on first use
    (``task_create_missing_queues``) are quorum queues bound to a topic exchange
    of their own name (native delayed delivery skips direct exchanges). Classic:
    classic queues on direct exchanges, as before.
    """
    default = Names.from_settings(settings).default_task_queue
    if settings.queue_type == "classic":
        return {"task_default_queue_type": "classic",
                "task_create_missing_queue_type": "classic",
                "task_queues": [Queue(default, durable=True)]}
    quorum = {"x-queue-type": "quorum"}
    return {
        "task_default_queue_type": "quorum",
        "task_create_missing_queue_type": "quorum",
        "task_create_missing_queue_exchange_type": "topic",
        "task_queues": [Queue(default, Exchange(default, type="topic"), routing_key=default,
                              durable=True, queue_arguments=quorum)],
        "worker_detect_quorum_queues": True,
        "broker_native_delayed_delivery_queue_type": "quorum",
    }


def countdown(settings: Settings, seconds: float) -> float:
    """The countdown to give a task delayed by ``seconds``.

    On quorum queues, Celery's native delayed delivery counts whole seconds
    (it truncates, and refuses a countdown under one second): round up, so the
    task is never due before ``seconds`` have passed. Classic queues take it as is.
    """
    if settings.queue_type == "classic" or seconds <= 0:
        return seconds
    return max(1, math.ceil(seconds))


class CerebroApp(Celery):
    """A Celery app that keeps the settings it was made from (the tasks read them), and
    sends its monitoring events without publisher confirms (:mod:`.events`)."""

    cerebro_settings: Settings
    events_cls = "cerebro.taskqueue.events:Events"


def make_app(settings: Settings, schedules: bool = True) -> CerebroApp:
    """A Celery app configured from ``settings``; with ``schedules``, Sherlock's daily
    digest task and its beat entry are registered on it (the worker, beat, Flower).

    The settings stay on the app (:func:`settings_of`) for the tasks that run on it.
    """
    app = CerebroApp("cerebro", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url.get_secret_value(),
        result_backend=backend_url(settings.result_backend.get_secret_value()),
        result_expires=settings.result_expires,
        result_extended=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_track_started=True,
        task_default_delivery_mode="persistent",
        task_default_queue=Names.from_settings(settings).default_task_queue,
        task_create_missing_queues=True,
        **queue_options(settings),
        worker_prefetch_multiplier=settings.worker_prefetch,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.broker_timeout,
        broker_pool_limit=10,
        broker_transport_options={"confirm_publish": settings.publish_confirm},
        broker_heartbeat=30,
        redis_socket_connect_timeout=settings.broker_timeout,
        redis_socket_timeout=max(2.0, settings.broker_timeout),
        redis_retry_on_timeout=False,
        result_backend_always_retry=False,
        timezone="UTC",
        enable_utc=True,
    )
    app.cerebro_settings = settings
    if schedules:
        from sherlock import schedule
        schedule.register(app)
    return app


def settings_of(app: Celery) -> Settings:
    """The settings ``app`` was made from by :func:`make_app`."""
    if not isinstance(app, CerebroApp):
        raise TypeError(f"{app!r} was not made by cerebro.taskqueue.celery_app.make_app")
    return app.cerebro_settings
