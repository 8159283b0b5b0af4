"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Offline half of the rent predictor: extract, transform, model and build.
Tagline: The workshop behind the shop window.
"""
