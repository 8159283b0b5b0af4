"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Vigilante's vocabularies, limits and report rendering.
Tagline: Names for the tricks, kept where everyone can read them.

Standard library only at import time, so ``expose.py`` stays cheap to import;
matplotlib is imported only when a report is drawn.
"""

MODULE = "vigilante"

#: Cities with their own rent level; anything else uses the national level.
CITIES = ("ahmedabad", "bangalore", "chennai", "delhi", "gurgaon",
          "hyderabad", "kolkata", "mumbai", "noida", "pune")
OTHER_CITY = "other"

#: Verdicts: ``clean`` and the three kinds of suspicious listing.
CLEAN = "clean"
KINDS = ("clean", "fake", "duplicate", "broker")
SUSPICIOUS_KINDS = KINDS[1:]

#: Feature names, in model order (see transform.features).
FEATURES = ("rent_gap", "photos", "description", "poster_listings", "account_age",
            "shared_phone", "duplicate_photos", "contact_in_description", "verified_owner",
            "area_per_bhk")

DEFAULT_ROWS = 40_000
MIN_ROWS = 2_000
DEFAULT_SEED = 11
DEFAULT_THRESHOLD = 0.5


def report_png(scores, labels, title):
    """Render the build report figure (suspicion score per true kind) as PNG bytes."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scores, labels = np.asarray(scores), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for kind in KINDS:
        ax.hist(scores[labels == kind], bins=40, range=(0, 1), alpha=0.5, density=True, label=kind)
    ax.set_xlabel("suspicion score (1 - P(clean))")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
