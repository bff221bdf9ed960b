"""audit.canonical must produce the RFC 8785 bytes of the reference implementation."""

import json
import math

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import canonical
from audit.eventcodec import CANONICAL_FIELDS, canonical_bytes, event_canonical

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def _encodable(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_matches_the_reference_implementation(value):
    if not _encodable(value):  # lone surrogates: both must refuse
        with pytest.raises(canonical.CanonicalizationError):
            canonical.dumps(value)
        return
    assert canonical.dumps(value) == rfc8785.dumps(value)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_formatted_like_ecmascript(number):
    assert canonical.format_number(number).encode() == rfc8785.dumps(number)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (123.456, "123.456"),
        (5e-324, "5e-324"),
    ],
)
def test_known_number_forms(number, text):
    assert canonical.format_number(number) == text


def test_keys_sort_by_utf16_code_units():
    # U+1F600 (a surrogate pair in UTF-16) sorts before U+E000 by code unit, after it by code point.
    value = {"\ue000": 1, "\U0001f600": 2}
    assert canonical.dumps(value) == rfc8785.dumps(value)
    assert canonical.dumps(value).decode().index("\U0001f600") < canonical.dumps(
        value
    ).decode().index("\ue000")


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**53, {1: "x"}, object()])
def test_values_outside_json_are_refused(bad):
    with pytest.raises(canonical.CanonicalizationError):
        canonical.dumps(bad)


event_fields = st.fixed_dictionaries(
    {
        "actor": st.text(),
        "agent_id": st.none() | st.uuids().map(str),
        "event_type": st.text(min_size=1),
        "id": st.uuids().map(str),
        "payload": st.dictionaries(st.text(max_size=6), json_scalars, max_size=4),
        "prev_hash": st.text("0123456789abcdef", min_size=64, max_size=64),
        "reason": st.text(),
        "result": st.sampled_from(["success", "denied"]),
        "run_id": st.none() | st.uuids().map(str),
        "seq": st.integers(min_value=1, max_value=2**53 - 1),
        "session_id": st.none() | st.uuids().map(str),
        "timestamp": st.just("2026-11-21T13:53:00.123456Z"),
        "verdict": st.none() | st.sampled_from(["ALLOW", "BLOCK"]),
        "workflow_id": st.none() | st.text(),
    }
)


@settings(max_examples=300, deadline=None)
@given(event_fields)
def test_event_codec_equals_generic_canonicalisation(fields):
    if not _encodable(fields):
        return
    assert set(fields) == set(CANONICAL_FIELDS)
    payload_text = canonical.dumps(fields["payload"]).decode()
    expected = rfc8785.dumps(fields)
    assert canonical_bytes(fields, payload_text) == expected
    assert canonical_bytes(fields) == expected
    values = {name: value for name, value in fields.items() if name != "payload"}
    assert event_canonical(**values, payload_text=payload_text) == expected


def test_the_event_formatter_refuses_what_the_codec_refuses():
    good = {
        "seq": 1,
        "prev_hash": "0" * 64,
        "id": "6c2f1d2e-2b1b-4f4f-9a55-5a8d2c1e0f11",
        "timestamp": "2026-11-21T13:53:00.123456Z",
        "event_type": "test.event",
        "agent_id": None,
        "session_id": None,
        "workflow_id": None,
        "run_id": None,
        "actor": "system:test",
        "verdict": None,
        "result": "success",
        "reason": "",
        "payload_text": "{}",
    }
    assert event_canonical(**good) == canonical_bytes(
        {k: v for k, v in good.items() if k != "payload_text"} | {"payload": {}}, "{}"
    )
    for name, bad in [("seq", "1"), ("seq", True), ("actor", 5), ("verdict", b"ALLOW")]:
        with pytest.raises(canonical.CanonicalizationError):
            event_canonical(**(good | {name: bad}))
