"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Cleaning and the feature row shared by build and serving.
Tagline: One recipe, cooked the same at home and in the restaurant.
"""

from modules.listing_enrichment.src.utilities import FEATURES


def features(listing, hood):
    """The model's feature row (a list in :data:`FEATURES` order) for one listing."""
    row = dict(hood)
    row["rent_per_sqft"] = listing["rent"] / listing["area_sqft"]
    row["bhk"] = listing["bhk"]
    return [float(row[name]) for name in FEATURES]


def clean(frame):
    """Drop impossible rows; add ``rent_per_sqft``. Returns ``(clean frame, rows dropped)``."""
    ok = (frame["area_sqft"] > 100) & (frame["rent"] > 0)
    out = frame[ok].copy()
    out["rent_per_sqft"] = out["rent"] / out["area_sqft"]
    return out, int((~ok).sum())
