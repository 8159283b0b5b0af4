"""Slow: a function that takes its time, to prove the IOLoop is never blocked."""

import time


def wait(seconds: float = 1.0):
    """Sleep, then answer."""
    time.sleep(seconds)
    return {"slept": seconds}
