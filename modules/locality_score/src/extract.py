"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Deterministic, realistic locality data: distances, amenities and resident ratings.
Tagline: Every street corner, counted in kilometres.

Stands in for the geo warehouse: :func:`extract` returns one row per
locality with distances (km) to the nearest metro station, bus stop, school,
hospital, park and market, the amenities within a walk, and the average
rating residents gave the locality (1-5) in a survey. Each locality has a
hidden "connectedness" that makes its distances short or long together, and
each city its own typical distances (Delhi's metro is dense, Ahmedabad's
sparse). About 1% of rows carry the usual defects: missing distances,
negative distances and ``999`` written for "unknown".
"""

from modules.locality_score.src.utilities import AMENITIES, DEFAULT_SEED, DISTANCES, distance_column

#: city -> (Beta a, Beta b) of its localities' connectedness; higher a means better connected.
CITY_CONNECTEDNESS = {
    "ahmedabad": (2.0, 2.6), "bangalore": (2.4, 2.2), "chennai": (2.3, 2.3), "delhi": (2.8, 2.0),
    "gurgaon": (2.2, 2.4), "hyderabad": (2.3, 2.3), "kolkata": (2.5, 2.2), "mumbai": (2.9, 1.9),
    "noida": (2.1, 2.5), "pune": (2.2, 2.4),
}
#: city -> share of the localities in the data.
CITY_SHARE = {"ahmedabad": 0.06, "bangalore": 0.16, "chennai": 0.1, "delhi": 0.14, "gurgaon": 0.06,
              "hyderabad": 0.12, "kolkata": 0.08, "mumbai": 0.14, "noida": 0.05, "pune": 0.09}
#: Typical distance (km) of a middling locality, per feature.
BASE_DISTANCE = {"metro": 2.5, "bus_stop": 0.4, "school": 0.8, "hospital": 1.6, "park": 0.7,
                 "market": 0.6}
#: Per-city multiplier of the metro distance: how dense the network is.
METRO_DENSITY = {"ahmedabad": 2.4, "bangalore": 1.2, "chennai": 1.5, "delhi": 0.6, "gurgaon": 1.3,
                 "hyderabad": 1.3, "kolkata": 1.4, "mumbai": 1.0, "noida": 1.0, "pune": 2.0}
#: How much residents care about each feature when they rate a locality (the hidden truth).
RESIDENT_WEIGHTS = {"metro": 0.24, "bus_stop": 0.08, "school": 0.14, "hospital": 0.16, "park": 0.1,
                    "market": 0.12, "amenities": 0.16}
DIRTY_SHARE = 0.01


def extract(rows, seed=DEFAULT_SEED):
    """Return ``rows`` localities as a ``DataFrame``, the same for the same ``rows`` and ``seed``.

    Columns: ``locality_id``, ``city``, ``<feature>_km`` for every distance
    feature, ``amenities`` (comma-separated kinds) and ``resident_rating``.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cities = sorted(CITY_SHARE)
    share = np.array([CITY_SHARE[c] for c in cities])
    city = rng.choice(cities, size=rows, p=share / share.sum())
    a = np.array([CITY_CONNECTEDNESS[c][0] for c in city])
    b = np.array([CITY_CONNECTEDNESS[c][1] for c in city])
    connected = rng.beta(a, b)

    columns = {"locality_id": [f"{c[:3].upper()}-{i:06d}" for i, c in enumerate(city, start=1)],
               "city": city.astype(object)}
    closeness = {}
    for name, limit in DISTANCES.items():
        density = np.array([METRO_DENSITY[c] for c in city]) if name == "metro" else 1.0
        scale = BASE_DISTANCE[name] * density
        distance = scale * np.exp(-2.0 * (connected - 0.5)) * rng.lognormal(0.0, 0.55, rows)
        distance = np.clip(np.round(distance, 2), 0.0, limit)
        columns[distance_column(name)] = distance
        closeness[name] = 0.5 ** (distance / scale)

    kind_offset = np.linspace(0.6, -0.8, len(AMENITIES))   # ATMs are everywhere, malls are not
    logit = -1.6 + 4.2 * connected[:, None] + kind_offset[None, :]
    present = rng.random((rows, len(AMENITIES))) < 1 / (1 + np.exp(-logit))
    columns["amenities"] = [",".join(k for k, p in zip(AMENITIES, row) if p) for row in present]
    closeness["amenities"] = present.mean(axis=1)

    liking = sum(RESIDENT_WEIGHTS[n] * closeness[n] for n in RESIDENT_WEIGHTS)
    rating = 1 + 4 / (1 + np.exp(-(6.0 * (liking - 0.45) + rng.normal(0.0, 0.45, rows))))
    columns["resident_rating"] = np.round(rating, 1)
    return _dirty(pd.DataFrame(columns), rng)


def _dirty(frame, rng):
    """Spoil about :data:`DIRTY_SHARE` of the rows: missing, negative or ``999`` distances."""
    import numpy as np

    names = [distance_column(n) for n in DISTANCES]
    spoiled = np.flatnonzero(rng.random(len(frame)) < DIRTY_SHARE)
    for index, kind, column in zip(spoiled, rng.integers(0, 3, len(spoiled)),
                                   rng.choice(names, len(spoiled))):
        frame.at[index, column] = (np.nan, -frame.at[index, column] - 0.1, 999.0)[kind]
    return frame
