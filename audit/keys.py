"""Ed25519 signing keys for the event log (SPEC §6.2, §6.3).

Keys never touch the database. They live in a *key directory* (``WARDEN_KEY_DIR``,
``var/keys`` in embedded mode, a mounted secret in production):

* ``keyring.json``: every public key ever used, ``{"keys": [{key_id, algorithm,
  public_key, valid_from, valid_until}]}``; this is what ``/.well-known/warden-keys.json``
  serves and what ``verify_log`` trusts, so someone who can write the database cannot add
  a key of their own;
* ``<key_id>.key``: the base64 32-byte private seed of each key (mode 0600).

``WARDEN_SIGNING_KEY`` (base64 seed) may supply the active private key from the environment
instead; its public half is added to the keyring on first use.

An event is signed with the key whose validity window contains the event's timestamp, so an
event recorded just before a rotation but integrated just after still verifies.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .timefmt import format_timestamp, parse_timestamp

RAW = serialization.Encoding.Raw
RAW_PUBLIC = serialization.PublicFormat.Raw
RAW_PRIVATE = serialization.PrivateFormat.Raw


# The first key of a log has no predecessor: it is valid for everything before it too (the
# log may hold events recorded before the key file was first generated, e.g. by migrations).
FIRST_KEY_VALID_FROM = datetime(1970, 1, 1, tzinfo=UTC)


def key_id_for(public_raw: bytes) -> str:
    """SPEC §6.3: the first 16 hex digits of SHA-256(raw public key)."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_raw: bytes
    valid_from: datetime
    valid_until: datetime | None

    def covers(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_until is None or moment < self.valid_until)

    def as_json(self) -> dict:
        return {
            "key_id": self.key_id,
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(self.public_raw).decode(),
            "valid_from": format_timestamp(self.valid_from),
            "valid_until": format_timestamp(self.valid_until) if self.valid_until else None,
        }

    def verifier(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_raw)


class KeyringError(RuntimeError):
    pass


def parse_keys(document: dict) -> list[PublicKey]:
    keys = []
    for entry in document.get("keys", []):
        raw = base64.b64decode(entry["public_key"], validate=True)
        if entry.get("algorithm", "Ed25519") != "Ed25519" or len(raw) != 32:
            raise KeyringError(f"key {entry.get('key_id')} is not a raw Ed25519 public key")
        if key_id_for(raw) != entry["key_id"]:
            raise KeyringError(f"key_id {entry['key_id']} does not match its public key")
        until = entry.get("valid_until")
        keys.append(
            PublicKey(
                key_id=entry["key_id"],
                public_raw=raw,
                valid_from=parse_timestamp(entry["valid_from"]),
                valid_until=parse_timestamp(until) if until else None,
            )
        )
    return keys


class Keyring:
    """The key directory: public history plus the private keys this process can use."""

    def __init__(self, directory: Path, env_seed: str = "") -> None:
        self.directory = Path(directory)
        self.env_seed = env_seed
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._keys: list[PublicKey] = []
        self._private: dict[str, Ed25519PrivateKey] = {}

    # -- files ---------------------------------------------------------------------
    @property
    def keyring_path(self) -> Path:
        return self.directory / "keyring.json"

    @contextlib.contextmanager
    def _file_lock(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "keyring.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> list[PublicKey]:
        if not self.keyring_path.exists():
            return []
        return parse_keys(json.loads(self.keyring_path.read_text()))

    def _write(self, keys: list[PublicKey]) -> None:
        tmp = self.keyring_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": [k.as_json() for k in keys]}, indent=2) + "\n")
        os.replace(tmp, self.keyring_path)

    def _write_private(self, private: Ed25519PrivateKey) -> str:
        raw_public = private.public_key().public_bytes(RAW, RAW_PUBLIC)
        key_id = key_id_for(raw_public)
        path = self.directory / f"{key_id}.key"
        seed = private.private_bytes(RAW, RAW_PRIVATE, serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(seed).decode() + "\n")
        return key_id

    def _load_private(self, key_id: str) -> Ed25519PrivateKey | None:
        if key_id in self._private:
            return self._private[key_id]
        path = self.directory / f"{key_id}.key"
        if not path.exists():
            return None
        seed = base64.b64decode(path.read_text().strip())
        private = Ed25519PrivateKey.from_private_bytes(seed)
        self._private[key_id] = private
        return private

    # -- state ---------------------------------------------------------------------
    def _refresh(self) -> None:
        """Re-read keyring.json when another process (rotation) changed it."""
        try:
            stat = self.keyring_path.stat()
            stamp = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or not self._keys:
            self._keys = self._read()
            self._stamp = stamp

    def ensure(self) -> None:
        """Generate the first key (or adopt WARDEN_SIGNING_KEY) if the keyring lacks it."""
        with self._lock:
            self._refresh()
            env_private = self._env_private()
            if self._keys and (env_private is None or self._env_key_id() in self._ids()):
                return
            with self._file_lock():
                keys = self._read()
                now = datetime.now(UTC)
                if env_private is not None:
                    key_id = self._env_key_id()
                    if key_id not in {k.key_id for k in keys}:
                        keys = self._retire_active(keys, now)
                        raw = env_private.public_key().public_bytes(RAW, RAW_PUBLIC)
                        keys.append(
                            PublicKey(key_id, raw, now if keys else FIRST_KEY_VALID_FROM, None)
                        )
                        self._write(keys)
                elif not keys:
                    private = Ed25519PrivateKey.generate()
                    key_id = self._write_private(private)
                    raw = private.public_key().public_bytes(RAW, RAW_PUBLIC)
                    self._write([PublicKey(key_id, raw, FIRST_KEY_VALID_FROM, None)])
                self._stamp = None
                self._refresh()

    def _ids(self) -> set[str]:
        return {k.key_id for k in self._keys}

    def _env_private(self) -> Ed25519PrivateKey | None:
        if not self.env_seed:
            return None
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(self.env_seed))

    def _env_key_id(self) -> str:
        private = self._env_private()
        assert private is not None
        return key_id_for(private.public_key().public_bytes(RAW, RAW_PUBLIC))

    @staticmethod
    def _retire_active(keys: list[PublicKey], now: datetime) -> list[PublicKey]:
        return [
            PublicKey(k.key_id, k.public_raw, k.valid_from, now) if k.valid_until is None else k
            for k in keys
        ]

    def rotate(self) -> PublicKey:
        """Start a new key now; the old one stays valid for events before this instant."""
        if self.env_seed:
            raise KeyringError(
                "the active key comes from WARDEN_SIGNING_KEY: set a new value there and "
                "restart; the keyring records the change on first use"
            )
        self.ensure()
        with self._lock, self._file_lock():
            keys = self._read()
            now = datetime.now(UTC)
            private = Ed25519PrivateKey.generate()
            key_id = self._write_private(private)
            raw = private.public_key().public_bytes(RAW, RAW_PUBLIC)
            new = PublicKey(key_id, raw, now, None)
            self._write(self._retire_active(keys, now) + [new])
            self._stamp = None
            self._refresh()
            return new

    def public_keys(self) -> list[PublicKey]:
        self.ensure()
        with self._lock:
            self._refresh()
            return list(self._keys)

    def signer_for(self, moment: datetime) -> tuple[str, Ed25519PrivateKey]:
        """The private key valid at ``moment`` (falls back to the active key)."""
        return self.signers().pick(moment)

    def signers(self) -> Signers:
        """The usable private keys with their validity, read once for a batch of events."""
        keys = self.public_keys()
        with self._lock:
            env_private = self._env_private()
            env_id = self._env_key_id() if env_private is not None else None
            usable = []
            for key in keys:
                private = env_private if key.key_id == env_id else self._load_private(key.key_id)
                if private is not None:
                    usable.append((key, private))
        return Signers(usable)


class Signers:
    def __init__(self, usable: list[tuple[PublicKey, Ed25519PrivateKey]]) -> None:
        self.usable = usable
        self.active = [pair for pair in usable if pair[0].valid_until is None]

    def pick(self, moment: datetime) -> tuple[str, Ed25519PrivateKey]:
        for key, private in self.usable:
            if key.covers(moment):
                return key.key_id, private
        if self.active:
            key, private = self.active[0]
            return key.key_id, private
        raise KeyringError(f"no private signing key available for {format_timestamp(moment)}")

    def pick_range(self, first: datetime, last: datetime) -> tuple[str, Ed25519PrivateKey] | None:
        """The key ``pick`` gives every moment from ``first`` to ``last``, or None when that
        is not one key (a batch of events across a rotation is picked event by event)."""
        for key, private in self.usable:
            covers_first, covers_last = key.covers(first), key.covers(last)
            if covers_first and covers_last:
                return key.key_id, private
            # A window is an interval: touching the range without covering all of it means
            # some moments of the range would get this key and others not.
            if covers_first or covers_last or first <= key.valid_from <= last:
                return None
        return None


@functools.cache
def _sodium_detached():
    """libsodium's ``crypto_sign_detached`` called with the GIL held, or None.

    PyNaCl's own binding releases the GIL around each call: under a process full of busy
    request threads, the integrator thread then waits to get it back after every one of a
    batch's signatures (measured: 1000-event batches 25 % slower than holding it). A 19 us
    call is better made holding it, so this loads the same library through ``ctypes.PyDLL``.
    """
    try:
        import ctypes

        import nacl._sodium
        import nacl.bindings  # noqa: F401 - runs sodium_init()

        function = ctypes.PyDLL(nacl._sodium.__file__).crypto_sign_detached
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_ulonglong,
        ctypes.c_char_p,
    ]
    function.restype = ctypes.c_int
    # The buffer's type, held here: ctypes caches array types weakly, so a buffer made per
    # call would create (and leave to the cyclic collector) a new type per signature.
    return function, ctypes.c_char * 64


@functools.cache
def _sodium_signer(seed: bytes) -> Callable[[bytes], bytes] | None:
    try:
        from nacl.bindings import crypto_sign, crypto_sign_seed_keypair
    except ImportError:  # pragma: no cover - PyNaCl is in requirements.lock
        return None
    _, secret = crypto_sign_seed_keypair(seed)
    detached = _sodium_detached()
    if detached is None:

        def sign(message: bytes) -> bytes:
            return crypto_sign(message, secret)[:64]  # signature || message

        return sign
    function, signature_buffer = detached

    def sign_holding_the_gil(message: bytes) -> bytes:
        out = signature_buffer()
        if function(out, None, message, len(message), secret) != 0:
            raise RuntimeError("libsodium crypto_sign_detached failed")
        return out.raw

    return sign_holding_the_gil


def signing_function(private: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    """``sign(message) -> 64-byte Ed25519 signature`` for the integrator's hot loop.

    libsodium (PyNaCl) when installed: Ed25519 signatures are deterministic (RFC 8032), so it
    gives the very bytes OpenSSL gives, at about half the cost on the machines we measured
    (19 against 34 us). OpenSSL otherwise.
    """
    seed = private.private_bytes(RAW, RAW_PRIVATE, serialization.NoEncryption())
    return _sodium_signer(seed) or private.sign


_keyring: Keyring | None = None


def keyring() -> Keyring:
    """The process-wide keyring configured by settings."""
    global _keyring
    from django.conf import settings

    directory = Path(settings.WARDEN_KEY_DIR)
    if _keyring is None or _keyring.directory != directory:
        _keyring = Keyring(directory, settings.WARDEN_SIGNING_KEY)
    return _keyring
