"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Sherlock, the team's exception logger (built out in its own issue).
Tagline: Every exception leaves footprints.
"""
