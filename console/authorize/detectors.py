"""Content detectors behind the guardrails (SPEC §3.2 step 3). No Django.

* PII: e-mail addresses, phone numbers, payment card numbers (Luhn-checked), IBANs
  (ISO 13616 mod-97 checked), US social security numbers and secret-looking strings (API
  keys of well-known services, private key blocks, JWTs, long high-entropy tokens, and the
  value of any field whose *name* says it is a secret: ``password``, ``api_key`` …).
* Banned words and phrases (whole words, case-insensitive unless asked otherwise).
* Canary tokens: plain substring search of every string in the document.

Detectors read every string of a JSON document (keys and values; integers long enough to
be a card number are read as digits too) and redaction replaces each finding with
``[REDACTED:<kind>]``, keeping the document's shape.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

PII_KINDS = ("email", "phone", "card", "iban", "ssn", "secret")


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int


def marker(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# --- checksums ------------------------------------------------------------------------
def luhn_ok(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters → 10..35, mod 97 == 1."""
    iban = candidate.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


# --- PII ------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{1,5}){0,5}(?![\w])"
)
_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    re.compile(r"(?<![\w-])sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"(?<![\w-])[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"),
    re.compile(r"(?<!\w)gh[pousr]_[A-Za-z0-9]{36,}"),
    re.compile(r"(?<![\w-])xox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}"),
    re.compile(r"(?<!\w)wdn_(?:live|op)_[a-z0-9]{8}_[A-Za-z0-9]{32,}"),
    re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
]
_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32,256}(?![A-Za-z0-9_-])")
# Field names whose value is a secret whatever it looks like.
SECRET_FIELD = re.compile(
    r"(?i)^(?:.*[_-])?(?:pass(?:word|wd|phrase)?|secret|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|token|auth(?:orization)?|client[_-]?secret|credentials?)$"
)


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(token: str) -> bool:
    has = (
        any(c.islower() for c in token),
        any(c.isupper() for c in token),
        any(c.isdigit() for c in token),
    )
    return all(has) and _entropy(token) >= 4.0


def _phone_ok(candidate: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if not 8 <= digits <= 15:
        return False
    if candidate.startswith("+"):
        return True
    if "(" in candidate:
        return True
    if re.fullmatch(r"\d{3}([ -])\d{2}\1\d{4}", candidate):
        return False  # SSN-shaped (the SSN detector decides)
    groups = re.split(r"[ .-]", candidate)
    # 555-123-4567, 020 7946 0958: at least three groups ending in four or more digits
    # (dates, IP addresses and amounts do not look like that).
    return (
        len(groups) >= 3 and len(groups[-1]) >= 4 and len(set(re.findall(r"[ .-]", candidate))) == 1
    )


def _pii_candidates(text: str, kinds: frozenset[str]) -> Iterator[Span]:
    # Most specific first; overlapping later candidates are dropped by the caller.
    if "secret" in kinds:
        for pattern in _SECRET_PATTERNS:
            for m in pattern.finditer(text):
                yield Span("secret", m.start(), m.end())
        for m in _TOKEN.finditer(text):
            if _looks_random(m.group()):
                yield Span("secret", m.start(), m.end())
    if "card" in kinds:
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                yield Span("card", m.start(), m.end())
    if "iban" in kinds:
        for m in _IBAN.finditer(text):
            if iban_ok(m.group()):
                yield Span("iban", m.start(), m.end())
    if "ssn" in kinds:
        for m in _SSN.finditer(text):
            yield Span("ssn", m.start(), m.end())
    if "email" in kinds and "@" in text:
        for m in _EMAIL.finditer(text):
            yield Span("email", m.start(), m.end())
    if "phone" in kinds:
        for m in _PHONE.finditer(text):
            candidate = m.group().strip()
            if _phone_ok(candidate):
                yield Span("phone", m.start(), m.start() + len(candidate))


def find_pii(text: str, kinds: Iterable[str] = PII_KINDS) -> list[Span]:
    """Non-overlapping PII findings in ``text``, in order of position."""
    chosen: list[Span] = []
    for span in _pii_candidates(text, frozenset(kinds)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def redact(text: str, spans: list[Span]) -> str:
    out, last = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        out.append(text[last : span.start])
        out.append(marker(span.kind))
        last = span.end
    out.append(text[last:])
    return "".join(out)


# --- banned words ---------------------------------------------------------------------
def banned_words_regex(
    words: Iterable[str], *, case_sensitive: bool = False
) -> re.Pattern[str] | None:
    cleaned = sorted(
        {w.strip() for w in words if isinstance(w, str) and w.strip()}, key=len, reverse=True
    )
    if not cleaned:
        return None
    body = "|".join(re.escape(w) for w in cleaned)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", 0 if case_sensitive else re.IGNORECASE)


def find_banned(text: str, regex: re.Pattern[str] | None) -> list[Span]:
    if regex is None:
        return []
    return [Span("banned_word", m.start(), m.end()) for m in regex.finditer(text)]


# --- canaries -------------------------------------------------------------------------
def find_canaries(text: str, tokens: Iterable[str]) -> list[Span]:
    spans = []
    for token in tokens:
        if not token:
            continue
        start = text.find(token)
        while start != -1:
            spans.append(Span("canary", start, start + len(token)))
            start = text.find(token, start + 1)
    return spans


# --- walking JSON documents -------------------------------------------------------------
Detector = Callable[[str], list[Span]]


def scan(value: Any, detector: Detector, *, secret_fields: bool = False) -> tuple[Any, set[str]]:
    """Run ``detector`` over every string of ``value``.

    Returns the document with every finding redacted and the set of kinds found. With
    ``secret_fields`` the value of a field named like a secret is redacted whole.
    """
    kinds: set[str] = set()

    def visit(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                new_key = visit(k) if isinstance(k, str) else k
                if (
                    secret_fields
                    and isinstance(k, str)
                    and SECRET_FIELD.match(k)
                    and isinstance(v, str | int)
                    and not isinstance(v, bool)
                    and str(v).strip()
                    and not str(v).startswith("[REDACTED:")
                ):
                    kinds.add("secret")
                    out[new_key] = marker("secret")
                    continue
                out[new_key] = visit(v, k)
            return out
        if isinstance(node, list):
            return [visit(v) for v in node]
        if isinstance(node, str):
            spans = detector(node)
            if not spans:
                return node
            kinds.update(s.kind for s in spans)
            return redact(node, spans)
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 10**11:
            text = str(node)
            spans = detector(text)
            if spans:
                kinds.update(s.kind for s in spans)
                return redact(text, spans)
        return node

    return visit(value), kinds


def strings_of(value: Any) -> Iterator[str]:
    """Every string in a JSON document (keys and values, long integers as digits)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield k
            yield from strings_of(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_of(v)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield str(value)
