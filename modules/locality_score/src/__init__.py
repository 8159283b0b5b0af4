"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Offline half of the locality score: extract, calibrate and publish.
Tagline: Measure the city once, answer a thousand times.
"""
