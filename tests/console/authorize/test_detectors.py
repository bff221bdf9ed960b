"""Guardrail detectors (SPEC §3.2 step 3): PII with checksums, secrets, banned words,
canaries; redaction keeps the document's shape."""

from __future__ import annotations

import pytest

from console.authorize import detectors as d


def redacted(text: str, kinds=d.PII_KINDS) -> str:
    return d.redact(text, d.find_pii(text, kinds))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to bob.smith@example.co.uk today", "write to [REDACTED:email] today"),
        ("call +1 415 555 0100", "call [REDACTED:phone]"),
        ("call (020) 7946 0958", "call [REDACTED:phone]"),
        ("call 555-123-4567", "call [REDACTED:phone]"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [REDACTED:card] exp 12/29"),
        ("card 5500-0000-0000-0004", "card [REDACTED:card]"),
        ("iban GB82 WEST 1234 5698 7654 32", "iban [REDACTED:iban]"),
        ("iban DE89370400440532013000", "iban [REDACTED:iban]"),
        ("ssn 123-45-6789", "ssn [REDACTED:ssn]"),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz0123", "key [REDACTED:secret]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED:secret]"),
        ("gh ghp_" + "a1B2" * 9, "gh [REDACTED:secret]"),
        ("token aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF", "token [REDACTED:secret]"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            "[REDACTED:secret]",
        ),
    ],
)
def test_each_kind_of_pii_is_found_and_redacted(text, expected):
    assert redacted(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "iban GB82 WEST 1234 5698 7654 33",  # fails mod-97
        "ssn 000-12-3456",  # never issued
        "on 2024-01-15 at 10.0.0.1",  # a date and an address are not phone numbers
        "amount 120000.00 USD, PO-77, INV-1042, vendor:acme",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "id 6c2f1d2e-2b1b-4f4f-9a55-5a8d2c1e0f11",
    ],
)
def test_look_alikes_are_left_alone(text):
    assert redacted(text) == text


def test_checksums():
    assert d.luhn_ok("4111111111111111") and not d.luhn_ok("4111111111111112")
    assert d.iban_ok("GB82WEST12345698765432") and not d.iban_ok("GB82WEST12345698765431")
    assert not d.iban_ok("GB82")


def test_only_the_chosen_kinds_are_detected():
    text = "bob@example.com 123-45-6789"
    assert redacted(text, ["ssn"]) == "bob@example.com [REDACTED:ssn]"


def test_scan_keeps_the_shape_and_redacts_secret_fields_and_long_numbers():
    document = {
        "to": ["alice@example.com", "ops"],
        "password": "hunter2",
        "card": 4111111111111111,
        "count": 12,
        "nested": {"note": "ssn 123-45-6789", "ok": True},
    }
    out, kinds = d.scan(document, lambda t: d.find_pii(t), secret_fields=True)
    assert out == {
        "to": ["[REDACTED:email]", "ops"],
        "password": "[REDACTED:secret]",
        "card": "[REDACTED:card]",
        "count": 12,
        "nested": {"note": "ssn [REDACTED:ssn]", "ok": True},
    }
    assert kinds == {"email", "secret", "card", "ssn"}


def test_banned_words_match_whole_words_case_insensitively_by_default():
    regex = d.banned_words_regex(["wire transfer", "bribe"])
    assert [s.kind for s in d.find_banned("A Wire Transfer, no BRIBE; bribery", regex)] == [
        "banned_word",
        "banned_word",
    ]
    strict = d.banned_words_regex(["Bribe"], case_sensitive=True)
    assert not d.find_banned("bribe", strict) and d.find_banned("Bribe", strict)
    assert d.banned_words_regex([" ", ""]) is None


def test_canaries_are_found_anywhere_in_any_string():
    tokens = ["wdn-canary-7f3a9c1e"]
    assert d.find_canaries("xx wdn-canary-7f3a9c1eyy", tokens)
    strings = list(d.strings_of({"a": [{"wdn-canary-7f3a9c1e": 1}]}))
    assert any(d.find_canaries(s, tokens) for s in strings)
    assert not d.find_canaries("wdn-canary-7f3a9c1", tokens)
