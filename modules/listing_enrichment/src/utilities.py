"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Shared constants of listing_enrichment and the deterministic neighbourhood generator.
Tagline: Every coordinate has a neighbourhood, and the same one every time.

:func:`neighbourhood` stands in for the real amenities service when
generating training data, and the test suite's stand-in service answers with
it too, so build and serving see the same kind of numbers.
"""

import math
import os

MODULE = "listing_enrichment"
DEFAULT_ROWS = 20000
DEFAULT_SEED = 7
MIN_ROWS = 500
AMENITIES_URL_ENV = "LISTING_ENRICHMENT_AMENITIES_URL"
AMENITIES_TIMEOUT_ENV = "LISTING_ENRICHMENT_TIMEOUT"
DEFAULT_AMENITIES_URL = "http://127.0.0.1:8090"
DISTANCES = ("metro_km", "school_km", "hospital_km", "park_km")
FEATURES = (*DISTANCES, "amenities_1km", "rent_per_sqft", "bhk")
TIERS = ((0.66, "high"), (0.33, "medium"), (0.0, "low"))


def amenities_url():
    """Base URL of the amenities service (``LISTING_ENRICHMENT_AMENITIES_URL``)."""
    return os.environ.get(AMENITIES_URL_ENV, DEFAULT_AMENITIES_URL).rstrip("/")


def amenities_timeout():
    """Seconds one call to the amenities service may take (``LISTING_ENRICHMENT_TIMEOUT``)."""
    return float(os.environ.get(AMENITIES_TIMEOUT_ENV, "5"))


def neighbourhood(lat, lon):
    """Deterministic distances (km) to amenities and the count within 1 km of a coordinate."""
    def wave(a, b, scale):
        """A smooth pseudo-random value in [0, 1)."""
        return (math.sin(a * 12.9898 + b * 78.233) * 43758.5453 * scale) % 1.0

    return {
        "metro_km": round(0.2 + 9.8 * wave(lat, lon, 1.0) ** 2, 3),
        "school_km": round(0.1 + 4.9 * wave(lon, lat, 0.7) ** 2, 3),
        "hospital_km": round(0.2 + 7.8 * wave(lat + 1, lon, 0.3) ** 2, 3),
        "park_km": round(0.05 + 3.0 * wave(lat, lon + 1, 0.9) ** 2, 3),
        "amenities_1km": int(25 * (1 - wave(lat - 1, lon, 0.5))),
    }


def tier(probability):
    """``high``, ``medium`` or ``low`` for a demand probability."""
    for cut, name in TIERS:
        if probability >= cut:
            return name
    return "low"
