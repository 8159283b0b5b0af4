"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Settings read from environment variables: declared once, typed, strict, secrets masked.
Tagline: Say each knob once; never say a secret at all.

Cerebro and Sherlock both declare their configuration with this package, and
neither imports the other for it. A settings class lists every variable once,
with its environment name, type, default and help::

    class Settings(EnvSettings):
        port: int = setting("CEREBRO_PORT", 8000, "Port the REST API binds.")
        broker_url: SecretURL = setting("CEREBRO_BROKER_URL", SecretURL("amqp://..."), "...")

    settings = Settings.load()            # from os.environ, or Settings.load(mapping)

Validation is pydantic's (a typed, frozen model); the types below add the
house rules. A value that does not parse raises ``ValueError`` naming the
variable (``CEREBRO_PORT='x' is not valid: ...``). Booleans (:data:`Flag`) are
``1/true/yes/on`` or ``0/false/no/off`` in any case, anything else is refused,
and an empty one means its default. Durations (:data:`Seconds`) are finite and
not negative. Lists (:data:`Csv`) are comma-separated.

Secrets are typed as secrets (:class:`pydantic.SecretStr`, and
:class:`SecretURL` for URLs that may carry a password): ``repr``, ``str``,
:meth:`EnvSettings.describe` and :func:`redact` never show them; code that
needs the value asks for it with ``.get_secret_value()``.

Why pydantic and not pydantic-settings: validation, frozen models and secret
types are what pydantic does well, while reading a mapping of variables is a
line of code; pydantic-settings reads only ``os.environ`` (tests and
``cerebro up`` read other mappings) and would be one more dependency.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Annotated, Any, ClassVar, Self, get_args

from pydantic import (AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr,
                      ValidationError)

__all__ = ["Csv", "EnvSettings", "Flag", "SecretCsv", "SecretStr", "SecretURL", "Seconds",
           "redact", "setting"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
MASK = "***"
# scheme://user:password@host -> the password part
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:@/\s]*:)[^@/\s]+(?=@)")


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with every password inside a URL, and every one of ``secrets``, masked."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, MASK)
    return text


class SecretURL(SecretStr):
    """A URL that may carry a password: shown with the password masked, used whole."""

    def _display(self) -> str:
        """The URL with its password replaced by ``***``."""
        return redact(self.get_secret_value())


class _EmptyIsDefault:
    """Marks a type whose empty value means the setting's default (booleans)."""


EMPTY_IS_DEFAULT = _EmptyIsDefault()


def parse_flag(value: object) -> object:
    """A boolean from 1/true/yes/on or 0/false/no/off (any case, blanks ignored)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def parse_seconds(value: object) -> float:
    """A duration in seconds: a finite number, zero or more (no nan, inf or negatives)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError("expected a finite number of seconds, zero or more") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError("expected a finite number of seconds, zero or more")
    return number


def parse_csv(value: object) -> object:
    """A tuple of the stripped, non-empty items of a comma-separated string."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def choice(*allowed: str) -> BeforeValidator:
    """A validator accepting one of ``allowed`` (any case, blanks ignored), kept lower-case."""
    def parse(value: object) -> str:
        """The value lower-cased when it is one of the allowed words."""
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected {', '.join(allowed[:-1])} or {allowed[-1]}")
        return text
    return BeforeValidator(parse)


Flag = Annotated[bool, BeforeValidator(parse_flag), EMPTY_IS_DEFAULT]
Seconds = Annotated[float, BeforeValidator(parse_seconds)]
Csv = Annotated[tuple[str, ...], BeforeValidator(parse_csv)]
SecretCsv = Annotated[tuple[SecretStr, ...], BeforeValidator(parse_csv)]


def setting(env: str, default: Any, help: str,  # noqa: A002 - reads as the doc
            aliases: tuple[str, ...] = ()) -> Any:
    """Declare one setting: its environment variable, default and help text.

    ``aliases`` are former names of the variable, still read when ``env`` is unset
    (the first one set wins), so a deployment keeps working after a rename.
    """
    alias = AliasChoices(env, *aliases) if aliases else env
    return Field(default, validation_alias=alias, description=help)


def _error_text(exc: ValidationError, raw: Mapping[str, object],
                rename: Mapping[str, str] | None = None,
                secret: Collection[str] = ()) -> str:
    """One line per failed variable: ``VAR='value' is not valid: reason`` (``rename`` maps
    the field names of a :meth:`EnvSettings.replace` to their variables; the values of the
    variables in ``secret`` are masked)."""
    lines = []
    for error in exc.errors():
        var = str(error["loc"][0]) if error["loc"] else "?"
        var = (rename or {}).get(var, var)
        message = error["msg"].removeprefix("Value error, ")
        value = MASK if var in secret else repr(raw.get(var, error.get("input")))
        lines.append(f"{var}={value} is not valid: {message}")
    return "; ".join(lines)


def _holds_secret(annotation: object) -> bool:
    """True when a type annotation is, or contains, a :class:`SecretStr`."""
    if isinstance(annotation, type) and issubclass(annotation, SecretStr):
        return True
    return any(_holds_secret(arg) for arg in get_args(annotation))


class EnvSettings(BaseModel):
    """Base of a settings class: frozen, strict, loaded from environment variables."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_alias=True,
                              validate_by_name=True, arbitrary_types_allowed=True)

    #: What :meth:`load` and :meth:`replace` raise for a value that does not parse.
    error: ClassVar[type[ValueError]] = ValueError

    @classmethod
    def variables(cls) -> dict[str, str]:
        """``{field name: environment variable}`` of every setting, in declaration order."""
        return {name: cls.names(name)[0] for name in cls.model_fields}

    @classmethod
    def names(cls, name: str) -> tuple[str, ...]:
        """The environment variable of setting ``name``, then its former names."""
        alias = cls.model_fields[name].validation_alias
        if isinstance(alias, AliasChoices):
            return tuple(str(choice) for choice in alias.choices)
        return (str(alias),)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from ``environ`` (default: ``os.environ``); unset ones take defaults.

        Raises :attr:`error` (a ``ValueError``) naming every variable that does not parse,
        and the variables of one setting (its name and former names) set to different
        values: which one is meant cannot be guessed.
        """
        environ = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for name in cls.model_fields:
            given = {}
            for var in cls.names(name):
                value = environ.get(var)
                if value is None or (EMPTY_IS_DEFAULT in cls.model_fields[name].metadata
                                     and not value.strip()):
                    continue
                given[var] = value
            if len({value.strip() for value in given.values()}) > 1:
                shown = " and ".join(f"{var}={value!r}" for var, value in given.items())
                raise cls.error(f"{shown} are one setting now ({cls.names(name)[0]}): set it "
                                "once")
            if given:
                var, value = next(iter(given.items()))
                raw[var] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise cls.error(_error_text(exc, raw, secret=cls.secret_variables())) from None

    def replace(self, **changes: Any) -> Self:
        """A copy with some values changed, validated like loaded ones (CLI flags, tests)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(changes)
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            names = type(self).variables()
            shown = {names.get(k, k): v for k, v in changes.items()}
            raise type(self).error(_error_text(exc, shown, names,
                                               type(self).secret_variables())) from None

    @classmethod
    def secret_variables(cls) -> set[str]:
        """The variables (and field names) of every setting typed as a secret."""
        found = set()
        for name, field in cls.model_fields.items():
            if _holds_secret(field.annotation):
                found.update({name, *cls.names(name)})
        return found

    def describe(self) -> Iterator[tuple[str, str, str]]:
        """``(variable, value as shown, help)`` per setting; secrets never shown."""
        for name, var in type(self).variables().items():
            yield var, _shown(getattr(self, name)), type(self).model_fields[name].description or ""

    def secret_values(self) -> list[str]:
        """Every secret value in force (to mask them wherever text leaves the process).

        A password inside a :class:`SecretURL` is not listed: :func:`redact` masks
        passwords inside URLs wherever they appear.
        """
        found = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, SecretStr) and not isinstance(item, SecretURL) \
                        and item.get_secret_value():
                    found.append(item.get_secret_value())
        return found


def _shown(value: object) -> str:
    """A value as ``describe`` shows it: secrets masked, lists comma-separated."""
    if isinstance(value, SecretURL):
        return str(value)
    if isinstance(value, SecretStr):
        return "<set>" if value.get_secret_value() else ""
    if isinstance(value, tuple):
        if value and all(isinstance(item, SecretStr) for item in value):
            return f"<{len(value)} set>"
        return ",".join(str(item) for item in value)
    return str(value)
