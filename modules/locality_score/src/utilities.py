"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Shared vocabularies and small helpers of the locality score (limits, grades, reports).
Tagline: Names for the places we measure, kept in one drawer.

Everything here is standard library at import time, so ``expose.py`` stays
cheap to import; matplotlib is imported only when a report is drawn.
"""

MODULE = "locality_score"

#: Cities calibrated separately; ``other`` uses the national calibration.
CITIES = ("ahmedabad", "bangalore", "chennai", "delhi", "gurgaon",
          "hyderabad", "kolkata", "mumbai", "noida", "pune")
OTHER_CITY = "other"

#: Distance features (name -> largest accepted distance in km), in score order.
DISTANCES = {"metro": 50.0, "bus_stop": 25.0, "school": 25.0, "hospital": 50.0,
             "park": 25.0, "market": 25.0}

#: Amenity kinds that count when present within a walk (about 1 km).
AMENITIES = ("atm", "bank", "cafe", "gym", "mall", "pharmacy", "restaurant", "supermarket")

#: Grades from best to worst, and the share of localities that reach each (calibrated cut points).
GRADES = ("A+", "A", "B", "C", "D")
GRADE_PERCENTILES = (90.0, 70.0, 40.0, 15.0)

DEFAULT_ROWS = 20_000
MIN_ROWS = 1_000
DEFAULT_SEED = 7


def distance_column(name):
    """The data column of a distance feature, e.g. ``metro`` -> ``metro_km``."""
    return f"{name}_km"


def report_png(scores, ratings, cities, title):
    """Render the build report figure (score by city, score vs resident rating) as PNG bytes."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scores, ratings, cities = np.asarray(scores), np.asarray(ratings), np.asarray(cities)
    names = sorted(set(cities.tolist()))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8), dpi=100)
    left.boxplot([scores[cities == n] for n in names], showfliers=False)
    left.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right")
    left.set_ylabel("locality score (0-10)")
    left.set_title("Score by city")
    right.scatter(scores, ratings, s=4, alpha=0.2, color="#9467bd", edgecolors="none")
    right.set_xlabel("locality score (0-10)")
    right.set_ylabel("resident rating (1-5)")
    right.set_title("Score vs resident rating")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
