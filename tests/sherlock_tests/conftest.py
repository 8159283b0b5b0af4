"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Fixtures for Sherlock's tests: a private SHERLOCK_DIR and a running SMTP server.
Tagline: A sealed room and a postman who keeps every letter.

Fixtures for Sherlock's tests: a private SHERLOCK_DIR and a real SMTP server (aiosmtpd).
"""

import os

import pytest
from aiosmtpd.smtp import AuthResult

import sherlock
from sherlock.settings import load_settings
from sherlock_helpers import RECIPIENTS, SMTPServer, free_port


@pytest.fixture
def sherlock_dir(tmp_path, monkeypatch):
    """A clean SHERLOCK_* environment pointing at a private directory."""
    for var in list(os.environ):
        if var.startswith("SHERLOCK_"):
            monkeypatch.delenv(var)
    directory = tmp_path / "sherlock"
    monkeypatch.setenv("SHERLOCK_DIR", str(directory))
    monkeypatch.setenv("SHERLOCK_RECIPIENTS", ",".join(RECIPIENTS))
    monkeypatch.setenv("SHERLOCK_SENDER", "sherlock@falcon.example")
    monkeypatch.setenv("SHERLOCK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SHERLOCK_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("SHERLOCK_SMTP_TIMEOUT", "5")
    monkeypatch.setenv("SHERLOCK_ALERTS", "")  # no model drift read from this machine's stack
    yield directory
    sherlock.uninstall()


@pytest.fixture
def settings(sherlock_dir):
    """Sherlock settings read from the test environment."""
    return load_settings()


@pytest.fixture
def smtp(sherlock_dir, monkeypatch):
    """A running SMTP server the SHERLOCK_SMTP_* settings point at."""
    server = SMTPServer(int(os.environ["SHERLOCK_SMTP_PORT"])).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_auth(sherlock_dir, monkeypatch):
    """A running SMTP server that requires AUTH (user ``sherlock``, password ``s3cret-pw``)."""
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        """Accept only the expected credentials."""
        logins.append(auth_data.login)
        ok = auth_data.login == b"sherlock" and auth_data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)

    monkeypatch.setenv("SHERLOCK_SMTP_USER", "sherlock")
    monkeypatch.setenv("SHERLOCK_SMTP_PASSWORD", "s3cret-pw")
    server = SMTPServer(int(os.environ["SHERLOCK_SMTP_PORT"]), authenticator=authenticator,
                        auth_require_tls=False).start()
    server.logins = logins
    yield server
    server.stop()
