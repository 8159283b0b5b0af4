"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Operations: supervisord bring-up and shutdown, readiness, status, module slicing.
Tagline: The stage crew nobody sees when the show goes well.

``cerebro up``, ``down``, ``status``, ``bootstrap`` and ``slice`` (see :mod:`cerebro.ops.cli`).
"""
