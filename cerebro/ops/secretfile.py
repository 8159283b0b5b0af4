"""
Author:  Cerebro team
Date:    2026-11-29
Subject: The secrets `cerebro up` generated: where each one is, without ever showing it.
Tagline: Say which drawer holds the key, never the key.

``cerebro up`` gives the programs it runs every secret missing from its
environment (the supervisor and Flower passwords, the callback secret),
generated once into ``CEREBRO_STATE_DIR/secrets.env`` (mode 600). A shell
without those variables sees the settings empty; these helpers say where the
values the stack uses are (``cerebro settings``, ``cerebro up``'s summary) and
read one when a development tool needs it (``cerebro simulate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from envsettings import SecretStr

if TYPE_CHECKING:
    from cerebro.settings import Settings

NAME = "secrets.env"


def path(settings: Settings) -> Path:
    """The secrets file of the stack (``CEREBRO_STATE_DIR/secrets.env``)."""
    return settings.state_dir / NAME


def read(settings: Settings) -> dict[str, str]:
    """``{variable: value}`` stored in the secrets file ({} when there is none)."""
    try:
        text = path(settings).read_text()
    except OSError:
        return {}
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep and value.strip()}


def stored(settings: Settings) -> dict[str, Path]:
    """``{variable: file}`` of every secret setting that is empty here but that the secrets file
    gives the supervised programs."""
    names = type(settings).variables()
    empty = {var for name, var in names.items()
             if isinstance(getattr(settings, name), SecretStr)
             and not getattr(settings, name).get_secret_value()}
    return {var: path(settings) for var in read(settings) if var in empty}


def value(settings: Settings, var: str, given: SecretStr) -> tuple[str, str]:
    """``(value, where it comes from)`` of secret ``var``: ``given`` (the setting in force)
    when set, else the secrets file's; ``("", "")`` when neither has one."""
    if given.get_secret_value():
        return given.get_secret_value(), "the environment"
    found = read(settings).get(var, "")
    return (found, str(path(settings))) if found else ("", "")


def hint(settings: Settings, var: str, given: SecretStr) -> str:
    """Where to find secret ``var``'s value, as a reader can follow it (never the value)."""
    if given.get_secret_value():
        return f"the {var} of your environment"
    return f"grep {var} {path(settings).resolve()}"
