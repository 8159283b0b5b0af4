"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Scheduling the digest with Celery beat: daily, or every SHERLOCK_DIGEST_EVERY seconds.
Tagline: Every morning at the same hour, the detective files his report.

Celery is imported lazily, here only, so capturing exceptions never needs it.
Cerebro's Celery app either calls :func:`register` (task + beat entry + the
worker's logging hook in one go) or wires the pieces itself::

    app.conf.beat_schedule.update(beat_entry(settings))
    @app.task(name=TASK_NAME)
    def digest(): return sherlock.digest.run_scheduled()

The entry is a daily crontab at ``SHERLOCK_DIGEST_AT``, or, with
``SHERLOCK_DIGEST_EVERY`` > 0, an interval of that many seconds. In a multi-node
deployment one beat schedules it for every node (Cerebro's ``cerebro beat`` holds a
Redis lock: celery-redbeat) and any worker runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sherlock.settings import load_settings

if TYPE_CHECKING:
    from celery import Celery, Task

    from sherlock.settings import SherlockSettings

TASK_NAME = "sherlock.digest"
ENTRY_NAME = "sherlock-daily-digest"
MAX_EXPIRES = 3600


def beat_entry(settings: SherlockSettings | None = None) -> dict[str, dict[str, object]]:
    """``{ENTRY_NAME: {"task": "sherlock.digest", "schedule": ...}}``: a crontab at
    ``SHERLOCK_DIGEST_AT`` (in the Celery app's timezone, UTC by default), or an interval of
    ``SHERLOCK_DIGEST_EVERY`` seconds when that is greater than zero.

    The task expires after ``min(3600, period)`` seconds, so a backlog of missed
    runs never sends a burst of digests (each run would only find what is new anyway).
    """
    from datetime import timedelta

    from celery.schedules import crontab
    from celery.schedules import schedule as every

    settings = settings or load_settings()
    if settings.digest_every > 0:
        return {ENTRY_NAME: {"task": TASK_NAME,
                             "schedule": every(timedelta(seconds=settings.digest_every)),
                             "options": {"expires": min(MAX_EXPIRES, settings.digest_every)}}}
    hour, minute = settings.digest_clock
    return {ENTRY_NAME: {"task": TASK_NAME,
                         "schedule": crontab(hour=hour, minute=minute),
                         "options": {"expires": MAX_EXPIRES}}}


def register(app: Celery, settings: SherlockSettings | None = None,
             service: str = "worker") -> Task[[], dict[str, Any]]:
    """Register task ``sherlock.digest`` and its beat entry on the Celery ``app``, and
    re-install Sherlock's handler after Celery sets up (and empties) the root logger.

    Returns the task. Safe to call once per app.
    """
    from celery import signals

    from sherlock import digest, handler

    @app.task(name=TASK_NAME, ignore_result=True, shared=False)  # this app only
    def sherlock_digest() -> dict[str, Any]:
        """Send the Sherlock digest (scheduled by Celery beat)."""
        return digest.run_scheduled()

    schedule = dict(app.conf.beat_schedule or {})
    schedule.update(beat_entry(settings))
    app.conf.beat_schedule = schedule

    def reinstall(**_kwargs: object) -> None:
        """Celery's worker replaces the root logger's handlers: put Sherlock's back."""
        handler.install(service, settings)

    signals.after_setup_logger.connect(reinstall, weak=False)
    return sherlock_digest
