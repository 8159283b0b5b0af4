"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Peer for bench/peers.py: a BentoML 1.4 service with a batchable predict API.
Tagline: Bento boxes, packed to order.

Runs in its own virtualenv (bentoml, scikit-learn), never in Cerebro's.
Loads the exported ``HistGradientBoostingRegressor`` from ``PEER_MODEL``;
``POST /predict`` takes ``{"features": [[...]]}`` (one numeric row) and
BentoML's adaptive batching stacks concurrent requests along axis 0 into one
``predict`` call (at most ``PEER_MAX_BATCH`` rows, ``PEER_MAX_LATENCY_MS``).
``PEER_BATCHING=false`` serves the same API unbatched. ``PEER_WORKERS`` sets
the service workers. Started by bench/peers.py as::

    bentoml serve bentoml_service:RentRegressor --working-dir bench/peers --port P
"""

import os

import bentoml
import joblib
import numpy as np

WORKERS = int(os.environ.get("PEER_WORKERS", "2"))
BATCHING = os.environ.get("PEER_BATCHING", "true").lower() == "true"
MAX_BATCH = int(os.environ.get("PEER_MAX_BATCH", "32"))
MAX_LATENCY_MS = int(os.environ.get("PEER_MAX_LATENCY_MS", "10000"))


@bentoml.service(workers=WORKERS, traffic={"timeout": 60})
class RentRegressor:
    """The rent regressor as a BentoML service."""

    def __init__(self):
        """Load the regressor once per worker."""
        self.model = joblib.load(os.environ["PEER_MODEL"])

    @bentoml.api(batchable=BATCHING, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``features`` (a batch when batching is on)."""
        return self.model.predict(np.asarray(features, dtype=np.float64))
