"""Events: handles topic ``events``; ``explode`` makes the handler fail every time."""

from cerebro import Field, endpoint


@endpoint(inputs={"n": Field(int, minimum=0), "explode": Field(bool, default=False)},
          topics=("events",), extra="ignore")
def handle(n, explode):
    """Double ``n``; raise when asked to (an always-failing handler)."""
    if explode:
        raise RuntimeError(f"handler exploded on n={n}")
    return {"double": 2 * n}
