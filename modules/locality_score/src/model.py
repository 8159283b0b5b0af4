"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The locality score formula and its calibration from locality data.
Tagline: A formula, tuned by the people who live there.

The score is a weighted sum of components (see :mod:`transform`), stretched
to 0-10 and graded A+ to D::

    raw   = sum(weight[f] * component[f])          components in [0, 1]
    score = 10 * clip((raw - raw_low) / (raw_high - raw_low), 0, 1)

:func:`calibrate` sets every constant from data: each city's half-lives are
its median distances; the weights are the non-negative least-squares fit of
resident ratings on the components (normalised to sum to 1); ``raw_low`` and
``raw_high`` are the 1st and 99th percentiles of ``raw``; the grade cut
points are score percentiles. The calibration is a plain dict (the published
"model"), so loading it needs no code of ours, and :func:`score` is pure
Python: microseconds per call.
"""

from modules.locality_score.src import transform
from modules.locality_score.src.utilities import (AMENITIES, DISTANCES, GRADE_PERCENTILES, GRADES,
                                                  OTHER_CITY, distance_column)

KIND = "locality_score/calibration/1"
#: Half-lives are never shorter than this (km): a city where everything is next door stays sane.
MIN_HALF_LIFE_KM = 0.05
RAW_PERCENTILES = (1.0, 99.0)


def calibrate(frame):
    """The calibration dict for a clean locality frame (see the module docstring)."""
    import numpy as np

    half_lives = {OTHER_CITY: _medians(frame)}
    for city, rows in frame.groupby("city"):
        half_lives[str(city)] = _medians(rows)
    parts = component_matrix(frame, half_lives)
    ratings = frame["resident_rating"].to_numpy(dtype=float)
    weights = _fit_weights(parts, ratings)
    raw = parts @ np.array([weights[name] for name in component_names()])
    low, high = (float(v) for v in np.percentile(raw, RAW_PERCENTILES))
    calibration = {
        "kind": KIND,
        "features": list(DISTANCES),
        "amenities": list(AMENITIES),
        "half_life_km": half_lives,
        "weights": weights,
        "raw_range": [low, high],
        "grade_cuts": [],
        "rows": int(len(frame)),
    }
    scores = np.array([_scaled(calibration, value) for value in raw])
    cuts = np.percentile(scores, GRADE_PERCENTILES)
    calibration["grade_cuts"] = [[round(float(c), 4), g] for c, g in zip(cuts, GRADES)]
    return calibration


def component_names():
    """Component names in score order: the distance features, then ``amenities``."""
    return (*DISTANCES, "amenities")


def component_matrix(frame, half_lives):
    """A ``rows x components`` numpy matrix of the components of every locality in ``frame``."""
    import numpy as np

    columns = [distance_column(name) for name in DISTANCES]
    rows = []
    for city, amenities, *distances in zip(frame["city"], frame["amenities"],
                                           *(frame[c] for c in columns)):
        half = half_lives.get(city, half_lives[OTHER_CITY])
        parts = transform.components(half, dict(zip(DISTANCES, distances)), amenities)
        rows.append([parts[name] for name in component_names()])
    return np.array(rows, dtype=float)


def score(calibration, city, distances, amenities=()):
    """Score one locality: ``{"score": 0-10, "grade": "A+".."D", "components": {...}}``.

    ``distances`` maps every distance feature (``metro``, ``bus_stop`` ...)
    to km; an unknown ``city`` uses the national calibration.
    """
    half_lives = calibration["half_life_km"]
    half = half_lives.get(city) or half_lives[OTHER_CITY]
    parts = transform.components(half, distances, amenities)
    weights = calibration["weights"]
    value = _scaled(calibration, sum(weights[name] * parts[name] for name in weights))
    return {
        "score": round(value, 2),
        "grade": grade(calibration, value),
        "components": {name: round(part, 3) for name, part in parts.items()},
    }


def grade(calibration, value):
    """The grade of a score: the first cut point it reaches, else the lowest grade."""
    for cut, name in calibration["grade_cuts"]:
        if value >= cut:
            return name
    return GRADES[-1]


def _scaled(calibration, raw):
    """Stretch a raw weighted sum onto 0-10 with the calibrated range, clipped."""
    low, high = calibration["raw_range"]
    return 10.0 * min(max((raw - low) / (high - low), 0.0), 1.0)


def _medians(frame):
    """Median distance per feature (km) of a set of localities: the half-lives."""
    return {name: max(float(frame[distance_column(name)].median()), MIN_HALF_LIFE_KM)
            for name in DISTANCES}


def _fit_weights(parts, ratings):
    """Non-negative weights of the components that best explain ratings, summing to 1.

    Both sides are centred, so the fit has a free intercept; when no
    component explains anything the weights fall back to equal.
    """
    from scipy.optimize import nnls

    centred = parts - parts.mean(axis=0)
    solution, _residual = nnls(centred, ratings - ratings.mean())
    total = float(solution.sum())
    names = component_names()
    if total <= 0:
        return {name: 1.0 / len(names) for name in names}
    return {name: round(float(w) / total, 6) for name, w in zip(names, solution)}
