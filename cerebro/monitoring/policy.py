"""
Author:  Cerebro team
Date:    2026-11-29
Subject: What a module declares about its monitoring: sampling, thresholds, the prediction log.
Tagline: Sensible defaults, said out loud where they differ.

An ``expose.py`` may declare, at module level::

    MONITORING = Monitoring(psi=0.25, thresholds={"area_sqft": 0.3},
                            log_predictions=True, log_fields=("city", "bhk", "area_sqft"))

Without one, a module is monitored with the defaults (``CEREBRO_DRIFT_SAMPLE``
and the thresholds below) and logs no predictions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Monitoring:
    """A module's monitoring policy.

    ``sample``: share of served calls profiled (``None``: ``CEREBRO_DRIFT_SAMPLE``).
    ``psi``: population stability index over which a feature or prediction drifts
    (per-feature overrides in ``thresholds``). ``missing``, ``out_of_range`` and
    ``unseen``: largest tolerated rise in the share of missing values, of numbers
    outside the training range, and of categories never seen in training.
    ``min_samples``: profiled calls a window needs before it is judged.
    ``log_predictions``: keep a sampled log of inputs and outputs for retraining,
    with only the input fields named in ``log_fields`` (personal data stays out
    unless named).
    """

    sample: float | None = None
    enabled: bool = True
    psi: float = 0.2
    thresholds: Mapping[str, float] = field(default_factory=dict)
    missing: float = 0.1
    out_of_range: float = 0.1
    unseen: float = 0.1
    min_samples: int = 200
    log_predictions: bool = False
    log_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sample is not None and not 0.0 <= self.sample <= 1.0:
            raise ValueError("Monitoring(sample=...) must be between 0 and 1")
        if self.psi <= 0 or self.min_samples < 1:
            raise ValueError("Monitoring needs psi > 0 and min_samples >= 1")

    def psi_threshold(self, feature: str) -> float:
        """The PSI threshold of one feature (or prediction field)."""
        return float(self.thresholds.get(feature, self.psi))


DEFAULT = Monitoring()
