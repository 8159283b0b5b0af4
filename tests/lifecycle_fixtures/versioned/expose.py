"""versioned: each published version is a dict of parameters deciding its answers.

``{"scale": 2.0, "threshold": 10.0}`` answers ``y = x * scale`` and a label;
``"fail": True`` raises on every call (a broken candidate); ``"sleep"`` seconds
slow every call down. Served on REST (plain and batched) and on a Kafka topic
named by ``CEREBRO_TEST_VERSIONED_TOPIC``.
"""

import os
import time

from cerebro import Batching, Field, ModelHandle, endpoint
from cerebro.monitoring import Monitoring

MODEL = ModelHandle("versioned")
# served calls are logged for retraining with ``x`` only: ``note`` (personal) stays out
MONITORING = Monitoring(log_predictions=True, log_fields=("x",))
TOPIC = os.environ.get("CEREBRO_TEST_VERSIONED_TOPIC", "versioned-events")


def _answer(x):
    """The answer of the version being served (current, or the candidate in a trial)."""
    loaded = MODEL.current()
    params = loaded.obj
    if params.get("sleep"):
        time.sleep(params["sleep"])
    if params.get("fail"):
        raise RuntimeError(f"version {loaded.version} fails on purpose")
    y = round(x * params["scale"], 6)
    return {"y": y, "label": "high" if y > params["threshold"] else "low",
            "model_version": loaded.version}


@endpoint(inputs={"x": Field(float), "note": Field(str, default="")}, topics=(TOPIC,),
          extra="ignore", example={"x": 1.0})
def predict(x, note):
    """``x`` scaled by the version's parameters (``note`` is not used: a personal field the
    prediction log must leave out)."""
    return _answer(x)


@endpoint(inputs={"x": Field(float)}, batch=Batching(max_size=32), example={"x": 1.0})
def predict_many(rows):
    """The batched form of :func:`predict`."""
    return [_answer(row["x"]) for row in rows]


@endpoint(inputs={"x": Field(float)}, external=True, example={"x": 1.0})
def predict_later(x):
    """:func:`predict` on the async path (202, a Celery worker, a signed callback)."""
    return _answer(x)
