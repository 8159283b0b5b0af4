"""
Author:  Cerebro team
Date:    2026-11-30
Subject: Celery's Redis result backend, storing a task's state in one round trip instead of two.
Tagline: Look before you write, in the same breath.

Before it stores a state (``STARTED``, then ``SUCCESS`` or ``FAILURE``),
Celery's key-value backends read the task's current state and leave a
``SUCCESS`` alone: a task redelivered after a lost worker must never overwrite
the result the main app was already called back with. That is a ``GET``, then
a ``SETEX`` and a ``PUBLISH``: two round trips to Redis, twice per task, on
the worker's critical path (a third of a pool process's time in a profile).

:class:`RedisBackend` keeps the rule and makes it one round trip: a Lua script
(``EVALSHA``) reads the state and writes the new one (``SETEX`` and
``PUBLISH``, exactly what Celery writes) unless the stored one is ``SUCCESS``.
Redis runs a script atomically, so the check no longer races with another
worker's write either. Everything else is Celery's backend, unchanged.

:func:`backend_url` names it in ``result_backend`` (Celery's ``class+URL`` form).
"""

from __future__ import annotations

import math
from typing import Any

from celery import states
from celery.backends.redis import RedisBackend as CeleryRedisBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str

# KEYS[1]: the task's key; ARGV[1]: the encoded meta; ARGV[2]: its expiry in seconds ("0":
# none). Returns 0 when a SUCCESS was stored already (nothing is written), else 1.
STORE_UNLESS_SUCCEEDED = """
local current = redis.call('GET', KEYS[1])
if current then
    local ok, meta = pcall(cjson.decode, current)
    if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then
        return 0
    end
end
local expires = tonumber(ARGV[2])
if expires > 0 then
    redis.call('SETEX', KEYS[1], expires, ARGV[1])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""


def backend_url(url: str) -> str:
    """``result_backend`` for a Redis ``url``, served by :class:`RedisBackend`."""
    return f"{__name__}:RedisBackend+{url}"


class RedisBackend(CeleryRedisBackend):
    """Celery's Redis backend whose state writes check and store in one script call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As Celery's; the script is registered on first use (its ``SHA`` is sent, and the
        script itself only when Redis does not know it yet)."""
        super().__init__(*args, **kwargs)
        self._store_script: Any = None

    def _store_result(self, task_id: str, result: Any, state: str, traceback: Any = None,
                      request: Any = None, **kwargs: Any) -> Any:
        """Store ``state`` unless ``SUCCESS`` is already stored (Celery's rule), at once."""
        celery: Any = self  # Celery's typing stubs omit these attributes of its backends
        meta = celery._get_result_meta(result=result, state=state, traceback=traceback,
                                       request=request)
        meta["task_id"] = bytes_to_str(task_id)
        value = self.encode(meta)
        if isinstance(value, str) and len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError("value too large for Redis backend", state=state,
                                    task_id=task_id)
        expires = celery.failure_expires if state == states.FAILURE else None
        if expires is None:  # as Celery's set(): the backend's own expiry
            expires = celery.expires
        self.ensure(self._store_unless_succeeded,
                    (self.get_key_for_task(task_id), value, expires))
        return result

    def _store_unless_succeeded(self, key: bytes | str, value: bytes | str,
                                expires: float | None) -> int:
        """One script call: write ``value`` at ``key`` (and publish it) unless it holds a
        ``SUCCESS``; 1 when written, 0 when left alone."""
        if self._store_script is None:
            self._store_script = self.client.register_script(STORE_UNLESS_SUCCEEDED)
        seconds = math.ceil(expires) if expires else 0
        return int(self._store_script(keys=[key], args=[value, seconds]))
