"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Logging set-up shared by every Cerebro service process.
Tagline: Every service speaks in the same voice, to the same ears.
"""

import logging


def configure(settings, service):
    """Configure the root logger for ``service`` (api, worker, consumer, build...)."""
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s [{service}:%(process)d] %(name)s: %(message)s",
    )
