"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Pub-sub over RabbitMQ: requests in on a topic exchange, results out on another.
Tagline: Post the question, go on with your day, and find the answer in your letterbox.

``cerebro subscribe`` consumes one durable queue per module, bound to the
requests exchange by ``<module>.<function>``, runs every request through the
dispatch core (batching calls to batch functions), and publishes the outcome
to the results exchange (``<module>.<function>.<succeeded|failed>``) or to the
request's ``reply_to``, persistent and publisher-confirmed. A request is acked
only once its outcome is confirmed, so a crash redelivers it (at-least-once).

One job per file: :mod:`.contract` (names, headers, message shapes),
:mod:`.topology` (declaring exchanges and queues), :mod:`.handler` (deliveries
to outcomes, never raising), :mod:`.session` (the AMQP connection: consume,
publish, confirm, ack, reconnect), :mod:`.runner` (the worker loop and the
shutdown), :mod:`.cli` (``cerebro subscribe``).
"""
