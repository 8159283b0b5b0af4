"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The Celery worker transport: expose functions with external dependencies, run off the API.
Tagline: Answer now, work later, call back always.

The REST API answers an ``external=True`` function with 202 and publishes the
call (:mod:`cerebro.api.submit`); ``cerebro worker`` runs it here
(:mod:`.task`) and calls the main app back. Both sides share only the task
queue (:mod:`cerebro.taskqueue`). :mod:`.cli` holds ``cerebro worker``,
``beat``, ``flower``, ``callbacks failed|retry`` and ``queues delete``.
"""
