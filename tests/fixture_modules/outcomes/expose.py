"""Outcomes: functions failing with the error kind a call names, so the outcome contract test can
run every kind through every transport (REST, Celery, Kafka, pub-sub) and compare the outcomes.

Every call appends ``<key> <unix time>`` to the file named by ``OUTCOMES_CALLS``, so the test
counts the attempts each transport made.
"""

import os
import time

from cerebro import Field, ModelHandle, endpoint, errors

MODEL = ModelHandle("outcomes")  # never built: asking for it is the real "model not ready"
KINDS = sorted(kind.type for kind in errors.KINDS) + ["bug"]
TOPICS = tuple(f"contract-{kind}" for kind in KINDS)
INPUTS = {"kind": Field(str, choices=tuple(KINDS)), "key": Field(str)}


def _attempt(kind, key):
    """Record the attempt, then fail as ``kind`` says."""
    with open(os.environ["OUTCOMES_CALLS"], "a") as calls:
        calls.write(f"{key} {time.time()}\n")
    if kind == "bug":
        raise ZeroDivisionError(f"contract {key}")
    if kind == "model_not_ready":
        MODEL.get()
    error = next(k for k in errors.KINDS if k.type == kind)
    raise error(f"contract {key}")


@endpoint(inputs=INPUTS, topics=TOPICS, extra="ignore")
def fail(kind, key):
    """Fail at once as ``kind`` says (served synchronously, from Kafka and from pub-sub)."""
    _attempt(kind, key)


@endpoint(inputs=INPUTS, external=True)
def fail_later(kind, key):
    """Fail as ``kind`` says in a Celery worker (an async call)."""
    _attempt(kind, key)
