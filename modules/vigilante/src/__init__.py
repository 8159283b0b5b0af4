"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Offline half of vigilante: generate listings, engineer features, train and publish.
Tagline: Learn the tricks once, spot them a thousand times a second.
"""
