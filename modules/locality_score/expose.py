"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Serve the locality score: distances and amenities in, a 0-10 score and a grade out.
Tagline: Three network calls once; now a few multiplications.

The calibration is read from the data volume by the platform (``MODEL``); a
call is a handful of pure-Python multiplications with no network and no
numpy, so it answers in microseconds on every property page load.
"""

from cerebro import Field, ModelHandle, endpoint
from modules.locality_score.src import model
from modules.locality_score.src.utilities import AMENITIES, CITIES, DISTANCES, MODULE, OTHER_CITY

MODEL = ModelHandle(MODULE)

EXAMPLE = {"metro_km": 0.8, "bus_stop_km": 0.2, "school_km": 0.5, "hospital_km": 1.0,
           "park_km": 0.4, "market_km": 0.3, "amenities": ["atm", "cafe", "pharmacy"],
           "city": "bangalore"}


def _distance(name, what):
    """The declaration of one distance input, in km from 0 to the feature's limit."""
    return Field(float, minimum=0, maximum=DISTANCES[name],
                 description=f"Distance to the nearest {what}, in km.")


@endpoint(inputs={
    "metro_km": _distance("metro", "metro station"),
    "bus_stop_km": _distance("bus_stop", "bus stop"),
    "school_km": _distance("school", "school"),
    "hospital_km": _distance("hospital", "hospital"),
    "park_km": _distance("park", "park"),
    "market_km": _distance("market", "market"),
    "amenities": Field(list, items=str, choices=AMENITIES, default=[], max_length=20,
                       description="Amenity kinds within about 1 km."),
    "city": Field(str, choices=(*CITIES, OTHER_CITY), default=OTHER_CITY,
                  description="City whose typical distances calibrate the score; "
                              "'other' uses national ones."),
}, example=EXAMPLE)
def score(metro_km, bus_stop_km, school_km, hospital_km, park_km, market_km, amenities, city):
    """Score a locality from 0 to 10 (and grade it A+ to D) by its distances and amenities."""
    loaded = MODEL.current()  # model and version from one snapshot, even mid-swap
    calibration, version = loaded.obj, loaded.version
    distances = {"metro": metro_km, "bus_stop": bus_stop_km, "school": school_km,
                 "hospital": hospital_km, "park": park_km, "market": market_km}
    result = model.score(calibration, city, distances, amenities)
    result["city"] = city
    result["model_version"] = version
    return result
