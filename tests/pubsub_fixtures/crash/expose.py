"""Crash: a function that kills its process when asked, as a poison message would."""

import os

from cerebro import Field, endpoint


@endpoint(inputs={"die": Field(bool, default=False), "n": Field(int, default=0)})
def maybe_die(die, n):
    """Exit the whole process at once (no cleanup, no ack) when ``die``; else echo ``n``."""
    if die:
        os._exit(3)
    return {"n": n, "pid": os.getpid()}
