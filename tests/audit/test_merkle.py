"""RFC 9162 Merkle hashing against a plainly written reference."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import merkle


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
