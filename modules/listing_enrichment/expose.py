"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Serve listing_enrichment asynchronously: call the amenities service, then score demand.
Tagline: The slow question goes to the queue; the answer comes back by itself.

``enrich`` makes an external network call, so it is declared
``external=True``: the REST API answers 202 at once and a Celery worker runs
it, then calls the main app back with the result. Importing this file is
cheap: no scikit-learn, no network.
"""

import threading

from cerebro import Field, ModelHandle, endpoint
from cerebro.errors import Unavailable
from modules.listing_enrichment.src.utilities import (MODULE, amenities_timeout, amenities_url,
                                                      tier)

MODEL = ModelHandle(MODULE)
_pool = None
_pool_lock = threading.Lock()


def _http():
    """One keep-alive connection pool per process, made on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            import urllib3
            _pool = urllib3.PoolManager(maxsize=4, retries=False,
                                        timeout=urllib3.Timeout(total=amenities_timeout()))
        return _pool


def _neighbourhood(latitude, longitude):
    """Ask the amenities service about a coordinate; raise :class:`Unavailable` when it fails."""
    import urllib3
    url = f"{amenities_url()}/amenities"
    try:
        response = _http().request("GET", url, fields={"lat": latitude, "lon": longitude})
    except urllib3.exceptions.HTTPError as exc:
        raise Unavailable(f"amenities service unreachable: {type(exc).__name__}") from exc
    if response.status != 200:
        raise Unavailable(f"amenities service answered HTTP {response.status}")
    data = response.json()
    return {key: data[key] for key in ("metro_km", "school_km", "hospital_km", "park_km",
                                       "amenities_1km")}


@endpoint(inputs={
    "listing_id": Field(str, min_length=1, description="The main app's listing id."),
    "latitude": Field(float, minimum=-90, maximum=90),
    "longitude": Field(float, minimum=-180, maximum=180),
    "bhk": Field(int, minimum=1, maximum=10),
    "area_sqft": Field(float, minimum=100, maximum=20000),
    "rent": Field(float, minimum=1, maximum=10_000_000, description="Monthly rent (INR)."),
}, external=True, example={"listing_id": "L-1001", "latitude": 12.9352, "longitude": 77.6245,
                           "bhk": 2, "area_sqft": 1100, "rent": 32000})
def enrich(listing_id, latitude, longitude, bhk, area_sqft, rent):
    """Enrich a listing with nearby amenities and score its demand (async: 202 + callback)."""
    from modules.listing_enrichment.src.transform import features
    from modules.listing_enrichment.src.model import score
    loaded = MODEL.current()  # model and version from one snapshot, even mid-swap
    pipeline, version = loaded.obj, loaded.version
    hood = _neighbourhood(latitude, longitude)
    listing = {"bhk": bhk, "area_sqft": area_sqft, "rent": rent}
    probability = score(pipeline, features(listing, hood))
    return {"listing_id": listing_id, "neighbourhood": hood,
            "demand_probability": round(probability, 4), "demand_tier": tier(probability),
            "model_version": version}
