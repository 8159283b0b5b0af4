"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Where a callback goes: the main-app base URL and a per-function path, or an allowed URL.
Tagline: Only known doors get a knock.

By default a callback for ``module.function`` goes to
``CEREBRO_MAIN_APP_URL`` + ``CEREBRO_CALLBACK_PATH`` (a template with
``{module}`` and ``{function}``), unless ``CEREBRO_CALLBACK_PATHS`` maps that
function to a path of its own. A request may name its own ``callback_url``
only when the URL's host is on the allow-list (``CEREBRO_CALLBACK_ALLOWED_HOSTS``;
the main app's own host is always allowed), so Cerebro cannot be made to call
arbitrary internal addresses (SSRF).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from urllib3.util import parse_url

from cerebro.errors import InvalidPayload

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cerebro.settings import Settings

DEFAULT_PATH = "/cerebro/callbacks/{module}/{function}"
_UNSAFE = re.compile(r"[\s\\\x00-\x1f\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of an absolute URL, lower-cased, default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


class CallbackURLs:
    """Resolves and checks callback URLs for ``module.function`` calls."""

    def __init__(self, base_url: str, path_template: str = DEFAULT_PATH,
                 paths: Iterable[str] = (), allowed_hosts: Iterable[str] = ()) -> None:
        self.base_url = base_url.rstrip("/")
        self.path_template = path_template
        self.paths = dict(_parse_path(item) for item in paths)
        self.allowed = [_parse_host(item) for item in allowed_hosts]
        if self.base_url:
            _scheme, host, port = _host_port(self.base_url)
            self.allowed.append((host, port))

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackURLs:
        """Built from the ``CEREBRO_MAIN_APP_URL`` and ``CEREBRO_CALLBACK_*`` settings."""
        return cls(settings.main_app_url.get_secret_value(), settings.callback_path,
                   settings.callback_paths,
                   settings.callback_allowed_hosts)

    def default(self, module: str, function: str) -> str:
        """The configured callback URL of ``module.function``."""
        path = self.paths.get(f"{module}.{function}")
        if path is None:
            path = self.path_template.format(module=module, function=function)
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + "/" + path.lstrip("/")

    def check(self, url: object) -> str:
        """Return ``url`` when it is an absolute http(s) URL to an allowed host;
        raise :class:`InvalidPayload` (field ``callback_url``) otherwise."""
        if not isinstance(url, str) or not url:
            raise InvalidPayload("'callback_url' must be a non-empty string", "callback_url")
        if len(url) > 2048 or _UNSAFE.search(url):
            raise InvalidPayload("'callback_url' contains characters a URL cannot hold",
                                 "callback_url")
        try:
            scheme, host, port = _host_port(url)
            parsed = parse_url(url)
        except ValueError as exc:
            raise InvalidPayload(f"'callback_url' is not a valid URL: {exc}",
                                 "callback_url") from None
        if scheme not in _DEFAULT_PORTS:
            raise InvalidPayload("'callback_url' must be an http or https URL", "callback_url")
        if "@" in urlsplit(url).netloc or parsed.auth:
            raise InvalidPayload("'callback_url' must not carry credentials", "callback_url")
        if not host or (parsed.host or "").lower().strip("[]") != host.strip("[]"):
            raise InvalidPayload("'callback_url' has an ambiguous host", "callback_url")
        if not any(_host_matches(host, port, allowed) for allowed in self.allowed):
            raise InvalidPayload(self._refusal(host, port), "callback_url")
        return url

    def _refusal(self, host: str, port: int | None) -> str:
        """Why ``host:port`` is refused: the host, or only its port, is not allowed."""
        ports = sorted({str(allowed_port) for pattern, allowed_port in self.allowed
                        if allowed_port is not None and _host_matches(host, None, (pattern, None))})
        if ports:
            return (f"'callback_url' port {port} is not allowed for host {host!r} (allowed: "
                    f"{', '.join(ports)}; CEREBRO_CALLBACK_ALLOWED_HOSTS takes host:port or a "
                    "bare host for any port)")
        return (f"'callback_url' host {host!r} is not on the allow-list "
                "(CEREBRO_CALLBACK_ALLOWED_HOSTS)")

    def resolve(self, module: str, function: str, requested: str | None = None) -> str:
        """The URL a callback of ``module.function`` goes to: ``requested`` when
        given and allowed (else :class:`InvalidPayload`), the configured one otherwise."""
        if requested is not None:
            return self.check(requested)
        return self.default(module, function)


def _parse_path(item: str) -> tuple[str, str]:
    """``"module.function=/path"`` -> ``("module.function", "/path")``."""
    key, sep, path = item.partition("=")
    if not sep or "." not in key or not path:
        raise ValueError(f"callback path {item!r} must look like 'module.function=/path' "
                         "(CEREBRO_CALLBACK_PATHS)")
    return key.strip(), path.strip()


def _parse_host(item: str) -> tuple[str, int | None]:
    """``"host"`` (any port), ``"host:port"`` or ``"*.domain"`` -> ``(host, port or None)``."""
    item = item.strip().lower()
    if item.startswith("[") and "]" in item:
        host, _, rest = item[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    host, sep, port = item.rpartition(":")
    if sep and port.isdigit() and host.count(":") == 0:
        return host, int(port)
    return item, None


def _host_matches(host: str, port: int | None, allowed: tuple[str, int | None]) -> bool:
    """True when ``host:port`` is covered by one allow-list entry."""
    pattern, allowed_port = allowed
    if allowed_port is not None and allowed_port != port:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return host == pattern
