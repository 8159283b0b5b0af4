"""Jobs: async functions for the RabbitMQ + Celery tests and the ack benchmark."""

import os
import time

from cerebro import Field, endpoint


@endpoint(inputs={}, external=True)
def noop():
    """Do nothing (the benchmark's trivial task)."""
    return {"ok": True}


@endpoint(inputs={"seconds": Field(float, minimum=0, maximum=60), "tag": Field(str, default="")},
          external=True)
def nap(seconds, tag):
    """Sleep, then answer with the worker's pid (kill -9 tests)."""
    time.sleep(seconds)
    return {"slept": seconds, "tag": tag, "pid": os.getpid()}


@endpoint(inputs={"x": Field(int, minimum=0, maximum=1000)}, external=True)
def square(x):
    """Square a number, asynchronously."""
    return {"square": x * x}


@endpoint(inputs={"x": Field(int, default=1)}, external=True)
def crash(x):
    """Fail with a bug."""
    raise RuntimeError(f"crash {x}")


def sync_add(a: float, b: float = 1.0):
    """A synchronous sibling, served at once."""
    return {"sum": a + b}
