"""RFC 8785 (JSON Canonicalization Scheme) with nothing but the standard library.

Why not only the ``rfc8785`` package: the offline verifier (``python -m audit.verify``)
must run with the standard library and ``cryptography`` alone (SPEC §6.3), and the whole-log
check must canonicalise a million events quickly. This module is the one canonicaliser used
by the writer, ``verify_log`` and the offline verifier; the test suite checks it
byte-for-byte against the ``rfc8785`` package with hypothesis.

Fast path: for data without floats, without keys outside the Basic Multilingual Plane and
with integers inside I-JSON's exact range, ``json.dumps(sort_keys=True, ensure_ascii=False)``
with compact separators already produces the RFC 8785 bytes (same escaping rules: only
``"``, ``\\`` and controls are escaped, controls below 0x20 as ``\\uXXXX`` in lowercase hex
except the short forms). Everything else goes through the general encoder below, which
formats numbers the ECMAScript way and sorts keys by UTF-16 code units.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "CanonicalizationError", "format_number"]

# I-JSON (RFC 7493) exact integer range, as enforced by RFC 8785 implementations.
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalizationError(ValueError):
    """The value cannot be represented in RFC 8785 canonical JSON."""


def dumps(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value``."""
    try:
        if _is_simple(value):
            text = json.dumps(
                value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
            )
        else:
            parts: list[str] = []
            _encode(value, parts.append)
            text = "".join(parts)
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogate
        raise CanonicalizationError(f"string is not valid Unicode: {exc.reason}") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CanonicalizationError):
            raise
        raise CanonicalizationError(str(exc)) from exc


def _is_simple(value: Any) -> bool:
    """True when the stdlib encoder's output is already canonical for ``value``."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            return False
        if kind is dict:
            for key, sub in item.items():
                if type(key) is not str or (key and max(key) > "\uffff"):
                    return False
                stack.append(sub)
            continue
        if kind is list or kind is tuple:
            stack.extend(item)
            continue
        return False  # floats, subclasses, anything unusual: take the careful path
    return True


def _encode(value: Any, out: Callable[[str], object]) -> None:
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        out(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalizationError(f"integer {value} is outside the I-JSON range")
        out(str(int(value)))
    elif isinstance(value, float):
        out(format_number(value))
    elif isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalizationError(f"object key {key!r} is not a string")
        out("{")
        first = True
        for key in sorted(value, key=_utf16_key):
            if not first:
                out(",")
            first = False
            out(json.dumps(key, ensure_ascii=False))
            out(":")
            _encode(value[key], out)
        out("}")
    elif isinstance(value, list | tuple):
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            _encode(item, out)
        out("]")
    else:
        raise CanonicalizationError(f"{type(value).__name__} is not a JSON type")


def _utf16_key(key: str) -> bytes:
    # RFC 8785 §3.2.3: sort by UTF-16 code units. Big-endian UTF-16 bytes compare the same.
    return key.encode("utf-16-be", "surrogatepass")


def format_number(value: float) -> str:
    """Format a double as ECMAScript's Number.prototype.toString does (RFC 8785 §3.2.2.3)."""
    if math.isnan(value) or math.isinf(value):
        raise CanonicalizationError("NaN and Infinity are not allowed in JSON")
    if value == 0:
        return "0"  # also for -0.0
    sign = "-" if value < 0 else ""
    text = repr(abs(value))  # shortest digits that round-trip, as ECMAScript requires
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    stripped = digits.rstrip("0")
    # value = int(stripped) * 10 ** (n - k), with k digits (ECMAScript's s, k and n).
    k = len(stripped)
    n = k + exponent - len(frac_part) + (len(digits) - k)
    if k <= n <= 21:
        body = stripped + "0" * (n - k)
    elif 0 < n <= 21:
        body = stripped[:n] + "." + stripped[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + stripped
    else:
        exp = n - 1
        head = stripped[0] + ("." + stripped[1:] if k > 1 else "")
        body = f"{head}e{'+' if exp >= 0 else '-'}{abs(exp)}"
    return sign + body
