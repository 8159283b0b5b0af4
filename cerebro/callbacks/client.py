"""
Author:  Cerebro team
Date:    2026-11-24
Subject: MainAppClient: signed POSTs to the main app over kept-alive connections, with retries.
Tagline: Patient knocking, louder each time, never forever.

One :class:`MainAppClient` per process is enough: it is thread-safe (a
``urllib3.PoolManager`` underneath) and keeps connections alive. Redirects
are never followed, so a callback cannot be bounced to another host.

Outcomes of one attempt (:meth:`MainAppClient.attempt`):

* 2xx: delivered;
* timeouts, connection errors, 5xx, 408 and 429: retryable;
* any other status (4xx, 3xx): final, retrying would not help.

:meth:`MainAppClient.deliver` retries retryable outcomes with exponential
backoff and jitter until a retry window (default one hour from the first
attempt) runs out. Transports that must not block for that long (Celery)
call :meth:`attempt` and schedule the next one themselves with
:func:`backoff_delay`.
"""

import threading
import time
from dataclasses import dataclass

import urllib3

from cerebro import jsonio
from cerebro.callbacks.signing import signed_headers
from cerebro.outcomes import backoff_delay

RETRYABLE_STATUSES = frozenset({408, 429})
DEFAULT_RETRY_WINDOW = 3600.0
DEFAULT_BACKOFF = 1.0
DEFAULT_BACKOFF_MAX = 300.0


class DeliveryError(Exception):
    """A callback could not be delivered; carries the URL, key and last outcome."""

    def __init__(self, message, url=None, idempotency_key=None, result=None, attempts=0):
        super().__init__(message)
        self.url = url
        self.idempotency_key = idempotency_key
        self.result = result
        self.attempts = attempts


class PermanentDeliveryError(DeliveryError):
    """The main app answered with a final status (a 4xx other than 408/429, or a 3xx)."""


class RetryWindowExpired(DeliveryError):
    """Every attempt inside the retry window failed with a retryable outcome."""


@dataclass(frozen=True)
class AttemptResult:
    """The outcome of one POST: ``status`` (None when no response) and ``error`` text."""

    url: str
    status: int = None
    error: str = None
    elapsed: float = 0.0
    retry_after: float = None
    response_body: bytes = b""

    @property
    def ok(self):
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self):
        """True for timeouts, connection errors, 5xx, 408 and 429."""
        if self.ok:
            return False
        if self.status is None:
            return True
        return self.status >= 500 or self.status in RETRYABLE_STATUSES

    def describe(self):
        """A one-line description for logs, errors and the dead-letter store."""
        if self.status is None:
            return f"no response from {self.url}: {self.error}"
        snippet = self.response_body[:200].decode("utf-8", "replace").strip()
        return f"HTTP {self.status} from {self.url}" + (f": {snippet}" if snippet else "")


def _retry_after(value):
    """Seconds from a numeric ``Retry-After`` header, or None."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class MainAppClient:
    """Signs and POSTs JSON callbacks to the main app; thread-safe, keep-alive."""

    def __init__(self, secret, *, timeout=5.0, connect_timeout=None, maxsize=10,
                 user_agent="cerebro-callbacks/1"):
        if not secret:
            raise ValueError("the callback signing secret is empty: set CEREBRO_CALLBACK_SECRET")
        self.secret = secret
        self.timeout = timeout
        self._pool = urllib3.PoolManager(
            num_pools=32, maxsize=maxsize, block=False, retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout or min(timeout, 3.0), read=timeout),
            headers={"User-Agent": user_agent, "Content-Type": "application/json"},
        )
        self._lock = threading.Lock()
        self.attempts = 0

    @classmethod
    def from_settings(cls, settings):
        """A client configured by ``CEREBRO_CALLBACK_SECRET`` and ``CEREBRO_CALLBACK_TIMEOUT``."""
        return cls(settings.callback_secret.get_secret_value(), timeout=settings.callback_timeout)

    @staticmethod
    def encode(body):
        """The exact bytes sent (and signed) for ``body`` (a dict, or bytes as they are)."""
        return body if isinstance(body, (bytes, bytearray)) else jsonio.dumps(body)

    def post(self, url, body, idempotency_key):
        """Sign and POST ``body`` once; return the ``urllib3`` response.

        Network failures raise ``urllib3.exceptions.HTTPError`` subclasses
        (timeouts, connection errors); statuses are left to the caller.
        """
        data = self.encode(body)
        headers = signed_headers(self.secret, data, idempotency_key)
        with self._lock:
            self.attempts += 1
        return self._pool.request("POST", url, body=data, headers=headers,
                                  redirect=False, preload_content=True)

    def attempt(self, url, body, idempotency_key):
        """POST once and classify the outcome as an :class:`AttemptResult` (never raises
        for network problems: they are retryable outcomes)."""
        started = time.monotonic()
        try:
            response = self.post(url, body, idempotency_key)
        except urllib3.exceptions.HTTPError as exc:
            return AttemptResult(url, None, f"{type(exc).__name__}: {exc}",
                                 time.monotonic() - started)
        return AttemptResult(url, response.status, None, time.monotonic() - started,
                             _retry_after(response.headers.get("Retry-After")),
                             response.data or b"")

    def deliver(self, url, body, idempotency_key, *, retry_window=DEFAULT_RETRY_WINDOW,
                backoff=DEFAULT_BACKOFF, backoff_max=DEFAULT_BACKOFF_MAX, first_attempt_at=None,
                sleep=time.sleep):
        """POST until delivered, retrying retryable outcomes with backoff and jitter.

        ``retry_window`` seconds count from ``first_attempt_at`` (a
        ``time.time()`` value; default now). Returns the successful
        :class:`AttemptResult`. Raises :class:`PermanentDeliveryError` on a
        final status and :class:`RetryWindowExpired` when the window is over.
        Blocks the calling thread while waiting: fine for a consumer thread or
        the CLI, not for a Celery worker slot.
        """
        deadline = (first_attempt_at or time.time()) + retry_window
        attempt = 0
        while True:
            result = self.attempt(url, body, idempotency_key)
            attempt += 1
            if result.ok:
                return result
            if not result.retryable:
                raise PermanentDeliveryError(f"callback {idempotency_key} refused: "
                                             f"{result.describe()}", url, idempotency_key,
                                             result, attempt)
            delay = max(backoff_delay(attempt - 1, backoff, backoff_max), result.retry_after or 0)
            if time.time() + delay > deadline:
                raise RetryWindowExpired(f"callback {idempotency_key} not delivered after "
                                         f"{attempt} attempts in {retry_window:g}s: "
                                         f"{result.describe()}", url, idempotency_key,
                                         result, attempt)
            sleep(delay)

    def close(self):
        """Close every pooled connection."""
        self._pool.clear()
