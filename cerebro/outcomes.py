"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The outcome policy: what queued work does after a failed attempt, on every transport.
Tagline: One rule book for every door: give up, try again later, or wait for the model.

Each error kind says what it means (:mod:`cerebro.errors`: ``queued`` is
final, retry or wait for the model); :class:`OutcomePolicy` turns that and the
settings into a :class:`Decision` for one failed attempt. The Celery worker,
the Kafka consumer and the pub-sub subscriber ask it and differ only in how
they wait (a countdown task, a rewound partition, a retry queue)::

    policy = OutcomePolicy.from_settings(settings)
    decision = policy.decide(error, attempt=1, waited=0.0)
    if decision.retry:
        schedule_again(after=decision.delay)
    else:
        fail_for_good(error)          # failed result, dead letter, main app told
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cerebro.errors import RETRY, WAIT_MODEL, CerebroError

if TYPE_CHECKING:
    from cerebro.settings import Settings


def backoff_delay(attempt: int, base: float = 1.0, cap: float = 300.0,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential, capped,
    with "equal jitter" (half fixed, half random) so retries never synchronise."""
    delay: float = min(cap, base * (2 ** min(attempt, 32)))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


@dataclass(frozen=True)
class Decision:
    """After a failed attempt: try again after ``delay`` seconds, or it is final."""

    retry: bool
    delay: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class OutcomePolicy:
    """The numbers of the policy (``CEREBRO_RETRIES``, ``CEREBRO_RETRY_BACKOFF``,
    ``CEREBRO_MAX_BACKOFF``, ``CEREBRO_MODEL_WAIT``, ``CEREBRO_MODEL_RETRY_DELAY``)."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    model_wait: float = 300.0
    model_retry_delay: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OutcomePolicy:
        """The policy configured by the settings."""
        return cls(settings.retries, settings.retry_backoff, settings.max_backoff,
                   settings.model_wait, settings.model_retry_delay)

    def decide(self, error: CerebroError, *, attempt: int, waited: float) -> Decision:
        """What to do after attempt number ``attempt`` (1 for the first) failed with ``error``,
        ``waited`` seconds after the first attempt (or after the work was accepted)."""
        if error.queued is RETRY and attempt <= self.retries:
            return Decision(True, backoff_delay(attempt - 1, self.backoff, self.max_backoff),
                            f"retry {attempt}/{self.retries}")
        if error.queued is WAIT_MODEL and waited < self.model_wait:
            return Decision(True, self.model_retry_delay,
                            f"waiting for the model ({waited:.0f}s of {self.model_wait:g}s)")
        return Decision(False, reason=_final_reason(error, attempt, waited))


def _final_reason(error: CerebroError, attempt: int, waited: float) -> str:
    """Why a failure is final, for logs."""
    if error.queued is RETRY:
        return f"still failing after {attempt} attempt(s)"
    if error.queued is WAIT_MODEL:
        return f"the model was not ready after {waited:.0f}s"
    return "final"
