"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Screen a listing event: fake, duplicate, a broker posing as an owner, or clean, with a score.
Tagline: Every new listing passes the watchman's window.

``screen`` handles the ``listings`` Kafka topic (the consumer posts its verdict
to the main app) and is also callable over REST. Listing events carry more
fields than the model needs, so extra fields are ignored. Scoring is pure
Python over ten features (see ``src/model.py``): microseconds per event.
"""

from cerebro import Field, ModelHandle, endpoint
from modules.vigilante.src import model, transform
from modules.vigilante.src.utilities import CITIES, OTHER_CITY

MODEL = ModelHandle("vigilante")

EXAMPLE = {"listing_id": "L0012345", "city": "bangalore", "bhk": 2, "area_sqft": 950,
           "rent": 9000, "photos": 1, "description_length": 60, "poster_listings_30d": 1,
           "poster_account_age_days": 2, "phone_shared_accounts": 1,
           "duplicate_photo_share": 0.4, "contact_in_description": True, "verified_owner": False}


@endpoint(inputs={
    "listing_id": Field(str, min_length=1, max_length=64, description="The listing's id."),
    "city": Field(str, choices=(*CITIES, OTHER_CITY), default=OTHER_CITY,
                  description="City; 'other' compares the rent with national levels."),
    "bhk": Field(int, minimum=1, maximum=10, description="Bedrooms."),
    "area_sqft": Field(float, minimum=100, maximum=20000, description="Carpet area, square feet."),
    "rent": Field(float, minimum=500, maximum=5_000_000, description="Asked monthly rent, INR."),
    "photos": Field(int, minimum=0, maximum=200, default=0, description="Photos uploaded."),
    "description_length": Field(int, minimum=0, maximum=50_000, default=0,
                                description="Characters in the description."),
    "poster_listings_30d": Field(int, minimum=0, maximum=100_000, default=1,
                                 description="Listings the poster's account posted in 30 days."),
    "poster_account_age_days": Field(float, minimum=0, maximum=20_000, default=0,
                                     description="Age of the poster's account, in days."),
    "phone_shared_accounts": Field(int, minimum=0, maximum=100_000, default=0,
                                   description="Other accounts using the same phone number."),
    "duplicate_photo_share": Field(float, minimum=0, maximum=1, default=0.0,
                                   description="Share of the photos also seen on other listings."),
    "contact_in_description": Field(bool, default=False,
                                    description="A phone number or e-mail in the description."),
    "verified_owner": Field(bool, default=False, description="Ownership documents verified."),
}, topics=("listings",), extra="ignore", example=EXAMPLE)
def screen(listing_id, city, bhk, area_sqft, rent, photos, description_length, poster_listings_30d,
           poster_account_age_days, phone_shared_accounts, duplicate_photo_share,
           contact_in_description, verified_owner):
    """Flag a suspicious listing: verdict (clean, fake, duplicate, broker) and suspicion score."""
    fitted = MODEL.get()
    version = MODEL.version
    row = transform.features({
        "city": city, "bhk": bhk, "area_sqft": area_sqft, "rent": rent, "photos": photos,
        "description_length": description_length, "poster_listings_30d": poster_listings_30d,
        "poster_account_age_days": poster_account_age_days,
        "phone_shared_accounts": phone_shared_accounts,
        "duplicate_photo_share": duplicate_photo_share,
        "contact_in_description": contact_in_description, "verified_owner": verified_owner,
    }, fitted["rent_levels"])
    probs = model.probabilities(fitted, row)
    verdict, score = model.verdict(fitted, probs)
    return {
        "listing_id": listing_id,
        "verdict": verdict,
        "suspicious": verdict != "clean",
        "score": round(score, 4),
        "probabilities": {kind: round(p, 4) for kind, p in probs.items()},
        "model_version": version,
    }
