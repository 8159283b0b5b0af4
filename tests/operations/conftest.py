"""Fixtures of the operations tests (RabbitMQ and Redis from tests/rabbit.py)."""

from rabbit import queue_prefix, rabbit_url, redis_url  # noqa: F401 (fixtures)
