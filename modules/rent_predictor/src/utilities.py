"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Shared vocabularies and small helpers of the rent predictor (reports, rounding).
Tagline: The little tools that keep the big ones honest.

The vocabularies here (cities, furnishing, parking, amenities) are the single
source of truth for extract, transform, build and expose alike. Nothing here
imports numpy, pandas or matplotlib at import time, so ``expose.py`` stays
cheap to import.
"""

MODULE = "rent_predictor"

CITIES = ("ahmedabad", "bangalore", "chennai", "delhi", "gurgaon",
          "hyderabad", "kolkata", "mumbai", "noida", "pune")
FURNISHING = ("unfurnished", "semi", "full")
PARKING = ("none", "two_wheeler", "four_wheeler", "both")
AMENITIES = ("gym", "lift", "pool", "security", "power_backup", "clubhouse")

#: The locality every unknown or rare locality of a city is folded into.
OTHER_LOCALITY = "other"

DEFAULT_ROWS = 50_000
MIN_ROWS = 1_000
DEFAULT_SEED = 42


def round_rent(value, step=10):
    """Round a rent to the nearest ``step`` rupees, as a float."""
    return float(round(float(value) / step) * step)


def report_png(actual, predicted, title):
    """Render the build report figure (predicted vs actual, relative errors) as PNG bytes."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8), dpi=100)
    left.scatter(actual, predicted, s=4, alpha=0.25, color="#1f77b4", edgecolors="none")
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.plot([low, high], [low, high], color="#d62728", linewidth=1, label="perfect prediction")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("actual rent (INR / month)")
    left.set_ylabel("predicted rent (INR / month)")
    left.set_title("Predicted vs actual (held-out set)")
    left.legend(loc="upper left")
    relative = (predicted - actual) / actual * 100.0
    right.hist(np.clip(relative, -60, 60), bins=60, color="#2ca02c", alpha=0.8)
    right.axvline(0, color="black", linewidth=1)
    right.set_xlabel("relative error (%) clipped to ±60")
    right.set_ylabel("listings")
    right.set_title("Relative error")
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
