"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Model lifecycle: versions, rollback and promote, pins, shadow and canary candidates.
Tagline: Try the new model on real traffic before it serves everyone, and go back in one step.

Everything lives in the data volume beside ``current.json`` (:mod:`.state`), so
every process of every transport follows it and it survives restarts; the
dispatcher runs shadow and canary calls for every transport (:mod:`.control`).
"""
