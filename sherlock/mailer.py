"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Sending the digest: a multipart/alternative message over SMTP, plain, STARTTLS or SSL.
Tagline: The letter goes out sealed; the key never leaves the pocket.

The password is only ever handed to ``smtplib``'s ``login``: it is not part of
any error message, log line or ``repr`` (see ``SherlockSettings``).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sherlock.settings import SherlockSettings


HEADER_POLICY = policy.SMTP.clone(max_line_length=998)


class MailError(Exception):
    """Sending failed; the message is one line saying why (never the password)."""


def build_message(subject: str, text: str, html: str, sender: str,
                  recipients: Iterable[str]) -> EmailMessage:
    """A ``multipart/alternative`` message with a plain-text part and an HTML part.

    Header lines may be up to RFC 5322's 998 characters, so the subject is
    never folded (folding would hand some readers a leading space).
    """
    message = EmailMessage(policy=HEADER_POLICY)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _connect(settings: SherlockSettings) -> smtplib.SMTP:
    """An SMTP connection with the configured security, logged in if a user is set."""
    host, port, timeout = settings.smtp_host, settings.port, settings.smtp_timeout
    smtp: smtplib.SMTP  # SMTP_SSL is an SMTP
    if settings.smtp_security == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        smtp.ehlo()
        if settings.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
    except BaseException:
        smtp.close()
        raise
    return smtp


def _reason(exc: Exception) -> str:
    """One line describing an SMTP/network failure, without any secret."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication failed (code {exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"all recipients refused: {', '.join(sorted(exc.recipients))}"
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        error = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        return f"server said {exc.smtp_code} {' '.join(error.split())}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def send(settings: SherlockSettings, message: EmailMessage) -> list[str]:
    """Send ``message`` to its recipients; raise :class:`MailError` on any failure."""
    recipients = list(settings.recipients)
    if not recipients:
        raise MailError("no recipients: set SHERLOCK_RECIPIENTS")
    where = f"{settings.smtp_host}:{settings.port} ({settings.smtp_security})"
    try:
        smtp = _connect(settings)
        try:
            refused = smtp.send_message(message, settings.sender, recipients)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise MailError(f"sending to {where} failed: {_reason(exc)}") from None
    if refused:
        return sorted(refused)
    return []
