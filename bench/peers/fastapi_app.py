"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Peer for bench/peers.py: FastAPI serving the rent regressor, one row per request.
Tagline: The popular road, walked at its own pace.

Runs in its own virtualenv (fastapi, uvicorn[standard], scikit-learn), never
in Cerebro's. Loads the exported ``HistGradientBoostingRegressor`` from
``PEER_MODEL`` and answers ``POST /predict`` with ``{"features": [...]}``
(the numeric feature row) by one ``predict`` call per request, in a plain
``def`` endpoint (FastAPI runs it in its thread pool, the documented way for
blocking calls; an ``async def`` measured no faster here and timed out more
requests at c=64). Started by bench/peers.py as::

    uvicorn fastapi_app:app --app-dir bench/peers --workers 2 --port P
"""

import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

MODEL = joblib.load(os.environ["PEER_MODEL"])
app = FastAPI()


class Row(BaseModel):
    """One numeric feature row, in the regressor's column order."""

    features: list[float]


@app.post("/predict")
def predict(row: Row):
    """The regressor's prediction for one row."""
    value = MODEL.predict(np.asarray([row.features], dtype=np.float64))[0]
    return {"prediction": float(value)}
