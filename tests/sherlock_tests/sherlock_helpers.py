"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Test helpers: exceptions raised from distinct places, and a real SMTP server.
Tagline: Staged crimes for the detective, and a postman who keeps every letter.

``divide``, ``divide_elsewhere`` and ``lookup`` fail from different places so
their fingerprints differ; :class:`SMTPServer` is aiosmtpd's controller with a
handler that keeps every message it receives.
"""

import email
import logging
import socket
from email import policy

from aiosmtpd.controller import Controller

from sherlock import capture

log = logging.getLogger("tests.sherlock")

RECIPIENTS = ("oncall@example.com", "lead@example.com")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.messages = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        """Store the message and accept it."""
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


class SMTPServer:
    """A real SMTP server on 127.0.0.1 for one test."""

    def __init__(self, port, **kwargs):
        self.port = port
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port, **kwargs)

    @property
    def messages(self):
        """Messages received so far."""
        return self.inbox.messages

    def start(self):
        """Start listening."""
        self.controller.start()
        return self

    def stop(self):
        """Stop listening."""
        self.controller.stop()


def divide(n):
    """Fail with a message that varies with ``n``."""
    return n / 0


def lookup(key):
    """Fail with a KeyError naming ``key``."""
    return {}[key]


def divide_elsewhere(n):
    """The same failure type as :func:`divide`, from another place."""
    return n / 0


def raise_and_capture(func, arg, store=None, **context):
    """Call ``func(arg)`` and record what it raises with ``context``."""
    try:
        func(arg)
    except Exception as exc:
        return capture(exc, context=context, store=store)
    raise AssertionError("expected an exception")


def raise_and_log(func, arg, **context):
    """Call ``func(arg)`` and log what it raises like ``cerebro.reporting.report`` does."""
    try:
        func(arg)
    except Exception:
        log.exception("failed", extra={"cerebro_context": context})
