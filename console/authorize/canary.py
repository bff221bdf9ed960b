"""Canary tokens at rest (SPEC §3.2 step 3, §9 "write-only").

A canary token must be matched as a substring of any argument or output, so it cannot be
stored as a one-way hash. It is stored **encrypted** (Fernet: AES-128-CBC + HMAC-SHA256)
under a key derived from ``SECRET_KEY``, in ``Guardrail.secret``, so a database dump or
backup alone does not reveal it; the API and events only ever show a count and short
fingerprints (first 12 hex digits of each token's SHA-256). Changing ``SECRET_KEY`` makes
stored tokens unreadable: re-enter them (the guardrail then reports the problem in its
layer result instead of matching).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

log = logging.getLogger("warden.authorize")

MIN_TOKEN_LENGTH = 8
MAX_TOKEN_LENGTH = 200
MAX_TOKENS = 100

_cache: dict[tuple[str, int], tuple[str, ...] | None] = {}
_lock = threading.Lock()


def _fernet() -> Fernet:
    key = hmac.new(settings.SECRET_KEY.encode(), b"warden canary tokens", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def seal(tokens: list[str]) -> str:
    return _fernet().encrypt(json.dumps(tokens).encode("utf-8")).decode("ascii")


def unseal(secret: str) -> tuple[str, ...] | None:
    """The tokens, or None when they cannot be decrypted (``SECRET_KEY`` changed)."""
    if not secret:
        return ()
    try:
        return tuple(json.loads(_fernet().decrypt(secret.encode("ascii"))))
    except (InvalidToken, ValueError):
        log.error("canary tokens cannot be decrypted; was SECRET_KEY changed?")
        return None


def tokens_of(guardrail) -> tuple[str, ...] | None:
    """Decrypted tokens of one guardrail version, decrypted once per process."""
    key = (str(guardrail.id), int(guardrail.version))
    with _lock:
        if key in _cache:
            return _cache[key]
    tokens = unseal(guardrail.secret)
    with _lock:
        if len(_cache) > 1024:
            _cache.clear()
        _cache[key] = tokens
    return tokens


def public_config(tokens: list[str] | tuple[str, ...]) -> dict:
    return {"token_count": len(tokens), "fingerprints": [fingerprint(t) for t in tokens]}
