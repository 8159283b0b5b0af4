"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Kafka consumer: production events dispatched to expose functions, at-least-once.
Tagline: Every event heard, every answer delivered, nothing dropped on the floor.

``cerebro consume`` subscribes to every topic an expose function declares
(``@endpoint(..., topics=("listings",))``), runs each record through the same
validation and dispatch core as REST requests, tells the main app the outcome,
and commits a record's offset only once all of that is done (or the record was
dead-lettered to ``<topic>.dlq``). One job per file:

* :mod:`~cerebro.consumer.config`: kafka-python consumer/producer settings;
* :mod:`~cerebro.consumer.membership`: the static group instance id of a process;
* :mod:`~cerebro.consumer.fatal`: which Kafka errors no retry fixes, and what to change;
* :mod:`~cerebro.consumer.topics`: consumed topics checked, dead-letter topics created;
* :mod:`~cerebro.consumer.router`: topic to endpoints, decoding, idempotency keys;
* :mod:`~cerebro.consumer.notify`: the main-app call of each outcome;
* :mod:`~cerebro.consumer.dlq`: the dead-letter producer;
* :mod:`~cerebro.consumer.processor`: one record end to end, with retries;
* :mod:`~cerebro.consumer.offsets`: which offsets a processed batch may commit;
* :mod:`~cerebro.consumer.runner`: the poll loop, commits, rebalances, SIGTERM, outages,
  modules added or removed while running;
* :mod:`~cerebro.consumer.cli`: the ``consume`` sub-command.
"""
