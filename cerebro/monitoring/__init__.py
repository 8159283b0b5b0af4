"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Prediction monitoring: each model's training profile, live profiles, drift, alerts.
Tagline: Healthy servers can serve a model whose world has changed; this is how we notice.

* :mod:`.profile`: the reference profile a build publishes beside the model
  (``profile.json``), from the training inputs and the model's predictions;
* :mod:`.live`: every transport's served calls, sampled, counted against the
  reference's bins in time slots per module and version, written per process
  for the node to merge;
* :mod:`.drift`: population stability index, Jensen-Shannon distance, missing,
  out-of-range and unseen shares per feature and prediction, with thresholds;
* :mod:`.policy`: what an ``expose.py`` may declare (``MONITORING = Monitoring(...)``);
* :mod:`.predictions`: the opt-in prediction log for retraining.
"""

from cerebro.monitoring.policy import Monitoring

__all__ = ["Monitoring"]
