"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The worker side: one generic task running any expose function, and callback delivery.
Tagline: Do the work once, then knock until the main app hears it.

``cerebro.run(module, function, payload, meta)`` goes through the same
dispatch core as the REST API (validate, run, type the error), then hands
its outcome to the main app as a signed callback. The outcome is stored in
the result backend *before* the callback is sent, so ``GET /v1/tasks/<id>``
agrees with the callback the moment it arrives.

A callback that cannot be delivered at once is not retried inside the task:
``cerebro.deliver_callback`` is scheduled with a countdown (exponential
backoff with jitter; on quorum queues it waits in RabbitMQ's delayed-delivery
queues, rounded up to whole seconds) carrying the finished body, so the
function is never recomputed and no worker slot waits for the main app. When the retry window
is over, or the main app answers with a final 4xx, the callback goes to the
dead-letter store and is reported as an exception.
"""

import logging
import threading
import time

from celery import signals

from cerebro.callbacks import (CallbackURLs, DeadLetterStore, DeliveryError, MainAppClient,
                               PermanentDeliveryError, RetryWindowExpired, backoff_delay)
from cerebro.dispatch import Dispatcher
from cerebro.errors import CerebroError, InternalError, InvalidPayload, ModelNotReady
from cerebro.reporting import report
from cerebro.tasks.celery_app import (DELIVER_TASK, RUN_TASK, app, countdown, queue_name,
                                      settings)

log = logging.getLogger(__name__)


class WorkerState:
    """Everything a worker process needs, built once per process."""

    def __init__(self, settings):
        from cerebro import logsetup
        from cerebro.models import PeriodicThread
        from cerebro.registry import Registry

        logsetup.configure(settings, "worker")
        self.settings = settings
        self.registry = Registry.discover(settings)
        self.registry.refresh_models()
        self.dispatcher = Dispatcher(self.registry)
        self.client = MainAppClient.from_settings(settings)
        self.urls = CallbackURLs.from_settings(settings)
        self.deadletters = DeadLetterStore.from_settings(settings)
        self.watcher = PeriodicThread(settings.reload_interval, self.registry.refresh_models,
                                      name="cerebro-worker-model-watcher")
        self.watcher.start()


_state = None
_state_lock = threading.Lock()


def state():
    """This process's :class:`WorkerState` (built on first use when no
    ``worker_process_init`` signal came, e.g. with the solo pool)."""
    global _state
    with _state_lock:
        if _state is None:
            _state = WorkerState(settings)
        return _state


@signals.worker_process_init.connect
def _init_worker_process(**_kwargs):
    """Load the registry and models in every pool process, right after the fork."""
    global _state
    with _state_lock:
        _state = None
    state()


def _now():
    """Unix time in seconds."""
    return time.time()


class RunTask(app.Task):
    """Base of ``cerebro.run``: sends the first callback once the outcome is stored."""

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        """After the result is in the backend: deliver the callback (first attempt)."""
        if status != "SUCCESS" or not isinstance(retval, dict):
            return
        try:
            meta = args[3] if len(args) > 3 else {}
            send_callback(retval, meta.get("callback_url"), first_attempt_at=None, attempt=0)
        except Exception as exc:  # never let a callback bug go unnoticed
            report(exc, service="worker", module=retval.get("module"),
                   function=retval.get("function"), task_id=task_id)


@app.task(name=RUN_TASK, bind=True, base=RunTask, max_retries=None)
def run(self, module, function, payload, meta):
    """Run ``module.function(payload)`` through the dispatch core; return the callback body."""
    started = _now()
    meta = meta or {}
    task_id = self.request.id
    status, result, error = "succeeded", None, None
    try:
        st = state()
        call = st.dispatcher.prepare(module, function, payload)
        result = st.dispatcher.run(call, service="worker", request_id=meta.get("request_id"),
                                   task_id=task_id)
    except ModelNotReady as exc:
        waited = _now() - float(meta.get("submitted_at") or started)
        if waited < settings.model_wait:
            delay = countdown(settings, settings.model_retry_delay)
            log.warning("task %s: %s; retrying in %gs", task_id, exc, delay)
            # the queue is named: a message that came through native delayed delivery
            # carries that route, from which Celery would pick the default queue
            raise self.retry(countdown=delay, max_retries=None,
                             queue=queue_name(settings, module))
        status, error = "failed", exc.to_dict()
        report(exc, service="worker", module=module, function=function, task_id=task_id)
    except InvalidPayload as exc:
        log.warning("task %s: payload rejected in the worker: %s", task_id, exc.message)
        status, error = "failed", exc.to_dict()
    except InternalError as exc:  # already reported by the dispatcher
        status, error = "failed", exc.to_dict()
    except CerebroError as exc:
        status, error = "failed", exc.to_dict()
        if not exc.client_error:
            report(exc, service="worker", module=module, function=function, task_id=task_id)
    except Exception as exc:  # a bug outside the function (state, registry...)
        internal = InternalError(f"{module}.{function} failed in the worker: {type(exc).__name__}")
        report(exc, service="worker", module=module, function=function, task_id=task_id,
               error_id=internal.error_id)
        status, error = "failed", internal.to_dict()
    finished = _now()
    submitted = meta.get("submitted_at")
    return {
        "task_id": task_id,
        "module": module,
        "function": function,
        "status": status,
        "result": result,
        "error": error,
        "request_id": meta.get("request_id"),
        "timings": {
            "submitted_at": submitted,
            "started_at": started,
            "finished_at": finished,
            "queued_seconds": round(started - submitted, 6) if submitted else None,
            "run_seconds": round(finished - started, 6),
        },
        "attempts": self.request.retries + 1,
        "redelivered": bool((self.request.delivery_info or {}).get("redelivered")),
    }


def send_callback(body, requested_url, *, first_attempt_at, attempt):
    """The first delivery attempt of ``body``: resolve where it goes, then :func:`attempt_callback`.

    ``requested_url`` is the ``callback_url`` the client sent (or None): it is
    checked against the allow-list here, once more, in case the list changed since
    the request was accepted. Later attempts reuse the resolved URL as it is.
    """
    st = state()
    first_attempt_at = first_attempt_at or _now()
    key = body["task_id"]
    try:
        url = st.urls.resolve(body["module"], body["function"], requested_url)
    except InvalidPayload as exc:  # the allow-list changed since the request was accepted
        _dead_letter(PermanentDeliveryError(f"callback {key}: {exc.message}", requested_url, key),
                     body, first_attempt_at)
        return None
    return attempt_callback(body, url, first_attempt_at=first_attempt_at, attempt=attempt)


def attempt_callback(body, url, *, first_attempt_at, attempt):
    """One delivery attempt of ``body`` to the already resolved ``url``; schedules the next
    attempt or dead-letters on failure."""
    st = state()
    key = body["task_id"]
    result = st.client.attempt(url, body, key)
    if result.ok:
        log.info("callback %s delivered to %s (HTTP %s, attempt %d)", key, url, result.status,
                 attempt + 1)
        return result
    if not result.retryable:
        _dead_letter(PermanentDeliveryError(f"callback {key} refused: {result.describe()}",
                                            url, key, result, attempt + 1),
                     body, first_attempt_at)
        return result
    deadline = first_attempt_at + settings.callback_retry_window
    left = deadline - _now()
    if left <= 0:
        _dead_letter(RetryWindowExpired(f"callback {key} not delivered after {attempt + 1} "
                                        f"attempts in {settings.callback_retry_window:g}s: "
                                        f"{result.describe()}", url, key, result, attempt + 1),
                     body, first_attempt_at)
        return result
    delay = max(backoff_delay(attempt, settings.callback_backoff, settings.callback_backoff_max),
                result.retry_after or 0)
    delay = countdown(settings, min(delay, left))
    log.warning("callback %s: %s; attempt %d again in %.2fs", key, result.describe(),
                attempt + 2, delay)
    try:
        deliver_callback.apply_async(
            args=[body, url, first_attempt_at, attempt + 1], countdown=delay,
            queue=queue_name(settings, body["module"]))
    except Exception as exc:  # the broker is gone too: keep the callback, loudly
        _dead_letter(DeliveryError(f"callback {key}: {result.describe()}; and the retry could "
                                   f"not be scheduled: {type(exc).__name__}: {exc}",
                                   url, key, result, attempt + 1), body, first_attempt_at)
    return result


@app.task(name=DELIVER_TASK, bind=True, ignore_result=True)
def deliver_callback(self, body, url, first_attempt_at, attempt):
    """A later attempt at a callback whose function already ran (never recomputed).

    ``url`` is the URL the first attempt resolved: used as it is, never resolved or
    checked against the allow-list again (an absolute URL configured in
    ``CEREBRO_CALLBACK_PATH(S)`` need not be on that list).
    """
    attempt_callback(body, url, first_attempt_at=first_attempt_at, attempt=attempt)


def _dead_letter(error, body, first_attempt_at):
    """Keep the callback in the dead-letter store and report ``error`` as an exception."""
    st = state()
    try:
        raise error
    except DeliveryError as exc:
        entry = st.deadletters.add(exc.url, body, exc.idempotency_key, str(exc),
                                   attempts=exc.attempts, first_attempt_at=first_attempt_at,
                                   source="worker")
        report(exc, f"callback {exc.idempotency_key} dead-lettered as {entry.id}: {exc}",
               service="worker", module=body.get("module"), function=body.get("function"),
               task_id=body.get("task_id"))
