"""verify_log's checker: the signature check gives the same answers with libsodium and
OpenSSL, and the chunks its workers check are linked across their boundaries."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from audit.logcheck import _verify_chunk, _verify_chunk_openssl

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
OTHER = Ed25519PrivateKey.generate()


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=32, max_size=32), st.sampled_from(["good", "other", "flip", "short"])
        ),
        max_size=20,
    )
)
def test_both_verifiers_agree(cases):
    chunk = []
    expected_bad = []
    for seq, (message, kind) in enumerate(cases, start=1):
        signature = (OTHER if kind == "other" else KEY).sign(message)
        if kind == "flip":
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        if kind == "short":
            signature = signature[:63]
        if kind != "good":
            expected_bad.append(seq)
        chunk.append((seq, PUBLIC, signature, message))
    assert _verify_chunk(chunk) == expected_bad
    if all(len(sig) == 64 for _, _, sig, _ in chunk):
        assert _verify_chunk_openssl(chunk) == expected_bad


@given(st.binary(min_size=32, max_size=32))
def test_the_integrators_libsodium_signature_is_the_openssl_one(message):
    """Ed25519 is deterministic: the fast signer gives the very bytes OpenSSL gives."""
    from audit.keys import signing_function

    assert signing_function(KEY)(message) == KEY.sign(message)


@pytest.fixture
def small_log(db):
    """20 integrated events as ``verify_log`` reads them, with their keys and checkpoints."""
    from django.db import transaction

    from audit import selectors
    from audit.keys import keyring
    from audit.services import integrate_pending, record, sign_checkpoint

    with transaction.atomic():
        for i in range(20):
            record("test.event", actor="system:test", payload={"i": i})
    integrate_pending(wait=True)
    sign_checkpoint()
    rows = [row for batch in selectors.log_batches() for row in batch]
    assert [row[0] for row in rows] == list(range(1, 21))
    return rows, keyring().public_keys(), selectors.checkpoints()


def check(rows, keys, checkpoints, workers):
    from audit.logcheck import check_batches

    # Batches of 3 rows into chunks of 4: chunk and batch boundaries fall everywhere.
    return check_batches(
        [rows[i : i + 3] for i in range(0, len(rows), 3)], keys, checkpoints, workers=workers
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_are_linked_across_their_boundaries(small_log, workers, monkeypatch):
    from audit.logcheck import LogChecker

    monkeypatch.setattr(LogChecker, "CHUNK", 4)
    rows, keys, checkpoints = small_log
    report = check(rows, keys, checkpoints, workers)
    assert report.ok, report.failures
    assert (report.events, report.signatures_checked, report.checkpoints_checked) == (20, 20, 1)

    # Row 5 (seq 5) is the first of the second chunk: its loss, and a swap across the
    # boundary, are seen although each chunk alone is consistent.
    dropped = rows[:4] + rows[5:]
    first = check(dropped, keys, checkpoints, workers).first_failure
    assert (first.seq, first.check) == (5, "sequence")
    swapped = rows[:3] + [rows[4], rows[3]] + rows[5:]
    first = check(swapped, keys, checkpoints, workers).first_failure
    assert (first.seq, first.check) == (4, "sequence")
    relinked = rows[:4] + [(rows[4][0], "f" * 64, *rows[4][2:])] + rows[5:]
    failures = check(relinked, keys, checkpoints, workers).failures
    assert [(f.seq, f.check) for f in failures][:2] == [(5, "chain"), (5, "leaf_hash")]


def test_a_retired_key_cannot_sign_events_after_its_window(db, tmp_path):
    """Whoever holds a retired key (leaked after rotation) cannot re-sign later events with
    it: the key's validity window is checked for every event."""
    import base64

    from django.db import transaction
    from django.test import override_settings

    from audit import selectors
    from audit.keys import keyring
    from audit.logcheck import check_batches
    from audit.services import integrate_pending, record

    with override_settings(WARDEN_KEY_DIR=tmp_path / "keys"):
        with transaction.atomic():
            record("test.event", actor="system:test")
        integrate_pending(wait=True)
        old = keyring().public_keys()[-1]
        retired = keyring().signers().pick(keyring().public_keys()[-1].valid_from)[1]
        keyring().rotate()
        with transaction.atomic():
            record("test.event", actor="system:test")
        integrate_pending(wait=True)
        keys = keyring().public_keys()
    rows = [row for batch in selectors.log_batches() for row in batch]
    assert check_batches([rows], keys, [], workers=1).ok
    seq, prev, leaf = rows[1][:3]
    resigned = base64.b64encode(retired.sign(bytes.fromhex(leaf))).decode()
    forged = rows[:1] + [(seq, prev, leaf, resigned, old.key_id, *rows[1][5:])]
    first = check_batches([forged], keys, [], workers=1).first_failure
    assert (first.seq, first.check) == (2, "signature")
    assert "was not valid at" in first.message
