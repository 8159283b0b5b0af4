"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The rent predictor module: monthly rent of a listing from its features.
Tagline: Every flat whispers its price; we only listen closely.

``expose.py`` serves the model; ``src/`` builds it. See README.md.
"""
