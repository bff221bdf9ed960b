"""Audit paths for a big log from cached subtree hashes (RFC 9162), standard library only.

Below its right edge the Merkle tree of an append-only log never changes: once the 256
leaves of an aligned block are in, the hash of that perfect subtree is fixed for ever. Warden
stores those hashes (*tiles*, as Certificate Transparency's tiled logs call them) at levels
8, 16, 24 … (``audit.models.MerkleTile``) and builds any audit path from a few of them plus
at most one block of 256 leaves per event, instead of re-reading the whole log: a proof
costs O(log n) reads however long the log is.

Tiles are derived data. A wrong tile (a bug, or someone editing the database) can only make
a proof fail to verify, never make a forged one pass: the proof is checked against the
signed checkpoint root, by the server before it answers and by the verifier.

The source of leaves and tiles is abstract (``TileSource``) so the arithmetic here is tested
against a plainly written reference with in-memory lists and small tiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from .merkle import inclusion_proof, node_hash, split_point

TILE_BITS = 8


class TileSource(Protocol):
    def leaves(self, lo: int, hi: int) -> list[bytes]:
        """Leaf hashes of leaves ``lo .. hi-1`` (leaf index = seq - 1)."""

    def tiles(self, level: int, lo: int, hi: int) -> list[bytes]:
        """Stored hashes of the perfect subtrees ``lo .. hi-1`` of ``2**level`` leaves."""


def perfect_root(nodes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree over ``2**k`` sibling nodes of one level."""
    level = list(nodes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tile_hashes(children: Sequence[bytes], bits: int = TILE_BITS) -> list[bytes]:
    """Hashes of the complete tiles over ``children`` (leaves, or tiles ``bits`` levels down)."""
    width = 1 << bits
    return [
        perfect_root(children[start : start + width])
        for start in range(0, len(children) - width + 1, width)
    ]


def stored_levels(size: int, bits: int = TILE_BITS) -> Iterable[int]:
    """The tile levels that have at least one complete tile in a tree of ``size`` leaves."""
    level = bits
    while size >> level:
        yield level
        level += bits


class TreeReader:
    """RFC 9162 subtree hashes and audit paths of the tree of ``size`` leaves.

    Every tile the reader asks for must exist (``size >> level`` tiles at each stored
    level): callers fill the cache up to ``size`` first. Blocks of leaves and tiles are read
    once per reader and memoised, so the proofs of many events of one session share reads.
    """

    def __init__(self, size: int, source: TileSource, bits: int = TILE_BITS) -> None:
        self.size = size
        self.source = source
        self.bits = bits
        self._blocks: dict[tuple[int, int], list[bytes]] = {}
        self._perfect: dict[tuple[int, int], bytes] = {}
        self._ranges: dict[tuple[int, int], bytes] = {}
        self.reads = 0

    def _block(self, level: int, block: int) -> list[bytes]:
        found = self._blocks.get((level, block))
        if found is None:
            width = 1 << self.bits
            count = self.size >> level  # leaves (level 0) or complete tiles at this level
            lo, hi = block * width, min((block + 1) * width, count)
            self.reads += 1
            if level == 0:
                found = self.source.leaves(lo, hi)
            else:
                found = self.source.tiles(level, lo, hi)
            if len(found) != hi - lo:
                raise LookupError(f"level {level} has {len(found)} of nodes {lo}..{hi - 1}")
            self._blocks[(level, block)] = found
        return found

    def prefetch_leaves(self, indices: Iterable[int]) -> None:
        """Read the leaf blocks holding ``indices`` in as few reads as the source allows."""
        have = {block for level, block in self._blocks if level == 0}
        wanted = sorted({index >> self.bits for index in indices} - have)
        many = getattr(self.source, "leaf_blocks", None)
        if many is None or not wanted:
            return
        width = 1 << self.bits
        for lo, leaves in many([(b * width, min((b + 1) * width, self.size)) for b in wanted]):
            self._blocks[(0, lo // width)] = leaves
            self.reads += 1

    def perfect(self, level: int, index: int) -> bytes:
        """Hash of the aligned perfect subtree ``index`` of ``2**level`` leaves."""
        key = (level, index)
        found = self._perfect.get(key)
        if found is not None:
            return found
        width = 1 << self.bits
        if level % self.bits == 0:
            found = self._block(level, index // width)[index % width]
        else:
            found = node_hash(
                self.perfect(level - 1, 2 * index), self.perfect(level - 1, 2 * index + 1)
            )
        self._perfect[key] = found
        return found

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``lo .. hi-1`` (RFC 9162 §2.1.1)."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.perfect(n.bit_length() - 1, lo // n)
        key = (lo, hi)
        found = self._ranges.get(key)
        if found is None:
            k = split_point(n)
            found = node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))
            self._ranges[key] = found
        return found

    def root(self) -> bytes:
        return self.subtree(0, self.size)

    def proof(self, index: int) -> list[bytes]:
        return inclusion_proof(index, self.size, self.subtree)
