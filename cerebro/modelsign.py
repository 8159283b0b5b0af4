"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Signed model versions: an HMAC over a version's metadata, with a key kept off the volume.
Tagline: A checksum says the file is whole; a signature says who made it.

A published version's ``metadata.json`` lists the sha256 of every artifact.
``signature.json`` beside it holds an HMAC-SHA256 of that metadata (in a
canonical JSON form) under ``CEREBRO_MODEL_SIGNING_KEY``. A serving process
with the key verifies the signature before it reads an artifact, then each
artifact's sha256 as before: so a pickle someone dropped into the volume,
with a matching checksum and ``current.json`` pointed at it, is refused
unless it was signed with the key. The key lives with the builds and the
services (the environment, or the stack's ``secrets.env``), never on the volume.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cerebro.settings import Settings

SIGNATURE = "signature.json"
SCHEME = "hmac-sha256"


def configured_key(settings: Settings | None = None) -> str | None:
    """The signing key in force: ``CEREBRO_MODEL_SIGNING_KEY``, else the one ``cerebro up``
    generated for the stack (``CEREBRO_STATE_DIR/secrets.env``), so a build run by hand signs
    as the supervised programs verify; ``None`` when there is neither."""
    from cerebro.ops import secretfile
    from cerebro.settings import load_settings
    settings = settings or load_settings()
    given = settings.model_signing_key.get_secret_value()
    return given or secretfile.read(settings).get("CEREBRO_MODEL_SIGNING_KEY") or None


class SignatureRefused(Exception):
    """A version is unsigned, signed with another key, or its metadata was changed."""


def canonical(meta: dict[str, Any]) -> bytes:
    """The bytes that are signed: the metadata as sorted, compact, ASCII JSON."""
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def key_id(key: str) -> str:
    """A short public name of a key (its sha256's start): says which key signed, reveals none."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def sign(meta: dict[str, Any], key: str) -> dict[str, str]:
    """The ``signature.json`` content for ``meta`` under ``key``."""
    mac = hmac.new(key.encode(), canonical(meta), hashlib.sha256).hexdigest()
    return {"scheme": SCHEME, "key_id": key_id(key), "mac": mac}


def verify(meta: dict[str, Any], signature: object, key: str) -> None:
    """Raise :class:`SignatureRefused` unless ``signature`` signs ``meta`` under ``key``."""
    if signature is None:
        raise SignatureRefused("it is not signed (no signature.json); build it again with "
                               "CEREBRO_MODEL_SIGNING_KEY set")
    if not isinstance(signature, dict) or signature.get("scheme") != SCHEME \
            or not isinstance(signature.get("mac"), str):
        raise SignatureRefused(f"its signature.json is not an {SCHEME} signature")
    expected = sign(meta, key)
    if not hmac.compare_digest(expected["mac"].encode(),
                               signature["mac"].encode("utf-8", "replace")):
        if signature.get("key_id") != expected["key_id"]:
            raise SignatureRefused(f"it was signed with another key (key id "
                                   f"{str(signature.get('key_id'))[:12]!r}, this process has "
                                   f"{expected['key_id']!r}: CEREBRO_MODEL_SIGNING_KEY)")
        raise SignatureRefused("its signature does not match its metadata (changed after "
                               "it was signed)")
