"""Generating, hashing and parsing API credentials (SPEC §1 "API keys").

Keys are ``wdn_live_<8-char prefix>_<40-char secret>`` for agents and
``wdn_op_<prefix>_<secret>`` for operators. The secret has ~238 bits of entropy, so a keyed
hash (HMAC-SHA256 with a server-side pepper) is enough at rest: it cannot be reversed or
brute-forced, and checking it costs microseconds on every request, which a slow password
hash would not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from django.conf import settings

_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
PREFIX_LENGTH = 8
SECRET_LENGTH = 40
AGENT_KEY = "wdn_live_"
OPERATOR_TOKEN = "wdn_op_"


@dataclass(frozen=True)
class ParsedKey:
    prefix: str
    full: str


def _pepper() -> bytes:
    configured = getattr(settings, "WARDEN_KEY_PEPPER", "")
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"warden api key pepper", hashlib.sha256).digest()


def key_hash(full_key: str) -> str:
    return hmac.new(_pepper(), full_key.encode(), hashlib.sha256).hexdigest()


def matches(full_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(full_key), stored_hash)


def generate(kind: str) -> tuple[str, str]:
    """Return ``(prefix, full_key)`` for a new credential of ``kind`` (a prefix constant)."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
    return prefix, f"{kind}{prefix}_{secret}"


def parse(kind: str, presented: str) -> ParsedKey | None:
    """Split a presented credential; None when it is not of the expected shape."""
    if not presented.startswith(kind):
        return None
    rest = presented[len(kind) :]
    prefix, sep, secret = (
        rest[:PREFIX_LENGTH],
        rest[PREFIX_LENGTH : PREFIX_LENGTH + 1],
        rest[PREFIX_LENGTH + 1 :],
    )
    if sep != "_" or len(prefix) != PREFIX_LENGTH or len(secret) < 32:
        return None
    if not all(c in _ALPHABET for c in prefix) or not secret.isalnum() or not secret.isascii():
        return None
    return ParsedKey(prefix=prefix, full=presented)
