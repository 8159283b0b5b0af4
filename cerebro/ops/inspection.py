"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Asking each part of a running deployment how it is: ports, HTTP, queues, consumer groups.
Tagline: Knock on every door and listen.

The readiness probes (:mod:`cerebro.ops.probes`), ``cerebro up`` and ``cerebro
status`` ask through these; each helper says what it found or raises, and
never prints a secret (URLs are used whole only to connect).
"""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

    from cerebro.registry import Module
    from cerebro.settings import Settings


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def address(url: str, default_port: int) -> tuple[str, int]:
    """``(host, port)`` of a URL such as ``amqp://u:p@host:5672//``."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def kafka_address(settings: Settings) -> tuple[str, int]:
    """``(host, port)`` of the first Kafka bootstrap server."""
    host, _, port = settings.kafka_bootstrap[0].rpartition(":")
    return host or "127.0.0.1", int(port or 9092)


def main_app_address(settings: Settings) -> tuple[str, int]:
    """``(host, port)`` of CEREBRO_MAIN_APP_URL (where the main-app simulator listens)."""
    url = settings.main_app_url.get_secret_value()
    return address(url, 443 if urlsplit(url).scheme == "https" else 80)


def main_app_origin(settings: Settings) -> str:
    """``http://host:port`` of CEREBRO_MAIN_APP_URL, without its path or any password."""
    host, port = main_app_address(settings)
    host = _client_host(host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def http_status(url: str, auth: tuple[str, str] | None = None,
                timeout: float = 2.0) -> int | None:
    """The HTTP status of a GET (None when nothing answers)."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def _client_host(host: str) -> str:
    """Where to connect for a server bound to ``host`` (a wildcard means loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def api_url(settings: Settings) -> str:
    """Base URL of the REST API."""
    return f"http://{_client_host(settings.host)}:{settings.port}"


def flower_url(settings: Settings) -> str:
    """Base URL of Flower."""
    return f"http://{_client_host(settings.flower_address)}:{settings.flower_port}"


def _modules(settings: Settings) -> dict[str, Module]:
    """The modules the services serve, discovered as every service discovers them (no
    models loaded, no logging set up: the command only looks)."""
    from cerebro.core import Core
    return Core.start("ops", settings, load=False, watch=False,
                      configure_logging=False).registry.modules


def served_modules(settings: Settings) -> list[str]:
    """Names of the modules the services serve (CEREBRO_MODULES, or every module found)."""
    return sorted(_modules(settings))


def topic_modules(settings: Settings) -> list[str]:
    """Names of the modules declaring a Kafka topic (the consumer's subscription)."""
    return sorted(name for name, mod in _modules(settings).items()
                  if any(e.topics for e in mod.endpoints.values()))


def consumed_topics(settings: Settings) -> list[str]:
    """The topics the Kafka consumer subscribes to: ``CEREBRO_KAFKA_TOPICS`` among those the
    modules declare, or every declared one."""
    from cerebro.core import Core
    table = Core.start("ops", settings, load=False, watch=False,
                       configure_logging=False).registry.topics()
    wanted = settings.kafka_topics or tuple(table)
    return sorted(topic for topic in wanted if topic in table)


def queue_stats(settings: Settings, names: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    """``{queue: (messages, consumers)}``; a queue that does not exist maps to None."""
    from kombu import Connection
    stats: dict[str, tuple[int, int] | None] = {}
    with Connection(settings.broker_url.get_secret_value(), connect_timeout=2) as conn:
        for name in names:
            # kombu types it StdChannel; every transport's channel (py-amqp's for RabbitMQ)
            # has queue_declare and close
            channel = conn.channel()
            try:
                _, messages, consumers = channel.queue_declare(  # type: ignore[attr-defined]
                    queue=name, passive=True)
                stats[name] = (messages, consumers)
            except Exception as exc:  # noqa: BLE001 - 404 NOT_FOUND closes the channel
                if "NOT_FOUND" not in str(exc) and "404" not in str(exc):
                    raise
                stats[name] = None
            finally:
                try:
                    channel.close()  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001 - already closed by the broker after a 404
                    pass
    return stats


def admin_client(settings: Settings) -> KafkaAdminClient:
    """A kafka-python admin client that tolerates authorized-operation codes it does not know
    (tansu answers DescribeGroups with one; Apache Kafka does not)."""
    from kafka import KafkaAdminClient

    class Admin(KafkaAdminClient):
        """KafkaAdminClient whose group descriptions survive unknown ACL operation codes."""

        def _process_acl_operations(self, obj: dict[str, object]) -> dict[str, object]:
            """Decode the group's authorized operations; unknown codes give None."""
            try:
                return super()._process_acl_operations(obj)
            except ValueError:
                obj["authorized_operations"] = None
                return obj

    return Admin(bootstrap_servers=list(settings.kafka_bootstrap), client_id="cerebro-ops",
                 request_timeout_ms=5000)


def group_assignment(settings: Settings,
                     group: str | None = None) -> tuple[str | None, int, dict[str, list[int]]]:
    """``(state, members, {topic: [partitions]})`` of the consumer group. ``{}`` with members
    means the broker does not report assignments (tansu); Apache Kafka does."""
    admin = admin_client(settings)
    try:
        group = group or settings.kafka_group
        info = admin.describe_groups([group])[group]
    finally:
        admin.close()
    assigned: dict[str, list[int]] = {}
    for member in info.get("members") or []:
        assignment = member.get("member_assignment")
        for item in getattr(assignment, "assignment", None) or []:
            topic, partitions = (item.topic, item.partitions) if hasattr(item, "topic") else item
            assigned.setdefault(topic, []).extend(partitions)
    return info.get("group_state"), len(info.get("members") or []), assigned
