"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Serve the rent predictor: one listing in, its predicted monthly rent (INR) out.
Tagline: Ask the trees what a home is worth.

The model is read from the data volume by the platform (``MODEL``); this file
only declares inputs, checks what the declarations cannot (a floor above the
building, a flat too small for its rooms), and runs the same feature
engineering the build trained on. Importing it loads nothing heavy.
"""

from cerebro import Batching, Field, ModelHandle, endpoint
from cerebro.errors import InvalidPayload
from modules.rent_predictor.src import model, transform
from modules.rent_predictor.src.utilities import (AMENITIES, CITIES, FURNISHING, MODULE, PARKING,
                                                  round_rent)

MODEL = ModelHandle(MODULE, prepare=model.prepare)  # trees compiled before they serve

EXAMPLE = {"city": "mumbai", "locality": "Andheri West", "bhk": 2, "area_sqft": 950, "bathrooms": 2,
           "floor": 7, "total_floors": 14, "age_years": 6, "furnishing": "semi",
           "parking": "four_wheeler", "amenities": ["lift", "security", "power_backup"]}


@endpoint(inputs={
    "city": Field(str, choices=CITIES, description="City of the listing."),
    "locality": Field(str, min_length=1, max_length=80,
                      description="Locality name, e.g. 'Koramangala'; an unknown one is "
                                  "priced at the city's average."),
    "bhk": Field(int, minimum=1, maximum=10, description="Bedrooms (BHK)."),
    "area_sqft": Field(float, minimum=100, maximum=20000,
                       description="Carpet area in square feet; at least "
                                   f"{transform.MIN_AREA_PER_BHK:g} per bedroom."),
    "bathrooms": Field(int, minimum=1, maximum=10, description="Bathrooms."),
    "floor": Field(int, minimum=0, maximum=100,
                   description="Floor of the flat; 0 is the ground floor; at most "
                               "total_floors."),
    "total_floors": Field(int, minimum=1, maximum=100, description="Floors in the building."),
    "age_years": Field(float, minimum=0, maximum=100, description="Age of the building in years."),
    "furnishing": Field(str, choices=FURNISHING, default="semi", description="Furnishing."),
    "parking": Field(str, choices=PARKING, default="none", description="Parking available."),
    "amenities": Field(list, items=str, choices=AMENITIES, default=[], max_length=20,
                       description="Amenities of the building."),
}, example=EXAMPLE, batch=Batching(max_size=64))
def predict(rows):
    """Predict the monthly rent of listings, in INR, rounded to the nearest 10.

    A batch function: Cerebro gathers concurrent requests into ``rows`` (one
    validated listing each) and this makes one vectorised model call. A row
    that fails a cross-field check gets its own error; the others are priced.
    """
    loaded = MODEL.current()  # model and version from one snapshot, even mid-swap
    pipeline, version = loaded.obj, loaded.version
    vocabulary = model.locality_vocabulary(pipeline)
    results, records, slots = [None] * len(rows), [], []
    for index, row in enumerate(rows):
        try:
            _check(row["bhk"], row["area_sqft"], row["floor"], row["total_floors"])
        except InvalidPayload as error:
            results[index] = error
            continue
        records.append(transform.engineer(row, vocabulary))
        slots.append(index)
    if records:
        rents = model.predict_many(pipeline, records)
        for index, record, rent in zip(slots, records, rents):
            results[index] = {
                "rent": round_rent(rent),
                "currency": "INR",
                "period": "month",
                "locality_known": record["locality_key"] in vocabulary,
                "model_version": version,
            }
    return results


def _check(bhk, area_sqft, floor, total_floors):
    """Cross-field and vocabulary checks the field declarations cannot express."""
    if floor > total_floors:
        raise InvalidPayload(f"'floor' ({floor}) cannot be above 'total_floors' ({total_floors})",
                             "floor")
    if area_sqft < transform.MIN_AREA_PER_BHK * bhk:
        raise InvalidPayload(f"'area_sqft' ({area_sqft:g}) is too small for {bhk} BHK: at least "
                             f"{transform.MIN_AREA_PER_BHK * bhk:g} sqft", "area_sqft")
