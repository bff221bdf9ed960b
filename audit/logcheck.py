"""Re-checking the whole event log (``manage.py verify_log``, SPEC §6.3).

No Django import: the command streams rows from the database into ``LogChecker`` and
prints its report. For every event the checker verifies that ``seq`` is gap-free,
``prev_hash`` links to the previous leaf, the leaf hash matches the event's canonical
content, the key was valid at the event's time and the signature verifies; it rebuilds the
RFC 9162 tree as it goes and checks each checkpoint's root and signature at its size, that
no checkpoint covers events missing from the log, and optionally that the log extends a
checkpoint kept outside the database (``--against``).

Signatures dominate the cost (an Ed25519 verification is ~10x canonicalising and hashing
an event), so rows go in chunks to a pool of worker processes that do every per-event
check (``check_chunk``); the main process reads rows, links the chunks (each starts from the
seq and leaf hash the previous chunk ends with) and builds the Merkle tree.
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
from .eventcodec import ZERO_HASH, content_leaf
from .keys import PublicKey
from .merkle import Frontier
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


# A log row as the checker takes it: ``audit.selectors.log_batches`` yields these tuples.
ROW_FIELDS = (
    "seq",
    "prev_hash",
    "leaf_hash",
    "signature",
    "key_id",
    "id",
    "timestamp",
    "event_type",
    "agent_id",
    "session_id",
    "workflow_id",
    "run_id",
    "actor",
    "verdict",
    "result",
    "reason",
    "payload_text",
)
_NO_LEAF = b"\x00" * 32


def _row_tuple(row: Row) -> tuple:
    c = row.content
    return (
        row.seq,
        row.prev_hash,
        row.leaf_hash,
        row.signature,
        row.key_id,
        c["id"],
        c["timestamp"],
        c["event_type"],
        c["agent_id"],
        c["session_id"],
        c["workflow_id"],
        c["run_id"],
        c["actor"],
        c["verdict"],
        c["result"],
        c["reason"],
        row.payload_text,
    )


@dataclass
class ChunkResult:
    leaves: bytes  # the 32-byte leaf hash each row's content hashes to, concatenated
    failures: list[tuple[int, str, str]]
    signatures_checked: int


def _signature_verifier():
    """``verify(public_raw, signature, message) -> bool`` (libsodium if installed, as
    ``_verify_chunk`` explains, else OpenSSL)."""
    try:
        from nacl.bindings import crypto_sign_open
        from nacl.exceptions import BadSignatureError
    except ImportError:  # pragma: no cover - PyNaCl is in requirements.lock
        cache: dict[bytes, Ed25519PublicKey] = {}

        def verify_openssl(public_raw: bytes, signature: bytes, message: bytes) -> bool:
            key = cache.get(public_raw)
            if key is None:
                key = cache[public_raw] = Ed25519PublicKey.from_public_bytes(public_raw)
            try:
                key.verify(signature, message)
            except InvalidSignature:
                return False
            return True

        return verify_openssl

    def verify_sodium(public_raw: bytes, signature: bytes, message: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            crypto_sign_open(signature + message, public_raw)
        except (BadSignatureError, ValueError):
            return False
        return True

    return verify_sodium


def check_chunk(
    rows: Sequence[tuple], keys: dict[str, PublicKey], expected_seq: int, prev_hash: str
) -> ChunkResult:
    """Every per-event check of consecutive log rows (run in a worker process).

    ``expected_seq`` and ``prev_hash`` are what the row before the chunk implies (the next
    seq, its stored leaf hash). Checks, in order: gap-free seq, the chain link, the leaf hash
    of the canonical content, the key and its window, the Ed25519 signature over the leaf
    hash. Returns the leaf hashes the contents hash to, for the Merkle tree.
    """
    verify = _signature_verifier()
    failures: list[tuple[int, str, str]] = []
    fail = failures.append
    leaves = []
    checked = 0
    for row in rows:
        seq, stored_prev, stored_leaf, signature_text, key_id = row[:5]
        timestamp = row[6]
        if seq != expected_seq:
            if seq > expected_seq:
                fail((expected_seq, "sequence", f"events {expected_seq}..{seq - 1} are missing"))
            else:
                fail((seq, "sequence", f"seq {seq} appears out of order after {expected_seq - 1}"))
        expected_seq = seq + 1
        if stored_prev != prev_hash:
            fail((seq, "chain", "prev_hash does not match the previous event's leaf_hash"))
        try:
            computed = content_leaf(seq, stored_prev, row[5:17])
        except (canonical.CanonicalizationError, TypeError) as exc:
            fail((seq, "content", f"event cannot be canonicalised: {exc}"))
            computed = _NO_LEAF
        if computed.hex() != stored_leaf:
            fail((seq, "leaf_hash", "stored leaf_hash does not match the event's content"))
        leaves.append(computed)
        # The tree is built from what the content hashes to, so any edit moves the roots.
        prev_hash = stored_leaf
        key = keys.get(key_id)
        if key is None:
            fail((seq, "signature", f"signed with unknown key {key_id!r}"))
            continue
        try:
            moment = parse_timestamp(timestamp)
        except (ValueError, TypeError, AttributeError):
            fail((seq, "content", f"bad timestamp {timestamp!r}"))
            continue
        if not key.covers(moment):
            fail((seq, "signature", f"key {key_id} was not valid at {timestamp}"))
            continue
        try:
            signature = base64.b64decode(signature_text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            fail((seq, "signature", "signature is not base64"))
            continue
        checked += 1
        if not verify(key.public_raw, signature, computed):
            fail((seq, "signature", "Ed25519 signature does not verify"))
    return ChunkResult(b"".join(leaves), failures, checked)


class LogChecker:
    """Re-checks a log fed in seq order (``feed_rows``), then its checkpoints (``finish``).

    Rows go to worker processes in chunks: each worker canonicalises, hashes and verifies
    the signatures of its chunk (``check_chunk``), which is nearly all of the work; this
    process only hands out chunks, builds the Merkle tree from the leaf hashes the workers
    return (in order) and checks the checkpoints against it.
    """

    CHUNK = 2000
    IN_FLIGHT = 4  # chunks per worker queued ahead, so workers never wait for the reader
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
        self._workers = max(workers, 1)
        self._executor: Executor = (
            ProcessPoolExecutor(workers, mp_context=get_context("fork"))
            if workers > 1
            else _InlineExecutor()
        )
        self._pending: list[Future] = []
        self._chunk: list[tuple] = []

    # -- failures --------------------------------------------------------------------
    def fail(self, seq: int, check: str, message: str) -> None:
        if len(self.report.failures) < self.MAX_FAILURES:
            self.report.failures.append(Failure(seq, check, message))

    # -- events ----------------------------------------------------------------------
    def feed(self, row: Row) -> None:
        self.feed_rows([_row_tuple(row)])

    def feed_rows(self, rows: Sequence[tuple]) -> None:
        """Rows in ``ROW_FIELDS`` order, continuing the rows fed before."""
        self._chunk.extend(rows)
        while len(self._chunk) >= self.CHUNK:
            chunk, self._chunk = self._chunk[: self.CHUNK], self._chunk[self.CHUNK :]
            self._submit(chunk)

    def _submit(self, chunk: list[tuple]) -> None:
        self.report.events += len(chunk)
        self._pending.append(
            self._executor.submit(check_chunk, chunk, self.keys, self.expected_seq, self.prev_hash)
        )
        last = chunk[-1]
        self.expected_seq, self.prev_hash = last[0] + 1, last[2]
        # Collect finished work in order, so memory stays bounded on long logs.
        while len(self._pending) > self.IN_FLIGHT * self._workers:
            self._collect(self._pending.pop(0))

    def _flush(self) -> None:
        if self._chunk:
            chunk, self._chunk = self._chunk, []
            self._submit(chunk)

    def _collect(self, future: Future) -> None:
        result: ChunkResult = future.result()
        self.report.signatures_checked += result.signatures_checked
        for seq, check, message in result.failures:
            self.fail(seq, check, message)
        leaves, frontier, wanted = result.leaves, self.frontier, self._roots_wanted
        for start in range(0, len(leaves), 32):
            frontier.append(leaves[start : start + 32])
            if frontier.size in wanted:
                self._roots[frontier.size] = frontier.root().hex()

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
    checker.feed_rows([_row_tuple(row) for row in rows])
    return checker.finish()


def check_batches(
    batches: Iterable[Sequence[tuple]],
    keys: Sequence[PublicKey],
    checkpoints: Sequence[dict],
    *,
    against: dict | None = None,
    workers: int | None = None,
) -> Report:
    """``check_rows`` for rows read in batches of ``ROW_FIELDS`` tuples (``verify_log``)."""
    checker = LogChecker(keys, checkpoints, against=against, workers=workers)
    try:
        for batch in batches:
            checker.feed_rows(batch)
    except BaseException:
        checker._executor.shutdown(cancel_futures=True)
        raise
    return checker.finish()
