"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``GET /v1/tasks/<id>``: the state of an async call, for clients that prefer polling.
Tagline: Knock on the task's door; it says where it is.

States: ``queued`` (waiting in RabbitMQ, or waiting for its model),
``running``, ``succeeded`` and ``failed`` with the result or error: the same
body the callback carries. An id never submitted (or expired after
``CEREBRO_RESULT_EXPIRES``) is a 404.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from celery import states
from redis.exceptions import RedisError

from cerebro.api.handlers import BaseHandler
from cerebro.errors import CerebroError, NotFound, Unavailable

if TYPE_CHECKING:
    from collections.abc import Mapping

_TASK_ID = re.compile(r"^[0-9a-fA-F-]{8,64}$")


def describe(task_id: str, meta: Mapping[str, Any]) -> dict[str, object]:
    """The JSON status of ``task_id`` from a result-backend ``meta`` dict."""
    state, result = meta.get("status"), meta.get("result")
    if state == states.PENDING and result is None:
        raise NotFound(f"no task with id '{task_id}' (unknown or expired)", "task_id")
    body: dict[str, object] = {"task_id": task_id, "status": "queued", "module": None,
                               "function": None, "result": None, "error": None}
    if state == states.SUCCESS and isinstance(result, dict):
        body.update({k: result.get(k) for k in ("module", "function", "status", "result",
                                                "error", "timings", "attempts")})
        return body
    name_args = meta.get("args") or []
    if len(name_args) >= 2:
        body["module"], body["function"] = name_args[0], name_args[1]
    elif isinstance(result, dict):
        body["module"], body["function"] = result.get("module"), result.get("function")
    if state == states.STARTED:
        body["status"] = "running"
    elif state in (states.FAILURE, states.REVOKED):
        body["status"] = "failed"
        body["error"] = {"type": "internal", "field": None,
                         "message": f"task {state.lower()}: {_kind(meta.get('result'))} "
                                    "(the details are in Sherlock, not here)"}
    return body


def _kind(failure: object) -> str:
    """The exception type of a failed task's stored result, never its text (which may carry
    data or internals): ``exc_type`` of a serialized exception, or the object's type."""
    if isinstance(failure, dict):
        return str(failure.get("exc_type") or "error")[:80]
    return type(failure).__name__ if isinstance(failure, BaseException) else "error"


class TaskStatusHandler(BaseHandler):
    """``GET /v1/tasks/<id>``."""

    async def get(self, task_id: str) -> None:
        """Read the task's state from the result backend (asyncio Redis, on the IOLoop)."""
        try:
            self.require_api_key()
            if not _TASK_ID.match(task_id):
                raise NotFound(f"no task with id '{task_id}'", "task_id")
            submitter = self.ctx.submitter
            if submitter is None:
                raise Unavailable("the async path (RabbitMQ + Celery) is not configured")
            try:
                meta = await submitter.task_meta(task_id)
            except (RedisError, OSError) as exc:
                raise Unavailable(f"the result backend is unreachable: {type(exc).__name__}") \
                    from exc
            self.send_json(describe(task_id, meta))
        except CerebroError as error:
            self.fail(error)
