"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Where a callback goes: the main-app base URL and a per-function path, or an allowed URL.
Tagline: Only known doors get a knock.

By default a callback for ``module.function`` goes to
``CEREBRO_MAIN_APP_URL`` + ``CEREBRO_CALLBACK_PATH`` (a template with
``{module}`` and ``{function}``), unless ``CEREBRO_CALLBACK_PATHS`` maps that
function to a path of its own. A request may name its own ``callback_url``
only when the URL is on the allow-list (``CEREBRO_CALLBACK_ALLOWED_HOSTS``), so
Cerebro cannot be made to call arbitrary internal addresses (SSRF). An entry is
``host``, ``host:port`` or ``*.domain``, optionally followed by a path prefix
(``main.example:8443/cerebro/callbacks/``): with a prefix, only URLs whose path
is under it (segment-wise: ``/cb`` covers ``/cb`` and ``/cb/x``, not ``/cbx``)
are allowed. The main app's own host and port are allowed with any path unless
an entry names that very host and port, whose prefix then applies.

Whatever the list, a ``callback_url`` whose path holds a dot segment (``..``,
``.``, also percent-encoded or followed by ``;``), an encoded slash or
backslash, or an encoded control character is refused: a prefix must mean
what it says on any server behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from urllib3.util import parse_url

from cerebro.errors import InvalidPayload

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cerebro.settings import Settings

DEFAULT_PATH = "/cerebro/callbacks/{module}/{function}"
_UNSAFE = re.compile(r"[\s\\\x00-\x1f\x7f]")
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.I)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DECODINGS = 4
FIELD = "callback_url"


def _host_port(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of an absolute URL, lower-cased, default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


@dataclass(frozen=True)
class Allowed:
    """One allow-list entry: a host (or ``*.domain``), a port (None: any) and a path prefix
    (None: any path)."""

    host: str
    port: int | None = None
    prefix: str | None = None

    def covers_host(self, host: str, port: int | None) -> bool:
        """True when ``host:port`` is this entry's (whatever the path)."""
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and host != self.host[2:]
        return host == self.host

    def covers_path(self, path: str) -> bool:
        """True when ``path`` is under the prefix, segment-wise (any path without one)."""
        prefix = self.prefix
        if prefix is None or prefix == "/":
            return True
        if prefix.endswith("/"):
            return path.startswith(prefix)
        return path == prefix or path.startswith(prefix + "/")

    def describe(self) -> str:
        """The entry as written in ``CEREBRO_CALLBACK_ALLOWED_HOSTS``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host + (f":{self.port}" if self.port is not None else "") + (self.prefix or "")


class CallbackURLs:
    """Resolves and checks callback URLs for ``module.function`` calls."""

    def __init__(self, base_url: str, path_template: str = DEFAULT_PATH,
                 paths: Iterable[str] = (), allowed_hosts: Iterable[str] = ()) -> None:
        self.base_url = base_url.rstrip("/")
        self.path_template = path_template
        self.paths = dict(_parse_path(item) for item in paths)
        self.allowed = [_parse_entry(item) for item in allowed_hosts if item.strip()]
        if self.base_url:
            _scheme, host, port = _host_port(self.base_url)
            if not any(entry.host == host and entry.port in (port, None)
                       for entry in self.allowed):
                self.allowed.append(Allowed(host, port))

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
        """Return ``url`` when it is an absolute http(s) URL the allow-list covers (host, port
        and path); raise :class:`InvalidPayload` (field ``callback_url``) otherwise."""
        if not isinstance(url, str) or not url:
            raise InvalidPayload("'callback_url' must be a non-empty string", FIELD)
        if len(url) > 2048 or _UNSAFE.search(url):
            raise InvalidPayload("'callback_url' contains characters a URL cannot hold", FIELD)
        try:
            scheme, host, port = _host_port(url)
            parsed = parse_url(url)
        except ValueError as exc:
            raise InvalidPayload(f"'callback_url' is not a valid URL: {exc}", FIELD) from None
        if scheme not in _DEFAULT_PORTS:
            raise InvalidPayload("'callback_url' must be an http or https URL", FIELD)
        if "@" in urlsplit(url).netloc or parsed.auth:
            raise InvalidPayload("'callback_url' must not carry credentials", FIELD)
        if not host or (parsed.host or "").lower().strip("[]") != host.strip("[]"):
            raise InvalidPayload("'callback_url' has an ambiguous host", FIELD)
        path = urlsplit(url).path or "/"
        _check_path(path)
        entries = [entry for entry in self.allowed if entry.covers_host(host, port)]
        if not entries:
            raise InvalidPayload(self._refusal(host, port), FIELD)
        if not any(entry.covers_path(path) for entry in entries):
            prefixes = ", ".join(sorted({entry.prefix or "/" for entry in entries}))
            where = Allowed(host, port).describe()
            raise InvalidPayload(f"'callback_url' path {path[:200]!r} is not under a prefix "
                                 f"allowed for {where} (allowed: {prefixes}; "
                                 "CEREBRO_CALLBACK_ALLOWED_HOSTS takes host[:port][/prefix])",
                                 FIELD)
        return url

    def _refusal(self, host: str, port: int | None) -> str:
        """Why ``host:port`` is refused: the host, or only its port, is not allowed."""
        ports = sorted({str(entry.port) for entry in self.allowed
                        if entry.port is not None and Allowed(entry.host).covers_host(host, None)})
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

    def check_delivery(self, url: object, module: object, function: object) -> str:
        """Return ``url`` when a callback of ``module.function`` may be sent there: it is the
        function's configured URL, or the allow-list covers it (checked again on every
        attempt: the list may have changed); :class:`InvalidPayload` otherwise."""
        if isinstance(module, str) and isinstance(function, str) \
                and url == self.default(module, function):
            return url
        return self.check(url)


def _check_path(path: str) -> None:
    """Refuse a path whose meaning a server could change: dot segments (also encoded, or with
    ``;`` parameters), encoded slashes and backslashes, encoded control characters."""
    decoded = path
    for _ in range(_DECODINGS):  # double and triple encodings too
        if _ENCODED_SEPARATOR.search(decoded):
            raise InvalidPayload("'callback_url' path holds an encoded slash or backslash",
                                 FIELD)
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            break
    else:
        raise InvalidPayload("'callback_url' path is percent-encoded too many times", FIELD)
    if _UNSAFE.search(decoded.replace(" ", "")):
        raise InvalidPayload("'callback_url' path holds encoded characters a path cannot hold",
                             FIELD)
    if any(segment.split(";", 1)[0] in (".", "..") for segment in decoded.split("/")):
        raise InvalidPayload("'callback_url' path holds a '.' or '..' segment", FIELD)


def _parse_path(item: str) -> tuple[str, str]:
    """``"module.function=/path"`` -> ``("module.function", "/path")``."""
    key, sep, path = item.partition("=")
    if not sep or "." not in key or not path:
        raise ValueError(f"callback path {item!r} must look like 'module.function=/path' "
                         "(CEREBRO_CALLBACK_PATHS)")
    return key.strip(), path.strip()


def _parse_entry(item: str) -> Allowed:
    """``host``, ``host:port``, ``[v6]:port`` or ``*.domain``, each optionally followed by a
    ``/path/prefix`` -> :class:`Allowed`."""
    item = item.strip()
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port_text, slash, prefix = rest.partition("/")
        port_text = port_text[1:] if port_text.startswith(":") else port_text
        return _entry(item, host, port_text, "/" + prefix if slash else None)
    hostport, slash, prefix = item.partition("/")
    host, sep, port_text = hostport.rpartition(":")
    if not sep or host.count(":"):  # a bare host (or an unbracketed IPv6 address)
        host, port_text = hostport, ""
    return _entry(item, host, port_text, "/" + prefix if slash else None)


def _entry(item: str, host: str, port_text: str, prefix: str | None) -> Allowed:
    """An :class:`Allowed` from parsed parts; ``ValueError`` naming ``item`` when invalid."""
    problem = None
    if not host or _UNSAFE.search(host) or "/" in host:
        problem = "no host"
    elif port_text and not port_text.isdigit():
        problem = f"port {port_text!r} is not a number"
    elif prefix is not None:
        try:
            _check_path(prefix)
        except InvalidPayload as exc:
            problem = f"prefix {prefix!r} is not a plain path ({exc.message})"
    if problem:
        raise ValueError(f"allow-list entry {item!r}: {problem} (CEREBRO_CALLBACK_ALLOWED_HOSTS "
                         "takes host, host:port or *.domain, each with an optional /path/prefix)")
    return Allowed(host.lower(), int(port_text) if port_text else None, prefix)
