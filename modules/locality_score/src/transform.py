"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Cleaning of locality data and the score's components, shared by calibration and expose.py.
Tagline: Distance fades like an echo; we measure how loud it still is.

A distance ``d`` becomes a *closeness* in ``(0, 1]`` that halves every
``half_life`` kilometres: ``0.5 ** (d / half_life)``. It is 1 next door, 0.5
at the city's typical (median) distance, and falls smoothly and strictly as
the distance grows. Amenities become the share of amenity kinds present.
The same functions compute components for calibration and for every request,
in pure Python: no numpy at call time.
"""

import math

from modules.locality_score.src.utilities import AMENITIES, DISTANCES, distance_column

_AMENITY_SET = frozenset(AMENITIES)


def closeness(distance_km, half_life_km):
    """How close ``distance_km`` is, in ``(0, 1]``: halves every ``half_life_km`` kilometres."""
    return 0.5 ** (distance_km / half_life_km)


def parse_amenities(value):
    """The known amenity kinds in a list or a comma-separated string (unknown kinds dropped)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return set()
    items = value.split(",") if isinstance(value, str) else value
    return {str(item).strip().casefold() for item in items} & _AMENITY_SET


def amenity_share(amenities):
    """The share of amenity kinds present, in ``[0, 1]``."""
    return len(parse_amenities(amenities)) / len(AMENITIES)


def components(half_lives, distances, amenities):
    """Every component of the score for one locality: ``{feature: closeness, "amenities": share}``.

    ``half_lives`` maps each distance feature to its half-life (km) for the
    locality's city; ``distances`` maps each feature to its distance (km).
    """
    parts = {name: closeness(distances[name], half_lives[name]) for name in DISTANCES}
    parts["amenities"] = amenity_share(amenities)
    return parts


#: The fields the served function takes (its ``inputs``), in the order it declares them.
SERVED_FIELDS = (*(distance_column(name) for name in DISTANCES), "amenities", "city")


def served_inputs(frame):
    """Localities as the served function receives them (amenities as a sorted list of known
    kinds): the reference profile that drift monitoring compares live calls with."""
    rows = frame[list(SERVED_FIELDS)].to_dict("records")
    for row in rows:
        row["amenities"] = sorted(parse_amenities(row["amenities"]))
    return rows


def clean(frame):
    """Drop localities with a missing, negative or out-of-range distance.

    Returns ``(clean frame, {reason: rows dropped})``. A distance beyond the
    feature's limit (such as the ``999`` some sources write for "unknown") is
    not a distance, so it is dropped rather than capped.
    """
    columns = [distance_column(name) for name in DISTANCES]
    checks = (
        ("missing distance", lambda f: f[columns].notna().all(axis=1)),
        ("negative distance", lambda f: (f[columns] >= 0).all(axis=1)),
        ("distance beyond limit", lambda f: (f[columns] <= list(DISTANCES.values())).all(axis=1)),
        ("missing rating", lambda f: f["resident_rating"].between(1, 5)),
    )
    dropped = {}
    for reason, keep in checks:
        mask = keep(frame)
        dropped[reason] = int((~mask).sum())
        frame = frame[mask]
    return frame.reset_index(drop=True), dropped
