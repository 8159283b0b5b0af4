"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Which offsets a processed batch may commit, and where to rewind for records to retry.
Tagline: Count only what is finished; start again at the first thing that is not.

Kafka commits one offset per partition: "everything before this is done". So
per partition the commit is the offset of the first record that must be
retried, or the last record's offset + 1 when all are done; a partition with
a record to retry is rewound there so it is fetched again. Records after it
that did finish are processed again: a duplicate, which the idempotency key
makes harmless, never a loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka import TopicPartition

from cerebro.consumer.processor import RETRY

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cerebro.consumer.processor import Outcome


def plan(outcomes: Iterable[Outcome]
         ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """``(commits, rewinds)``: ``{TopicPartition: next offset to commit}`` and
    ``{TopicPartition: offset to seek back to}`` for a processed batch."""
    first_retry: dict[TopicPartition, int] = {}
    last_done: dict[TopicPartition, int] = {}
    for outcome in outcomes:
        record = outcome.record
        tp = TopicPartition(record.topic, record.partition)
        if outcome.status == RETRY:
            if tp not in first_retry or record.offset < first_retry[tp]:
                first_retry[tp] = record.offset
        elif record.offset >= last_done.get(tp, -1):
            last_done[tp] = record.offset
    commits = {}
    for tp in set(first_retry) | set(last_done):
        commits[tp] = first_retry[tp] if tp in first_retry else last_done[tp] + 1
    return commits, dict(first_retry)
