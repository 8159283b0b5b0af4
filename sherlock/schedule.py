"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Scheduling the daily digest with Celery beat (cron is the documented alternative).
Tagline: Every morning at the same hour, the detective files his report.

Celery is imported lazily, here only, so capturing exceptions never needs it.
Cerebro's Celery app either calls :func:`register` (task + beat entry + the
worker's logging hook in one go) or wires the pieces itself::

    app.conf.beat_schedule.update(beat_entry(settings))
    @app.task(name=TASK_NAME)
    def digest(): return sherlock.digest.run_scheduled()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sherlock.settings import load_settings

if TYPE_CHECKING:
    from celery import Celery, Task

    from sherlock.settings import SherlockSettings

TASK_NAME = "sherlock.digest"
ENTRY_NAME = "sherlock-daily-digest"


def beat_entry(settings: SherlockSettings | None = None) -> dict[str, dict[str, object]]:
    """``{ENTRY_NAME: {"task": "sherlock.digest", "schedule": crontab(...)}}`` at
    ``SHERLOCK_DIGEST_AT`` (in the Celery app's timezone, UTC by default).

    The entry expires after an hour so a backlog of missed runs never sends a
    burst of digests (each run would only find what is new anyway).
    """
    from celery.schedules import crontab

    settings = settings or load_settings()
    hour, minute = settings.digest_clock
    return {ENTRY_NAME: {"task": TASK_NAME,
                         "schedule": crontab(hour=hour, minute=minute),
                         "options": {"expires": 3600}}}


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
