"""The signature check of verify_log gives the same answers with libsodium and OpenSSL."""

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
