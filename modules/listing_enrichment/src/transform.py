"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Cleaning and the feature row shared by build and serving.
Tagline: One recipe, cooked the same at home and in the restaurant.
"""

from modules.listing_enrichment.src.utilities import FEATURES

#: The fields the served function takes (its ``inputs``), in the order it declares them.
SERVED_FIELDS = ("listing_id", "latitude", "longitude", "bhk", "area_sqft", "rent")


def features(listing, hood):
    """The model's feature row (a list in :data:`FEATURES` order) for one listing."""
    row = dict(hood)
    row["rent_per_sqft"] = listing["rent"] / listing["area_sqft"]
    row["bhk"] = listing["bhk"]
    return [float(row[name]) for name in FEATURES]


def served_inputs(frame):
    """Listings as ``enrich`` receives them (one dict per listing, in its declared fields; the
    neighbourhood comes later, from the amenities service): the reference profile that drift
    monitoring compares live calls with."""
    return frame[list(SERVED_FIELDS)].to_dict("records")


def clean(frame):
    """Drop impossible rows; add ``rent_per_sqft``. Returns ``(clean frame, rows dropped)``."""
    ok = (frame["area_sqft"] > 100) & (frame["rent"] > 0)
    out = frame[ok].copy()
    out["rent_per_sqft"] = out["rent"] / out["area_sqft"]
    return out, int((~ok).sum())
