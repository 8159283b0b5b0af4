"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Cleaning and feature engineering of listings, shared by the build and by expose.py.
Tagline: One recipe in the kitchen and at the table.

:func:`engineer` turns one listing (a plain dict) into the exact feature
record the model is trained on. The build applies it to every training row
(:func:`features`) and ``expose.py`` applies it to the one listing of a
request, so serving can never drift from training. :func:`clean` drops the
rows a model should not learn from and says why. Only the standard library
is imported at module level: importing this file is free.
"""

import math

from modules.rent_predictor.src.utilities import (AMENITIES, CITIES, FURNISHING, OTHER_LOCALITY,
                                                  PARKING)

#: Bounds a listing must respect, in training data and in requests alike.
BHK_RANGE = (1, 10)
AREA_RANGE = (100.0, 20000.0)
MIN_AREA_PER_BHK = 80.0
FLOOR_RANGE = (0, 100)
TOTAL_FLOORS_RANGE = (1, 100)
BATHROOM_RANGE = (1, 10)
AGE_RANGE = (0.0, 100.0)
#: Rent per square foot outside this band is a typo (a zero missing or extra).
RENT_PER_SQFT_RANGE = (3.0, 400.0)
#: Rent per square foot this many times above or below its locality's median is a typo.
RENT_OUTLIER_FACTOR = 3.5
#: A locality needs this many training listings to get its own category.
MIN_LOCALITY_LISTINGS = 5
#: Share of training rows whose locality is hidden, so every city's ``other`` locality is learned.
LOCALITY_DROPOUT = 0.05

#: Low-cardinality categoricals (one-hot) and the high-cardinality locality (target encoded).
ONE_HOT = ("city", "furnishing", "parking")
TARGET_ENCODED = ("locality_key",)
CATEGORICAL = ONE_HOT + TARGET_ENCODED
NUMERIC = ("bhk", "area_sqft", "bathrooms", "floor", "total_floors", "age_years",
           "area_per_bhk", "floor_ratio", "is_ground_floor", "is_top_floor", "amenity_count",
           *(f"has_{name}" for name in AMENITIES))
FEATURES = CATEGORICAL + NUMERIC
TARGET = "rent"

_FURNISHING_ALIASES = {
    "unfurnished": "unfurnished", "un-furnished": "unfurnished", "none": "unfurnished",
    "semi": "semi", "semi-furnished": "semi", "semi furnished": "semi", "semifurnished": "semi",
    "full": "full", "fully furnished": "full", "fully-furnished": "full", "furnished": "full",
}
_PARKING_ALIASES = {"none": "none", "no": "none", "two_wheeler": "two_wheeler",
                    "bike": "two_wheeler", "four_wheeler": "four_wheeler", "car": "four_wheeler",
                    "both": "both"}


def normalise_label(value):
    """Casefold a free-text label and collapse its whitespace (``None`` becomes ``""``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split()).casefold()


def locality_key(city, locality):
    """The city-qualified key of a locality, such as ``"mumbai:bandra west"``."""
    name = normalise_label(locality)
    return f"{city}:{name or OTHER_LOCALITY}"


def parse_amenities(value):
    """The known amenities in a list or a comma-separated string; unknown names are dropped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return set()
    items = value.split(",") if isinstance(value, str) else value
    return {normalise_label(item).replace(" ", "_") for item in items} & set(AMENITIES)


def engineer(record, vocabulary):
    """The model's feature record (keys :data:`FEATURES`) for one clean listing.

    ``record`` holds the raw columns (``city``, ``locality``, ``bhk``, ...);
    ``vocabulary`` is the set of locality keys the model knows. A locality
    outside it is folded into its city's ``other`` locality.
    """
    city = normalise_label(record["city"])
    key = locality_key(city, record["locality"])
    if key not in vocabulary:
        key = f"{city}:{OTHER_LOCALITY}"
    bhk = int(record["bhk"])
    area = float(record["area_sqft"])
    floor = int(record["floor"])
    total = int(record["total_floors"])
    amenities = parse_amenities(record.get("amenities"))
    features = {
        "city": city,
        "locality_key": key,
        "furnishing": _alias(_FURNISHING_ALIASES, "furnishing", record["furnishing"]),
        "parking": _alias(_PARKING_ALIASES, "parking", record["parking"]),
        "bhk": bhk,
        "area_sqft": area,
        "bathrooms": int(record["bathrooms"]),
        "floor": floor,
        "total_floors": total,
        "age_years": float(record["age_years"]),
        "area_per_bhk": area / bhk,
        "floor_ratio": floor / total,
        "is_ground_floor": int(floor == 0),
        "is_top_floor": int(floor == total and total > 1),
        "amenity_count": len(amenities),
    }
    for name in AMENITIES:
        features[f"has_{name}"] = int(name in amenities)
    return features


def _alias(aliases, name, value):
    """The canonical label of ``value``; an unknown label raises ``ValueError`` naming the field."""
    try:
        return aliases[normalise_label(value)]
    except KeyError:
        raise ValueError(f"unknown {name} {value!r}") from None


def clean(frame):
    """Drop listings a model must not learn from; return ``(clean frame, {reason: rows dropped})``.

    Labels are normalised first (so ``"Semi-Furnished"`` and ``" Mumbai"``
    survive); then rows with unknown labels, missing values, impossible
    geometry or a rent that is a typo are dropped, in that order.
    """
    frame = frame.copy()
    frame["city"] = frame["city"].map(normalise_label)
    frame["furnishing"] = frame["furnishing"].map(
        lambda v: _FURNISHING_ALIASES.get(normalise_label(v), ""))
    frame["parking"] = frame["parking"].map(lambda v: _PARKING_ALIASES.get(normalise_label(v), ""))
    checks = (
        ("unknown city", lambda f: f["city"].isin(CITIES)),
        ("unknown furnishing", lambda f: f["furnishing"].isin(FURNISHING)),
        ("unknown parking", lambda f: f["parking"].isin(PARKING)),
        ("missing values", lambda f: f[["bhk", "area_sqft", "bathrooms", "floor", "total_floors",
                                        "age_years", TARGET]].notna().all(axis=1)),
        ("bhk out of range", lambda f: f["bhk"].between(*BHK_RANGE)),
        ("area out of range", lambda f: f["area_sqft"].between(*AREA_RANGE)
         & (f["area_sqft"] >= MIN_AREA_PER_BHK * f["bhk"])),
        ("floor above total floors", lambda f: f["floor"].between(*FLOOR_RANGE)
         & f["total_floors"].between(*TOTAL_FLOORS_RANGE) & (f["floor"] <= f["total_floors"])),
        ("bathrooms out of range", lambda f: f["bathrooms"].between(*BATHROOM_RANGE)),
        ("age out of range", lambda f: f["age_years"].between(*AGE_RANGE)),
        ("rent per sqft implausible",
         lambda f: (f[TARGET] / f["area_sqft"]).between(*RENT_PER_SQFT_RANGE)),
    )
    dropped = {}
    for reason, keep in checks + (("rent far from locality median", _typical_rent),):
        mask = keep(frame)
        dropped[reason] = int((~mask).sum())
        frame = frame[mask]
    return frame.reset_index(drop=True), dropped


def _typical_rent(frame):
    """Rows whose rent per sqft is within :data:`RENT_OUTLIER_FACTOR` of their locality median.

    A missing or extra zero on the rent moves it tenfold, far outside the
    spread of honest listings in one locality, yet often inside the absolute
    band of :data:`RENT_PER_SQFT_RANGE`.
    """
    per_sqft = frame[TARGET] / frame["area_sqft"]
    keys = [locality_key(c, l) for c, l in zip(frame["city"], frame["locality"])]
    median = per_sqft.groupby(keys).transform("median")
    ratio = per_sqft / median
    return ratio.between(1.0 / RENT_OUTLIER_FACTOR, RENT_OUTLIER_FACTOR)


def locality_vocabulary(frame, min_count=MIN_LOCALITY_LISTINGS):
    """The locality keys with at least ``min_count`` listings in ``frame`` (a clean frame)."""
    keys = [locality_key(c, l) for c, l in zip(frame["city"], frame["locality"])]
    counts = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return frozenset(k for k, n in counts.items()
                     if n >= min_count and not k.endswith(f":{OTHER_LOCALITY}"))


def features(frame, vocabulary):
    """The feature ``DataFrame`` (:data:`FEATURES`) of a clean frame, one :func:`engineer` a row."""
    import pandas as pd

    records = frame.to_dict("records")
    return pd.DataFrame([engineer(r, vocabulary) for r in records], columns=list(FEATURES))


#: The fields the served function takes (its ``inputs``), in the order it declares them.
SERVED_FIELDS = ("city", "locality", "bhk", "area_sqft", "bathrooms", "floor", "total_floors",
                 "age_years", "furnishing", "parking", "amenities")


def served_inputs(frame):
    """Listings as the served function receives them (amenities as a list): the reference
    profile that drift monitoring compares live calls with."""
    rows = frame[list(SERVED_FIELDS)].to_dict("records")
    for row in rows:
        row["amenities"] = sorted(parse_amenities(row["amenities"]))
    return rows


def drop_localities(features_frame, share=LOCALITY_DROPOUT, seed=0):
    """Fold a random ``share`` of training rows into their city's ``other`` locality.

    Unmapped localities are rare in the data, so without this an unknown
    locality at request time would be priced from a handful of rows (or not
    at all). Hiding a few percent of known localities teaches the model what
    a listing somewhere in the city, locality unknown, is worth. Training only.
    """
    import numpy as np

    hide = np.random.default_rng(seed).random(len(features_frame)) < share
    features_frame = features_frame.copy()
    other = features_frame.loc[hide, "city"] + f":{OTHER_LOCALITY}"
    features_frame.loc[hide, "locality_key"] = other
    return features_frame
