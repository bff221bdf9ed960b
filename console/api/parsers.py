"""The API's JSON parser: DRF's, refusing what the rest of Warden cannot handle.

JSON can spell a lone surrogate (``"\\ud800"``), which Python's decoder keeps in the
string and nothing downstream can encode (the event's canonical form, the database), and
a NUL character (``"\\u0000"``), which PostgreSQL cannot store in text or ``jsonb``; and
it can nest arrays and objects deeper than Python's decoder, or the recursive code after it
(canonical form, detectors, policy input), can follow. Each failed late, as a 500; each is
refused here (400 ``malformed_json``, saying where or how deep). ``MAX_DEPTH`` levels are
allowed.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _unstorable(value: Any, path: str) -> tuple[str, str] | None:
    """``(where, why)`` of the first string (value or key) that cannot be stored."""
    if isinstance(value, str):
        if "\x00" in value:
            return path, "holds a NUL character (\\u0000), which cannot be stored"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "holds a lone surrogate (\\ud800-\\udfff), which is not text"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = _unstorable(key, f"{where} (the key)") or _unstorable(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


MAX_DEPTH = 64


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = f"JSON parse error - the body nests deeper than {MAX_DEPTH} levels."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep) from None
        if _depth(data) > MAX_DEPTH:
            raise ParseError(too_deep)
        try:  # the common case costs one dump: no escaped NUL, every string encodable
            suspect = b"\\u0000" in json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            suspect = True
        found = _unstorable(data, "") if suspect else None
        if found:
            where, why = found
            # The path may hold the very character: spell it out.
            where = where.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")
            raise ParseError(f"JSON parse error - {where or 'the body'} {why}.")
        return data
