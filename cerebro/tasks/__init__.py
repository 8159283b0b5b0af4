"""
Author:  Cerebro team
Date:    2026-11-24
Subject: The async path: RabbitMQ + Celery for expose functions with external dependencies.
Tagline: Answer now, work later, call back always.

``cerebro serve`` asks :func:`api_plugins` for the submitter (``POST`` of an
``external=True`` function answers 202 and queues the call) and the status
route (``GET /v1/tasks/<id>``). The Celery app lives in
:mod:`cerebro.tasks.celery_app`, the worker's tasks in :mod:`cerebro.tasks.task`.
"""


def api_plugins():
    """``{"submitter_factory", "extra_routes_factory"}`` for :func:`cerebro.api.server.serve`.

    Both factories share one submitter per API process (built lazily, after
    the fork, on the IOLoop), so publishing and status reads share its
    AMQP channel and asyncio Redis client.
    """
    shared = {}

    def submitter_factory(settings):
        """The process's :class:`~cerebro.tasks.submit.Submitter`."""
        if "submitter" not in shared:
            from cerebro.tasks.celery_app import app
            from cerebro.tasks.submit import Submitter
            shared["submitter"] = Submitter(settings, app)
        return shared["submitter"]

    def extra_routes_factory(settings):
        """The ``GET /v1/tasks/<id>`` route."""
        from cerebro.tasks.status import routes
        return routes(submitter_factory(settings))

    return {"submitter_factory": submitter_factory, "extra_routes_factory": extra_routes_factory}
