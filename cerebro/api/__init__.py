"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Tornado REST API: the Java app's synchronous door into Cerebro.
Tagline: Ask plainly, get an answer at once.
"""
