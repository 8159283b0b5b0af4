"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The locality score module: a calibrated 0-10 score from distances and amenities.
Tagline: A neighbourhood measured in footsteps.

``expose.py`` serves the score; ``src/`` calibrates it. See README.md.
"""
