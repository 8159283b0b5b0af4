"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Vigilante's features: the same numbers for training (vectorised) and for one event.
Tagline: Ten small numbers that give a listing away.

:func:`features` turns one listing into the model's feature row with plain
``math`` (no numpy, no pandas: microseconds per event); :func:`feature_matrix`
does the same for a whole DataFrame at build time, and a test keeps the two
identical. The rent gap compares the asked rent with the city's typical rent
per square foot (learned at build time, :func:`rent_levels`).
"""

import math

from modules.vigilante.src.utilities import OTHER_CITY

GAP_LIMIT = 3.0


def rent_levels(frame):
    """Median rent per square foot per city (and nationally, as ``other``)."""
    per_sqft = frame["rent"] / frame["area_sqft"]
    medians = per_sqft.groupby(frame["city"]).median()
    levels = {str(city): float(value) for city, value in medians.items()}
    levels[OTHER_CITY] = float(per_sqft.median())
    return levels


def features(listing, levels):
    """The feature row (list of floats, in ``FEATURES`` order) of one listing dict."""
    level = levels.get(listing["city"]) or levels[OTHER_CITY]
    area = listing["area_sqft"]
    gap = math.log(max(listing["rent"], 1.0) / (level * area))
    return [
        min(max(gap, -GAP_LIMIT), GAP_LIMIT),
        math.log1p(listing["photos"]),
        math.log1p(listing["description_length"]),
        math.log1p(listing["poster_listings_30d"]),
        math.log1p(listing["poster_account_age_days"]),
        math.log1p(listing["phone_shared_accounts"]),
        float(listing["duplicate_photo_share"]),
        1.0 if listing["contact_in_description"] else 0.0,
        1.0 if listing["verified_owner"] else 0.0,
        math.log(area / max(listing["bhk"], 1)),
    ]


def feature_matrix(frame, levels):
    """The feature matrix (numpy, rows x features) of a listings DataFrame."""
    import numpy as np

    level = frame["city"].map(levels).fillna(levels[OTHER_CITY]).to_numpy(dtype=float)
    area = frame["area_sqft"].to_numpy(dtype=float)
    gap = np.log(np.maximum(frame["rent"].to_numpy(dtype=float), 1.0) / (level * area))
    return np.column_stack([
        np.clip(gap, -GAP_LIMIT, GAP_LIMIT),
        np.log1p(frame["photos"].to_numpy(dtype=float)),
        np.log1p(frame["description_length"].to_numpy(dtype=float)),
        np.log1p(frame["poster_listings_30d"].to_numpy(dtype=float)),
        np.log1p(frame["poster_account_age_days"].to_numpy(dtype=float)),
        np.log1p(frame["phone_shared_accounts"].to_numpy(dtype=float)),
        frame["duplicate_photo_share"].to_numpy(dtype=float),
        frame["contact_in_description"].to_numpy(dtype=float),
        frame["verified_owner"].to_numpy(dtype=float),
        np.log(area / np.maximum(frame["bhk"].to_numpy(dtype=float), 1.0)),
    ])


#: The fields the served function takes (its ``inputs``), in the order it declares them.
SERVED_FIELDS = ("listing_id", "city", "bhk", "area_sqft", "rent", "photos", "description_length",
                 "poster_listings_30d", "poster_account_age_days", "phone_shared_accounts",
                 "duplicate_photo_share", "contact_in_description", "verified_owner")


def served_inputs(frame):
    """Listings as the served function receives them (one dict per listing, in its declared
    fields): the reference profile that drift monitoring compares live calls with."""
    return frame[list(SERVED_FIELDS)].to_dict("records")


def clean(frame):
    """Drop listings that cannot be scored (no area, no rent); returns ``(frame, dropped)``."""
    keep = (frame["area_sqft"] > 0) & (frame["rent"] > 0) & (frame["bhk"] > 0)
    return frame[keep].reset_index(drop=True), int((~keep).sum())
