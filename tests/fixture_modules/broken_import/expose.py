"""A module that fails to import."""

import this_package_does_not_exist  # noqa: F401


def predict(x: float):
    """Never reachable."""
    return x
