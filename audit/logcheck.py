"""Re-checking the whole event log (``manage.py verify_log``, SPEC §6.3).

No Django import: the command streams rows from the database into ``LogChecker`` and
prints its report. For every event the checker verifies that ``seq`` is gap-free,
``prev_hash`` links to the previous leaf, the leaf hash matches the event's canonical
content, the key was valid at the event's time and the signature verifies; it rebuilds the
RFC 9162 tree as it goes and checks each checkpoint's root and signature at its size, that
no checkpoint covers events missing from the log, and optionally that the log extends a
checkpoint kept outside the database (``--against``).

Signatures dominate the cost (Ed25519 verification is ~100x a SHA-256 of an event), so
they are checked by a pool of worker processes while the main process hashes.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import canonical
from .eventcodec import ZERO_HASH, canonical_bytes
from .keys import PublicKey
from .merkle import Frontier, leaf_hash
from .timefmt import parse_timestamp

# When several checks fail at one seq, report the most specific first.
CHECK_ORDER = ("sequence", "chain", "content", "leaf_hash", "signature", "truncation", "checkpoint")


@dataclass
class Failure:
    seq: int
    check: str
    message: str

    def sort_key(self) -> tuple[int, int]:
        rank = CHECK_ORDER.index(self.check) if self.check in CHECK_ORDER else len(CHECK_ORDER)
        return self.seq, rank

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.check}: {self.message}"


@dataclass
class Report:
    events: int = 0
    checkpoints_checked: int = 0
    signatures_checked: int = 0
    latest_checkpoint: dict | None = None
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> Failure | None:
        return min(self.failures, key=Failure.sort_key) if self.failures else None


@dataclass(frozen=True)
class Row:
    """One integrated event as stored: content fields, canonical payload text, log fields."""

    seq: int
    content: dict  # §6.1 content fields as strings (see GovernanceEvent.content_fields)
    payload_text: str
    prev_hash: str
    leaf_hash: str
    signature: str
    key_id: str


def _verify_chunk(chunk: list[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    """Worker: return the seqs whose signature does not verify.

    Uses libsodium (PyNaCl) when installed: on the machines we measured its Ed25519
    verification is about twice as fast as OpenSSL's, and signatures are most of the cost of
    checking a log. Both implement the same RFC 8032 verification.
    """
    try:
        from nacl.bindings import crypto_sign_open
        from nacl.exceptions import BadSignatureError
    except ImportError:
        return _verify_chunk_openssl(chunk)
    bad = []
    for seq, public_raw, signature, message in chunk:
        if len(signature) != 64:
            bad.append(seq)
            continue
        try:
            crypto_sign_open(signature + message, public_raw)
        except (BadSignatureError, ValueError):
            bad.append(seq)
    return bad


def _verify_chunk_openssl(chunk: list[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    bad = []
    cache: dict[bytes, Ed25519PublicKey] = {}
    for seq, public_raw, signature, message in chunk:
        key = cache.get(public_raw)
        if key is None:
            key = cache[public_raw] = Ed25519PublicKey.from_public_bytes(public_raw)
        try:
            key.verify(signature, message)
        except InvalidSignature:
            bad.append(seq)
    return bad


class _InlineExecutor(Executor):
    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class LogChecker:
    CHUNK = 2000
    MAX_FAILURES = 100

    def __init__(
        self,
        keys: Sequence[PublicKey],
        checkpoints: Sequence[dict],
        *,
        against: dict | None = None,
        workers: int | None = None,
    ) -> None:
        self.keys = {key.key_id: key for key in keys}
        self.report = Report()
        self.frontier = Frontier()
        self.expected_seq = 1
        self.prev_hash = ZERO_HASH
        self.checkpoints = sorted(checkpoints, key=lambda c: c["tree_size"])
        self.against = against
        self._roots_wanted = {c["tree_size"] for c in self.checkpoints}
        if against is not None:
            self._roots_wanted.add(against["tree_size"])
        self._roots: dict[int, str] = {}
        if workers is None:
            workers = os.cpu_count() or 1
        self._executor: Executor = (
            ProcessPoolExecutor(workers, mp_context=get_context("fork"))
            if workers > 1
            else _InlineExecutor()
        )
        self._pending: list[Future] = []
        self._chunk: list[tuple[int, bytes, bytes, bytes]] = []

    # -- failures --------------------------------------------------------------------
    def fail(self, seq: int, check: str, message: str) -> None:
        if len(self.report.failures) < self.MAX_FAILURES:
            self.report.failures.append(Failure(seq, check, message))

    # -- events ----------------------------------------------------------------------
    def feed(self, row: Row) -> None:
        report = self.report
        report.events += 1
        seq = row.seq
        if seq != self.expected_seq:
            if seq > self.expected_seq:
                self.fail(
                    self.expected_seq,
                    "sequence",
                    f"events {self.expected_seq}..{seq - 1} are missing",
                )
            else:
                self.fail(
                    seq, "sequence", f"seq {seq} appears out of order after {self.expected_seq - 1}"
                )
        self.expected_seq = seq + 1
        if row.prev_hash != self.prev_hash:
            self.fail(seq, "chain", "prev_hash does not match the previous event's leaf_hash")
        fields = dict(row.content)
        fields["seq"] = seq
        fields["prev_hash"] = row.prev_hash
        try:
            computed = leaf_hash(canonical_bytes(fields, row.payload_text))
        except (canonical.CanonicalizationError, TypeError) as exc:
            self.fail(seq, "content", f"event cannot be canonicalised: {exc}")
            computed = b"\x00" * 32
        if computed.hex() != row.leaf_hash:
            self.fail(seq, "leaf_hash", "stored leaf_hash does not match the event's content")
        self._check_signature(seq, row, computed, fields["timestamp"])
        # The tree is built from what the content hashes to, so any edit moves the roots.
        self.prev_hash = row.leaf_hash
        self.frontier.append(computed)
        if self.frontier.size in self._roots_wanted:
            self._roots[self.frontier.size] = self.frontier.root().hex()

    def _check_signature(self, seq: int, row: Row, leaf: bytes, timestamp: str) -> None:
        key = self.keys.get(row.key_id)
        if key is None:
            self.fail(seq, "signature", f"signed with unknown key {row.key_id!r}")
            return
        try:
            moment = parse_timestamp(timestamp)
        except ValueError:
            self.fail(seq, "content", f"bad timestamp {timestamp!r}")
            return
        if not key.covers(moment):
            self.fail(seq, "signature", f"key {row.key_id} was not valid at {timestamp}")
            return
        try:
            signature = base64.b64decode(row.signature, validate=True)
        except (binascii.Error, ValueError):
            self.fail(seq, "signature", "signature is not base64")
            return
        self.report.signatures_checked += 1
        self._chunk.append((seq, key.public_raw, signature, leaf))
        if len(self._chunk) >= self.CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._chunk:
            self._pending.append(self._executor.submit(_verify_chunk, self._chunk))
            self._chunk = []
        # Collect finished work so memory stays bounded on long logs.
        while len(self._pending) > 8:
            self._collect(self._pending.pop(0))

    def _collect(self, future: Future) -> None:
        for seq in future.result():
            self.fail(seq, "signature", "Ed25519 signature does not verify")

    # -- checkpoints -----------------------------------------------------------------
    def _check_checkpoint(self, checkpoint: dict, label: str) -> None:
        size = checkpoint["tree_size"]
        seq = min(size, self.expected_seq)
        root = self._roots.get(size)
        if size > self.expected_seq - 1:
            self.fail(
                self.expected_seq,
                "truncation",
                f"{label} covers {size} events but the log ends at seq {self.expected_seq - 1}",
            )
        elif root != checkpoint["root_hash"]:
            self.fail(
                seq, "checkpoint", f"{label} root does not match the log's first {size} events"
            )
        key = self.keys.get(checkpoint["key_id"])
        if key is None:
            self.fail(
                seq, "checkpoint", f"{label} is signed with unknown key {checkpoint['key_id']!r}"
            )
            return
        try:
            moment: datetime = parse_timestamp(checkpoint["timestamp"])
            signature = base64.b64decode(checkpoint["signature"], validate=True)
            body = canonical.dumps(
                {k: checkpoint[k] for k in ("tree_size", "root_hash", "timestamp", "key_id")}
            )
            if not key.covers(moment):
                raise InvalidSignature(f"key {key.key_id} was not valid then")
            key.verifier().verify(signature, body)
        except (InvalidSignature, ValueError, binascii.Error) as exc:
            self.fail(seq, "checkpoint", f"{label} signature does not verify {exc}".strip())
        else:
            self.report.checkpoints_checked += 1

    def finish(self) -> Report:
        self._flush()
        for future in self._pending:
            self._collect(future)
        self._pending = []
        self._executor.shutdown()
        for checkpoint in self.checkpoints:
            self._check_checkpoint(checkpoint, f"checkpoint {checkpoint['tree_size']}")
        if self.against is not None:
            self._check_checkpoint(self.against, f"external checkpoint {self.against['tree_size']}")
        if self.checkpoints:
            self.report.latest_checkpoint = self.checkpoints[-1]
        return self.report


def check_rows(
    rows: Iterable[Row],
    keys: Sequence[PublicKey],
    checkpoints: Sequence[dict],
    *,
    against: dict | None = None,
    workers: int | None = None,
) -> Report:
    checker = LogChecker(keys, checkpoints, against=against, workers=workers)
    for row in rows:
        checker.feed(row)
    return checker.finish()
