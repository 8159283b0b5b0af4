"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Vigilante: flags suspicious property listings (fake, duplicate, a broker posing as owner).
Tagline: A quiet watchman who reads every listing as it arrives.

``expose.py`` screens listings from the ``listings`` Kafka topic (and over
REST); ``src/`` builds the classifier. See README.md.
"""
