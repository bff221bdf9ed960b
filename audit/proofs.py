"""Session proof certificates (SPEC §6.3): ``GET /api/v1/sessions/{id}/proof``.

A certificate holds every event of one session as it was hashed and signed, with the
RFC 9162 inclusion proof of each against one signed checkpoint, and the public keys that
signed them; ``python -m audit.verify`` checks it with nothing but ``cryptography``.

How it is built:

1. Pending events are integrated first, so every event the session has is in the log.
2. The covering checkpoint is the first one whose tree includes the session's last event;
   if none does yet, one is signed now (``services.sign_checkpoint``). Using the *first*
   covering checkpoint makes the certificate of an ended session the same every time.
3. Audit paths come from cached subtree hashes (``audit/tiles.py``, ``MerkleTile``), filled
   up to the checkpoint's size on the way, so the cost stays O(log n) reads per event on a
   log of any length.
4. Before answering, the server checks each leaf hash against the event's content and each
   path against the signed root, and refuses (409 ``log_inconsistent``) rather than hand
   out a certificate it knows to be broken: that means the log was damaged (run
   ``manage.py verify_log``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from django.db.models import Max, Q

from console.errors import Conflict, NotFound

from . import tiles
from .eventcodec import event_leaf_hash
from .keys import keyring
from .merkle import verify_inclusion
from .models import Checkpoint, EventLogEntry, MerkleTile
from .services import integrate_pending, sign_checkpoint

FORMAT = "warden-proof-v1"
TILE_BITS = tiles.TILE_BITS
FILL_CHUNK = 256  # tiles computed per database round trip when filling the cache


class DatabaseTiles:
    """``tiles.TileSource`` over ``EventLogEntry`` (leaf index = seq - 1) and ``MerkleTile``."""

    def leaves(self, lo: int, hi: int) -> list[bytes]:
        rows = (
            EventLogEntry.objects.filter(seq__gt=lo, seq__lte=hi)
            .order_by("seq")
            .values_list("leaf_hash", flat=True)
        )
        return [bytes.fromhex(leaf) for leaf in rows.iterator(chunk_size=10_000)]

    def leaf_blocks(self, ranges: list[tuple[int, int]]) -> Iterable[tuple[int, list[bytes]]]:
        for start in range(0, len(ranges), 100):
            chunk = ranges[start : start + 100]
            condition = Q()
            for lo, hi in chunk:
                condition |= Q(seq__gt=lo, seq__lte=hi)
            rows = dict(
                EventLogEntry.objects.filter(condition).values_list("seq", "leaf_hash").iterator()
            )
            for lo, hi in chunk:
                yield lo, [bytes.fromhex(rows[seq]) for seq in range(lo + 1, hi + 1) if seq in rows]

    def tiles(self, level: int, lo: int, hi: int) -> list[bytes]:
        rows = (
            MerkleTile.objects.filter(level=level, index__gte=lo, index__lt=hi)
            .order_by("index")
            .values_list("hash", flat=True)
        )
        return [bytes.fromhex(value) for value in rows]


def fill_tiles(size: int, bits: int | None = None) -> int:
    """Store every complete tile of the tree of ``size`` leaves that is missing; returns how
    many were written. Tiles are filled in order, so those present form a prefix per level.

    Derived data, not a change of Warden's state: no event. Concurrent fills are harmless
    (the same tile always has the same hash; duplicates are ignored).
    """
    bits = bits or TILE_BITS
    width = 1 << bits
    source = DatabaseTiles()
    written = 0
    for level in tiles.stored_levels(size, bits):
        want = size >> level
        top = MerkleTile.objects.filter(level=level).aggregate(top=Max("index"))["top"]
        have = 0 if top is None else top + 1
        for start in range(have, want, FILL_CHUNK):
            stop = min(start + FILL_CHUNK, want)
            if level == bits:
                children = source.leaves(start * width, stop * width)
            else:
                children = source.tiles(level - bits, start * width, stop * width)
            if len(children) != (stop - start) * width:
                raise Conflict(
                    "The log has a gap; run manage.py verify_log.", code="log_inconsistent"
                )
            hashes = tiles.tile_hashes(children, bits)
            MerkleTile.objects.bulk_create(
                [
                    MerkleTile(level=level, index=start + i, hash=value.hex())
                    for i, value in enumerate(hashes)
                ],
                ignore_conflicts=True,
            )
            written += len(hashes)
    return written


def covering_checkpoint(last_seq: int) -> Checkpoint:
    """The first checkpoint whose tree holds ``last_seq``; signs one now if none does."""
    checkpoint = Checkpoint.objects.filter(tree_size__gte=last_seq).order_by("tree_size").first()
    if checkpoint is None:
        checkpoint = sign_checkpoint()
    if checkpoint is None or checkpoint.tree_size < last_seq:  # pragma: no cover - defensive
        raise Conflict("No checkpoint covers the session yet.", code="no_checkpoint")
    return checkpoint


def event_json(entry: EventLogEntry) -> dict:
    """The ``event`` of a certificate entry: every §6.1 field but leaf_hash, signature, key_id."""
    event = entry.event
    return {
        **event.content_fields(),
        "seq": entry.seq,
        "prev_hash": entry.prev_hash,
        "payload": json.loads(event.payload_json),
    }


def certificate(session_id: uuid.UUID, *, bits: int | None = None) -> dict:
    """The proof certificate of one session (SPEC §6.3 shape)."""
    integrate_pending(wait=True)
    entries = list(
        EventLogEntry.objects.filter(event__session_id=session_id)
        .select_related("event")
        .order_by("seq")
    )
    if not entries:
        raise NotFound("No integrated events for this session.", code="session_not_found")
    checkpoint = covering_checkpoint(entries[-1].seq)
    size = checkpoint.tree_size
    fill_tiles(size, bits)
    reader = tiles.TreeReader(size, DatabaseTiles(), bits or TILE_BITS)
    reader.prefetch_leaves(entry.seq - 1 for entry in entries)
    root = bytes.fromhex(checkpoint.root_hash)
    items = []
    for entry in entries:
        event = entry.event
        fields = event.content_fields() | {"seq": entry.seq, "prev_hash": entry.prev_hash}
        leaf = bytes.fromhex(entry.leaf_hash)
        if event_leaf_hash(fields, event.payload_json) != leaf:
            raise Conflict(
                f"Event seq {entry.seq} does not match its leaf hash; run manage.py verify_log.",
                code="log_inconsistent",
            )
        path = reader.proof(entry.seq - 1)
        if not verify_inclusion(entry.seq - 1, size, leaf, path, root):
            raise Conflict(
                f"The log does not match checkpoint {size} at seq {entry.seq}; "
                "run manage.py verify_log.",
                code="log_inconsistent",
            )
        items.append(
            {
                "event": event_json(entry),
                "leaf_hash": entry.leaf_hash,
                "signature": entry.signature,
                "key_id": entry.key_id,
                "inclusion_proof": [node.hex() for node in path],
            }
        )
    used = {entry.key_id for entry in entries} | {checkpoint.key_id}
    known = {key.key_id: key for key in keyring().public_keys()}
    agent_id = entries[0].event.agent_id
    return {
        "format": FORMAT,
        "session_id": str(session_id),
        "agent_id": str(agent_id) if agent_id else None,
        "events": items,
        "checkpoint": checkpoint.as_json(),
        "keys": [known[key_id].as_json() for key_id in sorted(used) if key_id in known],
    }
