"""
Author:  Cerebro team
Date:    2026-11-30
Subject: Beat's scheduler: celery-redbeat's, which puts the schedule back when Redis lost it.
Tagline: A calendar wiped clean is written out again, not obeyed.

celery-redbeat stores the static schedule (Sherlock's digest) in Redis once,
when beat starts. A Redis restarted without persistence (Cerebro's own runs with
none) or flushed loses it, and beat then runs on with an empty schedule: no
digest until beat itself restarts. :class:`CerebroBeatScheduler` checks on every
tick (at most every ``beat_max_loop_interval``, 5 s) that each static entry is still
in Redis, one ``EXISTS``, and stores the missing ones again, saying so.
"""

from __future__ import annotations

import logging
from typing import Any

from redbeat.schedulers import RedBeatScheduler, get_redis  # type: ignore[import-untyped]
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class CerebroBeatScheduler(RedBeatScheduler):
    """redbeat's scheduler, restoring static entries that vanished from Redis."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Put lost entries back, then redbeat's tick (lock renewal, due entries)."""
        self.restore_lost_entries()
        return float(super().tick(*args, **kwargs))

    def restore_lost_entries(self) -> int:
        """Store again the static entries Redis no longer has; how many were missing (0 when
        Redis cannot be asked now: redbeat's own tick then meets the outage)."""
        schedule = self.app.redbeat_conf.schedule
        if not schedule:
            return 0
        keys = [self.Entry.generate_key(self.app, name) for name in schedule]
        try:
            client = get_redis(self.app)
            present = int(client.exists(*keys))
            if present == len(keys):
                return 0
            self.update_from_dict(schedule)
            client.sadd(self.app.redbeat_conf.statics_key, *schedule.keys())
        except RedisError as exc:
            log.debug("beat: schedule check skipped: %s: %s", type(exc).__name__, exc)
            return 0
        missing = len(keys) - present
        log.warning("beat: %d schedule entr%s missing from Redis (restarted without "
                    "persistence, or flushed): stored again", missing,
                    "y was" if missing == 1 else "ies were")
        return missing
