"""
Author:  Cerebro team
Date:    2026-11-24
Subject: listing_enrichment: enrich a listing from an amenities service, then score its demand.
Tagline: Ask the neighbourhood first, then judge the house.
"""
