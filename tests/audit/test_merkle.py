"""RFC 9162 Merkle hashing against a plainly written reference."""

import functools
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import merkle, tiles, verify


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1, recursive and slow on purpose."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 9162 §2.1.3.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return reference_path(m, leaves[:k]) + [reference_root(leaves[k:])]
    return reference_path(m - k, leaves[k:]) + [reference_root(leaves[:k])]


LEAVES = [merkle.leaf_hash(f"event {i}".encode()) for i in range(300)]


def test_root_matches_reference_for_every_size_up_to_300():
    frontier = merkle.Frontier()
    assert frontier.root() == reference_root([])
    for size in range(1, 301):
        frontier.append(LEAVES[size - 1])
        assert frontier.root() == reference_root(LEAVES[:size]), size
        assert merkle.root(LEAVES[:size]) == frontier.root()


def test_frontier_round_trips_through_hex():
    frontier = merkle.Frontier()
    frontier.extend(LEAVES[:77])
    again = merkle.Frontier.from_hex(77, frontier.to_hex())
    again.extend(LEAVES[77:150])
    assert again.root() == reference_root(LEAVES[:150])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100, 255])
def test_inclusion_proofs_match_reference_and_verify(size):
    leaves = LEAVES[:size]
    subtree = merkle.list_subtree(leaves)
    root = reference_root(leaves)
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, subtree)
        assert proof == reference_path(index, leaves)
        assert merkle.verify_inclusion(index, size, leaves[index], proof, root)


@given(st.integers(min_value=1, max_value=120), st.data())
def test_tampered_inclusion_proofs_fail(size, data):
    leaves = LEAVES[:size]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = merkle.inclusion_proof(index, size, merkle.list_subtree(leaves))
    root = reference_root(leaves)
    assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
    if size > 1:
        other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
        assert not merkle.verify_inclusion(other, size, leaves[index], proof, root)
        assert not merkle.verify_inclusion(index, size, leaves[index], proof[:-1], root)
        flipped = bytearray(proof[0])
        flipped[0] ^= 1
        assert not merkle.verify_inclusion(
            index, size, leaves[index], [bytes(flipped), *proof[1:]], root
        )
    assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(b"forged"), proof, root)


# --- every (index, size) up to 300 ------------------------------------------------------
@functools.cache
def ref_mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) over LEAVES, RFC 9162 §2.1.1 written out (memoised for speed only)."""
    n = hi - lo
    if n == 1:
        return LEAVES[lo]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(lo, lo + k) + ref_mth(lo + k, hi)).digest()


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) of RFC 9162 §2.1.3.1."""
    n = hi - lo
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, lo, lo + k) + [ref_mth(lo + k, hi)]
    return ref_path(m - k, lo + k, hi) + [ref_mth(lo, lo + k)]


class ListTiles:
    """An in-memory tile source with small tiles, so several stored levels are exercised."""

    def __init__(self, leaves: list[bytes], bits: int) -> None:
        self._leaves = leaves
        self._tiles: dict[int, list[bytes]] = {}
        children = leaves
        for level in tiles.stored_levels(len(leaves), bits):
            children = self._tiles[level] = tiles.tile_hashes(children, bits)

    def leaves(self, lo, hi):
        return self._leaves[lo:hi]

    def tiles(self, level, lo, hi):
        return self._tiles.get(level, [])[lo:hi]


def test_every_inclusion_proof_up_to_size_300_matches_the_reference():
    for size in range(1, 301):
        root = ref_mth(0, size)
        subtree = merkle.list_subtree(LEAVES[:size]) if size <= 40 else None
        reader = tiles.TreeReader(size, ListTiles(LEAVES[:size], bits=2), bits=2)
        assert reader.root() == root
        for index in range(size):
            expected = ref_path(index, 0, size)
            assert reader.proof(index) == expected, (index, size)
            assert merkle.inclusion_proof(index, size, ref_mth) == expected
            if subtree is not None:
                assert merkle.inclusion_proof(index, size, subtree) == expected
            assert merkle.verify_inclusion(index, size, LEAVES[index], expected, root)
            assert verify.inclusion_root(index, size, LEAVES[index], expected) == root
            if expected:
                assert verify.inclusion_root(index, size, LEAVES[index], expected[:-1]) is None
                assert verify.inclusion_root(index, size, LEAVES[index], expected + [root]) != root
        assert verify.inclusion_root(size, size, LEAVES[0], []) is None


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_tile_reader_with_other_tile_sizes(bits):
    for size in (1, 2, 7, 8, 9, 255, 256, 257, 300):
        reader = tiles.TreeReader(size, ListTiles(LEAVES[:size], bits), bits)
        for index in range(0, size, 7):
            assert reader.proof(index) == ref_path(index, 0, size)


def test_tile_reader_reads_o_log_n_blocks():
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(70_000)]
    source = ListTiles(leaves, tiles.TILE_BITS)
    reader = tiles.TreeReader(len(leaves), source)
    proof = reader.proof(12_345)
    assert merkle.verify_inclusion(12_345, len(leaves), leaves[12_345], proof, merkle.root(leaves))
    # One block of leaves, one of level-8 tiles, plus the right edge's partial blocks.
    assert reader.reads <= 6
