"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The API's submitter: validate the callback URL, record the task, publish it, answer 202.
Tagline: Say "got it" in a blink, and mean it.

Publishing runs in a small thread pool so the IOLoop never waits on
RabbitMQ. With ``CEREBRO_PUBLISH_CONFIRM`` (the default) the 202 is sent
only after RabbitMQ confirmed the persistent message, so an acknowledged
task survives a broker restart. When RabbitMQ (or the result backend) is
unreachable the client gets a 503 at once; for a second after a failure
requests fail fast without trying, then the next one tries again, so the
API recovers by itself when the broker returns.
"""

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from celery import states
from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from cerebro import jsonio
from cerebro.callbacks import CallbackURLs
from cerebro.errors import Unavailable
from cerebro.tasks.celery_app import RUN_TASK, queue_name

log = logging.getLogger(__name__)

BROKER_ERRORS = (OperationalError, AMQPError, ConnectionError, OSError, TimeoutError)
FAIL_FAST_SECONDS = 1.0


class Submitter:
    """``await submitter(handler, call, payload, callback_url=None)`` -> ``(202, body)``."""

    def __init__(self, settings, app):
        self.settings = settings
        self.app = app
        self.urls = CallbackURLs.from_settings(settings)
        self.executor = ThreadPoolExecutor(max_workers=settings.publish_threads,
                                           thread_name_prefix="cerebro-publish")
        self._down_until = 0.0
        self._down_reason = None
        self._retry_policy = {"max_retries": 1, "interval_start": 0, "interval_step": 0.05,
                              "interval_max": 0.1}

    async def __call__(self, handler, call, payload, callback_url=None):
        """Queue ``call`` for a worker; return ``(202, JSON body bytes)``.

        Raises :class:`InvalidPayload` for a callback URL off the allow-list and
        :class:`Unavailable` when the broker or result backend is unreachable.
        """
        if callback_url is not None:
            self.urls.check(callback_url)
        if time.monotonic() < self._down_until:
            raise Unavailable(f"the task queue (RabbitMQ) is unreachable ({self._down_reason}); "
                              "async calls are unavailable, retry later")
        module, function = call.endpoint.module, call.endpoint.name
        task_id = str(uuid.uuid4())
        meta = {"callback_url": callback_url, "submitted_at": time.time(),
                "request_id": getattr(handler, "request_id", None)}
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self._publish, task_id, module, function,
                                       payload, meta)
        except (*BROKER_ERRORS, RedisError) as exc:
            self._mark_down(exc)
            raise Unavailable("the task queue (RabbitMQ) or result backend is unreachable: "
                              "async calls are unavailable, retry later") from None
        if self._down_reason is not None:
            log.warning("task queue reachable again")
            self._down_reason = None
        body = {"task_id": task_id, "status": "queued", "module": module, "function": function,
                "status_url": f"/v1/tasks/{task_id}"}
        handler.set_header("Location", body["status_url"])
        return 202, jsonio.dumps(body)

    def _publish(self, task_id, module, function, payload, meta):
        """Record the task as queued in the result backend, then publish it (blocking).

        The marker is written first so it can never overwrite a later state.
        """
        backend = self.app.backend
        marker = {"status": states.PENDING, "task_id": task_id, "traceback": None,
                  "children": [], "date_done": None,
                  "result": {"module": module, "function": function,
                             "submitted_at": meta["submitted_at"]}}
        # One SET (Celery's store_result reads first): the worker's states overwrite it.
        backend.client.set(backend.get_key_for_task(task_id), backend.encode(marker),
                           ex=self.settings.result_expires)
        self.app.send_task(RUN_TASK, args=[module, function, payload, meta], task_id=task_id,
                           queue=queue_name(self.settings, module), retry=True,
                           retry_policy=self._retry_policy)

    def _mark_down(self, exc):
        """Fail fast for a moment, and say so once in the log (with the exception)."""
        reason = f"{type(exc).__name__}: {exc}"
        if self._down_reason is None:
            log.error("task queue unreachable, async calls answer 503: %s", reason, exc_info=exc)
        self._down_reason = reason
        self._down_until = time.monotonic() + FAIL_FAST_SECONDS

    def close(self):
        """Stop the publishing threads."""
        self.executor.shutdown(wait=False, cancel_futures=True)
