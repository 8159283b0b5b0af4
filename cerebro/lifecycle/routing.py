"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Canary routing: which calls go to the candidate, sticky per key.
Tagline: The same listing always meets the same model.

A call with a sticky key (the ``X-Cerebro-Sticky-Key`` header, a Kafka
event's key, the ``x-cerebro-sticky-key`` header of a pub-sub message) lands on the candidate when a
hash of the key falls below the percent: the same key always gets the same
version while the percent holds. A call without one is routed at random.
"""

from __future__ import annotations

import hashlib
import random

BUCKETS = 10_000


def bucket(module: str, key: str) -> int:
    """A stable bucket in ``[0, BUCKETS)`` for a sticky key of a module (salted by the
    module, so the same keys are not the first to meet every module's canary)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8,
                             person=hashlib.sha256(module.encode()).digest()[:16]).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def to_candidate(module: str, percent: float, key: str | None) -> bool:
    """Whether a call of ``module`` (with sticky key ``key``, or none) goes to the
    candidate."""
    if key is None:
        return random.random() * 100.0 < percent
    return bucket(module, key) < percent * (BUCKETS / 100.0)
