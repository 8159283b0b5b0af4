"""Fixtures of the operations tests (RabbitMQ and Redis from tests/rabbit.py)."""

from rabbit import celery_shared_topology, queue_prefix, rabbit_url, redis_url  # noqa: F401
