"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Screen a listing event: fake, duplicate, a broker posing as owner, or clean, with a score.
Tagline: Every new listing passes the watchman's window.

``screen`` handles the ``listings`` Kafka topic (the consumer posts its verdict
to the main app) and is also callable over REST. Listing events carry more
fields than the model needs, so extra fields are ignored. It is a batch
function: the consumer hands it a polled batch (up to ``max_size`` events per
call) and the REST server gathers concurrent requests into one call; a REST
client still sends one listing and gets one verdict. Scoring is a tight
pure-Python loop over ten features (see ``src/model.py``): a few microseconds
per event, with no per-call overhead worth vectorising away.
"""

from cerebro import Batching, Field, ModelHandle, endpoint
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
}, topics=("listings",), extra="ignore", example=EXAMPLE, batch=Batching(max_size=256))
def screen(rows):
    """Flag suspicious listings: verdict (clean, fake, duplicate, broker) and suspicion score.

    A batch function: ``rows`` are validated listings (one per event or REST
    request); the model and its version come from one snapshot for the whole
    batch, even while a new version is being swapped in.
    """
    loaded = MODEL.current()
    fitted, version = loaded.obj, loaded.version
    levels = fitted["rent_levels"]
    features, probabilities, verdict = transform.features, model.probabilities, model.verdict
    results = []
    for row in rows:
        probs = probabilities(fitted, features(row, levels))
        kind, score = verdict(fitted, probs)
        results.append({
            "listing_id": row["listing_id"],
            "verdict": kind,
            "suspicious": kind != "clean",
            "score": round(score, 4),
            "probabilities": {k: round(p, 4) for k, p in probs.items()},
            "model_version": version,
        })
    return results
