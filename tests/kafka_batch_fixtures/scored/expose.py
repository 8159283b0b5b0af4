"""Scored: a batch function handling topic ``scored``.

``poison`` makes the whole batch call raise (one bad row spoils the call);
``reject`` fails only its own row with a client error; the test can make the
next calls fail as a whole with :data:`FAIL_NEXT` (a transient, global
failure). :data:`CALLS` records the size of every call.
"""

from cerebro import Batching, Field, endpoint
from cerebro.errors import InvalidPayload

CALLS = []
FAIL_NEXT = [0]


@endpoint(inputs={"n": Field(int, minimum=0), "poison": Field(bool, default=False),
                  "reject": Field(bool, default=False)},
          topics=("scored",), extra="ignore", batch=Batching(max_size=8))
def score(rows):
    """Triple every ``n``; see the module docstring for the failure switches."""
    CALLS.append(len(rows))
    if FAIL_NEXT[0] > 0:
        FAIL_NEXT[0] -= 1
        raise RuntimeError("transient: the whole batch failed")
    if any(row["poison"] for row in rows):
        raise RuntimeError("poison row in the batch")
    return [InvalidPayload("rejected by the model", "reject") if row["reject"]
            else {"triple": 3 * row["n"]} for row in rows]
