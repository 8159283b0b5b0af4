"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Deterministic synthetic listings, clean and suspicious, with the truth attached.
Tagline: Every forger has habits; we invent the forgers to learn them.

Real labels come from the moderation team; here a seeded generator plays
four kinds of poster. ``clean`` owners (about 82%); ``fake`` listings (rent
too good to be true, few stock photos, brand-new accounts, a phone number in
the description); ``duplicate`` re-posts (photos seen on another listing, one
phone behind several accounts); ``broker`` accounts posing as owners (many
listings a month, long descriptions, contact details everywhere). The kinds
overlap, as real ones do.
"""

from modules.vigilante.src.utilities import CITIES, DEFAULT_SEED, KINDS

#: Typical rent per square foot (INR/month) per city.
RENT_PER_SQFT = {"ahmedabad": 18.0, "bangalore": 34.0, "chennai": 26.0, "delhi": 40.0,
                 "gurgaon": 38.0, "hyderabad": 27.0, "kolkata": 20.0, "mumbai": 68.0,
                 "noida": 24.0, "pune": 30.0}
SHARES = {"clean": 0.82, "fake": 0.06, "duplicate": 0.06, "broker": 0.06}

# Per kind: rent gap mean/sd (log), photos mean, description log-mean, extra listings per
# month, account age log-mean (days), shared phones mean, duplicate photo Beta(a, b),
# P(contact in description), P(verified owner).
_PROFILE = {
    "clean": (0.00, 0.20, 7.0, 5.5, 0.3, 5.6, 0.20, (1, 15), 0.08, 0.55),
    "fake": (-0.35, 0.30, 4.0, 4.9, 0.3, 3.2, 0.40, (2, 8), 0.30, 0.15),
    "duplicate": (0.00, 0.22, 7.0, 5.5, 0.8, 4.8, 0.60, (3, 4), 0.10, 0.40),
    "broker": (0.08, 0.22, 9.0, 5.9, 3.0, 5.8, 1.50, (1.5, 10), 0.35, 0.20),
}


def extract(rows, seed=DEFAULT_SEED):
    """A pandas DataFrame of ``rows`` listings with their true ``kind``; same seed, same data."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    kind = rng.choice(KINDS, size=rows, p=[SHARES[k] for k in KINDS])
    city = rng.choice(CITIES, size=rows)
    bhk = rng.choice([1, 2, 3, 4, 5], size=rows, p=[0.25, 0.4, 0.25, 0.07, 0.03])
    area = np.round(bhk * rng.lognormal(np.log(480), 0.22, rows), 0)
    columns = {name: np.zeros(rows) for name in (
        "rent", "photos", "description_length", "poster_listings_30d", "poster_account_age_days",
        "phone_shared_accounts", "duplicate_photo_share")}
    contact = np.zeros(rows, dtype=bool)
    verified = np.zeros(rows, dtype=bool)
    level = np.array([RENT_PER_SQFT[c] for c in city])
    for name, (gap_mu, gap_sd, photos, desc, extra, age, phones, beta, p_contact,
               p_verified) in _PROFILE.items():
        mask = kind == name
        n = int(mask.sum())
        gap = rng.normal(gap_mu, gap_sd, n)
        columns["rent"][mask] = np.round(level[mask] * area[mask] * np.exp(gap), -2)
        columns["photos"][mask] = rng.poisson(photos, n)
        columns["description_length"][mask] = np.round(rng.lognormal(desc, 0.6, n))
        columns["poster_listings_30d"][mask] = 1 + rng.poisson(extra, n)
        columns["poster_account_age_days"][mask] = np.round(rng.lognormal(age, 1.0, n), 1)
        columns["phone_shared_accounts"][mask] = rng.poisson(phones, n)
        columns["duplicate_photo_share"][mask] = np.round(rng.beta(*beta, n), 3)
        contact[mask] = rng.random(n) < p_contact
        verified[mask] = rng.random(n) < p_verified
    frame = pd.DataFrame({
        "listing_id": [f"L{i:07d}" for i in range(rows)],
        "city": city, "bhk": bhk, "area_sqft": area, **columns,
        "contact_in_description": contact, "verified_owner": verified, "kind": kind,
    })
    for name in ("photos", "description_length", "poster_listings_30d", "phone_shared_accounts"):
        frame[name] = frame[name].astype(int)
    frame.loc[frame["rent"] < 1000, "rent"] = 1000.0
    return frame
