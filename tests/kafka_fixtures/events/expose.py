"""Events: handles the topic CEREBRO_TEST_EVENTS_TOPIC names (``events`` by default; each test
gives its own, so tests can share an external broker); ``explode`` makes the handler fail every
time."""

import os

from cerebro import Field, endpoint

TOPIC = os.environ.get("CEREBRO_TEST_EVENTS_TOPIC", "events")


@endpoint(inputs={"n": Field(int, minimum=0), "explode": Field(bool, default=False)},
          topics=(TOPIC,), extra="ignore")
def handle(n, explode):
    """Double ``n``; raise when asked to (an always-failing handler)."""
    if explode:
        raise RuntimeError(f"handler exploded on n={n}")
    return {"double": 2 * n}
