"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The task queue both sides of the async path share: the Celery app, the publisher, topology.
Tagline: One post box, two hands: the API drops the letter, the worker picks it up.

The REST API publishes tasks (:mod:`.publisher`, on its IOLoop) and the Celery
worker runs them (:mod:`cerebro.tasks`); both build their Celery app with
:func:`.celery_app.make_app` from the same settings, and neither imports the
other. :mod:`.topology` lists and removes the broker objects.
"""
