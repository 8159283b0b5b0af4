"""Batchy: batch functions, to test adaptive micro-batching."""

import os
import threading
import time

from cerebro import Batching, Field, endpoint
from cerebro.errors import InvalidPayload

SIZES = []
_LOCK = threading.Lock()


@endpoint(inputs={"x": Field(float), "delay_ms": Field(float, minimum=0, default=5.0)},
          batch=Batching(max_size=16), example={"x": 1.0})
def square(rows):
    """Square every x in one call (sleeping delay_ms once per call), recording the batch size."""
    with _LOCK:
        SIZES.append(len(rows))
    time.sleep(max(row["delay_ms"] for row in rows) / 1000.0)
    return [{"x": row["x"], "square": row["x"] ** 2, "batch": len(rows), "pid": os.getpid()}
            for row in rows]


@endpoint(inputs={"x": Field(float)}, batch=Batching(max_size=8, max_wait_ms=50))
def patient(rows):
    """A batch function that waits up to 50 ms for company."""
    return [{"x": row["x"], "batch": len(rows)} for row in rows]


@endpoint(inputs={"x": Field(float)}, batch=True)
def picky(rows):
    """Fail only the rows with a negative x (a per-row error in a batch)."""
    return [InvalidPayload("'x' must not be negative", "x") if row["x"] < 0 else {"x": row["x"]}
            for row in rows]


@endpoint(inputs={"x": Field(float), "delay_ms": Field(float, default=20.0)}, batch=True)
def fragile(rows):
    """Fail the whole batch when any x is 13."""
    time.sleep(rows[0]["delay_ms"] / 1000.0)
    if any(row["x"] == 13 for row in rows):
        raise RuntimeError("unlucky batch")
    return [{"x": row["x"]} for row in rows]


def sizes():
    """The batch sizes seen so far in this process."""
    with _LOCK:
        return {"sizes": list(SIZES)}


@endpoint(inputs={"delay_ms": Field(float, minimum=0, default=0.0)}, batch=True)
def where(rows):
    """Name the thread the call ran on (sleeping the largest delay_ms first)."""
    time.sleep(max(row["delay_ms"] for row in rows) / 1000.0)
    return [{"thread": threading.current_thread().name, "batch": len(rows)} for _ in rows]
