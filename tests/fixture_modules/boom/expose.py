"""Boom: a module whose function raises, for error-path tests."""

from cerebro import Field, endpoint


@endpoint(inputs={"n": Field(int, default=1)})
def explode(n):
    """Always fail with a bug."""
    raise ZeroDivisionError(f"boom {n} / 0")


def unserializable():
    """Return something JSON cannot hold."""
    return {"value": object()}
