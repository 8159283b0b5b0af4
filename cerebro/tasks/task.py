"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The worker side: one generic task running any expose function, and callback delivery.
Tagline: Do the work once, then knock until the main app hears it.

``cerebro.run(module, function, payload, meta)`` goes through the core every
transport shares (:class:`cerebro.core.Core`: validate, run, type the error),
and a failure is retried, waits for its model or is final as the outcome
policy says (:mod:`cerebro.outcomes`); the retries wait in RabbitMQ as
countdown tasks, never in a worker slot. The finished outcome goes to the main
app as a signed callback; it is stored in the result backend *before* the
callback is sent, so ``GET /v1/tasks/<id>`` agrees with the callback the
moment it arrives.

A callback that cannot be delivered at once is not retried inside the task:
``cerebro.deliver_callback`` is scheduled with a countdown (exponential
backoff with jitter; on quorum queues it waits in RabbitMQ's delayed-delivery
queues, rounded up to whole seconds) carrying the finished body, so the
function is never recomputed and no worker slot waits for the main app. When
the retry window is over, or the main app answers with a final 4xx, the
callback goes to the dead-letter store and is reported as an exception.

The worker is no signing oracle: the retry message carries the exact body
bytes the worker encoded, the URL, the first attempt's time and the attempt
number under a seal (:mod:`cerebro.callbacks.seal`). A delivery task whose
message is unsealed, mis-sealed or malformed (published straight to RabbitMQ,
say) sends nothing and is reported; a sealed one is sent only to the
function's configured URL or a URL the allow-list covers, checked again on
every attempt.

Celery's own "Task ... succeeded in ...s" line is logged without the return
value: results are the modules' data, not the log's (:class:`ResultlessSuccess`).

The tasks are shared tasks: they join the app ``cerebro worker`` makes from its
settings (:func:`cerebro.taskqueue.celery_app.make_app`); nothing here reads
the environment.

Module folders added while the worker runs: the main process starts consuming
the new module's queue (:mod:`.consumer`), and every pool process's core picks
the module up on its next refresh. A task for a module this process does not
know yet waits (in the process, at most two refreshes) for the core to catch
up before it is answered ``not_found``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task, signals
from celery.app import trace as celery_trace

from cerebro import jsonio
from cerebro.callbacks import (CallbackURLs, DeadLetterStore, DeliveryError,
                               PermanentDeliveryError, RetryWindowExpired, SealedRetry, Sealer,
                               SealError, open_retry)
from cerebro.clients.http import MainAppClient
from cerebro.core import Core
from cerebro.errors import WAIT_MODEL, CerebroError, InternalError, InvalidPayload
from cerebro.outcomes import backoff_delay
from cerebro.reporting import report
from cerebro.settings import load_settings
from cerebro.taskqueue.celery_app import DELIVER_TASK, RUN_TASK, countdown, settings_of
from envsettings import redact

if TYPE_CHECKING:
    from typing import TypedDict

    from billiard.einfo import ExceptionInfo
    from celery import Celery
    from celery.worker import WorkController

    from cerebro.clients.http import AttemptResult
    from cerebro.settings import Settings

    class TaskMeta(TypedDict, total=False):
        """The request's metadata, the last argument of ``cerebro.run`` (from the API)."""

        callback_url: str | None
        submitted_at: float
        request_id: str | None
        sticky_key: str | None     # the caller's canary sticky key (X-Cerebro-Sticky-Key)
        failures: int              # retryable failures so far (set by the worker's retries)
        waiting_since: float | None  # when the current wait for the model began

log = logging.getLogger(__name__)

SUCCESS_LINE = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


class ResultlessSuccess(logging.Filter):
    """Rewrites Celery's ``Task ... succeeded in ...s: <return value>`` record (INFO, logger
    ``celery.app.trace``) to :data:`SUCCESS_LINE`: the same line without the value, whose
    ``data`` extra keeps only the task's name, id and run time too."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop the return value (and the arguments) from a success record; keep the record."""
        if record.msg == celery_trace.LOG_SUCCESS and isinstance(record.args, Mapping):
            kept = {name: record.args.get(name) for name in ("name", "id", "runtime")}
            record.msg, record.args = SUCCESS_LINE, kept
            if hasattr(record, "data"):
                record.data = kept
        return True


def hide_return_values() -> None:
    """Install :class:`ResultlessSuccess` on Celery's trace logger (once)."""
    trace_log = celery_trace.logger
    if not any(isinstance(known, ResultlessSuccess) for known in trace_log.filters):
        trace_log.addFilter(ResultlessSuccess())


hide_return_values()


class WorkerState:
    """Everything a worker process needs, built once per process: the core (modules, models
    and their reloader, the outcome policy) and the main-app client."""

    def __init__(self, settings: Settings, core: Core | None = None) -> None:
        self.settings = settings
        self._refreshed = threading.Condition()
        self._refreshes = 0
        if core is None:
            self.core = Core.start("worker", settings, on_refresh=self._on_refresh)
        else:  # the main process's, models loaded before the fork: follow the volume from here
            self.core = core
            core.add_refresh_listener(self._on_refresh)
            core.watch()
        self.client = MainAppClient.from_settings(settings)
        self.urls = CallbackURLs.from_settings(settings)
        self.deadletters = DeadLetterStore.from_settings(settings)
        self.sealer = Sealer(settings.callback_secret.get_secret_value())

    def _on_refresh(self, _registry: object) -> None:
        """The core refreshed (modules rescanned, models checked): wake :meth:`knows`."""
        with self._refreshed:
            self._refreshes += 1
            self._refreshed.notify_all()

    def knows(self, module: str) -> bool:
        """True when this process's core knows ``module``, waiting if need be until a refresh
        of the core finds it, for at most two refreshes (the second one surely rescanned
        after the call).

        The main process consumes a new module's queue after its own rescan; this
        process's core rescans on its own schedule and may not have seen the folder yet.
        """
        registry = self.core.registry
        if module in registry.modules:
            return True
        with self._refreshed:
            target = self._refreshes + 2
            self._refreshed.wait_for(
                lambda: module in registry.modules or self._refreshes >= target,
                timeout=2 * self.settings.reload_interval + 1.0)
        return module in registry.modules


_app: Celery | None = None
_state: WorkerState | None = None
_state_lock = threading.Lock()
_inherited: Core | None = None  # the main process's core, its models loaded before the fork


def inherit(core: Core) -> None:
    """Give the pool processes the main process's core (models loaded once, pages shared
    after the fork) instead of each loading its own."""
    global _inherited
    _inherited = core


@signals.worker_init.connect
def _remember_app(sender: WorkController | None = None, **_kwargs: object) -> None:
    """Keep the app this worker runs: its settings build every process's state."""
    global _app
    if sender is not None:
        _app = sender.app


def state() -> WorkerState:
    """This process's :class:`WorkerState` (built on first use when no
    ``worker_process_init`` signal came, e.g. with the solo pool)."""
    global _state
    with _state_lock:
        if _state is None:
            # in a worker, worker_init came first (_remember_app); elsewhere (a task run
            # eagerly, a script) the settings are the environment's
            _state = WorkerState(settings_of(_app) if _app is not None else load_settings(),
                                 _inherited)
        return _state


@signals.worker_process_init.connect
def _init_worker_process(**_kwargs: object) -> None:
    """Build every pool process's state right after the fork, on the inherited core (its
    reloader started here: threads do not survive a fork)."""
    global _state
    with _state_lock:
        _state = None
    state()


@signals.worker_process_shutdown.connect
def _stop_worker_process(**_kwargs: object) -> None:
    """A pool process ends (the worker stops, or recycles it): stop its core, so it leaves the
    roster at once instead of being shown as lost."""
    with _state_lock:
        current = _state
    if current is not None:
        current.core.stop()


def _now() -> float:
    """Unix time in seconds."""
    return time.time()


class RunTask(Task):
    """Base of ``cerebro.run``: sends the first callback once the outcome is stored."""

    def after_return(self, status: str, retval: object, task_id: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any], einfo: ExceptionInfo | None) -> None:
        """After the result is in the backend: deliver the callback (first attempt)."""
        if status != "SUCCESS" or not isinstance(retval, dict):
            return
        try:
            meta = args[3] if len(args) > 3 else {}
            send_callback(retval, meta.get("callback_url"), first_attempt_at=None, attempt=0)
        except Exception as exc:  # never let a callback bug go unnoticed
            report(exc, service="worker", module=retval.get("module"),
                   function=retval.get("function"), task_id=task_id)


@shared_task(name=RUN_TASK, bind=True, base=RunTask, max_retries=None)
def run(self: Task, module: str, function: str, payload: object,
        meta: TaskMeta | None) -> dict[str, object]:
    """Run ``module.function(payload)`` through the core; return the callback body."""
    started = _now()
    meta = meta or {}
    task_id = self.request.id
    result: object
    error: dict[str, object] | None
    status, result, error = "succeeded", None, None
    try:
        st = state()
        core = st.core
        if not st.knows(module):
            log.warning("task %s: module %s is not known to this worker", task_id, module)
        call = core.dispatcher.prepare(module, function, payload, meta.get("sticky_key"))
        result = core.dispatcher.run(call, service="worker", request_id=meta.get("request_id"),
                                     task_id=task_id)
    except Exception as exc:  # typed by the dispatcher; anything else is a bug outside it
        failure = exc if isinstance(exc, CerebroError) else _bug(exc, module, function, task_id)
        _retry_if_the_policy_says(self, failure, (module, function, payload, meta))
        status, error = "failed", failure.to_dict()
        if isinstance(failure, InvalidPayload):
            log.warning("task %s: payload rejected in the worker: %s", task_id, failure.message)
        elif not failure.client_error and not isinstance(failure, InternalError):
            report(failure, service="worker", module=module, function=function, task_id=task_id)
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


def _bug(exc: Exception, module: str, function: str, task_id: str | None) -> InternalError:
    """A bug outside the function (state, registry...): reported, typed as internal."""
    internal = InternalError(f"{module}.{function} failed in the worker: {type(exc).__name__}")
    report(exc, service="worker", module=module, function=function, task_id=task_id,
           error_id=internal.error_id)
    return internal


def _retry_if_the_policy_says(task: Task, error: CerebroError,
                              args: tuple[str, str, object, TaskMeta]) -> None:
    """Raise Celery's ``Retry`` (a countdown task on the module's queue) when the outcome
    policy retries ``error``; return when the failure is final.

    The task's ``meta`` counts as every transport does: ``failures`` (retryable failures
    so far: waits for a model are not charged) and ``waiting_since`` (when the current wait
    for the model began; a retryable failure ends the wait).
    """
    st = state()
    module, function, payload, meta = args
    now = _now()
    if error.queued is WAIT_MODEL:
        since = float(meta.get("waiting_since") or now)
        decision = st.core.policy.decide(error, attempt=1, waited=now - since)
        again: TaskMeta = {**meta, "waiting_since": since}
    else:
        failures = int(meta.get("failures") or 0) + 1
        decision = st.core.policy.decide(error, attempt=failures, waited=0.0)
        again = {**meta, "failures": failures, "waiting_since": None}
    if not decision.retry:
        return
    delay = countdown(st.settings, decision.delay)
    log.warning("task %s: %s: %s (%s); retrying in %gs", task.request.id, error.type,
                error.message, decision.reason, delay)
    # the queue is named: a message that came through native delayed delivery carries
    # that route, from which Celery would pick the default queue
    raise task.retry(args=(module, function, payload, again), countdown=delay, max_retries=None,
                     queue=st.core.names.task_queue(module))


def send_callback(body: dict[str, Any], requested_url: str | None, *,
                  first_attempt_at: float | None, attempt: int) -> AttemptResult | None:
    """The first delivery attempt of ``body``: resolve where it goes, then :func:`attempt_callback`.

    ``requested_url`` is the ``callback_url`` the client sent (or None): it is
    checked against the allow-list here, once more, in case the list changed since
    the request was accepted. Later attempts check their URL again
    (:func:`deliver_callback`).
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


def attempt_callback(body: dict[str, Any], url: str, *, first_attempt_at: float,
                     attempt: int, data: bytes | None = None) -> AttemptResult:
    """One delivery attempt of ``body`` (sent as ``data``, its bytes encoded once by the
    first attempt) to the already checked ``url``; schedules the next attempt or
    dead-letters on failure."""
    st = state()
    settings = st.settings
    key = body["task_id"]
    data = jsonio.dumps(body) if data is None else data
    result = st.client.attempt(url, data, key)
    if result.ok:
        log.info("callback %s delivered to %s (HTTP %s, attempt %d)", key, url, result.status,
                 attempt + 1)
        return result
    if not result.retryable:
        _dead_letter(PermanentDeliveryError(f"callback {key} refused: {result.describe()}",
                                            url, key, result, attempt + 1),
                     body, first_attempt_at)
        return result
    left = first_attempt_at + settings.callback_retry_window - _now()
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
    _schedule(body, SealedRetry(data, url, first_attempt_at, attempt + 1), delay, result)
    return result


def _schedule(body: dict[str, Any], retry: SealedRetry, delay: float,
              result: AttemptResult) -> None:
    """Schedule ``retry``, sealed, as a ``cerebro.deliver_callback`` task due in ``delay``
    seconds; dead-letter the callback when the broker will not take it."""
    st = state()
    try:
        deliver_callback.apply_async(args=retry.message(st.sealer), countdown=delay,
                                     queue=st.core.names.task_queue(body["module"]))
    except Exception as exc:  # the broker is gone too: keep the callback, loudly
        key = body["task_id"]
        _dead_letter(DeliveryError(f"callback {key}: {result.describe()}; and the retry could "
                                   f"not be scheduled: {type(exc).__name__}: {exc}",
                                   retry.url, key, result, retry.attempt),
                     body, retry.first_attempt_at)


@shared_task(name=DELIVER_TASK, bind=True, ignore_result=True)
def deliver_callback(self: Task, *args: Any, **kwargs: Any) -> None:
    """A later attempt at a callback whose function already ran (never recomputed).

    The message must be one a worker sealed (:func:`cerebro.callbacks.open_retry`):
    anything else is refused, reported and never sent. Its URL must still be the
    function's configured URL or one the allow-list covers; a sealed callback whose
    URL is no longer allowed is dead-lettered.
    """
    st = state()
    try:
        retry = open_retry(st.sealer, args, kwargs)
        body = _sealed_body(retry.data)
    except SealError as exc:
        _refuse(self.request.id, exc, args, kwargs)
        return
    key = body["task_id"]
    try:
        st.urls.check_delivery(retry.url, body["module"], body["function"])
    except InvalidPayload as exc:  # the rules changed since the first attempt
        _dead_letter(PermanentDeliveryError(f"callback {key}: {exc.message}", retry.url, key,
                                            None, retry.attempt), body, retry.first_attempt_at)
        return
    attempt_callback(body, retry.url, first_attempt_at=retry.first_attempt_at,
                     attempt=retry.attempt, data=retry.data)


def _sealed_body(data: bytes) -> dict[str, Any]:
    """The callback body a sealed message carries; :class:`SealError` when it is none (only
    possible with the secret itself: a worker seals nothing else)."""
    try:
        body = jsonio.loads(data)
    except InvalidPayload:
        raise SealError("the sealed body is not JSON") from None
    if not isinstance(body, dict) or not all(isinstance(body.get(name), str)
                                             for name in ("task_id", "module", "function")):
        raise SealError("the sealed body is not a callback body")
    return body


def _refuse(message_id: str | None, error: SealError, args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> None:
    """Report a delivery message the worker did not seal: nothing was sent."""
    url = args[1] if len(args) > 1 else kwargs.get("url")
    shown = redact(url)[:200] if isinstance(url, str) else None
    report(error, f"{DELIVER_TASK} message {message_id} refused, nothing sent: {error} "
           f"(a retry scheduled before an upgrade to sealed retries is refused too; its "
           "result stays at GET /v1/tasks/<id>)", service="worker", message_id=message_id,
           url=shown)


def _dead_letter(error: DeliveryError, body: dict[str, Any], first_attempt_at: float) -> None:
    """Keep the callback in the dead-letter store and report ``error`` as an exception."""
    st = state()
    try:
        raise error
    except DeliveryError as exc:
        # every DeliveryError raised in this module carries the URL (``requested_url`` is
        # not None when the allow-list refuses it)
        entry = st.deadletters.add(exc.url, body,  # type: ignore[arg-type]
                                   exc.idempotency_key, str(exc),
                                   attempts=exc.attempts, first_attempt_at=first_attempt_at,
                                   source="worker")
        report(exc, f"callback {exc.idempotency_key} dead-lettered as {entry.id}: {exc}",
               service="worker", module=body.get("module"), function=body.get("function"),
               task_id=body.get("task_id"))
