"""RFC 9162 Merkle tree hashing, standard library only.

Leaves are *leaf hashes* (``SHA-256(0x00 || canonical)``); interior nodes are
``SHA-256(0x01 || left || right)``; the tree over ``n`` leaves splits at the largest power
of two smaller than ``n`` (RFC 9162 §2.1.1). Used by the integrator (checkpoint roots), by
``verify_log`` and by the offline verifier, so it imports nothing outside the standard
library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(canonical: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + canonical).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The compact range of a growing tree: one perfect-subtree root per set bit of size.

    Appending is amortised O(1) and the root is O(log n), so checkpoints never need to
    re-read the whole log.
    """

    __slots__ = ("size", "_nodes")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if bin(size).count("1") != len(nodes):
            raise ValueError("frontier nodes do not match the tree size")
        self.size = size
        self._nodes = list(nodes)  # biggest subtree first

    def append(self, leaf: bytes) -> None:
        node = leaf
        size = self.size
        # Each trailing 1-bit of the old size is a perfect subtree the new leaf completes.
        while size & 1:
            node = node_hash(self._nodes.pop(), node)
            size >>= 1
        self._nodes.append(node)
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._nodes:
            return EMPTY_ROOT
        node = self._nodes[-1]
        for left in reversed(self._nodes[:-1]):
            node = node_hash(left, node)
        return node

    def to_hex(self) -> list[str]:
        return [node.hex() for node in self._nodes]

    @classmethod
    def from_hex(cls, size: int, nodes: Sequence[str]) -> Frontier:
        return cls(size, [bytes.fromhex(node) for node in nodes])

    def copy(self) -> Frontier:
        return Frontier(self.size, self._nodes)


def root(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 Merkle tree hash over the given leaf hashes."""
    frontier = Frontier()
    frontier.extend(leaves)
    return frontier.root()


SubtreeHash = Callable[[int, int], bytes]


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 9162 §2.1.3.1 audit path of leaf ``index`` in the tree of ``size`` leaves.

    ``subtree(lo, hi)`` returns the Merkle tree hash of leaves ``lo..hi-1``; callers pass
    one backed by a list, or by stored subtree hashes for big logs.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo = lo + k
    path.reverse()  # the RFC lists siblings from the leaf upwards
    return path


def list_subtree(leaves: Sequence[bytes]) -> SubtreeHash:
    """A ``subtree`` function over an in-memory list of leaf hashes."""

    def subtree(lo: int, hi: int) -> bytes:
        return root(leaves[lo:hi])

    return subtree


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` lead from ``leaf`` at ``index`` to the root?"""
    if index < 0 or index >= size:
        return False
    fn, sn = index, size - 1
    node = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == expected_root
