"""Helpers of the lifecycle tests: publish versions of the ``versioned`` fixture module."""

import json
import time

from cerebro import volume
from support import TEST_SIGNING_KEY, TESTS

MODULE = "versioned"
PACKAGE = {"CEREBRO_MODULES_PACKAGE": "lifecycle_fixtures", "CEREBRO_MODULES": MODULE}
assert (TESTS / "lifecycle_fixtures" / MODULE).is_dir()


def publish(root, keep=10, signing_key=TEST_SIGNING_KEY, profile=None, **params):
    """Publish a version whose parameters are ``params`` (scale 2, threshold 10 by default),
    with a reference ``profile`` (profile.json) when given; returns its name. Versions are
    named by the millisecond: wait one between two."""
    params = {"scale": 2.0, "threshold": 10.0, **params}
    files = {"profile.json": json.dumps(profile).encode()} if profile else None
    meta = volume.publish(root, MODULE, {"model": params}, keep=keep, signing_key=signing_key,
                          metrics={"scale": params["scale"]}, files=files)
    time.sleep(0.002)
    return meta["version"]


def current(root):
    """The current version in the volume."""
    return json.loads((root / MODULE / "current.json").read_text())["version"]
