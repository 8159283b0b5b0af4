"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The main-app simulator: the Java main app's side of every contract, for development.
Tagline: A stand-in who listens carefully and keeps count.

``cerebro simulate`` (the ``simulator`` program of the development stack, off
in production) listens at ``CEREBRO_MAIN_APP_URL`` and plays the main app:

* it serves ``GET /amenities?lat=&lon=``, the external call of the async
  sample ``listing_enrichment.enrich`` (the stack points
  ``LISTING_ENRICHMENT_AMENITIES_URL`` at it);
* it receives every call Cerebro makes to the main app (Celery callbacks, the
  Kafka consumer's outcomes: ``POST`` to any other path), checks each
  signature with the stack's ``CEREBRO_CALLBACK_SECRET`` and counts
  idempotency keys, duplicates apart (:mod:`cerebro.simulator.recorder`);
* ``GET /simulator/received`` shows what it received, ``POST /simulator/reset``
  starts counting again (:mod:`cerebro.simulator.app`).
"""
