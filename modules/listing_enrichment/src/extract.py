"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Generated listings with their neighbourhoods and whether they were let within two weeks.
Tagline: Yesterday's listings teach tomorrow's guesses.

Stands in for the listings warehouse joined with the amenities service: the
same ``rows`` and ``seed`` always give the same frame.
"""

import numpy as np
import pandas as pd

from modules.listing_enrichment.src.utilities import DEFAULT_SEED, neighbourhood


def extract(rows, seed=DEFAULT_SEED):
    """A raw ``DataFrame`` of listings: id, coordinates, size, rent, neighbourhood and
    ``let_fast``."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(12.8, 13.2, rows)
    lon = rng.uniform(77.4, 77.8, rows)
    bhk = rng.integers(1, 5, rows)
    area = np.round(rng.normal(450, 80, rows) * bhk + 150, 0)
    hood = pd.DataFrame([neighbourhood(a, b) for a, b in zip(lat, lon)])
    base = 28 - 1.2 * hood["metro_km"] + 0.15 * hood["amenities_1km"]
    rent = np.round(area * np.maximum(base, 8) * rng.lognormal(0, 0.15, rows), -2)
    value = (-0.35 * hood["metro_km"] - 0.2 * hood["school_km"] - 0.1 * hood["hospital_km"]
             - 0.2 * hood["park_km"] + 0.08 * hood["amenities_1km"]
             - 0.08 * (rent / area - base) + rng.normal(0, 0.6, rows))
    frame = pd.DataFrame({"listing_id": [f"L-{i:07d}" for i in range(1, rows + 1)],
                          "latitude": lat, "longitude": lon, "bhk": bhk, "area_sqft": area,
                          "rent": rent})
    frame = pd.concat([frame, hood], axis=1)
    frame["let_fast"] = (value > np.median(value)).astype(int)
    return frame
