"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Offline part of listing_enrichment: data, cleaning, model and build.
Tagline: Where the judging is learned.
"""
