"""
Author:  Cerebro team
Date:    2026-11-29
Subject: RabbitMQ refusals retrying cannot fix: a refused login, a vhost missing or out of reach.
Tagline: A locked door is not a busy line: stop dialling and say which key is wrong.

Every program talking to RabbitMQ (the API's publisher on pamqp, the Celery
worker on py-amqp, the subscriber on pika) tells two kinds of failure apart
with :func:`refusal`:

* the broker *refused* the connection: ``ACCESS_REFUSED`` (403: wrong user
  or password, or no permission on the virtual host) or ``NOT_ALLOWED``
  (530: the virtual host does not exist). Retrying cannot fix it, so the
  program stops with :func:`refused` (a
  :class:`~cerebro.settings.ConfigurationError` naming the setting to change;
  ``cerebro`` exits 2);
* anything else (connection refused while the broker starts, a lost
  connection, a timeout) is transient and retried as before.

:func:`check_broker` asks the broker once, at start-up, before a program
takes any work. Messages never carry a password (URLs are redacted).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from envsettings import redact

from cerebro.settings import ConfigurationError

log = logging.getLogger(__name__)

BROKER_SETTING = "CEREBRO_BROKER_URL"
REFUSED_CODES = (403, 530)  # ACCESS_REFUSED, NOT_ALLOWED
_REASON = re.compile(r"(ACCESS_REFUSED|NOT_ALLOWED)\b.*", re.DOTALL)
_AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def refusal(exc: BaseException) -> str | None:
    """The broker's reason when ``exc`` says RabbitMQ refused the login or the virtual host
    (py-amqp, pika or the API's publisher), else None (unreachable, lost, timed out: transient)."""
    text = str(getattr(exc, "reply_text", "") or "")
    if not text:  # pika's Probable*Error carry the broker's words as text
        text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    if "limit" in text.lower():  # a vhost or user connection limit reached: that passes
        return None
    found = _REASON.search(text)
    if found is not None:
        reason = found.group(0).strip()
        opening = text[found.start() - 1:found.start()]
        if opening in ("'", '"') and reason.endswith(opening):  # pika quotes the reply text
            reason = reason[:-1]
        return reason
    code = getattr(exc, "reply_code", None)
    if code in REFUSED_CODES:
        return f"{code} {text}".strip()
    return None


def refused(reason: str, url: str, setting: str = BROKER_SETTING) -> ConfigurationError:
    """The error stopping a program whose broker URL RabbitMQ refused (never shows a password)."""
    if "NOT_ALLOWED" in reason or "vhost" in reason.lower():
        hint = (f"the virtual host in {setting} does not exist or its user has no access to it: "
                "create it (rabbitmqctl add_vhost) and grant the user access (rabbitmqctl "
                f"set_permissions), or fix the virtual host in {setting}")
    else:
        hint = f"fix the user name or password in {setting}"
    reason = redact(reason.rstrip(". "), [urlsplit(url).password or ""])
    return ConfigurationError(f"RabbitMQ refused {setting} ({redact(url)}): {reason}; {hint} "
                              "(retrying cannot fix this)")


def check_broker(url: str, timeout: float, setting: str = BROKER_SETTING) -> None:
    """Log in to RabbitMQ once: raise :func:`refused` when it refuses the URL's credentials or
    virtual host; return when it accepted them or cannot be reached now (the program retries
    that as before)."""
    try:
        reason = probe(url, timeout)
    except Exception as exc:  # noqa: BLE001 - unreachable: for the program's retries
        log.warning("RabbitMQ (%s) not reachable at start-up: %s: %s; retrying as usual",
                    _where(url), type(exc).__name__, exc)
        return
    if reason is not None:
        raise refused(reason, url, setting)


def probe(url: str, timeout: float) -> str | None:
    """Log in once (py-amqp, no retry): the broker's reason when it refuses the login or the
    virtual host, None when it accepts them (or ``url`` is not an AMQP URL); any other failure
    (unreachable, timed out) is raised."""
    if urlsplit(url).scheme not in _AMQP_SCHEMES:
        return None
    from kombu import Connection
    client = Connection(url, connect_timeout=timeout)
    try:
        # one attempt, no retry: kombu's connect() would wait and try again
        client.transport.close_connection(client.transport.establish_connection())
    except Exception as exc:
        reason = refusal(exc)
        if reason is None:
            raise
        return reason
    finally:
        client.release()
    return None


def _where(url: str) -> str:
    """host:port/vhost of a broker URL (no credentials)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5672}{parts.path or '/'}"
