"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Deterministic, realistic rental listings for ten Indian cities (the training data).
Tagline: A city of a thousand flats, born from a single seed.

Stands in for the listings warehouse: :func:`extract` returns a raw
``DataFrame`` of listings, the same for the same ``rows`` and ``seed``. Rent
is multiplicative in the things that matter (city, locality tier, area,
furnishing, amenities, floor, age) with log-normal noise, rounded like a real
ad. About 2% of rows are dirty the way real listings are (mixed-case labels,
swapped floors, missing areas, a missing or extra zero on the rent, unmapped
localities) so :mod:`transform` has real work to do.
"""

from modules.rent_predictor.src.utilities import AMENITIES, DEFAULT_SEED

#: city -> (share of listings, rent per sqft of a mid-tier semi-furnished flat, area factor)
CITY_PROFILE = {
    "ahmedabad": (0.05, 16.0, 1.05),
    "bangalore": (0.18, 30.0, 1.00),
    "chennai": (0.09, 24.0, 1.00),
    "delhi": (0.10, 30.0, 1.10),
    "gurgaon": (0.07, 32.0, 1.15),
    "hyderabad": (0.12, 25.0, 1.05),
    "kolkata": (0.06, 18.0, 0.95),
    "mumbai": (0.15, 55.0, 0.78),
    "noida": (0.06, 22.0, 1.05),
    "pune": (0.12, 25.0, 0.95),
}

#: city -> {locality: tier}; tier 1 is premium, 2 mid-market, 3 value.
LOCALITIES = {
    "ahmedabad": {"Bodakdev": 1, "Satellite": 1, "Prahlad Nagar": 1, "Vastrapur": 2, "Thaltej": 2,
                  "Bopal": 2, "Gota": 3, "Chandkheda": 3, "Maninagar": 3},
    "bangalore": {"Koramangala": 1, "Indiranagar": 1, "HSR Layout": 1, "Jayanagar": 1,
                  "Whitefield": 2, "Bellandur": 2, "Marathahalli": 2, "JP Nagar": 2, "Hebbal": 2,
                  "BTM Layout": 2, "Electronic City": 3, "Yelahanka": 3, "Kengeri": 3},
    "chennai": {"Adyar": 1, "Besant Nagar": 1, "Nungambakkam": 1, "Anna Nagar": 1, "T Nagar": 1,
                "Velachery": 2, "OMR": 2, "Porur": 2, "Perungudi": 2, "Tambaram": 3, "Avadi": 3},
    "delhi": {"Vasant Kunj": 1, "Greater Kailash": 1, "Defence Colony": 1, "Saket": 1,
              "Lajpat Nagar": 2, "Dwarka": 2, "Janakpuri": 2, "Mayur Vihar": 2, "Rohini": 3,
              "Laxmi Nagar": 3, "Uttam Nagar": 3},
    "gurgaon": {"Golf Course Road": 1, "DLF Phase 4": 1, "Sohna Road": 2, "Sector 56": 2,
                "Palam Vihar": 2, "South City 1": 2, "New Gurgaon": 3, "Manesar": 3},
    "hyderabad": {"Banjara Hills": 1, "Jubilee Hills": 1, "Gachibowli": 1, "HITEC City": 1,
                  "Kondapur": 2, "Madhapur": 2, "Kukatpally": 2, "Miyapur": 3, "LB Nagar": 3,
                  "Uppal": 3},
    "kolkata": {"Ballygunge": 1, "Alipore": 1, "Park Street": 1, "Salt Lake": 2, "New Town": 2,
                "Rajarhat": 2, "Behala": 3, "Howrah": 3, "Dum Dum": 3},
    "mumbai": {"Bandra West": 1, "Juhu": 1, "Lower Parel": 1, "Worli": 1, "Powai": 2,
               "Andheri West": 2, "Chembur": 2, "Goregaon East": 2, "Malad West": 2,
               "Borivali West": 2, "Thane West": 3, "Mira Road": 3, "Kharghar": 3},
    "noida": {"Sector 18": 1, "Sector 50": 1, "Sector 62": 2, "Sector 76": 2, "Sector 137": 2,
              "Sector 150": 2, "Greater Noida West": 3},
    "pune": {"Koregaon Park": 1, "Kalyani Nagar": 1, "Baner": 1, "Aundh": 2, "Viman Nagar": 2,
             "Hinjewadi": 2, "Kharadi": 2, "Wakad": 2, "Hadapsar": 3, "Wagholi": 3, "Pimpri": 3},
}

TIER_MULTIPLIER = {1: 1.55, 2: 1.0, 3: 0.68}
TIER_SHARE = {1: 0.8, 2: 1.3, 3: 1.0}
BHK_SHARE = {1: 0.22, 2: 0.40, 3: 0.26, 4: 0.08, 5: 0.025, 6: 0.01, 7: 0.003, 8: 0.002}
BHK_AREA = {1: 550, 2: 1000, 3: 1450, 4: 2100, 5: 2800, 6: 3500, 7: 4200, 8: 5000}
FURNISHING_SHARE = {"unfurnished": 0.35, "semi": 0.48, "full": 0.17}
FURNISHING_MULTIPLIER = {"unfurnished": 1.0, "semi": 1.07, "full": 1.20}
PARKING_MULTIPLIER = {"none": 1.0, "two_wheeler": 1.01, "four_wheeler": 1.04, "both": 1.05}
AMENITY_MULTIPLIER = {"gym": 1.03, "lift": 1.02, "pool": 1.05, "security": 1.02,
                      "power_backup": 1.03, "clubhouse": 1.03}
NOISE_SIGMA = 0.12
DIRTY_SHARE = 0.02

COLUMNS = ("listing_id", "city", "locality", "bhk", "area_sqft", "bathrooms", "floor",
           "total_floors", "furnishing", "parking", "age_years", "amenities", "rent")


def extract(rows, seed=DEFAULT_SEED):
    """Return ``rows`` raw listings as a ``DataFrame`` (:data:`COLUMNS`), deterministically."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cities = sorted(CITY_PROFILE)
    share = np.array([CITY_PROFILE[c][0] for c in cities])
    city = rng.choice(cities, size=rows, p=share / share.sum())

    locality = np.empty(rows, dtype=object)
    tier = np.zeros(rows, dtype=int)
    premium = np.ones(rows)
    for name in cities:
        mask = city == name
        names = sorted(LOCALITIES[name])
        tiers = np.array([LOCALITIES[name][n] for n in names])
        weights = np.array([TIER_SHARE[t] for t in tiers])
        # A fixed premium per locality on top of its tier: no two localities price alike.
        jitter = rng.lognormal(0.0, 0.08, size=len(names))
        pick = rng.choice(len(names), size=int(mask.sum()), p=weights / weights.sum())
        locality[mask] = np.array(names, dtype=object)[pick]
        tier[mask] = tiers[pick]
        premium[mask] = jitter[pick]

    bhk_values = np.array(sorted(BHK_SHARE))
    bhk_p = np.array([BHK_SHARE[b] for b in bhk_values])
    bhk = rng.choice(bhk_values, size=rows, p=bhk_p / bhk_p.sum())
    area_factor = np.array([CITY_PROFILE[c][2] for c in city])
    area = np.array([BHK_AREA[b] for b in bhk]) * area_factor * rng.lognormal(0.0, 0.18, rows)
    area = np.clip(np.round(area / 5) * 5, 150, 15000)
    bathrooms = np.clip(bhk + rng.choice([-1, 0, 0, 1], size=rows), 1, bhk + 2)

    apartment_p = np.where(tier == 1, 0.85, np.where(tier == 2, 0.8, 0.65))
    apartment = rng.random(rows) < apartment_p
    tall = np.where(city == "mumbai", 2.0, 1.0)
    total_floors = np.where(apartment,
                            np.clip(np.round(rng.lognormal(np.log(10 * tall), 0.5, rows)), 4, 60),
                            rng.integers(1, 5, rows)).astype(int)
    floor = np.floor(rng.random(rows) * (total_floors + 1)).astype(int)
    floor = np.minimum(floor, total_floors)

    fur_names = list(FURNISHING_SHARE)
    fur_p = np.array([FURNISHING_SHARE[f] for f in fur_names])
    furnishing = rng.choice(fur_names, size=rows, p=fur_p)
    parking_p = np.where(apartment[:, None], [[0.15, 0.25, 0.2, 0.4]], [[0.4, 0.35, 0.15, 0.1]])
    parking = np.array(["none", "two_wheeler", "four_wheeler", "both"], dtype=object)[
        (rng.random(rows)[:, None] > np.cumsum(parking_p, axis=1)).sum(axis=1)]
    age = np.clip(np.round(rng.gamma(2.0, 4.0, rows)), 0, 60).astype(int)

    gated_p = np.where(tier == 1, 0.6, np.where(tier == 2, 0.45, 0.25))
    gated = apartment & (rng.random(rows) < gated_p)
    has = {
        "lift": rng.random(rows) < np.where(total_floors >= 4, 0.95, 0.1),
        "gym": rng.random(rows) < np.where(gated, 0.8, 0.08),
        "pool": rng.random(rows) < np.where(gated, 0.45, 0.02),
        "security": rng.random(rows) < np.where(gated, 0.98, 0.4),
        "power_backup": rng.random(rows) < np.where(gated, 0.75, 0.35),
        "clubhouse": rng.random(rows) < np.where(gated, 0.6, 0.02),
    }
    amenities = np.array([",".join(a for a in AMENITIES if has[a][i]) for i in range(rows)],
                         dtype=object)

    psf = np.array([CITY_PROFILE[c][1] for c in city])
    rent = psf * np.array([TIER_MULTIPLIER[t] for t in tier]) * premium * area
    rent *= np.array([FURNISHING_MULTIPLIER[f] for f in furnishing])
    rent *= np.array([PARKING_MULTIPLIER[p] for p in parking])
    for name, multiplier in AMENITY_MULTIPLIER.items():
        rent *= np.where(has[name], multiplier, 1.0)
    floor_ratio = floor / np.maximum(total_floors, 1)
    rent *= np.where(has["lift"], 1 + 0.05 * floor_ratio, 1 - 0.02 * np.maximum(floor - 2, 0))
    rent *= 1 + 0.03 * (bhk - 2)
    rent *= np.maximum(1 - 0.006 * age, 0.7)
    rent *= rng.lognormal(0.0, NOISE_SIGMA, rows)
    rent = np.maximum(np.round(rent / 500) * 500, 2000)

    frame = pd.DataFrame({
        "listing_id": np.arange(1, rows + 1),
        "city": city.astype(object),
        "locality": locality,
        "bhk": bhk.astype(int),
        "area_sqft": area.astype(float),
        "bathrooms": bathrooms.astype(int),
        "floor": floor,
        "total_floors": total_floors,
        "furnishing": furnishing.astype(object),
        "parking": parking,
        "age_years": age,
        "amenities": amenities,
        "rent": rent,
    }, columns=list(COLUMNS))
    return _dirty(frame, rng)


_HAND_TYPED = {"semi": "Semi-Furnished", "full": "Fully Furnished", "unfurnished": "Unfurnished"}


def _dirty(frame, rng):
    """Spoil about :data:`DIRTY_SHARE` of the rows the way real listings are spoiled."""
    import numpy as np

    rows = len(frame)
    spoiled = np.flatnonzero(rng.random(rows) < DIRTY_SHARE)
    kinds = rng.integers(0, 7, size=len(spoiled))
    for index, kind in zip(spoiled, kinds):
        if kind == 0:      # labels typed by hand
            frame.at[index, "city"] = frame.at[index, "city"].title() + " "
            frame.at[index, "furnishing"] = _HAND_TYPED[frame.at[index, "furnishing"]]
        elif kind == 1:    # floor and total floors swapped
            floor, total = frame.at[index, "floor"], frame.at[index, "total_floors"]
            frame.at[index, "floor"], frame.at[index, "total_floors"] = total + 1, max(floor, 1)
        elif kind == 2:    # area missing
            frame.at[index, "area_sqft"] = np.nan
        elif kind == 3:    # an extra zero on the rent
            frame.at[index, "rent"] = frame.at[index, "rent"] * 10
        elif kind == 4:    # a zero missing from the rent
            frame.at[index, "rent"] = frame.at[index, "rent"] / 10
        elif kind == 5:    # locality not mapped to our list
            frame.at[index, "locality"] = ""
        else:              # locality in another spelling
            frame.at[index, "locality"] = "  " + frame.at[index, "locality"].upper()
    return frame
